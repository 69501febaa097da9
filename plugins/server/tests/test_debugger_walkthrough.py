"""The issue's "Done means", as a person would do it, in headless Chromium.

Someone who has never seen the project runs the command dashboards/README.md gives
to serve the example agent, opens the page, starts a run from it, and without any
docs finds: the slowest step, what the LLM answered, which step changed which state
key, why a retry happened; then answers the run that waits for them.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import httpx
from debugger_helpers import Browser, needs_chromium
from server_helpers import free_port, wait_for

ROOT = Path(__file__).resolve().parents[3]
README = ROOT / "dashboards" / "README.md"

pytestmark = needs_chromium


def _readme_command() -> list[str]:
    found = re.search(r"^(workflows-server examples/\S+\.py)$", README.read_text(), re.MULTILINE)
    assert found, "dashboards/README.md gives the command that serves the example agent"
    return shlex.split(found.group(1))


def test_a_newcomer_finds_slowest_step_llm_answer_state_changes_retry_reason_and_answers(tmp_path, chromium) -> None:
    command = _readme_command()
    script = Path(sys.executable).with_name(command[0])
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {key: value for key, value in os.environ.items() if key != "WORKFLOWS_EXPORTERS"}
    with open(tmp_path / "server.log", "wb") as log:
        process = subprocess.Popen(
            [str(script), *command[1:], "--port", str(port), "--store", f"sqlite:///{tmp_path}/runs.db"],
            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
        )
    try:
        def healthy() -> bool:
            assert process.poll() is None, (tmp_path / "server.log").read_text()
            try:
                return httpx.get(url + "/health", timeout=1).status_code == 200
            except httpx.HTTPError:
                return False

        wait_for(healthy, "the example agent's server")
        browser = Browser(url, chromium)
        page = browser.page()
        page.goto(url + "/")
        page.locator("#runs td.empty", has_text="No runs yet").wait_for()

        # Start a run from the page.
        page.click("#start-card summary")
        page.select_option("#start-workflow", "travel_assistant")
        page.fill("#start-question", "Is it warmer in Lisbon or in Oslo?")
        page.click("#start-submit")
        page.wait_for_url(re.compile(r".*/runs/[0-9a-f]+$"))
        page.locator("#question").wait_for()  # it ends up waiting for its reviewer

        # The slowest step: marked in the step list.
        slowest = page.locator("#steps tr.step-row", has=page.locator(".badge.slowest"))
        assert slowest.count() == 1 and slowest.get_attribute("data-step") == "lookup"

        # What the LLM answered: open the step that called it.
        page.locator('#steps tr.step-row[data-step="draft"]').click()
        assert page.locator("tr.detail .llm-answer").inner_text().startswith("Here is the weather you asked for.")

        # Which step changed which state key: the step list says it, the diff shows it.
        keys = {
            row.get_attribute("data-step"): row.locator("td").nth(8).inner_text()
            for row in page.locator("#steps tr.step-row").all()
        }
        assert keys["draft"] == "draft" and "weather" in keys["lookup"] and "cities" in keys["plan"]
        assert "~ /draft = " in page.locator("tr.detail .diff").inner_text()

        # Why a retry happened: the retried attempt says why.
        page.locator('#steps tr.step-row[data-step="lookup"]').first.click()
        retried = page.locator("tr.detail", has_text="Why it was retried")
        assert "WeatherServiceTimeout" in retried.inner_text()
        assert "weather service did not answer for Lisbon, Oslo within 50 ms" in retried.locator(".attempt-error").inner_text()

        # Answer the waiting run.
        assert "Send this answer to the traveller?" in page.locator("#question-text").inner_text()
        page.fill("#answer-response", "yes")
        page.click("#answer-submit")
        page.locator("#status .badge", has_text="completed").wait_for()
        assert "Lisbon: 21 °C, clear" in page.locator("#result-body").inner_text()
        browser.check()
    finally:
        process.terminate()
        process.wait(timeout=10)
