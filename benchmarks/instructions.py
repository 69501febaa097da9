"""Instructions per traced loop step, counted by valgrind: the traced loop's comparison
without the machine's noise.

On a shared machine the traced loop's CPU time moves by 10% or more between two runs of
the same code, more than most changes to the handler are worth. Cachegrind counts the
instructions a process executes, which load does not move. Each variant (the loop, the
traced loop, the SDK floor; both engines) is run under cachegrind at two sizes, and the
difference is divided by the difference in steps, so start-up and warm-up cancel out.
The garbage collector is off while a scenario is timed: whether a full collection falls
inside the larger size and not the smaller would move a count by up to 100k instructions
per step, whatever the code. (What collections cost is in the CPU times of
``python -m benchmarks``, where the collector stays on.)

    .venv/bin/python -m benchmarks.instructions

It needs ``valgrind`` (Debian and Ubuntu: ``apt install valgrind``) and takes a few
minutes, most of them in the reference engine (a process runs about 50 times slower under
cachegrind). Instructions are not time: the reference executes fewer instructions per
microsecond than ours, so its ratio in instructions is higher than in time. Use the
counts to compare two versions of this project's code and to see where a step goes; the
ratio targets are measured in time by ``python -m benchmarks``.
"""

from __future__ import annotations

import argparse
import platform
import re
import shutil
import sys
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from benchmarks.catalog import VARIANTS, Variant
from benchmarks.engines import BENCHMARKS_DIR, Engine, check_ours, ensure_reference, ours
from benchmarks.measure import command, run_script
from benchmarks.report import INSTRUCTIONS, machine, write_section

VARIANT_KEYS = ("loop", "traced-loop", "traced-loop-floor")
DEFAULT_STEPS = (300, 1300)

_TOTAL = re.compile(r"I\s+refs:\s+([\d,]+)")


@dataclass(frozen=True)
class Count:
    """Instructions per step of one variant on one engine."""

    engine: str
    variant: str
    per_step: float


def total_instructions(valgrind_output: str) -> int:
    """The ``I refs`` total from cachegrind's summary (written to stderr)."""
    found = _TOTAL.search(valgrind_output)
    if found is None:
        raise ValueError("no 'I refs' line in valgrind's output: did the program run under cachegrind?")
    return int(found.group(1).replace(",", ""))


def per_step(small: tuple[int, int], large: tuple[int, int]) -> float:
    """Instructions per step from (steps, instructions) at two sizes: what start-up costs cancels."""
    (n_small, i_small), (n_large, i_large) = small, large
    if n_large <= n_small:
        raise ValueError(f"the second size must be larger than the first, got {n_small} and {n_large}")
    return (i_large - i_small) / (n_large - n_small)


def count(engine: Engine, variant: Variant, steps: int, timeout: float) -> int:
    """Run one variant of ``steps`` steps under cachegrind; its instructions in all."""
    args = command(engine, variant, "full")
    args[args.index("--n") + 1] = str(steps)
    args.append("--no-gc")
    done = run_script(
        ["valgrind", "--tool=cachegrind", "--cache-sim=no", "--cachegrind-out-file=/dev/null", *args], timeout
    )
    if done.returncode != 0:
        tail = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise RuntimeError(f"{engine.name} {variant.key} (n={steps}) failed with exit code {done.returncode}: {tail}")
    return total_instructions(done.stderr)


def measure(engines: list[Engine], steps: tuple[int, int], timeout: float, log=print) -> list[Count]:
    """Count every variant of ``VARIANT_KEYS`` on each engine at both sizes, one process at a
    time (each takes seconds to minutes under cachegrind: ``log`` says which is running)."""
    variants = [v for v in VARIANTS if v.key in VARIANT_KEYS]
    total = len(engines) * len(variants) * len(steps)
    counts, done = [], 0
    for engine in engines:
        for variant in variants:
            measured = []
            for n in steps:
                done += 1
                log(f"[{done}/{total}] {engine.name} {variant.key} n={n} under cachegrind ...")
                measured.append((n, count(engine, variant, n, timeout)))
            counts.append(Count(engine.name, variant.key, per_step(measured[0], measured[1])))
    return counts


