"""Turn a Summary into the printed table, benchmarks/RESULTS.md and the chart."""

from __future__ import annotations

import dataclasses
import datetime
import json
import os
import platform
from dataclasses import dataclass
from pathlib import Path

from benchmarks.catalog import Metric, Variant
from benchmarks.measure import Measurement
from benchmarks.summary import Summary
from benchmarks.targets import Outcome

ENGINE_COLORS = {"ours": "#2a7ab0", "llama": "#d98b2b"}
ENGINE_NAMES = {"ours": "ours", "llama": "llama-index-workflows"}
BAR_LABELS = {"ours": "ours", "llama": "reference"}
UNTRACED_COLOR = "#f0c48a"


@dataclass(frozen=True)
class Run:
    """What was asked of this invocation, for the report's header."""

    size: str
    repeat: int
    engines: tuple[str, ...]
    started: datetime.datetime


@dataclass(frozen=True)
class Row:
    scenario: str
    size: str
    metric: str
    ours: str
    reference: str
    ratio: str


def format_value(value: float | None) -> str:
    if value is None:
        return "-"
    magnitude = abs(value)
    if magnitude >= 100:
        return f"{value:,.0f}"
    if magnitude >= 10:
        return f"{value:.1f}"
    if magnitude >= 1:
        return f"{value:.2f}"
    return f"{value:.3g}"


def rows(summary: Summary, variants: list[Variant], run: Run, *, spread: bool) -> list[Row]:
    table = []
    for variant in variants:
        skipped = variant.reference_skipped.get(run.size)
        for metric in variant.metrics:
            ratio = None if metric.informative else summary.ratio(variant.key, metric.key)
            table.append(
                Row(
                    scenario=variant.title,
                    size=variant.size_label(run.size),
                    metric=metric.label,
                    ours=_cell(summary, variant, "ours", metric, run, spread),
                    reference="not run" if skipped else _cell(summary, variant, "llama", metric, run, spread),
                    ratio="-" if ratio is None else f"{ratio:.3f}",
                )
            )
    return table


def _cell(summary: Summary, variant: Variant, engine: str, metric: Metric, run: Run, spread: bool) -> str:
    if engine not in run.engines:
        return "-"
    values = summary.values(variant.key, engine, metric.key)
    if not values:
        return "failed"
    median = format_value(summary.median(variant.key, engine, metric.key))
    if spread and len(values) > 1:
        return f"{median} ({format_value(min(values))}-{format_value(max(values))})"
    return median


HEADERS = ("scenario", "size", "metric", "ours", "reference", "ours/ref")


def text_table(table: list[Row]) -> str:
    lines = [HEADERS] + [(r.scenario, r.size, r.metric, r.ours, r.reference, r.ratio) for r in table]
    widths = [max(len(line[i]) for line in lines) for i in range(len(HEADERS))]
    rendered = []
    for index, line in enumerate(lines):
        cells = [cell.ljust(w) if i < 3 else cell.rjust(w) for i, (cell, w) in enumerate(zip(line, widths))]
        rendered.append("  ".join(cells).rstrip())
        if index == 0:
            rendered.append("  ".join("-" * w for w in widths))
    return "\n".join(rendered)


def markdown_table(table: list[Row]) -> str:
    lines = ["| " + " | ".join(HEADERS) + " |", "| --- | --- | --- | ---: | ---: | ---: |"]
    for r in table:
        lines.append(f"| {r.scenario} | {r.size} | {r.metric} | {r.ours} | {r.reference} | {r.ratio} |")
    return "\n".join(lines)


@dataclass(frozen=True)
class Breakdown:
    """Where one engine's traced loop step goes, in CPU microseconds (medians)."""

    engine: str
    untraced: float
    traced: float
    floor: float
    spans: float

    @property
    def beyond_sdk(self) -> float:
        """What tracing costs that is neither the step itself nor the SDK's own work."""
        return self.traced - self.untraced - self.floor


