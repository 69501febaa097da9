"""Faults an operator meets, with real server processes: a second server on one file, a handler id
reused, duplicate answers and cancels of finished runs, human waits by InputRequiredEvent, and a full
disk under the store (a tmpfs the test mounts; skipped where it cannot).

Each test is bounded in time and checks that no step ran twice, no run is left ``running``, no
request hung (every request has a timeout), and ``/health`` told the truth.
"""

from __future__ import annotations

import concurrent.futures
import os
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Iterator

import httpx
import pytest
from server_helpers import APPS, ServerProcess, lines, wait_for

REQUEST_TIMEOUT = 15.0
"""No request may take longer: a request that hangs fails the test."""


def _post(url: str, body: dict | None = None) -> httpx.Response:
    return httpx.post(url, json=body or {}, timeout=REQUEST_TIMEOUT)


def _status(server: ServerProcess, handler_id: str) -> str:
    return str(httpx.get(f"{server.url}/handlers/{handler_id}", timeout=REQUEST_TIMEOUT).json()["status"])


def _health(server: ServerProcess) -> int:
    return httpx.get(f"{server.url}/health", timeout=REQUEST_TIMEOUT).status_code


# ---------------------------------------------------------------------- one owner per store file
def test_a_second_server_on_the_same_file_refuses_to_start_and_no_step_runs_twice(make_server, log_file, tmp_path) -> None:
    first = make_server().start(WORKFLOWS_TEST_HANG="1")
    ids = [_post(f"{first.url}/workflows/two_steps/run-nowait", {"start_event": {"tag": f"o{i}"}}).json()["handler_id"]
           for i in range(5)]
    wait_for(lambda: sum(line.startswith("slow-begin:") for line in lines(log_file)) == 5, "every slow step to begin")

    # A second server on the same file, on another port: it must exit before continuing anything.
    output = tmp_path / "second.txt"
    with open(output, "wb") as out:
        second = subprocess.Popen(
            [sys.executable, "-m", "workflows_server.cli", str(APPS / "durable_app.py"), "--port", "0",
             "--store", first.store],
            stdout=out, stderr=subprocess.STDOUT, env={**os.environ, "WORKFLOWS_TEST_LOG": str(log_file)},
        )
        assert second.wait(timeout=30) != 0
    text = output.read_text()
    assert "in use by another server process" in text and f"pid {first.pid}" in text, text
    assert "PostgreSQL" in text, "the refusal says how to run several replicas"
    counts = Counter(lines(log_file))
    assert all(counts[f"slow-begin:o{i}:0"] == 1 and counts[f"slow-begin:o{i}:1"] == 0 for i in range(5)), counts
    assert _health(first) == 200 and all(_status(first, h) == "running" for h in ids)

    # Once the owner is gone (even by kill -9), the next server owns the file and finishes the runs once.
    first.kill()
    again = make_server(store=first.store).start()
    wait_for(lambda: all(_status(again, h) == "completed" for h in ids), "every run to complete")
    counts = Counter(lines(log_file))
    assert all(counts[f"slow-begin:o{i}:1"] == 1 and counts[f"slow-done:o{i}"] == 1 for i in range(5)), counts


