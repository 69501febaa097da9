"""The performance goals of the engine, checked against one invocation's medians.

Goals are ratios to the reference measured in the same invocation (the machine's speed
cancels out) or absolute bounds where the goal is absolute (memory, idle CPU). They
are reported, never enforced: timing on a shared 2-core machine is too noisy to fail a
build on.
"""

from __future__ import annotations

from dataclasses import dataclass

from benchmarks.summary import Summary


@dataclass(frozen=True)
class Outcome:
    goal: str
    measured: str
    met: bool | None  # None: not measured in this invocation


class RatioAtMost:
    def __init__(self, variant: str, metric: str, bound: float, goal: str) -> None:
        self.variant, self.metric, self.bound, self.goal = variant, metric, bound, goal

    def evaluate(self, summary: Summary) -> Outcome:
        ratio = summary.ratio(self.variant, self.metric)
        if ratio is None:
            return Outcome(self.goal, "not measured", None)
        return Outcome(self.goal, f"ratio {ratio:.3f}", ratio <= self.bound)


class OursAtMost:
    def __init__(self, variant: str, metric: str, bound: float, unit: str, goal: str) -> None:
        self.variant, self.metric, self.bound, self.unit, self.goal = variant, metric, bound, unit, goal

    def evaluate(self, summary: Summary) -> Outcome:
        value = summary.median(self.variant, "ours", self.metric)
        if value is None:
            return Outcome(self.goal, "not measured", None)
        return Outcome(self.goal, f"{value:.3g} {self.unit}", value <= self.bound)


class OursBelowReference:
    """Ours on one variant is cheaper than the reference on another (traced vs untraced)."""

    def __init__(self, ours_variant: str, reference_variant: str, metric: str, unit: str, goal: str) -> None:
        self.ours_variant, self.reference_variant = ours_variant, reference_variant
        self.metric, self.unit, self.goal = metric, unit, goal

    def evaluate(self, summary: Summary) -> Outcome:
        ours = summary.median(self.ours_variant, "ours", self.metric)
        theirs = summary.median(self.reference_variant, "llama", self.metric)
        if ours is None or theirs is None:
            return Outcome(self.goal, "not measured", None)
        return Outcome(self.goal, f"{ours:.3g} vs {theirs:.3g} {self.unit}", ours < theirs)


class GrowsLinearly:
    """Ours' cost per item stays flat (within ``slack``x) from the smallest size to the largest."""

    def __init__(self, variants: list[str], per_item_metric: str, slack: float, goal: str) -> None:
        self.variants, self.metric, self.slack, self.goal = variants, per_item_metric, slack, goal

    def evaluate(self, summary: Summary) -> Outcome:
        medians = [summary.median(variant, "ours", self.metric) for variant in self.variants]
        costs = [cost for cost in medians if cost is not None]
        if len(costs) < len(medians):
            return Outcome(self.goal, "not measured", None)
        growth = max(costs) / min(costs)
        per_item = ", ".join(f"{cost:.3g}" for cost in costs)
        return Outcome(self.goal, f"{per_item} us (x{growth:.2f})", growth <= self.slack)


TARGETS = (
    RatioAtMost("loop", "us_per_step", 0.07, "loop: ratio <= 0.07"),
    OursAtMost("loop", "us_per_step", 30, "us", "loop: <= 30 us per step"),
    RatioAtMost("fanout-2000", "total_s", 0.01, "fan-out N=2000: ratio <= 0.01"),
    GrowsLinearly(
        ["fanout-500", "fanout-2000", "fanout-8000"],
        "cpu_us_per_event",
        2.0,
        "fan-out: linear in N (CPU per event within 2x from N=500 to N=8000)",
    ),
    RatioAtMost("many-runs", "total_s", 0.1, "many runs: ratio <= 0.1"),
    RatioAtMost("streaming", "us_per_event", 0.1, "streaming: ratio <= 0.1"),
    # 0.12 was retired: the SDK alone costs about 0.116 of the reference traced for our two
    # spans per step (see the breakdown in RESULTS.md); what is ours is the handler's share.
    RatioAtMost("traced-loop", "us_per_step", 0.15, "traced loop (all our spans): ratio <= 0.15 to the reference traced"),
    OursBelowReference(
        "traced-loop", "loop", "us_per_step", "us", "traced loop (all our spans) faster than the reference untraced"
    ),
    OursBelowReference(
        "traced-loop",
        "loop",
        "cpu_us_per_step",
        "us",
        "traced loop (all our spans) uses less CPU per step than the reference untraced",
    ),
    OursAtMost("waiting", "kb_per_waiting_run", 10, "KB", "waiting: <= 10 KB per waiting run"),
    OursAtMost(
        "waiting", "idle_cpu_ms_per_s", 0.5, "ms/s", "waiting: no CPU used while waiting (<= 0.5 ms per s)"
    ),
)


def evaluate(summary: Summary) -> list[Outcome]:
    return [target.evaluate(summary) for target in TARGETS]
