"""``python -m benchmarks.runs_at_scale``: the debugger's run list with a million runs in the store.

Fills a store (SQLite file and/or a throwaway PostgreSQL cluster, Debian's postgresql as
the tests use) with ``--runs`` runs through the store's own API (``create_handlers``, in
batches: each batch is one transaction), then times what ``GET /api/runs`` asks the store
(``search_runs`` and ``workflow_names``) for the list, each filter and text search: the
first page, and a deep page (a cursor in the middle of the matching runs: keyset
pagination makes it cost what the first page does). Each query is repeated ``--repeat``
times (warm cache: after one untimed call); the median and the slowest are reported against the 200 ms target.

The runs look like a production store's: 12 workflows, statuses 85 % completed, 8 %
failed, 2 % cancelled, 5 % running (half of them waiting for an answer), sessions of
about 4 runs, 90 days of start times, JSON inputs naming a city, a user and an order,
results and errors as the engine writes them.

Results: printed, written to ``--json`` and, with ``--results``, to the "A million
runs" section of benchmarks/RESULTS.md (between markers, which ``python -m benchmarks``
keeps). Not part of the test suite (``benchmarks/tests`` runs it on a tiny size).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import statistics
import sys
import tempfile
import time
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from functools import partial
from pathlib import Path
from typing import Any, Callable

from benchmarks.report import RUNS_AT_SCALE, write_section
from workflows_server.store import HandlerRow, NewRun, RunStore, SqliteStore, Status
from workflows_server.store.queries import RunIndexUpdate, RunQuery, encode_cursor
from workflows_server.store.sql import COUNT_CAP

BENCHMARKS = Path(__file__).parent
TARGET_MS = 200.0
START = datetime(2026, 1, 1, tzinfo=timezone.utc)
SPAN = timedelta(days=90)
WORKFLOWS = (
    "checkout", "support-agent", "refund", "itinerary", "summarize", "classify", "rag-answer", "invoice",
    "onboarding", "translate", "moderate", "nightly-report",
)
CITIES = (
    "Lisbon", "Oslo", "Kyoto", "Lima", "Nairobi", "Quito", "Hanoi", "Dakar", "Tallinn", "Porto", "Seville", "Bergen",
    "Osaka", "Cusco", "Mombasa", "Hue", "Riga", "Vilnius", "Krakow", "Gdansk", "Turin", "Genoa", "Lyon", "Nantes",
    "Ghent", "Bruges", "Utrecht", "Leiden", "Aarhus", "Malmo", "Tampere", "Turku", "Split", "Zadar", "Bled", "Graz",
    "Linz", "Basel", "Bern", "Lugano", "Bilbao", "Cadiz", "Faro", "Braga", "Cork", "Galway", "Bath", "York", "Derry",
    "Oban",
)
SERVICES = ("payments", "inventory", "search", "mailer", "pricing", "geo", "ledger", "auth", "catalog", "shipping")


def make_run(index: int, runs: int, rng: random.Random) -> NewRun:
    """The ``index``-th of ``runs`` generated runs (start times spread evenly over ``SPAN``)."""
    started = START + SPAN * (index / runs)
    roll = rng.random()
    status: Status = (
        "completed" if roll < 0.85 else "failed" if roll < 0.93 else "cancelled" if roll < 0.95 else "running"
    )
    city = CITIES[rng.randrange(len(CITIES))]
    user = f"user-{rng.randrange(max(1, runs // 50)):05d}"
    handler_id = f"{rng.getrandbits(64):016x}"
    finished = (started + timedelta(seconds=rng.uniform(0.5, 90))).isoformat()
    row = HandlerRow(
        handler_id=handler_id, workflow_name=WORKFLOWS[int(rng.random() ** 2 * len(WORKFLOWS))], run_id=handler_id,
        status=status, started_at=started.isoformat(),
        completed_at=None if status == "running" else finished,
        waiting_since=finished if status == "running" and rng.random() < 0.5 else None,
        result={"value": {"result": f"Booked {city} for {user}"}, "type": "StopEvent"} if status == "completed" else None,
        error=(f"TimeoutError: {SERVICES[rng.randrange(len(SERVICES))]} timed out after 30s" if status == "failed"
               else "cancelled by the user" if status == "cancelled" else None),
    )
    text = json.dumps({"question": f"Trip to {city} for {rng.randint(1, 14)} days", "user": user,
                       "order": f"ord-{index:07d}"})
    session = f"sess-{rng.randrange(max(1, runs // 4)):07d}"
    return NewRun(row=row, base={}, index=RunIndexUpdate(session_id=session, input_text=text, add_steps=rng.randint(1, 6)))


def fill(store: RunStore, runs: int, *, batch: int = 10000, seed: int = 7, progress: bool = True) -> float:
    """Write ``runs`` generated runs into ``store`` in batches; return the seconds it took."""
    rng = random.Random(seed)
    began = time.perf_counter()
    for first in range(0, runs, batch):
        store.create_handlers([make_run(i, runs, rng) for i in range(first, min(first + batch, runs))])
        if progress and (first // batch) % 10 == 9:
            done = first + batch
            print(f"  {done:>9,} runs, {time.perf_counter() - began:6.1f} s", file=sys.stderr, flush=True)
    return time.perf_counter() - began


@dataclass(kw_only=True)
class Case:
    """One question of the run list: its name and the query of its first page."""

    name: str
    query: RunQuery


def cases(runs: int) -> list[Case]:
    """The list, each filter and text searches, with values taken from the generated runs."""
    rng = random.Random(7)
    sample = [make_run(i, runs, rng) for i in range(min(runs, 200))]
    session = next(r.index.session_id for r in sample if r.index is not None)
    middle = START + SPAN / 2
    user = f"user-{min(123, max(0, runs // 50 - 1)):05d}"
    return [
        Case(name="list (no filter)", query=RunQuery()),
        Case(name="status = failed", query=RunQuery(status=["failed"])),
        Case(name="status = cancelled", query=RunQuery(status=["cancelled"])),
        Case(name="status = failed, cancelled", query=RunQuery(status=["failed", "cancelled"])),
        Case(name="status = running (not waiting)", query=RunQuery(status=["running"], waiting=False)),
        Case(name="waiting", query=RunQuery(status=["running"], waiting=True)),
        Case(name="workflow = nightly-report (rarest)", query=RunQuery(workflow_name=["nightly-report"])),
        Case(name="workflow = checkout (commonest)", query=RunQuery(workflow_name=["checkout"])),
        Case(name="session", query=RunQuery(session_id=session)),
        Case(name="since/until (one day)", query=RunQuery(started_after=middle.isoformat(),
                                                          started_before=(middle + timedelta(days=1)).isoformat())),
        Case(name="since (last 7 days)", query=RunQuery(started_after=(START + SPAN - timedelta(days=7)).isoformat())),
        Case(name="text: an order id (1 run)", query=RunQuery(text=f"ord-{runs // 3:07d}")),
        Case(name="text: a user (~50 runs)", query=RunQuery(text=user)),
        Case(name="text: an error (~0.8 %)", query=RunQuery(text="payments timed out")),
        Case(name="text: a city (~2 %)", query=RunQuery(text="lisbon")),
        Case(name="text: in every run", query=RunQuery(text="trip to")),
        Case(name="text: 3 characters (~2 %)", query=RunQuery(text="Hue")),
        Case(name="text + status = failed", query=RunQuery(text="payments", status=["failed"])),
    ]


def timed(fn: Callable[[], Any], repeat: int) -> tuple[list[float], Any]:
    """``repeat`` timings of ``fn`` (ms) after one untimed call (the repetitions are warm:
    a store reused from an earlier run starts with cold caches), and its last value."""
    fn()
    times, value = [], None
    for _ in range(repeat):
        began = time.perf_counter()
        value = fn()
        times.append((time.perf_counter() - began) * 1000)
    return times, value


def measure(store: RunStore, runs: int, repeat: int) -> list[dict[str, Any]]:
    """Time each case's first page and a deep page (the list's API does ``search_runs`` + ``workflow_names``)."""
    rows = []
    names_ms, _ = timed(store.workflow_names, repeat)
    for case in cases(runs):
        first_ms, page = timed(partial(store.search_runs, case.query), repeat)
        row: dict[str, Any] = {
            "query": case.name, "total": page.total, "capped": page.total_capped,
            "first_ms": statistics.median(first_ms), "first_max_ms": max(first_ms),
        }
        if page.next_cursor:
            # A cursor half-way down the matching runs: the newest first page of the older half.
            middle = START + SPAN / 2
            newest = page.runs[0].row.started_at
            at = min(newest, middle.isoformat())
            deep = RunQuery(**{**case.query.__dict__, "cursor": encode_cursor(at, "ffffffffffffffff")})
            deep_ms, deep_page = timed(partial(store.search_runs, deep), repeat)
            row.update(deep_ms=statistics.median(deep_ms), deep_max_ms=max(deep_ms), deep_runs=len(deep_page.runs))
        row["workflow_names_ms"] = statistics.median(names_ms)
        slowest = max(row["first_ms"], row.get("deep_ms", 0.0)) + row["workflow_names_ms"]
        row["met"] = slowest <= TARGET_MS
        rows.append(row)
        print(f"  {case.name:<36} first {row['first_ms']:8.1f} ms  deep {row.get('deep_ms', float('nan')):8.1f} ms  "
              f"total {page.total}{'+' if page.total_capped else ''}", file=sys.stderr, flush=True)
    return rows


def machine() -> dict[str, Any]:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory = ""
    try:
        pages = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        memory = f"{pages / 2**30:.1f} GiB"
    except (ValueError, OSError):
        pass
    import sqlite3

    load = " ".join(f"{x:.1f}" for x in os.getloadavg()) if hasattr(os, "getloadavg") else "?"
    return {"os": platform.platform(), "cpu": f"{cpu}, {os.cpu_count()} logical cores", "memory": memory,
            "python": platform.python_version(), "sqlite": sqlite3.sqlite_version, "load average at start": load}


def markdown(report: dict[str, Any]) -> str:
    lines = [
        "## A million runs",
        "",
        f"Produced by `python -m benchmarks.runs_at_scale --runs {report['runs']}` on {report['date']}: "
        f"the debugger's run list (`GET /api/runs`: `search_runs` + `workflow_names`) with {report['runs']:,} runs "
        f"in the store, filled through `create_handlers` in batches. Median of {report['repeat']} warm repetitions "
        f"(slowest in parentheses), in ms; target: first page and deep page <= {TARGET_MS:.0f} ms server-side. "
        f"Counts stop at {COUNT_CAP:,} (`total_capped`, shown as \"10 000+\"). "
        "The deep page starts from a cursor half-way down the matching runs.",
        "",
        "Machine: " + ", ".join(f"{k} {v}" for k, v in report["machine"].items()) + ".",
        "",
    ]
    for name, result in report["stores"].items():
        lines += [
            f"### {name}",
            "",
            f"{result['detail']}; filled in {result['fill_s']:.0f} s ({report['runs'] / result['fill_s']:,.0f} runs/s); "
            f"`workflow_names` {result['rows'][0]['workflow_names_ms']:.1f} ms (included in the verdict).",
            "",
            "| query | total | first page | deep page | <= 200 ms |",
            "| --- | --- | --- | --- | --- |",
        ]
        for row in result["rows"]:
            total = f"{row['total']:,}" + ("+" if row["capped"] else "")
            deep = f"{row['deep_ms']:.1f} ({row['deep_max_ms']:.1f})" if "deep_ms" in row else "(one page)"
            lines.append(f"| {row['query']} | {total} | {row['first_ms']:.1f} ({row['first_max_ms']:.1f}) | {deep} | "
                         f"{'met' if row['met'] else 'NOT met'} |")
        lines.append("")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.runs_at_scale", description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=1_000_000)
    parser.add_argument("--stores", default="sqlite,postgres", help="sqlite, postgres or both")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--batch", type=int, default=10000, help="runs per create_handlers call (one transaction)")
    parser.add_argument("--json", type=Path, default=BENCHMARKS / "runs_at_scale_results.json")
    parser.add_argument("--results", type=Path, default=None, help="RESULTS.md to write the section into")
    parser.add_argument("--keep", type=Path, default=None, help="folder for the SQLite file (kept; default: temporary)")
    parser.add_argument("--postgres-url", default=None,
                        help="an empty PostgreSQL database to fill (default: a throwaway cluster)")
    parser.add_argument("--reuse", action="store_true",
                        help="time the store filled by an earlier run (SQLite: with --keep; PostgreSQL: with "
                             "--postgres-url), its fill time read from --json")
    args = parser.parse_args(argv)
    stores = [s.strip() for s in args.stores.split(",") if s.strip()]
    report: dict[str, Any] = {"runs": args.runs, "repeat": args.repeat, "machine": machine(), "stores": {},
                              "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")}
    with ExitStack() as stack:
        for name in stores:
            print(f"{name}: filling {args.runs:,} runs", file=sys.stderr, flush=True)
            if name == "sqlite":
                folder = args.keep or Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="runs-at-scale-")))
                path = Path(folder) / f"runs-{args.runs}.db"
                reuse = args.reuse and args.keep is not None and path.exists()
                if not reuse:
                    path.unlink(missing_ok=True)
                store: RunStore = SqliteStore(path)
                detail = f"SQLite {report['machine']['sqlite']}, one file, WAL"
            elif name == "postgres":
                sys.path.insert(0, str(BENCHMARKS.parent / "tests"))
                from support.postgres import throwaway_cluster  # noqa: PLC0415
                from workflows_server.store.postgres import PostgresStore  # noqa: PLC0415

                url = args.postgres_url or stack.enter_context(throwaway_cluster())
                store = PostgresStore(url)
                reuse = args.reuse and args.postgres_url is not None
                version = store._read("SHOW server_version")[0][0]  # noqa: SLF001
                detail = f"PostgreSQL {version} (Debian), a throwaway cluster on loopback (fsync off)"
            else:
                parser.error(f"unknown store {name!r}: use sqlite or postgres")
            title = {"sqlite": "SQLite", "postgres": "PostgreSQL"}[name]
            if reuse:
                # Opening it upgraded its schema if it was older (the upgrade is timed with the rest).
                seconds = json.loads(args.json.read_text())["stores"][title]["fill_s"]
                detail += (f"; the store filled by an earlier run, reused (`--reuse`), "
                           f"opened at schema version {getattr(store, 'migrated_from', '?')}")
            else:
                seconds = fill(store, args.runs, batch=args.batch)
            if name == "postgres" and not reuse:
                # Statistics, as autovacuum gathers them after such a load (the planner needs them).
                store._db.execute("ANALYZE")  # type: ignore[attr-defined]  # noqa: SLF001
            print(f"{name}: filled in {seconds:.1f} s; timing", file=sys.stderr, flush=True)
            report["stores"][title] = {
                "detail": detail, "fill_s": seconds, "rows": measure(store, args.runs, args.repeat),
            }
            store.close()
    if hasattr(os, "getloadavg"):
        report["machine"]["load average at end"] = " ".join(f"{x:.1f}" for x in os.getloadavg())
    args.json.write_text(json.dumps(report, indent=1) + "\n")
    section = markdown(report)
    print(section)
    if args.results is not None:
        write_section(args.results, RUNS_AT_SCALE, section)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