# ---------------------------------------------------------------------- ids, answers, cancels
def test_a_handler_id_names_one_workflow_and_finished_runs_refuse_cancels_and_answers(make_server, log_file) -> None:
    server = make_server().start()
    done = _post(f"{server.url}/workflows/two_steps/run", {"handler_id": "x", "start_event": {"tag": "x"}})
    assert done.status_code == 200, done.text
    reused = _post(f"{server.url}/workflows/ask/run-nowait", {"handler_id": "x", "start_event": {"tag": "y"}})
    assert reused.status_code == 409 and "'two_steps'" in reused.text and "'ask'" in reused.text, reused.text
    row = httpx.get(f"{server.url}/handlers/x", timeout=REQUEST_TIMEOUT).json()
    assert row["workflow_name"] == "two_steps" and row["status"] == "completed"
    assert "prepare:y" not in lines(log_file), "the other workflow's steps never ran"
    again = _post(f"{server.url}/workflows/two_steps/run", {"handler_id": "x", "start_event": {"tag": "x2"}})
    assert again.status_code == 200 and again.json()["status"] == "completed"

    cancel = _post(f"{server.url}/handlers/x/cancel")
    assert cancel.status_code == 409 and "completed" in cancel.text, cancel.text
    assert _status(server, "x") == "completed"

    # Many answers to one waiting run at once: exactly one is taken, the others get 409.
    handler_id = _post(f"{server.url}/workflows/ask/run-nowait", {"start_event": {"tag": "d"}}).json()["handler_id"]
    wait_for(lambda: server.replica()["live"] == [], "the waiting run to be let go of")
    answer = {"event": {"type": "HumanResponseEvent", "value": {"response": "yes"}}}
    with concurrent.futures.ThreadPoolExecutor(max_workers=10) as pool:
        codes = Counter(pool.map(lambda _: _post(f"{server.url}/events/{handler_id}", answer).status_code, range(30)))
    wait_for(lambda: _status(server, handler_id) == "completed", "the answered run to complete")
    # Exactly one answer is taken; every other one is refused, and the run used that one.
    assert codes == Counter({200: 1, 409: 29}), codes
    assert Counter(lines(log_file))["answered:d:yes"] == 1


# ---------------------------------------------------------------------- human waits by InputRequiredEvent
def test_a_run_that_returned_an_input_required_event_waits_in_the_store_alone(make_server, log_file) -> None:
    server = make_server().start()
    ids = {f"r{i}": _post(f"{server.url}/workflows/ask_by_return/run-nowait", {"start_event": {"tag": f"r{i}"}})
           .json()["handler_id"] for i in range(4)}

    def waiting() -> set[str]:
        runs = httpx.get(f"{server.url}/api/runs", params={"status": "waiting"}, timeout=REQUEST_TIMEOUT).json()["runs"]
        return {r["handler_id"] for r in runs}

    wait_for(lambda: waiting() == set(ids.values()) and server.replica()["live"] == [], "the runs to wait in the store")
    page = httpx.get(f"{server.url}/api/runs/{ids['r0']}", timeout=REQUEST_TIMEOUT).json()
    assert page["status"] == "waiting"
    assert page["question"] is not None and page["question"]["value"].get("prefix") == "ok r0?", page["question"]
    assert page["answer_form"]["type"] == "HumanResponseEvent"
    assert any(w["ended_at"] is None and w["event_type"] == "HumanResponseEvent" for w in page["waits"])

    server.kill()
    again = make_server(store=server.store).start()
    assert again.replica()["live"] == [], "a waiting run is not brought back into memory by a restart"
    for tag, handler_id in ids.items():
        sent = _post(f"{again.url}/events/{handler_id}",
                     {"event": {"type": "HumanResponseEvent", "value": {"response": f"ok-{tag}"}}})
        assert sent.status_code == 200, sent.text
    wait_for(lambda: all(_status(again, h) == "completed" for h in ids.values()), "every answered run to complete")
    late = _post(f"{again.url}/events/{ids['r0']}", {"event": {"type": "HumanResponseEvent", "value": {"response": "no"}}})
    assert late.status_code == 409
    counts = Counter(lines(log_file))
    for tag in ids:
        assert counts[f"ask:{tag}"] == 1 and counts[f"answer:{tag}:ok-{tag}"] == 1, counts


