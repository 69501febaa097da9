"""Real servers for the dashboard tests: a workflow worker exposing metrics, and Prometheus.

``metrics_workload`` runs ``workload.py`` as a child process that serves its metrics
the production way (``WORKFLOWS_EXPORTERS=prometheus``). ``prometheus`` runs Debian's
``prometheus`` binary on loopback with the shipped ``dashboards/prometheus/prometheus.yml``,
its ``workflows`` job pointed at the worker and its interval cut to one second. Both are
stopped by pid. Without the binary the tests are skipped, except under CI (``CI=true``),
where a missing install step must fail loudly.
"""

from __future__ import annotations

import math
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from support.processes import free_port

DASHBOARDS = Path(__file__).resolve().parents[1]
WORKLOAD = Path(__file__).with_name("workload.py")
STARTUP_DEADLINE_S = 60.0
QUERY_DEADLINE_S = 60.0

Series = dict[str, Any]


def require_binary(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        message = f"`{name}` is not installed: apt-get install -y --no-install-recommends prometheus"
        if os.environ.get("CI", "").lower() in ("1", "true"):
            pytest.fail(message)
        pytest.skip(message)
    return path


def stop_process(process: subprocess.Popen[bytes]) -> None:
    """Terminate by pid, then kill if it does not exit in time."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=15)


def poll(check: Callable[[], Any], deadline_s: float, describe: Callable[[], str]) -> Any:
    """Call ``check`` until it returns something truthy; fail with ``describe()`` after the deadline."""
    end = time.monotonic() + deadline_s
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > end:
            raise AssertionError(describe())
        time.sleep(0.2)


@pytest.fixture(scope="session")
def promtool() -> str:
    """Path of Prometheus's config checker (from the same Debian package)."""
    return require_binary("promtool")


@dataclass
class Workload:
    address: str
    process: subprocess.Popen[bytes]
    log_path: Path

    @property
    def metrics_url(self) -> str:
        return f"http://{self.address}/metrics"

    def scrape(self) -> str:
        return httpx.get(self.metrics_url, timeout=5.0).text

    def log_tail(self) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-30:])


@pytest.fixture(scope="module")
def metrics_workload() -> Iterator[Workload]:
    """Real workflows running in a loop in a child process, their metrics on a free port."""
    port = free_port()
    workdir = Path(tempfile.mkdtemp(prefix="workflows-workload-"))
    log_path = workdir / "workload.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    env.update(
        WORKFLOWS_EXPORTERS="prometheus",
        OTEL_EXPORTER_PROMETHEUS_HOST="127.0.0.1",
        OTEL_EXPORTER_PROMETHEUS_PORT=str(port),
    )
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [sys.executable, str(WORKLOAD)], env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
        )
    workload = Workload(f"127.0.0.1:{port}", process, log_path)

    def exposing_metrics() -> bool:
        if process.poll() is not None:
            raise AssertionError(f"workload.py exited with {process.returncode}:\n{workload.log_tail()}")
        try:
            return "workflow_runs_total{" in workload.scrape()
        except httpx.TransportError:
            return False

    try:
        poll(exposing_metrics, STARTUP_DEADLINE_S, lambda: f"no workflow metrics at {workload.metrics_url}")
        yield workload
    finally:
        stop_process(process)
        shutil.rmtree(workdir, ignore_errors=True)


@dataclass
class PrometheusServer:
    base_url: str
    process: subprocess.Popen[bytes]
    log_path: Path

    def query(self, expr: str) -> list[Series]:
        """Evaluate ``expr`` now through the HTTP API; the instant vector's series."""
        response = httpx.get(f"{self.base_url}/api/v1/query", params={"query": expr}, timeout=10.0)
        body = response.json()
        if body.get("status") != "success":
            raise AssertionError(f"Prometheus rejected {expr!r}: {body.get('errorType')}: {body.get('error')}")
        return list(body["data"]["result"])

    def label_values(self, label: str, match: str) -> list[str]:
        response = httpx.get(f"{self.base_url}/api/v1/label/{label}/values", params={"match[]": match}, timeout=10.0)
        response.raise_for_status()
        return list(response.json()["data"])

    def wait_for(self, expr: str, condition: Callable[[list[Series]], bool] | None = None) -> list[Series]:
        """Poll ``expr`` until it returns series with finite values (and ``condition`` holds)."""
        last: list[Series] = []

        def check() -> list[Series] | None:
            nonlocal last
            last = self.query(expr)
            ready = bool(last) and all(math.isfinite(float(s["value"][1])) for s in last)
            return last if ready and (condition is None or condition(last)) else None

        return poll(check, QUERY_DEADLINE_S, lambda: f"{expr!r} did not return usable data; last result: {last}")

    def log_tail(self) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-30:])


def scrape_config_for(target: str) -> dict[str, Any]:
    """The shipped prometheus.yml, with its workflows job pointed at ``target`` every second."""
    config = yaml.safe_load((DASHBOARDS / "prometheus" / "prometheus.yml").read_text())
    jobs = [job for job in config["scrape_configs"] if job["job_name"] == "workflows"]
    assert jobs, "dashboards/prometheus/prometheus.yml lost its `workflows` scrape job"
    jobs[0]["static_configs"] = [{"targets": [target]}]
    config["scrape_configs"] = jobs
    config["global"].update(scrape_interval="1s", evaluation_interval="1s")
    return config


@pytest.fixture(scope="module")
def prometheus(metrics_workload: Workload) -> Iterator[PrometheusServer]:
    """A real Prometheus scraping the workload every second, on a loopback port of its own."""
    binary = require_binary("prometheus")
    workdir = Path(tempfile.mkdtemp(prefix="prometheus-test-"))
    config_path = workdir / "prometheus.yml"
    config_path.write_text(yaml.safe_dump(scrape_config_for(metrics_workload.address)))
    port = free_port()
    log_path = workdir / "prometheus.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [
                binary,
                f"--config.file={config_path}",
                f"--storage.tsdb.path={workdir / 'data'}",
                f"--web.listen-address=127.0.0.1:{port}",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    server = PrometheusServer(f"http://127.0.0.1:{port}", process, log_path)

    def ready() -> bool:
        if process.poll() is not None:
            raise AssertionError(f"prometheus exited with {process.returncode}:\n{server.log_tail()}")
        try:
            return httpx.get(f"{server.base_url}/-/ready", timeout=2.0).status_code == 200
        except httpx.TransportError:
            return False

    try:
        poll(ready, STARTUP_DEADLINE_S, lambda: f"prometheus did not become ready:\n{server.log_tail()}")
        yield server
    finally:
        stop_process(process)
        shutil.rmtree(workdir, ignore_errors=True)
