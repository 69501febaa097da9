"""``server_app.py``: the agent served by ``workflows-server`` in one command, driven by llama-agents-client."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

from llama_agents.client import WorkflowClient
from support import processes

from workflows.events import StartEvent

EXAMPLES = Path(__file__).resolve().parents[1]


def test_the_served_agent_answers_over_http(tmp_path: Path) -> None:
    port = processes.free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "WORKFLOWS_", "OTEL_"))}
    process = subprocess.Popen(
        [sys.executable, "-m", "workflows_server.cli", str(EXAMPLES / "server_app.py"), "--port", str(port),
         "--store", f"sqlite:///{tmp_path / 'runs.db'}"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env, cwd=tmp_path,
    )
    try:
        processes.wait_until_answering(
            process, f"http://127.0.0.1:{port}/health", timeout=30, what="the example server",
            # Its output, once it has exited (reading a running server's pipe would block).
            log=lambda: process.stdout.read().decode() if process.stdout and process.poll() is not None else "",
        )

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
        processes.stop(process)
