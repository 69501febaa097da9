"""``draw_most_recent_execution`` (llama-index-utils-workflow) on this engine: the page it writes
loads in a real Chromium without an error, and vis-network draws the run from it.

The page asks two CDNs for vis-network and Bootstrap. No test reaches the internet: vis-network
is answered with the copy pyvis writes next to the page (the same release, another build, so the
page is served without its ``integrity`` attributes, the one change made to it), Bootstrap with
an empty file.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
BROWSER_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"]

# Runs in the compat venv: draws a finished run (the scenarios' Review workflow, with a human's answer).
_DRAW = """
import asyncio, sys
sys.path.insert(0, sys.argv[1])
from llama_index.utils.workflow import draw_most_recent_execution
from scenario_drawing import _finished_review

async def main():
    draw_most_recent_execution(await _finished_review(), filename="run.html")

asyncio.run(main())
"""


@pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian's chromium is not installed")
def test_the_drawing_of_a_run_loads_in_chromium_without_errors(compat_venv_python: Path, tmp_path: Path):
    playwright = pytest.importorskip("playwright.sync_api")
    scenarios = Path(__file__).parent / "scenarios"
    subprocess.run(
        [str(compat_venv_python), "-c", _DRAW, str(scenarios)], cwd=tmp_path, check=True, timeout=120,
        capture_output=True,
    )
    page_file = tmp_path / "run.html"
    vis_js = next(tmp_path.glob("lib/vis-*/vis-network.min.js"))  # written by pyvis beside the page

    def answer(route) -> None:  # noqa: ANN001 (Playwright's Route)
        url = route.request.url
        if url == page_file.as_uri():
            page_text = re.sub(r'\s+integrity="[^"]*"', "", page_file.read_text())
            route.fulfill(body=page_text, content_type="text/html")
        elif url.startswith("file://"):
            route.continue_()
        elif url.endswith("vis-network.min.js"):
            route.fulfill(path=vis_js, content_type="application/javascript", headers={"Access-Control-Allow-Origin": "*"})
        else:
            route.fulfill(body="", content_type="text/css" if url.endswith(".css") else "application/javascript",
                          headers={"Access-Control-Allow-Origin": "*"})

    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=BROWSER_ARGS)
        try:
            page = browser.new_page()
            problems: list[str] = []
            page.on("pageerror", lambda error: problems.append(f"page error: {error}"))
            page.on("console", lambda msg: problems.append(f"console {msg.type}: {msg.text}") if msg.type == "error" else None)
            page.route("**/*", answer)
            page.goto(page_file.as_uri())
            page.wait_for_function("typeof network !== 'undefined' && network !== null", timeout=10_000)
            drawn = page.evaluate(
                "() => ({nodes: network.body.data.nodes.getIds(), edges: network.body.data.edges.get(),"
                " canvas: document.querySelector('#mynetwork canvas') !== null})"
            )
        finally:
            browser.close()
    assert problems == []
    assert drawn["canvas"]
    nodes = set(drawn["nodes"])
    assert {"external_step", "step:write#1", "step:ask#1", "step:publish#1"} <= nodes, json.dumps(drawn)
    assert len(nodes) == 9 and all(e["from"] in nodes and e["to"] in nodes for e in drawn["edges"])
