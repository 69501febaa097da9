"""Conformance: a step that runs another workflow and awaits it (API.md §13)."""

from __future__ import annotations

import pytest

from workflows import Context, Workflow, step
from workflows.events import StartEvent, StopEvent


class Child(Workflow):
    @step
    async def c(self, ctx: Context, ev: StartEvent) -> StopEvent:
        if ev.get("fail"):
            raise KeyError("child failed")
        await ctx.store.set("child_only", True)
        return StopEvent(result=f"child:{ev.x}")


class Parent(Workflow):
    def __init__(self, child: Workflow, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.child = child

    @step
    async def p(self, ctx: Context, ev: StartEvent) -> StopEvent:
        handler = self.child.run(x=ev.x, fail=ev.get("fail", False))
        try:
            result = await handler
        except KeyError as exc:
            return StopEvent(result={"caught": repr(exc)})
        return StopEvent(
            result={
                "child_result": result,
                "child_run_id": handler.run_id,
                "parent_sees_child_state": await ctx.store.get("child_only", default=False),
            }
        )


# checklist 75
async def test_parent_step_awaits_a_child_run_with_its_own_run_id_and_state() -> None:
    parent = Parent(child=Child())
    handler = parent.run(x="hi")
    outcome = await handler
    assert outcome["child_result"] == "child:hi"
    assert outcome["child_run_id"] != handler.run_id
    assert outcome["parent_sees_child_state"] is False


# checklist 75
async def test_child_exception_propagates_into_the_parent_step() -> None:
    outcome = await Parent(child=Child()).run(x="hi", fail=True)
    assert outcome == {"caught": "KeyError('child failed')"}


# checklist 75
async def test_uncaught_child_exception_fails_the_parent_run_with_the_same_type() -> None:
    class Careless(Workflow):
        @step
        async def p(self, ev: StartEvent) -> StopEvent:
            return StopEvent(result=await Child().run(x="y", fail=True))

    with pytest.raises(KeyError, match="child failed"):
        await Careless().run()
