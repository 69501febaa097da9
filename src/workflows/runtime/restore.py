"""A live run as plain data (``take_snapshot``) and back (``restore``).

The snapshot is what ``Context.to_dict()`` saves: work queued or in progress (which
runs again on resume, before what was queued behind it), collect and join buffers,
parked waits with the time they had left, open fan-out streams with their batches,
the trace carrier, and the next work item number.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from workflows.instrumentation.dispatcher import get_dispatcher
from workflows.runtime.journal import WaitStarted
from workflows.runtime.routing import WorkItem
from workflows.runtime.snapshot import RunSnapshot, SavedCollect, SavedItem, SavedStream, SavedWaiter
from workflows.runtime.fanout import Stream
from workflows.runtime.waits import JOIN_BUFFER, CollectBuffer, JoinBuffer, Waiter

if TYPE_CHECKING:
    from workflows.runtime.run import WorkflowRun

logger = logging.getLogger("workflows.runtime")

_dispatcher = get_dispatcher()


def _saved_item(item: WorkItem) -> SavedItem:
    return SavedItem(
        event=item.event, lineage=item.lineage, resolved=item.resolved, seq=item.seq,
        timed_out=sorted(item.timed_out) if item.timed_out else None, attempts=item.attempts, stream=item.stream,
    )


def take_snapshot(run: WorkflowRun) -> RunSnapshot:
    """The run as plain data: what is queued or in progress, collected, awaited."""
    if not run.started:
        # Nothing ran yet: the run is its start event (or the snapshot it resumes).
        if run.snapshot is not None:
            return run.snapshot
        assert run.start_event is not None
        targets = run.routes.targets(type(run.start_event))
        pending = {s.name: [SavedItem(run.start_event, seq=index)] for index, s in enumerate(targets)}
        return RunSnapshot(is_running=True, queued=pending, next_seq=len(targets))
    queued: dict[str, list[SavedItem]] = {}
    for name in run.routes.steps:  # in the workflow's order, whichever step got work first
        state = run.steps.get(name)
        if state is None:
            continue  # a step given no work yet has no runtime
        items = [*state.in_progress.values(), *(state.queue or ())]
        if items:
            queued[name] = [_saved_item(i) for i in items]
    now = run.loop.time()
    waiters = [
        SavedWaiter(
            step=w.step,
            event=w.item.event,
            lineage=w.item.lineage,
            resolved=w.item.resolved,
            seq=w.item.seq,
            waiter_id=w.waiter_id,
            event_type=w.event_type,
            requirements=w.requirements,
            remaining=None if w.deadline is None else max(w.deadline - now, 0.0),
            stream=w.item.stream,
        )
        for w in run.waiters
    ]
    collected = [
        SavedCollect(step, buffer_id, list(b.expected), b.events()) for (step, buffer_id), b in run.collect_buffers.items()
    ]
    handlers = run.journal.handlers
    carrier = _dispatcher.inject(run.info, handlers) if handlers else {}
    if not carrier and run.snapshot is not None:
        carrier = dict(run.snapshot.carrier)
    return RunSnapshot(
        is_running=not run.done or run.status in ("cancelled", "released"),
        elapsed_alive=run.elapsed_alive(),
        carrier=carrier,
        queued=queued,
        collected=collected,
        waiters=waiters,
        next_seq=run.next_seq,
        streams=[
            SavedStream(
                stream=st.id, step=st.step, parent=st.parent, batches={k: list(v) for k, v in st.batches.items()},
                released=sorted(st.released),
            )
            for st in run.streams.values()
        ],
    )


def restore(run: WorkflowRun, snapshot: RunSnapshot) -> None:
    """Put a saved run's work, buffers and waits back in place (called as the run begins)."""
    # Work items keep their numbers: default waiter ids and journal records name them.
    saved_seqs = [i.seq for items in snapshot.queued.values() for i in items if i.seq is not None]
    saved_seqs += [w.seq for w in snapshot.waiters if w.seq is not None]
    run.next_seq = max(snapshot.next_seq, max(saved_seqs, default=-1) + 1)

    def seq_of(saved: int | None) -> int:
        if saved is not None:
            return saved
        run.next_seq += 1
        return run.next_seq - 1

    _restore_streams(run, snapshot)
    for step_name, items in snapshot.queued.items():
        if step_name not in run.routes.steps:
            logger.warning("resumed run %s: dropping work for unknown step %r", run.run_id, step_name)
            continue
        state = run.steps[step_name]
        for saved in items:
            item = WorkItem(
                saved.event, None, seq_of(saved.seq), saved.lineage, saved.resolved,
                frozenset(saved.timed_out) if saved.timed_out else None, saved.attempts, _member(run, saved.stream),
            )
            run.place(state, item, None, 0, None)
    for saved_buffer in snapshot.collected:
        spec = run.routes.steps.get(saved_buffer.step)
        buffer: CollectBuffer | JoinBuffer
        if saved_buffer.buffer_id == JOIN_BUFFER and spec is not None and spec.config.inputs == "join":
            buffer = JoinBuffer(list(spec.config.event_parameters.values()), spec.config.accept_event_subclasses)
        else:
            buffer = CollectBuffer(saved_buffer.expected)
        for ev in saved_buffer.events:
            buffer.add(ev)
        run.collect_buffers[(saved_buffer.step, saved_buffer.buffer_id)] = buffer
    now = run.loop.time()
    journal = run.journal
    for saved_waiter in snapshot.waiters:
        if saved_waiter.step not in run.routes.steps:
            logger.warning("resumed run %s: dropping a wait of unknown step %r", run.run_id, saved_waiter.step)
            continue
        item = WorkItem(
            saved_waiter.event, None, seq_of(saved_waiter.seq), saved_waiter.lineage, saved_waiter.resolved,
            stream=_member(run, saved_waiter.stream),
        )
        deadline = None if saved_waiter.remaining is None else now + saved_waiter.remaining
        subclasses = run.routes.steps[saved_waiter.step].config.accept_event_subclasses
        run.arm(Waiter(
            step=saved_waiter.step, item=item, waiter_id=saved_waiter.waiter_id, event_type=saved_waiter.event_type,
            requirements=saved_waiter.requirements, subclasses=subclasses, deadline=deadline,
        ))
        if journal.full:
            journal.add(WaitStarted(
                run=run.info, step=saved_waiter.step, invocation_id=0, waiter_id=saved_waiter.waiter_id,
                event_type=saved_waiter.event_type, requirements=saved_waiter.requirements,
                timeout=saved_waiter.remaining, seq=item.seq,
            ))
    _settle_streams(run)


