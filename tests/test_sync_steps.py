"""Sync (def) steps run in threads, yet what they do to the run happens on its event loop."""

from __future__ import annotations

import threading

from workflows import Context, Workflow, step
from workflows.events import Event, StartEvent, StopEvent


class Item(Event):
    i: int


class Done(Event):
    i: int
    thread: int


class Progress(Event):
    i: int


class ThreadedFanOut(Workflow):
    N = 200

    @step
    def split(self, ctx: Context, ev: StartEvent) -> Item | None:
        for i in range(self.N):
            ctx.send_event(Item(i=i))
        return None

    @step(num_workers=8)
    def work(self, ctx: Context, ev: Item) -> Done:
        ctx.write_event_to_stream(Progress(i=ev.i))
        return Done(i=ev.i, thread=threading.get_ident())

    @step
    def join(self, ctx: Context, ev: Done) -> StopEvent | None:
        done = ctx.collect_events(ev, [Done] * self.N)
        if done is None:
            return None
        return StopEvent(result=done)


async def test_sync_steps_send_stream_and_collect_from_their_threads():
    loop_thread = threading.get_ident()
    handler = ThreadedFanOut(timeout=30).run()
    progress = [ev.i async for ev in handler.stream_events() if isinstance(ev, Progress)]
    done = await handler
    assert sorted(d.i for d in done) == list(range(ThreadedFanOut.N))
    assert all(d.thread != loop_thread for d in done)  # the work ran in threads
    assert sorted(progress) == list(range(ThreadedFanOut.N))


async def test_a_sync_steps_error_on_send_reaches_the_step():
    class BadSend(Workflow):
        @step
        def s(self, ctx: Context, ev: StartEvent) -> StopEvent:
            try:
                ctx.send_event(Item(i=1), step="nowhere")
            except Exception as exc:  # raised in the step's thread, from the loop
                return StopEvent(result=f"{type(exc).__name__}: {exc}")
            return StopEvent(result="sent")

    assert await BadSend().run() == "WorkflowRuntimeError: Step nowhere does not exist"


async def test_sync_steps_that_first_touch_the_state_share_the_runs_store():
    # The default state is made on first use, which here comes from eight threads at once.
    class Touch(Workflow):
        @step
        def split(self, ctx: Context, ev: StartEvent) -> Item | None:
            for i in range(8):
                ctx.send_event(Item(i=i))
            return None

        @step(num_workers=8)
        def touch(self, ctx: Context, ev: Item) -> Done:
            return Done(i=ev.i, thread=id(ctx.store))

        @step
        def join(self, ctx: Context, ev: Done) -> StopEvent | None:
            done = ctx.collect_events(ev, [Done] * 8)
            return None if done is None else StopEvent(result={d.thread for d in done})

    handler = Touch(timeout=30).run()
    assert await handler == {id(handler.ctx.store)}
