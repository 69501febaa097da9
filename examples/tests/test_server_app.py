"""``server_app.py``: the agent served by ``workflows-server`` in one command, driven by llama-agents-client."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
from llama_agents.client import WorkflowClient

from workflows.events import StartEvent

EXAMPLES = Path(__file__).resolve().parents[1]


def test_the_served_agent_answers_over_http(tmp_path: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "WORKFLOWS_", "OTEL_"))}
    process = subprocess.Popen(
        [sys.executable, "-m", "workflows_server.cli", str(EXAMPLES / "server_app.py"), "--port", str(port),
         "--store", f"sqlite:///{tmp_path / 'runs.db'}"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env, cwd=tmp_path,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            assert process.poll() is None, process.stdout.read().decode() if process.stdout else ""
            try:
                if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "the example server never answered /health"
            time.sleep(0.05)

        async def ask() -> str:
            client = WorkflowClient(base_url=f"http://127.0.0.1:{port}")
            done = await client.run_workflow(
                "weather", start_event=StartEvent(question="What's the weather like in Paris and in Tokyo right now?")
            )
            assert done.status == "completed" and done.result is not None
            return str(done.result.value["result"])

        answer = asyncio.run(asyncio.wait_for(ask(), timeout=60))
        assert "Paris" in answer and "Tokyo" in answer
    finally:
        process.terminate()
        process.wait(timeout=10)
