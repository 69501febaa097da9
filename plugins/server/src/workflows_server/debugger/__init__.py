"""The workflow debugger: a dashboard of the server's runs, served at ``/`` by the server itself.

``Debugger(server)`` gives the server its pages and ``/api/...`` endpoints
(``routes()``, see ``debugger.api``) and keeps what the pages need besides the
journal, as runs go:

- a record listener on the server's durable runtime fills the store's run index
  (session, input, step attempts; see ``store.queries``);
- ``LlmCapture``, a span processor added to the process's OpenTelemetry SDK tracer
  provider (once one is configured: at the first run that starts after it is), keeps
  the LLM calls each step made, with their tokens and cost.

The pages follow the server with Server-Sent Events (``debugger.push``); the run list
acts on many runs at once (``debugger.bulk``); a run exported as one JSON file opens
read-only with ``workflows-server view`` (``debugger.exported``).

Everything the pages load ships in ``static/`` (plain HTML, CSS and JavaScript, no
build step, nothing from the network).
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import TYPE_CHECKING, Any

from starlette.routing import BaseRoute

from workflows.runtime.journal import JournalRecord, RunStarted, StepStarted
from workflows_server.debugger.api import DebuggerApi
from workflows_server.debugger.llm import LlmCapture, attach
from workflows_server.debugger.push import ANY_RUN
from workflows_server.debugger.values import unwrap
from workflows_server.durable.envelopes import envelope
from workflows_server.store.queries import IndexEntry, LlmCall, RunIndexUpdate

if TYPE_CHECKING:
    from workflows_server.http.served import Served

logger = logging.getLogger("workflows_server.debugger")


class Debugger:
    """The debugger of one ``Served``; see the module docstring."""

    def __init__(self, server: Served) -> None:
        self.server = server
        self.api = DebuggerApi(server)
        runtime = server.runtime
        prices = {model: (given, taken) for model, given, taken in server.settings.llm_prices}
        self.capture = LlmCapture(self._save_llm_call, self._handler_of, prices)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._attached = False
        runtime.listeners.append(self._on_record)
        self.attach()

    def routes(self) -> list[BaseRoute]:
        return self.api.routes()

    def attach(self) -> bool:
        """Add the LLM capture to the global SDK tracer provider, once; False while there is none."""
        if not self._attached:
            self._attached = attach(self.capture)
        return self._attached

    def _handler_of(self, run_id: str) -> str | None:
        journal = self.server.runtime.journal_of(run_id)
        return journal.handler_id if journal is not None else None

    def _on_record(self, handler_id: str, record: JournalRecord, sequence: int | None) -> None:
        # Called after the record is stored: pages that show the run list read it again
        # (debugger.push). The index is a summary the run page never depends on (it reads
        # the journal), so a failure here is logged, not raised.
        self.server.runs.hub.notify(ANY_RUN)
        if isinstance(record, RunStarted):
            self._loop = asyncio.get_running_loop()
            self.attach()
            run = record.run
            update = RunIndexUpdate(session_id=run.session_id if run is not None else None)
            if not record.resumed and record.start_event is not None:
                update.input_text = json.dumps(unwrap(envelope(record.start_event)["value"]), ensure_ascii=False, default=str)
                update.reset_steps = True
            self._index(handler_id, update)
        elif isinstance(record, StepStarted):
            self._index(handler_id, RunIndexUpdate(add_steps=1))

    def _save_llm_call(self, call: LlmCall) -> None:
        # Called where the LLM span ended: on the server's loop, or on a sync step's thread.
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        runtime = self.server.runtime

        def queue() -> None:
            written = runtime.worker.write(runtime.store.add_llm_call, call)
            written.add_done_callback(lambda done: self._indexed(call.handler_id, done))

        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            queue()
        else:
            loop.call_soon_threadsafe(queue)

    def _index(self, handler_id: str, update: RunIndexUpdate) -> None:
        # Written with the next flush of journal records: no transaction of its own.
        written = self.server.runtime.worker.index(IndexEntry(handler_id=handler_id, update=update))
        written.add_done_callback(lambda done: self._indexed(handler_id, done))

    def _indexed(self, handler_id: str, written: Any) -> None:
        error = None if written.cancelled() else written.exception()
        if error is not None:
            logger.error("the debugger could not index run %s", handler_id, exc_info=error)
        # The run list shows the index (steps, tokens, session): its pages read it again.
        self.server.runs.hub.notify(ANY_RUN)
        self.server.runs.hub.notify(handler_id)


def debugger_routes(server: Served) -> list[Any]:
    """The routes of ``server``'s debugger (the server's one hook into this package)."""
    return Debugger(server).routes()


__all__ = ["Debugger", "debugger_routes"]
