"""Human in the loop across two processes: ask for approval, save the run, resume it later.

What it shows:
- a step that waits for a person (``ctx.wait_for_event``), telling the caller what it
  needs through an ``InputRequiredEvent``;
- the waiting run serialized to a JSON file (``ctx.to_dict()``), state and pending
  work included, then stopped: nothing runs while the person thinks it over;
- a second process that loads the file (``Context.from_dict``), resumes the run, sends
  the person's answer, and gets the result;
- the trace: both processes record into the same trace and the same session (the file
  carries the run's W3C ``traceparent``), and the wait is a span of its own.

Run (two processes, as two commands):
    python examples/human_in_the_loop.py submit             # asks for approval, saves the run
    python examples/human_in_the_loop.py approve --as Alice  # or: reject
Both take ``--file PATH`` (default: a file in the system's temporary folder).

Needs: pip install "otel-workflows[examples]"
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
from pathlib import Path

from pydantic import BaseModel
from trace_tree import record_spans

from workflows import Context, Workflow, step
from workflows.events import (
    Event,
    HumanResponseEvent,
    InputRequiredEvent,
    StartEvent,
    StopEvent,
)

DEFAULT_FILE = Path(tempfile.gettempdir()) / "workflows-expense-approval.json"
APPROVAL_THRESHOLD = 100.0


class Expense(BaseModel):
    description: str = ""
    amount: float = 0.0
    decision: str = "pending"


class Checked(Event):
    needs_approval: bool


class Decision(HumanResponseEvent):
    approved: bool
    reviewer: str


class ExpenseApproval(Workflow):
    @step
    async def check(self, ctx: Context[Expense], ev: StartEvent) -> Checked:
        async with ctx.store.edit_state() as expense:
            expense.description, expense.amount = ev.description, ev.amount
        return Checked(needs_approval=ev.amount > APPROVAL_THRESHOLD)

    @step
    async def decide(self, ctx: Context[Expense], ev: Checked) -> StopEvent:
        expense = await ctx.store.get_state()
        approved, reviewer = True, "policy"  # small amounts need nobody's approval
        if ev.needs_approval:
            # The step is suspended here and runs again from the top once the answer comes.
            decision = await ctx.wait_for_event(
                Decision,
                waiter_event=InputRequiredEvent(prefix=f"Approve {expense.amount:.2f} EUR for {expense.description!r}?"),
                waiter_id="manager-approval",
                timeout=7 * 24 * 3600,
            )
            approved, reviewer = decision.approved, decision.reviewer
        verdict = f"{'approved' if approved else 'rejected'} by {reviewer}"
        await ctx.store.set("decision", verdict)
        return StopEvent(result=f"Expense {expense.description!r} ({expense.amount:.2f} EUR) {verdict}.")


async def submit(path: Path) -> None:
    """First process: start the run, and save it once it waits for a person."""
    handler = ExpenseApproval().run(description="team dinner in Lyon", amount=240.0)
    async for ev in handler.stream_events():
        if isinstance(ev, InputRequiredEvent):
            print(f"The workflow asks: {ev.prefix}")
            break
    path.write_text(json.dumps(handler.ctx.to_dict()))
    await handler.cancel_run()  # stop this process's run; the file holds what is left to do
    print(f"Saved the waiting run to {path}")


async def answer(path: Path, approved: bool, reviewer: str) -> None:
    """Second process: load the saved run, resume it, and give it the person's answer."""
    workflow = ExpenseApproval()
    ctx = Context.from_dict(workflow, json.loads(path.read_text()))
    handler = workflow.run(ctx=ctx)  # no start event: the run goes on where it stopped
    handler.ctx.send_event(Decision(approved=approved, reviewer=reviewer))
    print(await handler)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("action", choices=["submit", "approve", "reject"])
    parser.add_argument("--file", type=Path, default=DEFAULT_FILE, help="where the waiting run is saved")
    parser.add_argument("--as", dest="reviewer", default="a manager", help="who answers")
    args = parser.parse_args()
    if args.action != "submit" and not args.file.exists():
        parser.error(f"no saved run at {args.file}: run `submit` first (with the same --file)")

    _, tree = record_spans()
    if args.action == "submit":
        asyncio.run(submit(args.file))
    else:
        asyncio.run(answer(args.file, args.action == "approve", args.reviewer))
    print()
    print(tree.render())


if __name__ == "__main__":
    main()
