"""``python -m benchmarks``: run the scenarios on both engines, alternating, and report."""

from __future__ import annotations

import argparse
import datetime
import subprocess
import sys
from pathlib import Path

from benchmarks import catalog, engines, report, targets
from benchmarks.measure import Measurement, run_once
from benchmarks.summary import Summary

ENGINE_NAMES = ("ours", "llama")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="Benchmark this engine against llama-index-workflows on the same workflows.",
    )
    parser.add_argument("--sizes", choices=catalog.SIZES, default="full", help="scenario sizes (default: full)")
    parser.add_argument("--repeat", type=int, default=None, help="repetitions per engine (default: 3, tiny: 1)")
    parser.add_argument(
        "--scenarios",
        default="",
        help=f"comma-separated scenarios or variants (default: all): {', '.join(catalog.SCENARIOS)}",
    )
    parser.add_argument(
        "--engines", default="ours,llama", help="comma-separated engines: ours, llama (default: both)"
    )
    parser.add_argument(
        "--out", type=Path, default=engines.BENCHMARKS_DIR, help="folder for RESULTS.md and results.png"
    )
    parser.add_argument("--timeout", type=float, default=900, help="seconds allowed per measurement")
    parser.add_argument(
        "--upgrade-reference", action="store_true", help="upgrade the reference venv to the newest releases"
    )
    parser.add_argument("--ours-python", type=Path, default=None, help="interpreter with this project installed")
    parser.add_argument(
        "--from-json",
        type=Path,
        default=None,
        help="measure nothing: write the reports again from a results.json of an earlier run",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.from_json:
        run, machine_info, measurements = report.read_raw(args.from_json)
        variants = [v for v in catalog.VARIANTS if any(m.variant == v.key for m in measurements)]
        return publish(args.out, variants, run, machine_info, measurements, write_raw=False)

    chosen = [name for name in args.engines.split(",") if name]
    unknown = [name for name in chosen if name not in ENGINE_NAMES]
    if unknown or not chosen:
        print(f"error: unknown engine(s) {unknown or chosen}; choose among {', '.join(ENGINE_NAMES)}", file=sys.stderr)
        return 2
    try:
        variants = catalog.select([name for name in args.scenarios.split(",") if name])
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    repeat = args.repeat or (1 if args.sizes == "tiny" else 3)

    try:
        to_run = prepare_engines(chosen, args)
    except (RuntimeError, subprocess.CalledProcessError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2

    run = report.Run(
        size=args.sizes,
        repeat=repeat,
        engines=tuple(e.name for e in to_run),
        started=datetime.datetime.now(datetime.timezone.utc),
    )
    machine_info = report.machine()
    measurements = measure_all(to_run, variants, args.sizes, repeat, args.timeout)
    machine_info["load average at end"] = report.load_average()
    return publish(args.out, variants, run, machine_info, measurements, write_raw=True)


def publish(
    out: Path,
    variants: list[catalog.Variant],
    run: report.Run,
    machine_info: dict[str, str],
    measurements: list[Measurement],
    *,
    write_raw: bool,
) -> int:
    """Print the table and targets, write the reports; 1 if any measurement failed."""
    summary = Summary(measurements)
    outcomes = targets.evaluate(summary)
    print()
    print(report.text_table(report.rows(summary, variants, run, spread=False)))
    for b in report.breakdowns(summary, run):
        print(
            f"traced loop, {b.engine}: {b.traced:.1f} us CPU per step = untraced {b.untraced:.1f} + SDK floor "
            f"{b.floor:.1f} ({b.floor / b.spans:.1f} per span) + beyond the SDK {b.beyond_sdk:.1f} "
            f"({b.beyond_sdk / b.spans:.1f} per span)"
        )
    print()
    print("Targets:")
    print(report.targets_text(outcomes, run.size))
    for failed in summary.errors():
        print(f"FAILED {failed.variant} / {failed.engine} / repetition {failed.repetition}: {failed.error}")

    out.mkdir(parents=True, exist_ok=True)
    chart = out / "results.png"
    report.write_chart(chart, summary, variants, run)
    results = out / "RESULTS.md"
    report.write_markdown(results, summary, variants, run, outcomes, chart.name, machine_info)
    written = [results, chart]
    if write_raw:
        raw = out / "results.json"
        report.write_raw(raw, measurements, run, machine_info)
        written.append(raw)
    print(f"\nwrote {', '.join(str(path) for path in written)}")
    # Only a report into the default folder speaks for the project in its README.
    if out.resolve() == engines.BENCHMARKS_DIR.resolve():
        readme = engines.BENCHMARKS_DIR / "README.md"
        if report.update_readme(readme, summary, variants, run, chart.name):
            print(f"updated the results section of {readme}")
    return 1 if summary.errors() else 0


def prepare_engines(chosen: list[str], args: argparse.Namespace) -> list[engines.Engine]:
    """The engines to run, checked (ours) or installed if missing (the reference)."""
    to_run = []
    if "ours" in chosen:
        ours = engines.ours(args.ours_python)
        engines.check_ours(ours)
        to_run.append(ours)
    if "llama" in chosen:
        to_run.append(engines.ensure_reference(upgrade=args.upgrade_reference, log=_log))
    return to_run


def measure_all(
    to_run: list[engines.Engine], variants: list[catalog.Variant], size: str, repeat: int, timeout: float
) -> list[Measurement]:
    """Each repetition runs every variant on each engine, the engines' order flipping every time."""
    measurements = []
    for repetition in range(1, repeat + 1):
        for index, variant in enumerate(variants):
            order = to_run if (repetition + index) % 2 else list(reversed(to_run))
            for engine in order:
                if engine.name == "llama" and size in variant.reference_skipped:
                    continue
                measurement = run_once(engine, variant, size, repetition, timeout)
                measurements.append(measurement)
                _log(_progress(measurement, variant, repeat))
    return measurements


def _progress(m: Measurement, variant: catalog.Variant, repeat: int) -> str:
    head = f"[{m.repetition}/{repeat}] {variant.key:<17} {m.engine:<6}"
    if m.error:
        return f"{head} FAILED: {m.error}"
    metric = variant.primary
    return f"{head} {report.format_value(m.metrics.get(metric.key))} {metric.label}"


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)
