"""Soak: three replicas on one PostgreSQL, killed (SIGKILL) and restarted at random while runs flow.

Bounded in time (about a minute) and seeded, so a failure replays the same schedule.
Marked ``soak`` (``-m "not soak"`` leaves it out); the default test command runs it. At
the end every run has completed exactly once (one conclusion in its journal, one final
event in its stream, contiguous sequence numbers) and the store holds no orphaned claim.
"""

from __future__ import annotations

import json
import random
import time
from collections import Counter
from pathlib import Path
from typing import Callable

import httpx
import psycopg
import pytest
from server_helpers import ServerProcess, wait_for

pytestmark = pytest.mark.soak

SEED = 12
FLOW_SECONDS = 25.0
KILLS = 4
"""The flow goes on past FLOW_SECONDS until this many replicas were killed (a slow machine restarts them
slowly), and never past 3 * FLOW_SECONDS."""
REPLICAS = 3


def _post(replicas: list[ServerProcess], rng: random.Random, path: str, body: dict) -> httpx.Response | None:
    """POST to a random live replica; another one if it dies under the request."""
    for server in rng.sample(replicas, len(replicas)):
        try:
            return httpx.post(server.url + path, json=body, timeout=15)
        except httpx.TransportError:
            continue
    return None


def test_replicas_killed_and_restarted_at_random_lose_no_run_and_run_none_twice(
    make_replica: Callable[..., ServerProcess], log_file: Path, fresh_postgres_db: str
) -> None:
    rng = random.Random(SEED)
    settings = {"WORKFLOWS_SERVER_LEASE_SECONDS": "1.5", "WORKFLOWS_SERVER_MAX_RUNS": "15"}
    replicas = [make_replica(**settings) for _ in range(REPLICAS)]
    runs: dict[str, str] = {}  # handler id -> workflow
    answered: set[str] = set()
    kills = 0
    started = time.monotonic()
    next_kill = started + rng.uniform(2, 4)
    index = 0
    while (time.monotonic() - started < FLOW_SECONDS or kills < KILLS) and time.monotonic() - started < 3 * FLOW_SECONDS:
        # Runs are submitted with their own ids: a request lost with its replica is sent again elsewhere.
        for _ in range(2):
            workflow = "ask" if rng.random() < 0.2 else "io"
            handler_id = f"soak-{index}"
            index += 1
            body = {"handler_id": handler_id, "start_event": {"tag": handler_id, "ms": rng.randint(5, 150)}}
            response = _post(replicas, rng, f"/workflows/{workflow}/run-nowait", body)
            assert response is not None and response.status_code in (200, 409), response and response.text
            runs[handler_id] = workflow
        for handler_id in [h for h, w in runs.items() if w == "ask" and h not in answered]:
            if rng.random() < 0.3:
                response = _post(replicas, rng, f"/events/{handler_id}", {
                    "event": {"type": "HumanResponseEvent", "value": {"response": "yes"}}})
                if response is not None and response.status_code == 200:
                    answered.add(handler_id)
        if time.monotonic() >= next_kill:
            victim = rng.randrange(len(replicas))
            replicas[victim].kill()
            kills += 1
            replicas[victim] = make_replica(**settings)
            next_kill = time.monotonic() + rng.uniform(2, 5)
        time.sleep(0.1)  # the flow's pace, not a wait for a condition

    def unanswered() -> list[str]:
        return [h for h, w in runs.items() if w == "ask" and h not in answered]

    def all_done() -> bool:
        for handler_id in unanswered():
            response = _post(replicas, rng, f"/events/{handler_id}", {
                "event": {"type": "HumanResponseEvent", "value": {"response": "yes"}}})
            if response is not None and response.status_code == 200:
                answered.add(handler_id)
        with psycopg.connect(fresh_postgres_db) as db:
            (running,) = db.execute("SELECT count(*) FROM handlers WHERE status = 'running'").fetchone()  # type: ignore[misc]
        return running == 0

    wait_for(all_done, "every run to finish", timeout=60)
    assert kills >= KILLS
    with psycopg.connect(fresh_postgres_db) as db:
        rows = {h: (s, r) for h, s, r in db.execute("SELECT handler_id, status, result FROM handlers").fetchall()}
        errors = dict(db.execute("SELECT handler_id, error FROM handlers WHERE error IS NOT NULL").fetchall())
        conclusions = Counter(
            h for (h,) in db.execute("SELECT handler_id FROM journal WHERE record::jsonb ->> 'kind' = 'RunConcluded'")
        )
        terminal = Counter(h for (h,) in db.execute("SELECT handler_id FROM stream WHERE terminal"))
        sequences: dict[str, list[int]] = {}
        for h, sequence in db.execute("SELECT handler_id, sequence FROM stream ORDER BY handler_id, sequence"):
            sequences.setdefault(h, []).append(sequence)
        (claimed,) = db.execute("SELECT count(*) FROM handlers WHERE owner IS NOT NULL OR lease_until IS NOT NULL").fetchone()  # type: ignore[misc]
        (mail,) = db.execute(
            "SELECT count(*) FROM inbox i JOIN handlers h USING (handler_id) WHERE h.status = 'running'"
        ).fetchone()  # type: ignore[misc]
    assert set(rows) == set(runs), "every submitted run is in the store, once"
    for handler_id, workflow in runs.items():
        status, result = rows[handler_id]
        assert status == "completed", (handler_id, status, errors.get(handler_id))
        expected = f"{handler_id}:ok" if workflow == "io" else f"{handler_id}:yes"
        assert json.loads(result)["value"]["result"] == expected
        assert conclusions[handler_id] == 1, f"{handler_id} concluded {conclusions[handler_id]} times"
        assert terminal[handler_id] == 1
        assert sequences[handler_id] == list(range(len(sequences[handler_id])))
    assert claimed == 0 and mail == 0, "orphaned claims or undelivered mail left in the store"
