"""``python -m benchmarks.profile SCRIPT [scenario options]``: where does our engine spend its time?

Runs one scenario script (``loop``, ``fanout``, ``many_runs``, ``streaming``,
``waiting``) on this project's engine under cProfile, profiling only the scenario
itself (not the imports), and prints the functions that cost the most. Options after
the script name go to the scenario, e.g. ``python -m benchmarks.profile loop --n 5000
--traced``. Only the main thread is profiled: a span processor's export thread is not.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import importlib.util
import pstats
import sys

from benchmarks.catalog import SCENARIO_DIR


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.profile", description=__doc__.splitlines()[0])
    parser.add_argument("script", help="scenario script name, without .py")
    parser.add_argument("--sort", default="tottime", help="pstats sort key (default: tottime)")
    parser.add_argument("--limit", type=int, default=30, help="rows to print")
    parser.add_argument("--save", help="also write the raw profile to this file (for snakeviz, pstats)")
    args, scenario_args = parser.parse_known_args(argv)

    path = SCENARIO_DIR / f"{args.script}.py"
    if not path.exists():
        names = sorted(p.stem for p in SCENARIO_DIR.glob("*.py") if not p.stem.startswith("_"))
        parser.error(f"no scenario script {path.name}; choose among {', '.join(names)}")
    sys.path.insert(0, str(SCENARIO_DIR))
    spec = importlib.util.spec_from_file_location(f"scenario_{args.script}", path)
    assert spec and spec.loader
    scenario = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(scenario)

    sys.argv = [str(path), "--engine", "ours", *scenario_args]
    profiler = cProfile.Profile()
    profiler.runcall(asyncio.run, scenario.main())
    if args.save:
        profiler.dump_stats(args.save)
    pstats.Stats(profiler).sort_stats(args.sort).print_stats(args.limit)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
