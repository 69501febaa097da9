"""Screenshots of the workflow debugger, taken from a real server so they stay true.

Starts ``workflows-server examples/agent_server.py`` on a free loopback port with a
fresh SQLite store, makes a few runs through the HTTP API (one answered by a person,
one left waiting, one cancelled, agent runs with parallel tool calls), then opens the
debugger in headless Chromium (Debian's ``/usr/bin/chromium``, driven by Playwright)
and saves the home page and a run page.

Run from the repository root:
    .venv/bin/python scripts/debugger_screenshots.py [--out docs/images]
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

import httpx
from playwright.sync_api import sync_playwright

ROOT = Path(__file__).resolve().parents[1]
APP = ROOT / "examples" / "agent_server.py"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(condition: Callable[[], Any], what: str, timeout: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for {what}")
        time.sleep(0.05)


def status(url: str, handler_id: str) -> str:
    return str(httpx.get(f"{url}/api/runs/{handler_id}", timeout=10).json()["status"])


def start(url: str, workflow: str, question: str) -> str:
    response = httpx.post(f"{url}/workflows/{workflow}/run-nowait", json={"start_event": {"question": question}}, timeout=10)
    response.raise_for_status()
    return str(response.json()["handler_id"])


def make_runs(url: str) -> str:
    """Runs of every kind; returns the id of the run to show on the run page."""
    answered = start(url, "travel_assistant", "Is it warmer in Lisbon or in Oslo?")
    wait_for(lambda: status(url, answered) == "waiting", "the travel run to wait for its reviewer")
    httpx.post(f"{url}/events/{answered}", json={"event": {"type": "HumanResponseEvent", "value": {"response": "yes"}}},
               timeout=10).raise_for_status()
    for question in ("What's the weather like in Paris and in Tokyo right now?", "Is it raining in Oslo?"):
        agent = start(url, "weather_agent", question)
        wait_for(lambda agent=agent: status(url, agent) == "completed", "the weather agent's run")
    cancelled = start(url, "travel_assistant", "Should I pack a coat for Oslo?")
    wait_for(lambda: status(url, cancelled) == "waiting", "the run to cancel to wait")
    httpx.post(f"{url}/handlers/{cancelled}/cancel", timeout=10).raise_for_status()
    waiting = start(url, "travel_assistant", "Is it sunny in Tokyo or in Paris?")
    wait_for(lambda: status(url, waiting) == "waiting", "the last run to wait for its reviewer")
    wait_for(lambda: status(url, answered) == "completed", "the answered run to complete")
    return answered


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "images", help="folder of the PNG files")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryDirectory() as folder:
        env = {**os.environ, "WORKFLOWS_SERVER_PHOENIX_URL": "http://localhost:6006",
               "WORKFLOWS_SERVER_LANGFUSE_URL": "https://cloud.langfuse.com",
               "WORKFLOWS_SERVER_LLM_PRICES": "scripted-model=0.15/0.6", "WORKFLOWS_SERVER_LOG_LEVEL": "warning"}
        env.pop("WORKFLOWS_EXPORTERS", None)
        server = subprocess.Popen(
            [sys.executable, "-m", "workflows_server.cli", str(APP), "--port", str(port),
             "--store", f"sqlite:///{folder}/runs.db"], env=env, cwd=folder,
        )
        try:
            wait_for(lambda: _healthy(url), "the server to answer /health")
            shown = make_runs(url)
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(
                    executable_path="/usr/bin/chromium",
                    args=["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"],
                )
                try:
                    page = browser.new_page(viewport={"width": 1360, "height": 900}, device_scale_factor=1)
                    page.goto(url + "/")
                    page.wait_for_selector("#runs tbody tr[data-id]")
                    # Two runs ticked: the bar of bulk actions shows.
                    page.check("#runs tbody tr[data-id] >> nth=0 >> input.pick")
                    page.check("#runs tbody tr[data-id] >> nth=1 >> input.pick")
                    page.wait_for_selector("#bulk:not([hidden])")
                    page.screenshot(path=str(args.out / "debugger-home.png"), full_page=True)
                    page.goto(f"{url}/runs/{shown}")
                    page.wait_for_selector("#steps tr.step-row")
                    page.click('#steps tr.step-row[data-step="lookup"] >> nth=0')
                    page.click('#steps tr.step-row[data-step="draft"]')
                    page.screenshot(path=str(args.out / "debugger-run.png"), full_page=True)
                finally:
                    browser.close()
        finally:
            server.terminate()
            server.wait(timeout=10)
    print(f"wrote {args.out / 'debugger-home.png'} and {args.out / 'debugger-run.png'}")


def _healthy(url: str) -> bool:
    if not url:
        return False
    try:
        return httpx.get(url + "/health", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


if __name__ == "__main__":
    main()
