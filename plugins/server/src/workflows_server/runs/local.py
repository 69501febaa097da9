"""``LocalPlacement``: a server whose store is its own (SQLite): every run of the store runs here."""

from __future__ import annotations

import logging
from typing import Any

from workflows import Workflow
from workflows.handler import WorkflowHandler
from workflows_server.runs.live import LiveRuns, PendingEnd, Stranded
from workflows_server.runs.placement import Placement
from workflows_server.store import TERMINAL, HandlerRow, StoreError

logger = logging.getLogger("workflows_server")


class LocalPlacement(Placement):
    def __init__(self, live: LiveRuns, workflows: dict[str, Workflow]) -> None:
        self.live = live
        self.workflows = workflows
        self.store = live.runtime.store

    async def start(self) -> None:
        live = self.live
        # Before anything is continued: a second server on the same file refuses to start.
        await live.worker.write(self.store.own)
        for row in await live.worker.read(self.store.list_handlers, status=["running"]):
            await self.take_up(row.handler_id, row.workflow_name)

    async def take_up(self, handler_id: str, workflow_name: str) -> None:
        """Continue a run the store holds as running (at start, or after a store failure stranded it)."""
        live = self.live
        workflow = self.workflows.get(workflow_name)
        if workflow is None:
            logger.warning(
                "run %s of workflow %r is left in the store: this server does not serve that workflow",
                handler_id, workflow_name,
            )
            return
        try:
            handler = await live.runtime.continue_run(workflow, handler_id)
        except StoreError as exc:
            live.strand(handler_id, exc)
            return
        except Exception as exc:
            logger.exception("run %s could not be continued; it is marked failed", handler_id)
            await self._end(handler_id, "failed", f"could not be continued from the store: {type(exc).__name__}: {exc}")
            return
        if handler is not None:
            live.counts["continued"] += 1
            live.track(handler_id, handler)
        else:
            again = await live.worker.read(self.store.get_handler, handler_id)
            if again is not None and again.status == "running":
                live.waiting += 1

    async def recover(self, handler_id: str, stranded: Stranded) -> None:
        row = await self.live.worker.read(self.store.get_handler, handler_id)
        if row is None or row.status in TERMINAL or handler_id in self.live.handlers:
            return
        if stranded.end is not None:
            await self.live.end(handler_id, stranded.end.status, stranded.end.error)
        else:
            await self.take_up(handler_id, row.workflow_name)

    async def _end(self, handler_id: str, status: str, error: str) -> None:
        # Recorded once the store writes again if it cannot now.
        try:
            await self.live.end(handler_id, status, error)
        except StoreError as exc:
            self.live.strand(handler_id, exc, end=PendingEnd(status=status, error=error))

    async def stop(self) -> None:
        pass  # nothing looks for work: every run of the store was taken up at start

    async def let_go(self) -> None:
        pass  # the store holds the runs as running: the next server continues them

    async def create(self, row: HandlerRow, base: dict[str, Any]) -> bool:
        await self.live.worker.write(self.store.create_handler, row, base)
        return True

    async def run_here(self, handler_id: str) -> bool:
        return True

    async def ended(self, handler_id: str, handler: WorkflowHandler, concluded: bool) -> None:
        live = self.live
        if concluded:
            return
        if handler_id not in live.handlers and handler_id not in live.releasing and handler_id not in live.stranded:
            async with live.lock(handler_id):  # after a release's write, if it was one
                row = await live.worker.read(self.store.get_handler, handler_id)
            if handler_id in live.stranded:
                return  # its release's write failed: continued once the store writes
            if row is not None and row.status == "running" and row.run_id == handler.run_id and not row.waiting_since:
                # The run ended without its end in the journal.
                error = handler.error
                await self._end(handler_id, "failed", f"{type(error).__name__}: {error}" if error else "the run ended unrecorded")

    def holds(self, handler_id: str) -> bool:
        return True

    async def cancel_unheld(self, handler_id: str) -> None:
        row = await self.live.worker.read(self.store.get_handler, handler_id)
        if row is None or row.status != "running":
            return
        # A run held by the store alone (or cancelled before its first record).
        if row.waiting_since is not None:
            self.live.waiting -= 1
        await self.live.end(handler_id, "cancelled")


__all__ = ["LocalPlacement"]