def breakdowns(summary: Summary, run: Run) -> list[Breakdown]:
    """The traced loop step of each engine split into the untraced step, the SDK's floor
    for the same spans (``traced-loop-floor``) and the instrumentation's share beyond it."""
    found = []
    for engine in run.engines:
        values = [
            summary.median(variant, engine, metric)
            for variant, metric in (
                ("loop", "cpu_us_per_step"),
                ("traced-loop", "cpu_us_per_step"),
                ("traced-loop-floor", "cpu_us_per_step"),
                ("traced-loop", "spans_per_step"),
            )
        ]
        untraced, traced, floor, spans = values
        if untraced is not None and traced is not None and floor is not None and spans:
            found.append(Breakdown(engine, untraced, traced, floor, spans))
    return found


def breakdown_markdown(found: list[Breakdown], reference_traced: float | None) -> list[str]:
    """A table of the breakdowns, per step and per span, and as a share of the reference traced."""
    if not found:
        return []
    lines = [
        "## Where the traced loop's CPU goes",
        "",
        (
            "Per loop step, CPU time (medians). *SDK floor*: the OpenTelemetry SDK alone making the "
            "same spans with the same attributes (`traced loop, SDK alone`, scenarios/sdk_floor.py); "
            "*beyond the SDK*: traced step - untraced step - SDK floor, i.e. the instrumentation's own "
            "work (for ours: the handler, payload rendering, the records it reads)."
        ),
        "",
        "| engine | untraced step | traced step | spans per step | SDK floor | SDK floor per span | "
        "beyond the SDK | beyond the SDK per span |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for b in found:
        lines.append(
            f"| {ENGINE_NAMES[b.engine]} | {format_value(b.untraced)} | {format_value(b.traced)} | "
            f"{format_value(b.spans)} | {format_value(b.floor)} | {format_value(b.floor / b.spans)} | "
            f"{format_value(b.beyond_sdk)} | {format_value(b.beyond_sdk / b.spans)} |"
        )
    if reference_traced:
        ours = next((b for b in found if b.engine == "ours"), None)
        if ours is not None:
            lines += [
                "",
                (
                    f"As shares of the reference traced ({format_value(reference_traced)} us of CPU per step): "
                    f"our untraced step {ours.untraced / reference_traced:.3f}, the SDK floor of our spans "
                    f"{ours.floor / reference_traced:.3f}, our handler's share beyond the SDK "
                    f"{ours.beyond_sdk / reference_traced:.3f}; in all {ours.traced / reference_traced:.3f}."
                ),
            ]
    return lines + [""]


def targets_text(outcomes: list[Outcome], size: str) -> str:
    lines = []
    if size != "full":
        lines.append(f"(measured at {size} sizes: the targets are meant for full sizes)")
    for o in outcomes:
        verdict = "not measured" if o.met is None else f"{o.measured} -> {'met' if o.met else 'NOT met'}"
        lines.append(f"- {o.goal}: {verdict}")
    return "\n".join(lines)


def machine() -> dict[str, str]:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            names = [line.split(":", 1)[1].strip() for line in cpuinfo if line.startswith("model name")]
        cpu = names[0] if names else cpu
    except OSError:
        pass
    memory = "unknown"
    try:
        with open("/proc/meminfo") as meminfo:
            total_kb = int(next(line for line in meminfo if line.startswith("MemTotal")).split()[1])
        memory = f"{total_kb / 1024 / 1024:.1f} GiB"
    except (OSError, StopIteration):
        pass
    return {
        "os": platform.platform(),
        "cpu": f"{cpu}, {os.cpu_count()} logical cores",
        "memory": memory,
        "load average at start": load_average(),
    }


def load_average() -> str:
    """The 1, 5 and 15 minute load averages: above the core count, timings are inflated."""
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def write_markdown(
    path: Path,
    summary: Summary,
    variants: list[Variant],
    run: Run,
    outcomes: list[Outcome],
    chart_name: str | None,
    machine_info: dict[str, str],
) -> None:
    versions = {engine: summary.versions(engine) for engine in run.engines}
    lines = [
        "# Benchmark results",
        "",
        (
            f"Produced by `python -m benchmarks --sizes {run.size} --repeat {run.repeat}` on "
            f"{run.started:%Y-%m-%d %H:%M} UTC. Each cell is the median of {run.repeat} repetition(s) "
            "(min-max in parentheses), each repetition a fresh process per engine, the two engines "
            "alternating. `ours/ref` is the ratio of the medians: below 1 means this engine costs less "
            "(for runs per second, above 1 is better). See README.md for what each scenario does."
        ),
        "",
        "## Machine",
        "",
        *(f"- {name}: {value}" for name, value in machine_info.items()),
        "",
        "## Engines",
        "",
        *(
            f"- {ENGINE_NAMES[engine]}: "
            + (", ".join(f"{name} {version}" for name, version in sorted(versions[engine].items())) or "no result")
            for engine in run.engines
        ),
        "",
        "## Results",
        "",
        markdown_table(rows(summary, variants, run, spread=True)),
        "",
    ]
    skipped = [(v.title, v.reference_skipped[run.size]) for v in variants if run.size in v.reference_skipped]
    if skipped and "llama" in run.engines:
        lines += [f"Reference not run for {title}: {reason}." for title, reason in skipped] + [""]
    lines += breakdown_markdown(breakdowns(summary, run), summary.median("traced-loop", "llama", "cpu_us_per_step"))
    lines += ["## Targets", "", targets_text(outcomes, run.size), ""]
    errors = summary.errors()
    if errors:
        lines += ["## Failed measurements", ""]
        lines += [f"- {m.variant} / {m.engine} / repetition {m.repetition}: {m.error}" for m in errors]
        lines.append("")
    if chart_name:
        lines += ["## Chart", "", f"![benchmark chart]({chart_name})", ""]
    lines += _kept_sections(path)
    path.write_text("\n".join(lines))


SERVER_START = "<!-- server:start -->"
SERVER_END = "<!-- server:end -->"
RUNS_AT_SCALE = ("<!-- runs-at-scale:start -->", "<!-- runs-at-scale:end -->")
INSTRUCTIONS = ("<!-- instructions:start -->", "<!-- instructions:end -->")

KEPT = (
    INSTRUCTIONS,
    RUNS_AT_SCALE,
    (SERVER_START, SERVER_END),
    ("<!-- waiting:start -->", "<!-- waiting:end -->"),
)
"""Sections other benchmarks write into RESULTS.md (``instructions``, ``runs_at_scale``,
``server_io``, ``server_waiting``), kept when it is rewritten."""


def _section(text: str, begin: str, end: str) -> str | None:
    start, stop = text.find(begin), text.find(end)
    return text[start:stop + len(end)] if start >= 0 and stop > start else None


def _kept_sections(path: Path) -> list[str]:
    text = path.read_text() if path.exists() else ""
    kept = []
    for begin, end in KEPT:
        section = _section(text, begin, end)
        if section is not None:
            kept += [section, ""]
    return kept


def write_section(path: Path, markers: tuple[str, str], section: str) -> None:
    """Put ``section`` between ``markers`` (one of ``KEPT``) in ``path``: in place of what
    was there, else appended (the file is created if absent)."""
    begin, end = markers
    marked = f"{begin}\n{section.rstrip()}\n{end}"
    text = path.read_text() if path.exists() else ""
    old = _section(text, begin, end)
    if old is not None:
        text = text.replace(old, marked)
    else:
        text = f"{text.rstrip()}\n\n{marked}\n" if text.strip() else f"{marked}\n"
    path.write_text(text)


def write_server_section(path: Path, section: str) -> None:
    """Put ``section`` between the Server markers of ``path``."""
    write_section(path, (SERVER_START, SERVER_END), section)



def write_raw(path: Path, measurements: list[Measurement], run: Run, machine_info: dict[str, str]) -> None:
    """Every repetition's numbers, for whoever wants more than medians."""
    payload = {
        "sizes": run.size,
        "repeat": run.repeat,
        "engines": list(run.engines),
        "started": run.started.isoformat(timespec="seconds"),
        "machine": machine_info,
        "measurements": [dataclasses.asdict(m) for m in measurements],
    }
    path.write_text(json.dumps(payload, indent=1) + "\n")


def read_raw(path: Path) -> tuple[Run, dict[str, str], list[Measurement]]:
    """What ``write_raw`` wrote: the run, the machine and the measurements."""
    payload = json.loads(path.read_text())
    run = Run(
        size=payload["sizes"],
        repeat=payload["repeat"],
        engines=tuple(payload["engines"]),
        started=datetime.datetime.fromisoformat(payload["started"]),
    )
    return run, payload["machine"], [Measurement(**m) for m in payload["measurements"]]


def write_chart(path: Path, summary: Summary, variants: list[Variant], run: Run) -> None:
    """One panel per variant (its main metric, both engines) and one for fan-out scaling."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels: list[Variant | str] = list(variants)
    fanouts = [v for v in variants if v.scenario == "fanout"]
    if len(fanouts) > 1:
        panels.append("fanout-scaling")
    columns = min(4, len(panels))
    rows_count = (len(panels) + columns - 1) // columns
    figure, axes = plt.subplots(rows_count, columns, figsize=(4.2 * columns, 3.6 * rows_count), squeeze=False)
    for ax in axes.flat[len(panels) :]:
        ax.set_visible(False)
    for ax, panel in zip(axes.flat, panels):
        if isinstance(panel, Variant):
            _bar_panel(ax, summary, panel, run)
        else:
            _scaling_panel(ax, summary, fanouts, run)
    figure.suptitle(
        f"ours (otel-workflows) vs reference (llama-index-workflows), {run.size} sizes, median of {run.repeat}, "
        f"{run.started:%Y-%m-%d}",
        fontsize=13,
    )
    figure.tight_layout()
    figure.savefig(path, dpi=90)
    plt.close(figure)


def _bar_panel(ax, summary: Summary, variant: Variant, run: Run) -> None:
    metric = variant.primary
    bars = [
        (BAR_LABELS[e], summary.median(variant.key, e, metric.key), ENGINE_COLORS[e]) for e in run.engines
    ]
    if variant.untraced and "llama" in run.engines:
        # The traced target compares with the reference untraced: show that bar too.
        untraced = summary.median(variant.untraced, "llama", metric.key)
        bars.append(("reference\nuntraced", untraced, UNTRACED_COLOR))
    shown = [(label, value, color) for label, value, color in bars if value is not None]
    drawn = ax.bar(
        [label for label, _, _ in shown], [value for _, value, _ in shown], color=[c for _, _, c in shown], width=0.6
    )
    ax.bar_label(drawn, labels=[format_value(value) for _, value, _ in shown], fontsize=9)
    title = f"{variant.title}, {variant.size_label(run.size)}\n{metric.label}"
    ratio = summary.ratio(variant.key, metric.key)
    if ratio is not None:
        title += f" - ratio {ratio:.3f}"
    ax.set_title(title, fontsize=9)
    if "llama" in run.engines and run.size in variant.reference_skipped:
        ax.text(0.97, 0.95, "reference not run\n(see RESULTS.md)", transform=ax.transAxes,
                ha="right", va="top", fontsize=8, color="gray")
    ax.margins(y=0.18)
    ax.tick_params(axis="x", labelsize=8)


def _scaling_panel(ax, summary: Summary, fanouts: list[Variant], run: Run) -> None:
    for engine in run.engines:
        points = [
            (v.args[run.size]["n"], summary.median(v.key, engine, "total_s"))
            for v in fanouts
            if summary.median(v.key, engine, "total_s") is not None
        ]
        if points:
            xs, ys = zip(*points)
            ax.plot(xs, ys, marker="o", color=ENGINE_COLORS[engine], label=ENGINE_NAMES[engine])
    sizes = [v.args[run.size]["n"] for v in fanouts]
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xticks(sizes, [f"{n:g}" for n in sizes])
    ax.minorticks_off()
    ax.set_xlabel("N events")
    ax.set_ylabel("total time (s)")
    ax.set_title("fan-out/fan-in scaling (log-log;\nslope 1 = linear, 2 = quadratic)", fontsize=9)
    ax.legend(fontsize=8, loc="lower right")


README_START = "<!-- results:start -->"
README_END = "<!-- results:end -->"


def update_readme(readme: Path, summary: Summary, variants: list[Variant], run: Run, chart_name: str) -> bool:
    """Replace the results section of ``readme`` (between its markers); False if it has none."""
    text = readme.read_text()
    start, end = text.find(README_START), text.find(README_END)
    if start < 0 or end < start:
        return False
    section = "\n".join(
        [
            README_START,
            (
                f"Measured on {run.started:%Y-%m-%d} ({run.size} sizes, median of {run.repeat}); "
                "details, spread and targets in [RESULTS.md](RESULTS.md)."
            ),
            "",
            markdown_table(rows(summary, variants, run, spread=False)),
            "",
            f"![benchmark chart]({chart_name})",
            "",
        ]
    )
    readme.write_text(text[:start] + section + text[end:])
    return True
