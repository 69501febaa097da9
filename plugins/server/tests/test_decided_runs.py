"""A run whose process died after a step returned its StopEvent, and before the run
concluded, is concluded when it is continued: once, in the journal, the stream and the row."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from workflows import Workflow, step
from workflows.events import Event, StartEvent, StopEvent
from workflows_server.durable import DurableRuntime


class Drafted(Event):
    text: str


class TwoSteps(Workflow):
    @step
    async def draft(self, ev: StartEvent) -> Drafted:
        return Drafted(text=f"about {ev.topic}")

    @step
    async def finish(self, ev: Drafted) -> StopEvent:
        return StopEvent(result=ev.text)


def _died_after_the_stop_event(path: Path, handler_id: str) -> None:
    """Put the store back where a process killed right after storing the returned
    StopEvent left it: later records, the stream's end and the outcome are not written."""
    with sqlite3.connect(path) as db:
        records = [
            (position, json.loads(record))
            for position, record in db.execute(
                "SELECT position, record FROM journal WHERE handler_id = ? ORDER BY position", (handler_id,)
            )
        ]
        decided = next(
            position for position, record in records
            if record["kind"] == "EventEmitted" and record["source"] == "return" and "StopEvent" in json.dumps(record["event"])
        )
        db.execute("DELETE FROM journal WHERE handler_id = ? AND position > ?", (handler_id, decided))
        db.execute("DELETE FROM stream WHERE handler_id = ? AND terminal = 1", (handler_id,))
        db.execute(
            "UPDATE handlers SET status = 'running', result = NULL, completed_at = NULL WHERE handler_id = ?",
            (handler_id,),
        )


async def test_a_run_decided_before_its_process_died_is_concluded_once_when_continued(tmp_path: Path) -> None:
    path = tmp_path / "runs.db"
    assert await TwoSteps(runtime=DurableRuntime(f"sqlite:///{path}"), timeout=10).run(run_id="r", topic="tea") == "about tea"
    _died_after_the_stop_event(path, "r")

    runtime = DurableRuntime(f"sqlite:///{path}")
    assert await runtime.continue_run(TwoSteps(timeout=10), "r") is None  # nothing left to run

    row = runtime.store.get_handler("r")
    assert row is not None and row.status == "completed" and row.result is not None
    assert row.result["value"]["result"] == "about tea"
    kinds = [entry.record["kind"] for entry in runtime.store.journal("r")]
    assert kinds.count("RunConcluded") == 1 and kinds[-1] == "RunConcluded"
    stream = runtime.store.stream("r")
    assert [e.terminal for e in stream].count(True) == 1 and stream[-1].terminal
    assert stream[-1].envelope["type"] == "StopEvent"
    assert [e.sequence for e in stream] == list(range(stream[0].sequence, stream[0].sequence + len(stream)))
