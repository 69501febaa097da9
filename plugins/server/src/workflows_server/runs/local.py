"""``LocalPlacement``: a server whose store is its own (SQLite): every run of the store runs here."""

from __future__ import annotations

import logging

from workflows import Workflow
from workflows.handler import WorkflowHandler
from workflows_server.runs.live import LiveRuns
from workflows_server.runs.placement import Placement

logger = logging.getLogger("workflows_server")


class LocalPlacement(Placement):
    def __init__(self, live: LiveRuns, workflows: dict[str, Workflow]) -> None:
        self.live = live
        self.workflows = workflows
        self.store = live.runtime.store

    async def start(self) -> None:
        live = self.live
        for row in await live.worker.read(self.store.list_handlers, status=["running"]):
            workflow = self.workflows.get(row.workflow_name)
            if workflow is None:
                logger.warning(
                    "run %s of workflow %r is left in the store: this server does not serve that workflow",
                    row.handler_id, row.workflow_name,
                )
                continue
            try:
                handler = await live.runtime.continue_run(workflow, row.handler_id)
            except Exception as exc:
                logger.exception("run %s could not be continued; it is marked failed", row.handler_id)
                await live.end(row.handler_id, "failed", f"could not be continued from the store: {type(exc).__name__}: {exc}")
                continue
            if handler is not None:
                live.counts["continued"] += 1
                live.track(row.handler_id, handler)
            else:
                again = await live.worker.read(self.store.get_handler, row.handler_id)
                if again is not None and again.status == "running":
                    live.waiting += 1

    async def stop(self) -> None:
        pass  # nothing looks for work: every run of the store was taken up at start

    async def let_go(self) -> None:
        pass  # the store holds the runs as running: the next server continues them

    async def run_here(self, handler_id: str) -> bool:
        return True

    async def ended(self, handler_id: str, handler: WorkflowHandler) -> None:
        if handler_id not in self.live.handlers and handler_id not in self.live.releasing:
            async with self.live.lock(handler_id):  # after a release's write, if it was one
                row = await self.live.worker.read(self.store.get_handler, handler_id)
            if row is not None and row.status == "running" and row.run_id == handler.run_id and not row.waiting_since:
                # The run ended without its end in the journal (its store write failed).
                error = handler.error
                await self.live.end(handler_id, "failed", f"{type(error).__name__}: {error}" if error else "the run ended unrecorded")

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
