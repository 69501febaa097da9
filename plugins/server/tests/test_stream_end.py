"""A reader of a run's events gets them all when the run ends while it reads.

The run is another replica's: it writes its last events and its final status to the
shared store in one transaction, at any moment between two reads of the reader. Here
the store itself ends the run right after one of the reader's stream reads found
nothing new, which is the narrowest place: the stream read saw nothing, the status
read that follows sees the run ended.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from workflows_server import WorkflowServer
from workflows_server.store import HandlerRow, HandlerUpdate, NewStreamEvent, now_iso
from workflows_server.store.sqlite import SqliteStore


class EndsBetweenReads(SqliteStore):
    """Ends the run ``handler_id`` (its StopEvent and status, as one append) right after
    the ``nth`` stream read that found nothing new."""

    def __init__(self, path: Path, *, handler_id: str, nth: int) -> None:
        super().__init__(path)
        self.handler_id = handler_id
        self.empty_reads_left = nth

    def stream(self, handler_id: str, *, after: int = -1, limit: int = 1000) -> Any:
        found = super().stream(handler_id, after=after, limit=limit)
        if handler_id == self.handler_id and not found and self.empty_reads_left:
            self.empty_reads_left -= 1
            if not self.empty_reads_left:
                self.append(
                    handler_id, 0, {"kind": "RunConcluded"},
                    event=NewStreamEvent(envelope={"type": "StopEvent", "value": {"result": "done"}}, terminal=True),
                    update=HandlerUpdate(status="completed", completed_at=now_iso()),
                )
        return found


@pytest.mark.parametrize("nth", [1, 2], ids=["before-the-response-starts", "while-streaming"])
def test_a_run_ending_between_two_reads_still_streams_its_last_events(tmp_path: Path, nth: int) -> None:
    store = EndsBetweenReads(tmp_path / "runs.db", handler_id="elsewhere", nth=nth)
    server = WorkflowServer(store)
    with TestClient(server.app, base_url="http://localhost") as client:
        store.create_handler(HandlerRow(handler_id="elsewhere", workflow_name="remote", run_id="r1"), base={})
        store.add_stream_event("elsewhere", NewStreamEvent(envelope={"type": "Progress", "value": {}}))

        with client.stream("GET", "/events/elsewhere", params={"after_sequence": 0}) as response:
            assert response.status_code == 200
            types = [json.loads(line)["type"] for line in response.iter_lines() if line]

    assert types == ["StopEvent"]
