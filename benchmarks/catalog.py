"""The benchmark's scenarios, their sizes and metrics, and the targets the engine aims at.

A *variant* is one measurement: a scenario script run with one size (and tracing on or
off). Several variants belong to one *scenario* (fan-out at three sizes; the traced
loop and traced many runs form the "traced" scenario), which is what ``--scenarios``
selects.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

SCENARIO_DIR = Path(__file__).parent / "scenarios"

SIZES = ("tiny", "full")


@dataclass(frozen=True)
class Metric:
    key: str
    label: str
    higher_is_better: bool = False
    # Informative metrics (span counts) describe the run; their ratio means nothing.
    informative: bool = False


@dataclass(frozen=True)
class Variant:
    key: str
    scenario: str
    title: str
    script: str
    args: dict[str, dict[str, float]]  # size -> script options
    metrics: tuple[Metric, ...]
    traced: bool = False
    # size -> why the reference engine is not run at that size
    reference_skipped: dict[str, str] = field(default_factory=dict)
    # For a traced variant, the same scenario untraced (its chart shows the reference's bar too).
    untraced: str | None = None
    # For a traced variant, our handler's trace detail (WORKFLOWS_TRACE_DETAIL); the reference
    # is traced the same way whatever it is.
    trace_detail: str = "full"

    @property
    def primary(self) -> Metric:
        return self.metrics[0]

    def script_path(self) -> Path:
        return SCENARIO_DIR / self.script

    def size_label(self, size: str) -> str:
        return ", ".join(f"{name.upper()}={value:g}" for name, value in self.args[size].items() if name != "idle")


US_PER_STEP = Metric("us_per_step", "time per step (us)")
CPU_US_PER_STEP = Metric("cpu_us_per_step", "CPU per step (us)")
US_PER_EVENT = Metric("us_per_event", "time per event (us)")
CPU_US_PER_EVENT = Metric("cpu_us_per_event", "CPU per event (us)")
TOTAL_S = Metric("total_s", "total time (s)")
RUNS_PER_S = Metric("runs_per_s", "runs per second (higher is better)", higher_is_better=True)


def _fanout(n_full: int, n_tiny: int, skip_reference: str | None = None) -> Variant:
    return Variant(
        key=f"fanout-{n_full}",
        scenario="fanout",
        title="fan-out/fan-in",
        script="fanout.py",
        args={"tiny": {"n": n_tiny}, "full": {"n": n_full}},
        metrics=(TOTAL_S, US_PER_EVENT, CPU_US_PER_EVENT),
        reference_skipped={"full": skip_reference} if skip_reference else {},
    )


VARIANTS: tuple[Variant, ...] = (
    Variant(
        key="loop",
        scenario="loop",
        title="loop",
        script="loop.py",
        args={"tiny": {"n": 200}, "full": {"n": 5000}},
        metrics=(US_PER_STEP, CPU_US_PER_STEP),
    ),
    _fanout(500, 20),
    _fanout(2000, 40),
    _fanout(
        8000,
        80,
        skip_reference="its collection is quadratic: N=8000 would take about 16x the N=2000 time",
    ),
    Variant(
        key="many-runs",
        scenario="many-runs",
        title="many runs (10 steps each)",
        script="many_runs.py",
        args={"tiny": {"k": 20}, "full": {"k": 1000}},
        metrics=(TOTAL_S, RUNS_PER_S, US_PER_STEP, CPU_US_PER_STEP),
    ),
    Variant(
        key="streaming",
        scenario="streaming",
        title="streaming",
        script="streaming.py",
        args={"tiny": {"n": 200}, "full": {"n": 20000}},
        metrics=(US_PER_EVENT, CPU_US_PER_EVENT),
    ),
    Variant(
        key="waiting",
        scenario="waiting",
        title="waiting for a human",
        script="waiting.py",
        args={"tiny": {"k": 50, "idle": 0.2}, "full": {"k": 10000, "idle": 1.5}},
        metrics=(
            Metric("kb_per_waiting_run", "memory per waiting run (KB)"),
            Metric("idle_cpu_ms_per_s", "CPU while all wait (ms per s)"),
            Metric("start_all_s", "start all until all wait (s)"),
            Metric("answer_all_s", "answer all until all done (s)"),
        ),
    ),
    Variant(
        key="traced-loop",
        scenario="traced",
        title="traced loop",
        script="loop.py",
        args={"tiny": {"n": 200}, "full": {"n": 5000}},
        metrics=(US_PER_STEP, CPU_US_PER_STEP, Metric("spans_per_step", "spans per step", informative=True)),
        traced=True,
        untraced="loop",
    ),
    Variant(
        key="traced-loop-steps",
        scenario="traced",
        title="traced loop, detail=steps",
        script="loop.py",
        args={"tiny": {"n": 200}, "full": {"n": 5000}},
        metrics=(US_PER_STEP, CPU_US_PER_STEP, Metric("spans_per_step", "spans per step", informative=True)),
        traced=True,
        untraced="loop",
        trace_detail="steps",
    ),
    Variant(
        key="traced-loop-floor",
        scenario="traced",
        title="traced loop, SDK alone",
        script="sdk_floor.py",
        args={"tiny": {"n": 200}, "full": {"n": 5000}},
        metrics=(
            US_PER_STEP,
            CPU_US_PER_STEP,
            Metric("spans_per_step", "spans per step", informative=True),
            Metric("attributes_per_step", "attributes per step", informative=True),
        ),
        traced=True,
        untraced="loop",
    ),
    Variant(
        key="traced-many-runs",
        scenario="traced",
        title="traced many runs (10 steps each)",
        script="many_runs.py",
        args={"tiny": {"k": 20}, "full": {"k": 1000}},
        metrics=(
            TOTAL_S,
            RUNS_PER_S,
            US_PER_STEP,
            CPU_US_PER_STEP,
            Metric("spans_per_run", "spans per run", informative=True),
        ),
        traced=True,
        untraced="many-runs",
    ),
)

SCENARIOS: tuple[str, ...] = tuple(dict.fromkeys(v.scenario for v in VARIANTS))


def select(names: list[str] | None) -> list[Variant]:
    """The variants named by scenario (``fanout``) or by variant key (``fanout-2000``)."""
    if not names:
        return list(VARIANTS)
    known = set(SCENARIOS) | {v.key for v in VARIANTS}
    unknown = [name for name in names if name not in known]
    if unknown:
        raise ValueError(
            f"unknown scenario(s) {', '.join(unknown)}; choose among {', '.join(sorted(known))}"
        )
    return [v for v in VARIANTS if v.scenario in names or v.key in names]