# ---------------------------------------------------------------------- the store's disk fails
@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 16 MB tmpfs mounted for the test (the store's disk), unmounted after it.

    Room for the store's first runs with their WAL checkpointed beside it (the file and
    its WAL both hold pages for a while), before the test fills the rest."""
    if not shutil.which("mount") or os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root and mount(8): the full-disk tests cannot run here")
    folder = tmp_path / "disk"
    folder.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(folder)], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({mounted.stderr.decode().strip()}): the full-disk tests cannot run")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=False)


def _fill(folder: Path) -> Path:
    filler = folder / "filler"
    # Unbuffered: a buffered file keeps what the full disk refused and raises again when closed.
    with open(filler, "wb", buffering=0) as out:
        try:
            while True:
                out.write(b"\0" * 65536)
        except OSError:
            pass
    return filler


def _chain(server: ServerProcess, tag: str) -> httpx.Response:
    return _post(f"{server.url}/workflows/chain/run-nowait", {"start_event": {"tag": tag}})


def _check_steps_once(log_file: Path, server: ServerProcess, ids: list[str]) -> None:
    # A step attempt never runs twice, and a step whose end was written never runs again.
    counts = Counter(lines(log_file))
    assert all(n == 1 for n in counts.values()), [line for line, n in counts.items() if n > 1]
    for handler_id in ids:
        journal = httpx.get(f"{server.url}/api/handlers/{handler_id}/journal", timeout=REQUEST_TIMEOUT).json()["entries"]
        ends = Counter(e["record"]["step"] for e in journal
                       if e["record"]["kind"] == "StepFinished" and e["record"]["outcome"] == "completed")
        assert all(n == 1 for n in ends.values()), ends


def test_a_full_disk_pauses_runs_answers_503_and_everything_finishes_once_space_is_back(
    make_server, log_file, small_disk
) -> None:
    server = ServerProcess(app=APPS / "faults_app.py", store=f"sqlite:///{small_disk / 'runs.db'}", log=log_file)
    server.start(WORKFLOWS_SERVER_LOG_LEVEL="warning")
    try:
        ids = [_chain(server, f"f{i}").json()["handler_id"] for i in range(5)]
        filler = _fill(small_disk)
        answers = Counter()
        for i in range(40):  # runs started while the disk is full: each is written or refused, never lost
            response = _chain(server, f"g{i}")
            answers[response.status_code] += 1
            if response.status_code == 200:
                ids.append(response.json()["handler_id"])
            else:
                assert response.status_code == 503 and "cannot" in response.json()["detail"], response.text
        assert answers[503] > 0, answers
        wait_for(lambda: _health(server) == 503, "/health to say the store cannot write")
        health = httpx.get(f"{server.url}/health", timeout=REQUEST_TIMEOUT).json()
        assert "full" in health["error"], health
        blocked = _post(f"{server.url}/workflows/chain/run", {"start_event": {"tag": "w"}})
        assert blocked.status_code == 503, blocked.text  # answered at once, not when space comes back

        filler.unlink()
        wait_for(lambda: _health(server) == 200, "/health to recover by itself", timeout=30)
        wait_for(lambda: all(_status(server, h) == "completed" for h in ids), "every accepted run to complete", timeout=30)
        _check_steps_once(log_file, server, ids)
        running = httpx.get(f"{server.url}/handlers", params={"status": "running"}, timeout=REQUEST_TIMEOUT).json()
        assert running["handlers"] == []
    finally:
        server.stop()


def test_a_read_only_store_file_answers_503_and_recovers_once_writable_without_a_restart(log_file, tmp_path) -> None:
    if not shutil.which("setpriv") or os.geteuid() != 0:
        pytest.skip("needs root and setpriv(1): the server runs as root without the right to ignore file modes")
    store = tmp_path / "store"
    store.mkdir()
    first = ServerProcess(app=APPS / "faults_app.py", store=f"sqlite:///{store / 'runs.db'}", log=log_file).start()
    try:
        done = _post(f"{first.url}/workflows/chain/run", {"start_event": {"tag": "before"}})
        assert done.status_code == 200, done.text
    finally:
        first.stop()
    files = [path for path in store.iterdir() if path.name.startswith("runs.db") and path.suffix != ".owner"]
    for path in files:
        path.chmod(0o444)
    # Root ignores file modes; without CAP_DAC_OVERRIDE it is refused writes as anyone would be.
    server = ServerProcess(
        app=APPS / "faults_app.py", store=f"sqlite:///{store / 'runs.db'}", log=log_file,
        launcher=("setpriv", "--bounding-set", "-dac_override,-dac_read_search", "--"), ready=(200, 503),
    )
    server.start()
    try:
        refused = _chain(server, "ro")
        assert refused.status_code == 503 and "readonly" in refused.json()["detail"], refused.text
        wait_for(lambda: _health(server) == 503, "/health to say the store cannot write")
        assert "readonly" in httpx.get(f"{server.url}/health", timeout=REQUEST_TIMEOUT).json()["error"]
        for path in files:
            path.chmod(0o644)
        wait_for(lambda: _health(server) == 200, "/health to recover by itself", timeout=30)
        after = _post(f"{server.url}/workflows/chain/run", {"start_event": {"tag": "after"}})
        assert after.status_code == 200 and after.json()["status"] == "completed", after.text
        running = httpx.get(f"{server.url}/handlers", params={"status": "running"}, timeout=REQUEST_TIMEOUT).json()
        assert running["handlers"] == []
    finally:
        server.stop()


def test_sigterm_exits_in_time_while_the_disk_is_full_and_the_next_server_finishes(make_server, log_file, small_disk) -> None:
    store = f"sqlite:///{small_disk / 'runs.db'}"
    server = make_server("faults_app.py", store=store).start()  # stopped by the fixture if the test fails
    ids = [_chain(server, f"s{i}").json()["handler_id"] for i in range(5)]
    filler = _fill(small_disk)
    # Until the full disk refuses a run: SQLite writes on into the room its WAL already has.
    for i in range(40):
        response = _chain(server, f"t{i}")
        if response.status_code != 200:
            assert response.status_code == 503, response.text
            break
        ids.append(response.json()["handler_id"])
    wait_for(lambda: _health(server) == 503, "/health to say the store cannot write")
    started = time.monotonic()
    assert server.process is not None
    server.process.send_signal(signal.SIGTERM)
    server.process.wait(timeout=15)
    assert time.monotonic() - started <= 10, "SIGTERM took longer than the shutdown grace"

    filler.unlink()
    again = make_server("faults_app.py", store=store).start()
    wait_for(lambda: all(_status(again, h) == "completed" for h in ids), "every accepted run to complete", timeout=30)
    _check_steps_once(log_file, again, ids)


# ---------------------------------------------------------------------- PostgreSQL lost
def test_a_lost_database_answers_503_and_the_server_reconnects_by_itself(make_replica, fresh_postgres_db, log_file) -> None:
    import psycopg

    server = make_replica()
    done = _post(f"{server.url}/workflows/io/run", {"start_event": {"tag": "before", "ms": 5}})
    assert done.status_code == 200 and done.json()["status"] == "completed", done.text
    # A run in flight through the outage: its first step is still sleeping when the database goes.
    flying = _post(f"{server.url}/workflows/io/run-nowait", {"start_event": {"tag": "flying", "ms": 1500}})
    assert flying.status_code == 200, flying.text
    name = fresh_postgres_db.rsplit("/", 1)[1]
    admin = fresh_postgres_db.rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin, autocommit=True) as db:
        # The database goes away for the server: its connections are cut, and new ones refused.
        db.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
        db.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (name,))
        try:
            wait_for(lambda: _health(server) == 503, "/health to say the store cannot be used", timeout=30)
            refused = _post(f"{server.url}/workflows/io/run-nowait", {"start_event": {"tag": "during", "ms": 5}})
            assert refused.status_code == 503, refused.text
        finally:
            db.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
    wait_for(lambda: _health(server) == 200, "/health to recover without a restart", timeout=30)
    after = _post(f"{server.url}/workflows/io/run", {"start_event": {"tag": "after", "ms": 5}})
    assert after.status_code == 200 and after.json()["status"] == "completed", after.text
    flying_id = flying.json()["handler_id"]
    wait_for(lambda: _status(server, flying_id) == "completed", "the run in flight to finish once the store is back")
    running = httpx.get(f"{server.url}/handlers", params={"status": "running"}, timeout=REQUEST_TIMEOUT).json()
    assert running["handlers"] == []
    for tag in ("after", "flying"):  # each run's last step ran once
        assert sum(line.startswith(f"io-done:{tag}:") for line in lines(log_file)) == 1, tag
