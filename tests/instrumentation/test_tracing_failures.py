"""A failure that cannot even be described still ends the spans it belongs to."""

from __future__ import annotations

import asyncio

import pytest
from instrumentation.tracing_support import Tracing

from workflows import Workflow, step
from workflows.events import StartEvent, StopEvent


class Unprintable(Exception):
    def __str__(self) -> str:
        raise RuntimeError("no text for this one")


async def test_an_exception_whose_str_raises_still_ends_the_step_and_run_spans(tracing: Tracing) -> None:
    class Fails(Workflow):
        @step
        async def s(self, ev: StartEvent) -> StopEvent:
            raise Unprintable()

    with pytest.raises(Unprintable):
        await asyncio.wait_for(Fails(timeout=None).run(), 5)
    step_span = tracing.one("Fails.s")
    assert step_span.end_time is not None
    assert not step_span.status.is_ok
    assert tracing.one("Fails.run").end_time is not None
