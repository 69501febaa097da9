"""Rebuild a run from a snapshot and the journal records written after it.

``replay`` folds each record onto the saved run, as the live run applied it: routed
events become queued deliveries, a delivery whose step finished (or returned an event,
which is routed in the same record) leaves the queue, a parked wait becomes a saved
waiter and an event that wakes it queues its delivery again, collect buffers fill and
empty, and state changes are applied to the store. What is still queued when the
records end is what was in progress or waiting for a worker: the continued run runs
it again from the start of its step (at least once), with the next attempt number.
Once a step's ``StopEvent`` or the run's conclusion is written, the run's outcome is
decided (``outcome``) and there is nothing left to continue.

A step invocation's own state changes, collected events and sent events count from
the moment its delivery leaves the queue (it returned, failed for good, or parked in a wait): an
invocation the records leave unfinished is run again from the state it started
from, so a step that adds to a counter, fills a collect buffer or sends events does not
do it twice.

Fan-out streams are folded the same way: a stream is named by the seq of the delivery
that opened it, so its opening (``StreamOpened``), its elements and any release made
while they were emitted count once that delivery is done. Deliveries and waits keep
the stream they belong to, batches fill from ``EventEmitted.collected`` and empty on
a release; whatever a stream had not released yet when the records end is settled by
the continued run (``restore``), which counts each stream's work again.
"""

from __future__ import annotations

from typing import Any, Callable, Iterable

from workflows.runtime.journal import (
    CollectBuffered,
    EventEmitted,
    JournalRecord,
    RunConcluded,
    RunStarted,
    StateChanged,
    StepFinished,
    StepStarted,
    StreamOpened,
    WaitEnded,
    WaitStarted,
)
from workflows.events import Event, StopEvent
from workflows.runtime.snapshot import RunSnapshot, SavedCollect, SavedItem, SavedStream, SavedWaiter
from workflows.runtime.waits import JOIN_BUFFER

# A failed delivery stays queued until the run says what follows (its catch_error step
# takes it over, or the run fails): if that was not written, the step runs again.
_LEAVES_QUEUE = frozenset({"completed", "waiting"})


