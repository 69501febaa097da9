"""The script that takes the screenshot of docs/phoenix.md still works, and Phoenix's own
UI (not only its REST API) shows the example agent's trace as a tree."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import pytest
from support.phoenix import PhoenixServer, unique_project_name

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "screenshot.py"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def load_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("phoenix_screenshot", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_screenshot_shows_the_agent_trace_in_phoenix_ui(phoenix_server: PhoenixServer, tmp_path: Path) -> None:
    script = load_script()
    if not Path(script.CHROMIUM).exists():
        pytest.skip(f"{script.CHROMIUM} is not installed (apt-get install chromium)")

    trace_id = script.record_agent_trace(phoenix_server.base_url, unique_project_name("screenshot"))
    out = tmp_path / "trace.png"
    page_text = script.capture(phoenix_server.base_url, trace_id, out)

    assert out.read_bytes().startswith(PNG_SIGNATURE)
    for shown in ("WeatherAgent.run", "WeatherAgent.call_llm", "ChatCompletion", "get_weather", "state.edit"):
        assert shown in page_text
    assert "What's the weather like in Paris and in Tokyo right now?" in page_text
