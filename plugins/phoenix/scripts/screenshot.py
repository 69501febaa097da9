"""Take the screenshot shown in docs/phoenix.md: the example agent's trace in Phoenix.

Starts a throwaway Phoenix server on loopback (``tests/support/phoenix.py``), runs the
example agent (``examples/agent.py``, offline, against its scripted model) with
``workflows_phoenix.register(auto_instrument=True)``, opens the run's trace in headless
Chromium (Debian's ``/usr/bin/chromium``, driven by Playwright) and saves a PNG.

    .venv/bin/python plugins/phoenix/scripts/screenshot.py [--out docs/images/phoenix-trace.png]
    .venv/bin/python plugins/phoenix/scripts/screenshot.py --detail steps --out docs/images/phoenix-trace-compact.png

``--detail steps`` records the trace with ``WORKFLOWS_TRACE_DETAIL=steps`` (the compact
tree: run, step and wait spans, events and state changes as span events).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]
sys.path[:0] = [str(REPO / "tests"), str(REPO / "examples")]

from support.phoenix import PhoenixServer, Span, wait_for_spans  # noqa: E402  (needs the path above)

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]
DEFAULT_OUT = REPO / "docs" / "images" / "phoenix-trace.png"


def record_agent_trace(phoenix_url: str, project: str, detail: str | None = None) -> str:
    """Run the example agent once, traced to ``project`` (with ``detail``, the trace
    detail, when given); return the trace id once Phoenix holds the whole tree."""
    import workflows_phoenix
    from agent import DEFAULT_QUESTION, ask_offline
    from openinference.instrumentation.openai import OpenAIInstrumentor

    from workflows.instrumentation.settings import TRACE_DETAIL_VAR

    saved = os.environ.get(TRACE_DETAIL_VAR)
    if detail is not None:
        os.environ[TRACE_DETAIL_VAR] = detail  # read by the handler register() adds
    try:
        provider = workflows_phoenix.register(project, endpoint=phoenix_url, set_global=False, auto_instrument=True)
    finally:
        if saved is None:
            os.environ.pop(TRACE_DETAIL_VAR, None)
        else:
            os.environ[TRACE_DETAIL_VAR] = saved
    try:
        ask_offline(DEFAULT_QUESTION)
        provider.force_flush()
    finally:
        OpenAIInstrumentor().uninstrument()
        provider.shutdown()
    spans = wait_for_spans(phoenix_url, project, _one_whole_trace)
    return str(spans[0]["context"]["trace_id"])


def _one_whole_trace(spans: list[Span]) -> bool:
    ids = {s["context"]["span_id"] for s in spans}
    roots = [s for s in spans if s["parent_id"] is None]
    return len(roots) == 1 and all(s["parent_id"] in ids for s in spans if s["parent_id"])


def capture(phoenix_url: str, trace_id: str, out: Path) -> str:
    """Open the trace in Phoenix's UI (the tree, and the run span's details), save the
    page to ``out`` and return the page's visible text (for checks)."""
    from playwright.sync_api import sync_playwright

    out.parent.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        try:
            page = browser.new_page(viewport={"width": 1600, "height": 1000})
            page.goto(f"{phoenix_url}/redirects/traces/{trace_id}")
            page.get_by_text("Trace", exact=True).first.wait_for(timeout=60_000)
            page.get_by_text("Output", exact=True).first.wait_for(timeout=60_000)
            page.wait_for_load_state("networkidle")
            page.screenshot(path=str(out))
            return page.inner_text("body")
        finally:
            browser.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--detail", choices=("full", "steps"), default=None, help="the trace detail (default: full)")
    args = parser.parse_args()
    with PhoenixServer() as server:
        trace_id = record_agent_trace(server.base_url, "weather-agent", args.detail)
        capture(server.base_url, trace_id, args.out)
    print(f"saved {args.out}")


if __name__ == "__main__":
    main()
