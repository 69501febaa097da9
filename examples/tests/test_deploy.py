"""``deploy/``: the Docker Compose files are wired together, and the replicas they describe work.

No container runtime runs in CI, so the compose file is checked for its wiring (each
setting is one the server knows, files it mounts exist, ports agree with the collector
config), and its server configuration is run for real: two replicas of
``examples/server_app.py`` with the compose file's settings, on the test PostgreSQL.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import yaml

from support.processes import free_port, wait_until_answering
from workflows_server.settings import SETTINGS

EXAMPLES = Path(__file__).resolve().parents[1]
DEPLOY = EXAMPLES / "deploy"
REPO = EXAMPLES.parent


def _compose() -> dict:
    return yaml.safe_load((DEPLOY / "docker-compose.yml").read_text())


def test_the_compose_file_is_wired_to_files_and_settings_that_exist() -> None:
    services = _compose()["services"]
    assert {"postgres", "server", "nginx", "otel-collector", "phoenix"} <= set(services)
    server = services["server"]
    known = {s.env for s in SETTINGS}
    env = server["environment"]
    assert {k for k in env if k.startswith("WORKFLOWS_SERVER_")} <= known
    assert env["WORKFLOWS_SERVER_STORE"].startswith("postgresql://workflows:workflows@postgres:5432/workflows")
    assert server["deploy"]["replicas"] >= 2
    assert (REPO / server["build"]["dockerfile"]).is_file()
    collector = services["otel-collector"]
    source = collector["volumes"][0].split(":")[0]
    config = (DEPLOY / source).resolve()
    assert config == (REPO / "dashboards/otel-collector/collector.yaml").resolve() and config.is_file()
    receivers = yaml.safe_load(config.read_text())["receivers"]["otlp"]["protocols"]
    assert env["OTEL_EXPORTER_OTLP_ENDPOINT"].endswith(":" + receivers["http"]["endpoint"].rsplit(":", 1)[1])
    assert collector["environment"]["PHOENIX_ENDPOINT"] == "http://phoenix:6006"
    assert "server server:8080;" in (DEPLOY / "nginx.conf").read_text()
    dockerfile = (DEPLOY / "Dockerfile").read_text()
    assert "plugins/server[postgres]" in dockerfile and "examples/server_app.py" in dockerfile


def test_two_replicas_with_the_compose_settings_serve_the_app_on_one_postgres(
    fresh_postgres_db: str, tmp_path: Path
) -> None:
    settings = {k: str(v) for k, v in _compose()["services"]["server"]["environment"].items()
                if k.startswith("WORKFLOWS_SERVER_") and k not in ("WORKFLOWS_SERVER_STORE", "WORKFLOWS_SERVER_HOST",
                                                                  "WORKFLOWS_SERVER_PORT")}
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "WORKFLOWS_", "OTEL_"))}
    env.update(settings, WORKFLOWS_SERVER_STORE=fresh_postgres_db, WORKFLOWS_SERVER_LOG_LEVEL="warning")
    processes, urls = [], []
    try:
        for _ in range(2):
            port = free_port()
            processes.append(subprocess.Popen(
                [sys.executable, "-m", "workflows_server.cli", str(EXAMPLES / "server_app.py"), "--port", str(port)],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, cwd=tmp_path,
            ))
            urls.append(f"http://127.0.0.1:{port}")
        deadline = time.monotonic() + 60
        for url, process in zip(urls, processes):
            wait_until_answering(process, url + "/health", timeout=deadline - time.monotonic(), what="a replica")
        started = httpx.post(f"{urls[0]}/workflows/weather/run-nowait",
                             json={"start_event": {"question": "Weather in Paris?"}}, timeout=30).json()
        # Asked for through the other replica, wherever the run is.
        while (data := httpx.get(f"{urls[1]}/handlers/{started['handler_id']}", timeout=10).json())["status"] == "running":
            assert time.monotonic() < deadline + 60, "the run never finished"
            time.sleep(0.05)
        assert data["status"] == "completed", data
        assert "Paris" in str(data["result"]["value"])
        assert all(httpx.get(u + "/api/replica", timeout=5).json()["shared"] for u in urls)
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.wait(timeout=20)
