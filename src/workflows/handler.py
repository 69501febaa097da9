"""``WorkflowHandler``: what ``workflow.run()`` returns, to await, stream or control a run."""

from __future__ import annotations

import asyncio
import warnings
from typing import TYPE_CHECKING, Any, AsyncGenerator, Callable, Generator, cast

from workflows.errors import WorkflowRuntimeError
from workflows.events import Event, StopEvent

from workflows.runtime.stream import ENTRY_KINDS, FINAL, INTERNAL, entry_kind

if TYPE_CHECKING:
    from workflows.context.context import Context
    from workflows.runtime.run import WorkflowRun

_warned: set[str] = set()


def _deprecated(name: str, instead: str) -> None:
    if name not in _warned:
        _warned.add(name)
        warnings.warn(f"WorkflowHandler.{name}() is deprecated; {instead}", DeprecationWarning, stacklevel=3)


class WorkflowHandler:
    """A handle on one run. ``await handler`` gives the result.

    The result is the ``result`` of a plain ``StopEvent``, or the stop event itself
    when the workflow returns a ``StopEvent`` subclass. A failed run raises the step's
    own exception; a timeout raises ``WorkflowTimeoutError``; ``cancel_run()`` makes it
    raise ``WorkflowCancelledByUser``. The handler can be awaited any number of times.
    """

    def __init__(self, run: WorkflowRun) -> None:
        self._run = run
        self._stream_position = 0
        self._stream_consumed = False

    @property
    def run_id(self) -> str:
        """The run's id (``run(run_id=...)`` or 10 random alphanumeric characters)."""
        return self._run.run_id

    @property
    def ctx(self) -> Context[Any]:
        """The run's Context: the very object passed to ``run(ctx=...)``, if one was."""
        return cast("Context[Any]", self._run.ctx)

    def __await__(self) -> Generator[Any, None, Any]:
        return self._run.driver.__await__()

    def is_done(self) -> bool:
        """Whether the run has ended, however it ended."""
        return self._run.driver.done()

    def get_stop_event(self) -> StopEvent | None:
        """The final ``StopEvent`` (``WorkflowCancelledEvent`` after a cancel); None before the end or after a failure."""
        return self._run.stop_event if self._run.done else None

    async def stop_event_result(self) -> StopEvent:
        """Wait for the run and return its final ``StopEvent`` instance (raises like ``await``)."""
        await self
        assert self._run.stop_event is not None
        return self._run.stop_event

    async def stream_events(self, expose_internal: bool = False) -> AsyncGenerator[Event, None]:
        """Yield the run's published events, ending after the final ``StopEvent``.

        The stream has what steps wrote with ``ctx.write_event_to_stream``, returned
        ``InputRequiredEvent``s, and the final (or terminal) stop event; with
        ``expose_internal`` also the engine's ``StepStateChanged``/``WorkflowIdleEvent``/
        ``UnhandledEvent``. Events are buffered, so streaming after ``await handler``
        still yields everything. Breaking out early and streaming again continues where
        it stopped; once the stop event was yielded, streaming again raises
        ``WorkflowRuntimeError``. Failures end the stream without raising.
        """
        if self._stream_consumed:
            raise WorkflowRuntimeError("All the streamed events have already been consumed.")
        stream = self._run.stream
        entries = stream.entries
        kinds = ENTRY_KINDS
        while True:
            while self._stream_position < len(entries):
                index = self._stream_position
                self._stream_position = index + 1  # kept on self: a reader that breaks off resumes here
                event = entries[index]
                kind = kinds.get(type(event)) or entry_kind(event)
                if kind is INTERNAL:
                    if not expose_internal:
                        continue  # an internal entry nobody asked for stays unbuilt
                    event = stream.read(index)[0]
                yield event
                if kind is FINAL:
                    self._stream_consumed = True
                    return
            if stream.closed:
                return
            await stream.changed()

    async def cancel_run(self, *, timeout: float = 5.0) -> None:
        """Cancel the run and wait up to ``timeout`` seconds for it to end; never raises."""
        run = self._run
        if not run.done:
            run.cancel_by_user()
        if not run.driver.done():
            await asyncio.wait([run.driver], timeout=timeout)

    def release_idle(self, *, awaiting_input: bool = False) -> bool:
        """Stop holding the run in memory while it only waits for outside events.

        For durable runtimes and servers: when the run has no work left but parked
        waits (a question to a human), its task ends without ending the run, and
        ``await handler`` returns an ``IdleReleasedEvent``. The runtime's journal (and a
        ``ctx.to_dict()`` taken afterwards) still describe a waiting run, which
        ``Context.from_journal`` / ``Context.from_dict`` and ``workflow.run(ctx=...)``
        continue, in this process or another. Returns False, doing nothing, when the run
        is not in that state.

        ``awaiting_input``: the caller knows that the run, with no work left, asked the
        outside for input that is not answered yet (a step returned an
        ``InputRequiredEvent``, which its ``HumanResponseEvent`` answers): such a run has
        no parked wait, yet it only waits too, and is let go of the same way. The run
        itself cannot tell an unanswered question from a run that simply stopped short,
        so the runtime that read its records says so.
        """
        return self._run.release(awaiting_input)

    async def send_event(self, event: Event, step: str | None = None) -> None:
        """Same as ``handler.ctx.send_event(event, step)``."""
        self.ctx.send_event(event, step)

    # ---- for runtimes and servers that own runs ----
    def add_done_callback(self, fn: Callable[[WorkflowHandler], object]) -> None:
        """Call ``fn(handler)`` on the event loop once the run's task has ended, whatever its outcome
        (ended, failed, cancelled, or let go of by ``release_idle``)."""
        self._run.driver.add_done_callback(lambda _: fn(self))

    async def wait_ended(self, timeout: float | None = None) -> bool:
        """Wait until the run's task has ended, at most ``timeout`` seconds; never raises the run's
        error. Returns whether it has ended."""
        driver = self._run.driver
        if not driver.done():
            await asyncio.wait([driver], timeout=timeout)
        return driver.done()

    @property
    def error(self) -> BaseException | None:
        """What ``await handler`` raises, once the run's task has ended with an error (``None`` while it
        runs, after it completed, and after its task was cancelled)."""
        driver = self._run.driver
        if not driver.done() or driver.cancelled():
            return None
        return driver.exception()

    def abandon(self) -> None:
        """Cancel the run's task at once, as if its process had died here.

        Nothing ends the run: with its durable runtime detached first, the store still
        holds it as running and another process continues it. Use ``cancel_run()`` to
        cancel a run.
        """
        self._run.driver.cancel()

    # ---- deprecated Future-like API, kept for code written against older releases ----
    def done(self) -> bool:
        _deprecated("done", "use is_done()")
        return self._run.driver.done()

    def exception(self) -> BaseException | None:
        _deprecated("exception", "await the handler in a try block")
        return self._run.driver.exception()

    def cancelled(self) -> bool:
        _deprecated("cancelled", "check for WorkflowCancelledByUser")
        return self._run.driver.cancelled() or self._run.status == "cancelled"

    def cancel(self) -> bool:
        _deprecated("cancel", "use await handler.cancel_run()")
        return self._run.driver.cancel()

    def __str__(self) -> str:
        return (
            f"WorkflowHandler(workflow={self._run.workflow.workflow_name}, run_id={self.run_id}, "
            f"result={self._run.stop_event})"
        )

    __repr__ = __str__


__all__ = ["WorkflowHandler"]
