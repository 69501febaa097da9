"""workflows-server serves on uvloop where it is installed; WORKFLOWS_SERVER_EVENT_LOOP chooses."""

from __future__ import annotations

import asyncio
import sys

import pytest

from workflows_server.cli import run_loop
from workflows_server.settings import ServerSettings


def _loop_module(choice: str) -> str:
    seen: list[str] = []

    async def main() -> None:
        seen.append(type(asyncio.get_running_loop()).__module__)

    run_loop(main(), choice)  # type: ignore[arg-type]
    return seen[0]


def test_the_server_runs_on_uvloop_unless_asyncio_is_chosen() -> None:
    pytest.importorskip("uvloop")
    assert _loop_module("auto").startswith("uvloop")
    assert _loop_module("uvloop").startswith("uvloop")
    assert _loop_module("asyncio").startswith("asyncio")


def test_auto_falls_back_to_asyncio_and_uvloop_without_it_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "uvloop", None)  # import uvloop raises ImportError
    assert _loop_module("auto").startswith("asyncio")
    with pytest.raises(SystemExit, match="pip install uvloop"):
        _loop_module("uvloop")


def test_the_event_loop_setting_is_read_from_its_variable_and_refuses_unknown_loops() -> None:
    assert ServerSettings().event_loop == "auto"
    assert ServerSettings.from_env({"WORKFLOWS_SERVER_EVENT_LOOP": " AsyncIO "}).event_loop == "asyncio"
    with pytest.raises(ValueError, match="WORKFLOWS_SERVER_EVENT_LOOP='trio'.*auto, uvloop, asyncio"):
        ServerSettings.from_env({"WORKFLOWS_SERVER_EVENT_LOOP": "trio"})
