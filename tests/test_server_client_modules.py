"""``workflows.server`` and ``workflows.client``: the import paths LlamaIndex Workflows 2.x code
(the seed's client examples among it) uses for the HTTP server and its client.

Both re-export optional packages, as the reference's modules do: the server plugin
(``otel-workflows-server``) and ``llama-agents-client``, which ``scripts/setup.sh --test``
installs. Importing either warns that the path is deprecated.
"""

from __future__ import annotations

import asyncio
import importlib
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

pytest.importorskip("workflows_server")
pytest.importorskip("llama_agents.client")

APP = """
import asyncio
import sys

from workflows import Workflow, step
from workflows.events import StartEvent, StopEvent
from workflows.server import WorkflowServer


class Numbers(StartEvent):
    a: int
    b: int


class Total(StopEvent):
    total: int


class Adder(Workflow):
    @step
    async def add(self, ev: Numbers) -> Total:
        return Total(total=ev.a + ev.b)


async def main() -> None:
    server = WorkflowServer()
    server.add_workflow("adder", Adder(timeout=30))
    await server.serve("127.0.0.1", int(sys.argv[1]))


asyncio.run(main())
"""


def fresh_import(name: str, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delitem(sys.modules, name, raising=False)
    with pytest.warns(DeprecationWarning, match=f"'{name}' is deprecated"):
        return importlib.import_module(name)


def test_workflows_server_is_the_server_plugins_workflow_server(monkeypatch: pytest.MonkeyPatch):
    import workflows_server

    assert fresh_import("workflows.server", monkeypatch).WorkflowServer is workflows_server.WorkflowServer


def test_workflows_client_is_llama_agents_workflow_client(monkeypatch: pytest.MonkeyPatch):
    from llama_agents.client import WorkflowClient

    assert fresh_import("workflows.client", monkeypatch).WorkflowClient is WorkflowClient


def test_workflows_server_without_the_plugin_says_what_to_install(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setitem(sys.modules, "workflows_server", None)  # as if not installed
    monkeypatch.delitem(sys.modules, "workflows.server", raising=False)
    with pytest.warns(DeprecationWarning), pytest.raises(ImportError, match="pip install otel-workflows-server"):
        importlib.import_module("workflows.server")


def test_a_server_from_workflows_server_runs_a_workflow_for_the_client_from_workflows_client(tmp_path: Path):
    from support import processes

    port = processes.free_port()
    (tmp_path / "app.py").write_text(APP)
    server = subprocess.Popen(
        [sys.executable, "-W", "ignore::DeprecationWarning", "app.py", str(port)],
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        processes.wait_until_answering(server, f"http://127.0.0.1:{port}/health", timeout=60, what="the server")

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            from workflows.client import WorkflowClient
        from workflows.events import StartEvent

        class Numbers(StartEvent):
            a: int
            b: int

        async def go() -> None:
            client = WorkflowClient(base_url=f"http://127.0.0.1:{port}")
            assert (await client.list_workflows()).workflows == ["adder"]
            done = await client.run_workflow("adder", start_event=Numbers(a=1, b=2))
            assert done.status == "completed" and done.result is not None
            assert done.result.type == "Total" and done.result.value == {"total": 3}

        asyncio.run(asyncio.wait_for(go(), timeout=60))
    finally:
        processes.stop(server)