def section(counts: list[Count], started: datetime, command_line: str, machine_info: dict[str, str]) -> str:
    """The "Instructions" section of RESULTS.md: the table, and how and where it was counted."""
    return "\n".join(
        [
            "## Instructions per loop step",
            "",
            f"Counted by cachegrind on {started:%Y-%m-%d %H:%M} UTC (`{command_line}`), on "
            f"{machine_info['cpu']}, Python {platform.python_version()}; the difference between "
            "two sizes, collector off (benchmarks/instructions.py). Load does not move these "
            "counts, unlike the CPU times above; instructions are not time, though, and the "
            "targets stay in time.",
            "",
            table(counts),
        ]
    )


def table(counts: list[Count]) -> str:
    """A markdown table of instructions per step, and the split of each traced step."""
    by = {(c.engine, c.variant): c.per_step for c in counts}
    engines = list(dict.fromkeys(c.engine for c in counts))
    lines = ["| engine | loop step | traced step | SDK floor | beyond the SDK |", "| --- | ---: | ---: | ---: | ---: |"]
    for engine in engines:
        untraced, traced, floor = (by.get((engine, key)) for key in VARIANT_KEYS)
        beyond = None
        if untraced is not None and traced is not None and floor is not None:
            beyond = traced - untraced - floor
        cells = [f"{value / 1000:,.0f}k" if value is not None else "-" for value in (untraced, traced, floor, beyond)]
        lines.append(f"| {engine} | " + " | ".join(cells) + " |")
    ours_traced, reference_traced = by.get(("ours", "traced-loop")), by.get(("llama", "traced-loop"))
    if ours_traced and reference_traced:
        lines += ["", f"Traced loop, ours / reference, in instructions: {ours_traced / reference_traced:.3f}"]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--engines", default="ours,llama", help="ours, llama, or both (default)")
    parser.add_argument(
        "--steps", default=",".join(map(str, DEFAULT_STEPS)), help="the two sizes, in loop steps (default 300,1300)"
    )
    parser.add_argument("--timeout", type=float, default=1800, help="seconds allowed per process (default 1800)")
    parser.add_argument(
        "--out", type=Path, default=BENCHMARKS_DIR, help="folder of the RESULTS.md to write the section into"
    )
    args = parser.parse_args(argv)
    if shutil.which("valgrind") is None:
        print(
            "valgrind is not installed: install it (Debian/Ubuntu: apt install valgrind) and run again.",
            file=sys.stderr,
        )
        return 2
    try:
        small, large = (int(part) for part in args.steps.split(","))
    except ValueError:
        parser.error(f"--steps takes two step counts such as 300,1300, got {args.steps!r}")
    if not 0 < small < large:
        parser.error(f"--steps takes a smaller, then a larger step count, such as 300,1300, got {args.steps!r}")
    names = [name.strip() for name in args.engines.split(",") if name.strip()]
    unknown = set(names) - {"ours", "llama"}
    if unknown or not names:
        parser.error(f"--engines takes ours, llama or both, got {args.engines!r}")
    engines = []
    if "ours" in names:
        engines.append(ours())
        check_ours(engines[-1])
    if "llama" in names:
        engines.append(ensure_reference())
    started = datetime.now(timezone.utc)
    counts = measure(engines, (small, large), args.timeout)
    print()
    print(table(counts))
    command_line = f"python -m benchmarks.instructions --engines {','.join(names)} --steps {small},{large}"
    results = args.out / "RESULTS.md"
    write_section(results, INSTRUCTIONS, section(counts, started, command_line, machine()))
    print(f"\nwrote the Instructions section of {results}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
