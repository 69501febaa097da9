"""A recording runtime and a workflow that exercises every kind of journal record.

``RecordingRuntime`` is the smallest durable runtime: it encodes each record as it is
written (as a store would) and can "crash" after a given number of records: the next
record is not kept and its write fails, which stops the run on the spot; nothing the
run does after that is kept, as if its process had died.
The workflow's classes live in an importable module because stored records name their
event types by import path.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from dataclasses import dataclass, field
from typing import Annotated, Any

from workflows import Context, Workflow, step
from workflows.collect import Collect, Take
from workflows.context.serializers import JsonSerializer
from workflows.events import Event, HumanResponseEvent, InputRequiredEvent, StartEvent, StopEvent
from workflows.plugins import Runtime
from workflows.retry_policy import retry_policy, stop_after_attempt, wait_fixed
from workflows.runtime.codec import decode_records, encode_record
from workflows.runtime.journal import JournalRecord, RunInfo, WaitStarted


class Part(Event):
    index: int


class PartDone(Event):
    index: int
    square: int


class Progress(Event):
    index: int


class Approve(Event):
    total: int


class Journeyed(Workflow):
    """Fan out three parts (one fails on its first attempt), collect them, keep a total in state, ask a human."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(timeout=3, **kwargs)
        self.executions: Counter[str] = Counter()

    @step
    async def begin(self, ctx: Context, ev: StartEvent) -> Part | None:
        self.executions["begin"] += 1
        await ctx.store.set("topic", ev.topic)
        for index in range(3):
            ctx.send_event(Part(index=index))
        return None

    @step(num_workers=2, retry_policy=retry_policy(wait=wait_fixed(0), stop=stop_after_attempt(3)))
    async def square(self, ctx: Context, ev: Part) -> PartDone:
        self.executions["square"] += 1
        if ev.index == 1 and ctx.retry_info().retry_number == 0:
            raise ValueError("a flaky part: its first attempt fails")
        ctx.write_event_to_stream(Progress(index=ev.index))
        return PartDone(index=ev.index, square=ev.index * ev.index)

    @step
    async def join(self, ctx: Context, ev: PartDone) -> Approve | None:
        self.executions["join"] += 1
        async with ctx.store.edit_state() as state:
            state["seen"] = state.get("seen", 0) + 1
        parts = ctx.collect_events(ev, [PartDone, PartDone, PartDone])
        if parts is None:
            return None
        total = sum(p.square for p in parts)
        await ctx.store.set("total", total)
        return Approve(total=total)

    @step
    async def ask(self, ctx: Context, ev: Approve) -> StopEvent:
        self.executions["ask"] += 1
        answer = await ctx.wait_for_event(
            HumanResponseEvent, waiter_event=InputRequiredEvent(prefix=f"total is {ev.total}, ok?"), timeout=None
        )
        topic = await ctx.store.get("topic")
        seen = await ctx.store.get("seen")
        return StopEvent(result=f"{topic}:{ev.total}:{seen}:{answer.response}")


@dataclass
class RecordingJournal:
    """What a runtime keeps of one run: the encoded records, up to a crash."""

    runtime: RecordingRuntime
    run: RunInfo
    ctx: Context[Any]
    records: list[dict[str, Any]] = field(default_factory=list)
    dead: bool = False

    def write(self, record: JournalRecord) -> None:
        if self.dead:
            return
        limit = self.runtime.crash_after
        if limit is not None and len(self.records) >= limit:
            # The process "dies" here: this record and every later one are lost, and the
            # failed write stops the run at once.
            self.dead = True
            raise ConnectionError("the store went away (simulated crash)")
        self.records.append(encode_record(record, JsonSerializer()))
        if isinstance(record, WaitStarted) and self.runtime.answer is not None:
            # A person answers as soon as the question is asked.
            asyncio.get_running_loop().call_soon(self.ctx.send_event, HumanResponseEvent(response=self.runtime.answer))

    def close(self) -> None:
        self.runtime.closed = True


class RecordingRuntime(Runtime):
    """Keeps every record of its runs; with ``crash_after=N`` the run dies after N records."""

    def __init__(self, crash_after: int | None = None, answer: str | None = "yes") -> None:
        self.crash_after = crash_after
        self.answer = answer
        self.journals: list[RecordingJournal] = []
        self.closed = False

    def open_journal(self, run: RunInfo, ctx: Context[Any]) -> RecordingJournal:
        journal = RecordingJournal(self, run, ctx)
        self.journals.append(journal)
        return journal

    def decoded(self, workflow: Workflow | None = None) -> list[JournalRecord]:
        """The kept records of the (one) run, decoded as a store would read them back."""
        journal = self.journals[-1]
        return decode_records(journal.records, JsonSerializer(), journal.run, workflow or Journeyed())


class Tag(Event):
    label: str


class Total(Event):
    total: int


class Pair(Event):
    n: int


class Extra(Event):
    index: int


class ExtraCount(Event):
    n: int


class Routed(Workflow):
    """The 2.26 routing: a fan-out (one part flaky), a full and a Take(2) collect, an empty stream, a 3-slot join."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(timeout=3, **kwargs)
        self.executions: Counter[str] = Counter()

    @step
    async def begin(self, ctx: Context, ev: StartEvent) -> list[Part]:
        self.executions["begin"] += 1
        await ctx.store.set("topic", ev.topic)
        return [Part(index=index) for index in range(4)]

    @step
    async def tagger(self, ev: StartEvent) -> Tag:
        self.executions["tagger"] += 1
        return Tag(label=ev.topic)

    @step(num_workers=2, retry_policy=retry_policy(wait=wait_fixed(0), stop=stop_after_attempt(3)))
    async def square(self, ctx: Context, ev: Part) -> PartDone:
        self.executions["square"] += 1
        if ev.index == 1 and ctx.retry_info().retry_number == 0:
            raise ValueError("a flaky part: its first attempt fails")
        return PartDone(index=ev.index, square=ev.index * ev.index)

    @step
    async def total(self, parts: list[PartDone]) -> Total:
        self.executions["total"] += 1
        return Total(total=sum(p.square for p in parts))

    @step
    async def first_two(self, parts: Annotated[list[PartDone], Collect(Take(2))]) -> Pair:
        self.executions["first_two"] += 1
        return Pair(n=len(parts))

    @step
    async def extras(self, ev: Tag) -> list[Extra]:
        self.executions["extras"] += 1
        return []

    @step
    async def count_extras(self, extras: list[Extra]) -> ExtraCount:
        self.executions["count_extras"] += 1
        return ExtraCount(n=len(extras))

    @step
    async def finish(self, ctx: Context, t: Total, p: Pair, x: ExtraCount) -> StopEvent:
        self.executions["finish"] += 1
        topic = await ctx.store.get("topic")
        return StopEvent(result=f"{topic}:{t.total}:{p.n}:{x.n}")