class _Fold:
    def __init__(self, snapshot: RunSnapshot, store: Any, start_targets: Callable[[Any], list[str]]) -> None:
        self.snapshot = snapshot
        self.store = store
        self.start_targets = start_targets
        # Changes made by an invocation, by its delivery's seq, until the delivery is done.
        self.uncommitted: dict[int, list[StateChanged | CollectBuffered | EventEmitted | StreamOpened]] = {}
        self.streams: dict[int, SavedStream] = {s.stream: s for s in snapshot.streams}

    def take(self, step: str | None, seq: int) -> SavedItem | None:
        """Remove delivery ``seq`` from the queue of ``step`` (any step if ``None``) and return it."""
        queues = self.snapshot.queued
        for name in (step,) if step is not None else tuple(queues):
            items = queues.get(name)
            if not items:
                continue
            for index, item in enumerate(items):
                if item.seq == seq:
                    del items[index]
                    if not items:
                        del queues[name]
                    for change in self.uncommitted.pop(seq, ()):
                        self.commit(change)
                    return item
        return None

    def find(self, step: str, seq: int) -> SavedItem | None:
        for item in self.snapshot.queued.get(step, ()):
            if item.seq == seq:
                return item
        return None

    def queue(self, step: str, item: SavedItem) -> None:
        self.snapshot.queued.setdefault(step, []).append(item)
        if item.seq is not None and item.seq >= self.snapshot.next_seq:
            self.snapshot.next_seq = item.seq + 1

    def wake(self, waiter_id: str, event: Any) -> None:
        for index, waiter in enumerate(self.snapshot.waiters):
            if waiter.waiter_id == waiter_id:
                del self.snapshot.waiters[index]
                resolved = dict(waiter.resolved or {})
                resolved[waiter_id] = event
                self.queue(waiter.step, SavedItem(
                    event=waiter.event, lineage=waiter.lineage, resolved=resolved, seq=waiter.seq, stream=waiter.stream,
                ))
                return

    def apply(self, record: JournalRecord) -> None:
        kind = type(record)
        snapshot = self.snapshot
        if kind is EventEmitted:
            assert isinstance(record, EventEmitted)
            if record.source == "start":
                return  # queued from RunStarted already
            if isinstance(record.event, StopEvent):
                # A step returned the run's result (alone or in its list): the outcome is decided.
                snapshot.is_running = False
                return
            if record.sender is not None and self.find_anywhere(record.sender):
                self.uncommitted.setdefault(record.sender, []).append(record)
                return
            opener = self.opener(record)
            if opener is not None:
                self.uncommitted.setdefault(opener, []).append(record)
                return
            if record.completes is not None:
                self.take(record.step, record.completes)
            self.route(record)
        elif kind is StepStarted:
            assert isinstance(record, StepStarted)
            item = self.find(record.step, record.seq)
            if item is not None:
                item.attempts = record.attempt
        elif kind is StepFinished:
            assert isinstance(record, StepFinished)
            if record.outcome in _LEAVES_QUEUE:
                self.take(record.step, record.seq)
        elif kind is WaitStarted:
            assert isinstance(record, WaitStarted)
            item = self.find(record.step, record.seq)
            if item is not None and record.event_type is not None:
                snapshot.waiters.append(SavedWaiter(
                    step=record.step, event=item.event, waiter_id=record.waiter_id, event_type=record.event_type,
                    requirements=dict(record.requirements) if record.requirements else None, remaining=record.timeout,
                    lineage=item.lineage, resolved=item.resolved, seq=item.seq, stream=item.stream,
                ))
        elif kind is WaitEnded:
            assert isinstance(record, WaitEnded)
            if record.outcome == "timed_out":
                for index, waiter in enumerate(snapshot.waiters):
                    if waiter.waiter_id == record.waiter_id and waiter.step == record.step:
                        del snapshot.waiters[index]
                        self.queue(waiter.step, SavedItem(
                            event=waiter.event, lineage=waiter.lineage, resolved=waiter.resolved, seq=waiter.seq,
                            timed_out=[record.waiter_id], stream=waiter.stream,
                        ))
                        break
        elif kind is CollectBuffered or kind is StateChanged:
            assert isinstance(record, (CollectBuffered, StateChanged))
            if record.seq is not None and self.find_anywhere(record.seq):
                self.uncommitted.setdefault(record.seq, []).append(record)
            else:
                self.commit(record)
        elif kind is StreamOpened:
            assert isinstance(record, StreamOpened)
            if self.find_anywhere(record.seq):
                self.uncommitted.setdefault(record.seq, []).append(record)
            else:
                self.commit(record)
        elif kind is RunStarted:
            assert isinstance(record, RunStarted)
            snapshot.is_running = True
            if record.start_event is not None:
                # The run numbers the start event's deliveries first, from next_seq on;
                # queued here so that a crash before they were routed loses nothing.
                first = snapshot.next_seq
                for offset, step in enumerate(self.start_targets(record.start_event)):
                    self.queue(step, SavedItem(event=record.start_event, seq=first + offset))
        elif kind is RunConcluded:
            assert isinstance(record, RunConcluded)
            # A cancelled run stays resumable, as a context saved after cancel_run() is.
            snapshot.is_running = record.status == "cancelled"

    def opener(self, record: EventEmitted) -> int | None:
        """The fan-out delivery still running whose returned list this record is part of, if any."""
        for stream in (record.stream, record.releases):
            if stream is not None and stream not in self.streams and self.find_anywhere(stream):
                return stream
        return None

    def route(self, record: EventEmitted) -> None:
        for waiter_id in record.woken:
            self.wake(waiter_id, record.event)
        lineage = dict(record.lineage) if record.lineage else None
        stream = record.stream if record.stream in self.streams else None
        for step, seq in zip(record.targets, record.seqs):
            self.queue(step, SavedItem(event=record.event, lineage=lineage, seq=seq, stream=stream))  # type: ignore[arg-type]
        for step, batch_stream in (record.collected or {}).items():
            saved = self.streams.get(batch_stream)
            if saved is not None and record.event is not None:
                saved.batches.setdefault(step, []).append(record.event)
        released = self.streams.get(record.releases) if record.releases is not None else None
        if released is not None:
            for step in record.targets:
                released.batches.pop(step, None)
                if step not in released.released:
                    released.released.append(step)

    def find_anywhere(self, seq: int) -> bool:
        return any(item.seq == seq for items in self.snapshot.queued.values() for item in items)

    def commit(self, change: StateChanged | CollectBuffered | EventEmitted | StreamOpened) -> None:
        if isinstance(change, StreamOpened):
            stream = SavedStream(stream=change.stream, step=change.step, parent=change.parent)
            self.streams[stream.stream] = stream
            self.snapshot.streams.append(stream)
        elif isinstance(change, EventEmitted):
            self.route(change)
        elif isinstance(change, CollectBuffered):
            self.collect(change)
        elif self.store is not None:
            self.store.apply_change(change.path, change.after)

    def collect(self, record: CollectBuffered) -> None:
        buffers = self.snapshot.collected
        for index, buffer in enumerate(buffers):
            if buffer.step == record.step and buffer.buffer_id == record.buffer_id:
                buffer.events.append(record.event)  # type: ignore[arg-type]
                if record.complete:
                    _hand_out(buffer, record.buffer_id == JOIN_BUFFER)
                    if not buffer.events:
                        del buffers[index]
                return
        if not record.complete:
            buffers.append(SavedCollect(record.step, record.buffer_id, list(record.expected), [record.event]))  # type: ignore[list-item]


def _hand_out(buffer: SavedCollect, join: bool) -> None:
    """Take a complete set out of ``buffer``: the oldest event of each expected type."""
    if not join:
        buffer.events.clear()  # a collect_events set is the whole buffer
        return
    for expected in buffer.expected:
        for index, event in enumerate(buffer.events):
            if type(event) is expected or isinstance(event, expected):
                del buffer.events[index]
                break


def replay(
    snapshot: RunSnapshot,
    records: Iterable[JournalRecord],
    store: Any,
    start_targets: Callable[[Any], list[str]],
) -> RunSnapshot:
    """Fold ``records`` onto ``snapshot`` (changed in place and returned).

    State changes go to ``store``; ``start_targets(start_event)`` names the steps a
    start event goes to (the workflow's routing, in order).
    """
    fold = _Fold(snapshot, store, start_targets)
    for record in records:
        fold.apply(record)
    return snapshot


def outcome(records: Iterable[JournalRecord]) -> Event | None:
    """The run's final event if the records decided it (a returned ``StopEvent``, or ``RunConcluded``)."""
    final: Event | None = None
    for record in records:
        if isinstance(record, RunConcluded):
            return record.final_event
        if isinstance(record, EventEmitted) and record.source == "return" and isinstance(record.event, StopEvent):
            final = record.event
    return final