def _restore_streams(run: WorkflowRun, snapshot: RunSnapshot) -> None:
    for saved in snapshot.streams:
        if saved.step not in run.routes.steps:
            logger.warning("resumed run %s: dropping a stream of unknown step %r", run.run_id, saved.step)
            continue
        stream = Stream(saved.stream, saved.step, saved.parent)
        stream.batches = {name: list(events) for name, events in saved.batches.items()}
        stream.released = set(saved.released)
        run.streams[stream.id] = stream
    for stream in run.streams.values():
        # A child stream holds its parent open; deliveries and waits add theirs as placed.
        if stream.parent is not None:
            parent = run.streams.get(stream.parent)
            if parent is None:
                stream.parent = None
            else:
                parent.pending += 1


def _member(run: WorkflowRun, stream_id: int | None) -> int | None:
    """Count a restored delivery or wait in its stream (``None`` if the stream is gone)."""
    if stream_id is None:
        return None
    stream = run.streams.get(stream_id)
    if stream is None:
        return None
    stream.pending += 1
    return stream_id


def _settle_streams(run: WorkflowRun) -> None:
    """Release what a run stopped before releasing: full ``Take(n)`` batches, and streams with no work left.

    Innermost first (a child's seq is above its parent's), so a closing child's
    releases count in its parent before the parent is looked at.
    """
    for stream_id in sorted(run.streams, reverse=True):
        stream = run.streams.get(stream_id)
        if stream is None:
            continue
        for name in list(stream.batches):
            run.settle_take(stream, name)
        if stream.pending == 0:
            run.close_stream(stream)
