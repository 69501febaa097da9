"""What a person can do to a run from the debugger besides answering and cancelling it.

- ``rerun``: start a new run of the same workflow with the same start event (a fork's
  input is that of the run it was forked from);
- ``fork``: start a new run that continues from the moment a finished step of the
  run ended, optionally with an edited state. The run's journal up to that step's end
  is folded onto the snapshot the run began from (``Context.from_journal``): what was
  in progress then runs again, what had finished does not.

Both record the new run's link to the old one in the store's run index.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ValidationError

from workflows import Context, Workflow
from workflows.context.serializers import JsonSerializer, known_types
from workflows.context.state_store import DictState
from workflows.events import StartEvent
from workflows.runtime.ids import random_id
from workflows.runtime.codec import decode_records
from workflows.runtime.journal import RunInfo, RunStarted
from workflows.runtime.replay import outcome
from workflows.runtime.snapshot import workflow_types
from workflows_server.debugger.view import base_snapshot, current_run
from workflows_server.store import HandlerRow
from workflows_server.store.queries import RunIndexUpdate, RunQuery, RunSummary

if TYPE_CHECKING:
    from workflows_server.http.served import Served


class ActionError(Exception):
    """The action cannot be done; ``status`` is the HTTP status to answer with."""

    def __init__(self, message: str, status: int = 409) -> None:
        super().__init__(message)
        self.status = status


def _workflow(server: Served, row: HandlerRow) -> Workflow:
    workflow = server.workflows.get(row.workflow_name)
    if workflow is None:
        raise ActionError(f"run {row.handler_id!r} is of workflow {row.workflow_name!r}, which this server does not serve")
    return workflow


async def _records(
    server: Served, workflow: Workflow, row: HandlerRow
) -> tuple[list[Any], list[Any], dict[str, Any]]:
    store, read = server.runs.store, server.runs.worker.read
    entries = current_run(await read(store.journal, row.handler_id))
    base = base_snapshot(await read(store.snapshots, row.handler_id), entries)
    if base is None:
        raise ActionError(f"run {row.handler_id!r} has no snapshot in the store", 500)
    serializer = workflow.serializer or JsonSerializer()
    info = RunInfo(workflow_name=row.workflow_name, run_id=row.run_id, session_id=str(base.payload.get("session_id") or ""))
    with _types(server, workflow):
        records = decode_records([e.record for e in entries], serializer, info, workflow)
    return entries, records, dict(base.payload)


def _types(server: Served, workflow: Workflow) -> Any:
    """The serializer's allow-list scope of ``workflow``: its own types and those the server was given."""
    return known_types([*workflow_types(workflow), *server.runtime.extra_types.get(id(workflow), ())])


async def start_event_of(server: Served, row: HandlerRow) -> StartEvent:
    """The start event of ``row``'s run, or of the run it was forked from."""
    seen: set[str] = set()
    current: HandlerRow | None = row
    while current is not None and current.handler_id not in seen:
        seen.add(current.handler_id)
        workflow = _workflow(server, current)
        _, records, _ = await _records(server, workflow, current)
        for record in records:
            if isinstance(record, RunStarted) and isinstance(record.start_event, StartEvent):
                return record.start_event
        if current.start_event is not None:
            with _types(server, workflow):
                event = (workflow.serializer or JsonSerializer()).deserialize(current.start_event)
            if isinstance(event, StartEvent):
                return event
        parent = await summary_of(server, current.handler_id)
        runs = server.runs
        current = await runs.worker.read(runs.store.get_handler, parent.parent_id) if parent and parent.parent_id else None
    raise ActionError(f"run {row.handler_id!r} has no start event in the store to run again")


async def summary_of(server: Served, handler_id: str) -> RunSummary | None:
    """The run's summary from the store's run list (its index entry and totals)."""
    runs = server.runs
    page = await runs.worker.read(runs.store.search_runs, RunQuery(handler_id=handler_id, limit=1))
    return page.runs[0] if page.runs else None


async def rerun(server: Served, row: HandlerRow) -> HandlerRow:
    """Start the workflow again with the run's start event; the new run links to ``row``."""
    start = await start_event_of(server, row)
    runs = server.runs
    new = await runs.start_run(row.workflow_name, start)
    await runs.worker.write(runs.store.index_run, new.handler_id, RunIndexUpdate(parent_id=row.handler_id, relation="rerun"))
    return new


def _edited_state(workflow: Workflow, ctx: Context[Any], state: Any) -> dict[str, Any]:
    serializer = workflow.serializer or JsonSerializer()
    payload = ctx.to_dict(serializer)
    current = payload.get("state") or {}
    if not isinstance(state, dict):
        raise ActionError(f"'state' must be a JSON object (the whole state), got {type(state).__name__}", 400)
    state_type = ctx.store.state_type
    if state_type is DictState:
        try:
            data = {key: serializer.serialize(value) for key, value in state.items()}
        except Exception as exc:
            raise ActionError(f"'state' cannot be serialized: {exc}", 400) from None
        current = {**current, "state_type": "DictState", "state_data": {"_data": data}}
    else:
        try:
            model: BaseModel = state_type.model_validate(state)
        except ValidationError as exc:
            raise ActionError(f"'state' does not validate as {state_type.__name__}: {exc}", 422) from None
        current = {**current, "state_data": serializer.serialize(model)}
    payload["state"] = current
    return payload


async def fork(server: Served, row: HandlerRow, seq: int, state: Any = None) -> HandlerRow:
    """Continue ``row``'s run, as it was when the step of work item ``seq`` finished, as a new run.

    ``state`` (a JSON object) replaces the state at that moment. The fork gets a
    session of its own; the new run links to ``row``.
    """
    workflow = _workflow(server, row)
    entries, records, base = await _records(server, workflow, row)
    cut = None
    step = None
    for index, entry in enumerate(entries):
        record = entry.record
        if record.get("kind") == "StepFinished" and record.get("seq") == seq and record.get("outcome") == "completed":
            cut, step = index, record.get("step")
    if cut is None:
        raise ActionError(f"run {row.handler_id!r} has no finished step with seq {seq}: fork from a step that completed")
    prefix = records[: cut + 1]
    if outcome(prefix) is not None:
        raise ActionError(f"step {step!r} (seq {seq}) ended the run: there is nothing after it to fork")
    with _types(server, workflow):
        ctx = Context.from_journal(workflow, base, prefix)
        payload = ctx.to_dict(workflow.serializer or JsonSerializer()) if state is None else _edited_state(workflow, ctx, state)
        payload["session_id"] = random_id()
        forked: Context[Any] = Context.from_dict(workflow, payload, serializer=workflow.serializer or JsonSerializer())
    runs = server.runs
    new = await runs.start_from_context(row.workflow_name, forked)
    await runs.worker.write(
        runs.store.index_run, new.handler_id, RunIndexUpdate(parent_id=row.handler_id, relation="fork", fork_seq=seq)
    )
    return new


__all__ = ["ActionError", "fork", "rerun", "start_event_of", "summary_of"]
