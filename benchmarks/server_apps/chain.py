"""A 10-step chain, for the durable cost per step (benchmarks/server.py)."""

from workflows import Workflow, step
from workflows.events import Event, StartEvent, StopEvent


class E1(Event):
    pass


class E2(Event):
    pass


class E3(Event):
    pass


class E4(Event):
    pass


class E5(Event):
    pass


class E6(Event):
    pass


class E7(Event):
    pass


class E8(Event):
    pass


class E9(Event):
    pass


class Chain(Workflow):
    @step
    async def s0(self, ev: StartEvent) -> E1:
        return E1()

    @step
    async def s1(self, ev: E1) -> E2:
        return E2()

    @step
    async def s2(self, ev: E2) -> E3:
        return E3()

    @step
    async def s3(self, ev: E3) -> E4:
        return E4()

    @step
    async def s4(self, ev: E4) -> E5:
        return E5()

    @step
    async def s5(self, ev: E5) -> E6:
        return E6()

    @step
    async def s6(self, ev: E6) -> E7:
        return E7()

    @step
    async def s7(self, ev: E7) -> E8:
        return E8()

    @step
    async def s8(self, ev: E8) -> E9:
        return E9()

    @step
    async def s9(self, ev: E9) -> StopEvent:
        return StopEvent(result="ok")
