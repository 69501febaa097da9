"""The main job's agent (``agent.py``), served over HTTP with durable runs.

What it shows:
- ``WorkflowServer`` + ``add_workflow``: the weather agent behind the HTTP API that
  llama-agents-client speaks (run, run-nowait, stream, send events, cancel);
- durable runs: every run is kept in ``./.workflows/runs.db`` (SQLite) as it goes;
  kill the server at any moment, start it again, and the runs that were going on
  continue where their journal ends.

By default the agent talks to the scripted model of ``fake_model.py``, started on
127.0.0.1 with the server, so it needs no key and no network; with ``OPENAI_API_KEY``
set it talks to OpenAI (``AGENT_MODEL``, default gpt-4o-mini).

Run:
    .venv/bin/workflows-server examples/server_app.py              # http://127.0.0.1:8080
    curl -s -X POST localhost:8080/workflows/weather/run \\
         -H 'content-type: application/json' \\
         -d '{"start_event": {"question": "Weather in Paris?"}}'

Needs: pip install "otel-workflows[examples]" -e plugins/server
"""

from __future__ import annotations

import atexit
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from agent import WeatherAgent  # noqa: E402
from fake_model import MODEL as OFFLINE_MODEL  # noqa: E402
from fake_model import fake_model_server  # noqa: E402
from openai import AsyncOpenAI  # noqa: E402

from workflows_server import WorkflowServer  # noqa: E402


def _llm() -> tuple[AsyncOpenAI, str]:
    if os.environ.get("OPENAI_API_KEY"):
        return AsyncOpenAI(), os.environ.get("AGENT_MODEL", "gpt-4o-mini")
    model_server = fake_model_server()
    started = model_server.__enter__()
    atexit.register(model_server.__exit__, None, None, None)
    return AsyncOpenAI(base_url=started.base_url, api_key="offline"), OFFLINE_MODEL


llm, model = _llm()
server = WorkflowServer()
server.add_workflow("weather", WeatherAgent(llm, model, timeout=120))
