"""The debugger for production, clicked through in headless Chromium against real server processes:
every wait answerable from the page, pages that follow the server without polling (and
reconnect after a restart), bulk actions on a filtered set, read-only viewers, a link
per step, and a run exported then opened with ``workflows-server view``. Every page is
checked for console errors and for requests that leave the server."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
from debugger_helpers import Browser, answer, needs_chromium, open_run, run_status, start_run, wait_status, waiting_run
from server_helpers import free_port, wait_for

pytestmark = needs_chromium

TOKEN = "full-secret-token-5151"
READ_TOKEN = "read-secret-token-6262"
QUIET = "1.0"
"""Seconds a page is watched at rest (over several heartbeats of the stream)."""


def _server(make_server: Any, **env: str) -> Any:
    return make_server(app="debugger_app.py").start(WORKFLOWS_SERVER_SSE_HEARTBEAT_SECONDS="0.3", **env)


def _rows(page: Any) -> list[str]:
    return page.eval_on_selector_all("#runs tbody tr[data-id]", "rows => rows.map(r => r.dataset.id)")


def _at_rest(page: Any, server: Any) -> None:
    """The page makes no request for a while (its stream's heartbeats arrive meanwhile), and the
    server logs none."""
    requests: list[str] = []
    page.on("request", lambda r: requests.append(r.url))
    logged = len(server.text().splitlines())
    heartbeats = page.evaluate("""(ms) => new Promise((done) => setTimeout(() => done(true), ms))""", 1000 * float(QUIET))
    assert heartbeats
    assert requests == [], f"a page at rest made requests: {requests}"
    assert len(server.text().splitlines()) == logged, server.text().splitlines()[logged:]


def test_a_wait_for_event_wait_is_shown_and_answered_from_the_page(make_server: Any, chromium: Any) -> None:
    server = _server(make_server)
    url = server.url
    handler_id = waiting_run(url)
    browser = Browser(url, chromium)
    page = open_run(browser, handler_id, "waiting")
    # The question, who asks it since when, and a form built from HumanResponseEvent's fields.
    assert "Send this answer to the traveller?" in page.locator("#question-text").inner_text()
    assert "Step review has waited since" in page.locator("#question-since").inner_text()
    assert "HumanResponseEvent" in page.locator("#answer-fields").inner_text()
    assert page.locator("#answer-response").get_attribute("required") is not None
    # On the timeline and the graph.
    wait_bar = page.locator('.tl-bar.wait[data-step="review"]')
    assert "waiting for a person" in wait_bar.inner_text()
    assert page.eval_on_selector('#graph g.node[data-id="review"]', "n => n.dataset.state") == "waiting"
    page.fill("#answer-response", "yes")
    page.click("#answer-submit")
    page.locator("#status .badge", has_text="completed").wait_for()
    assert page.locator("#question").is_hidden()
    # The wait stays on the timeline, from the question to the answer.
    page.locator('.tl-bar.wait.ended[data-step="review"]', has_text="waited for a person").wait_for()
    assert "received" in page.locator(".tl-bar.wait.ended").inner_text()
    assert "Lisbon: 21 °C" in page.locator("#result-body").inner_text()
    browser.check()


def test_an_input_required_event_wait_is_shown_and_answered_from_the_page(make_server: Any, chromium: Any) -> None:
    server = _server(make_server)
    url = server.url
    handler_id = start_run(url, "approval", "u1")
    wait_for(lambda: run_status(url, handler_id) == "waiting", "the run that asked with an InputRequiredEvent to wait",
             timeout=5)
    browser = Browser(url, chromium)
    page = browser.page()
    page.goto(f"{url}/runs/{handler_id}")
    page.locator("#status .badge", has_text="waiting").wait_for()
    assert page.locator("#question-text").inner_text() == "approve u1?"
    assert page.locator(".tl-bar.wait").count() == 1
    page.fill("#answer-response", "ok")
    page.click("#answer-submit")
    page.locator("#status .badge", has_text="completed").wait_for()
    assert httpx.get(f"{url}/api/runs/{handler_id}").json()["result_value"] == "answered ok"
    browser.check()


def test_pages_follow_runs_without_polling_and_reconnect_after_a_restart(make_server: Any, chromium: Any) -> None:
    server = _server(make_server)
    url = server.url
    handler_id = waiting_run(url)
    browser = Browser(url, chromium)

    # The home page at rest: no request; a run started by another client appears.
    home = browser.page()
    home.goto(url + "/")
    wait_for(lambda: _rows(home) == [handler_id], "the waiting run on the home page")
    # Its one-off requests done (the start form is built from the workflow's schema, asked
    # once after the list of workflows): what follows must come from the stream alone.
    home.locator("#start-fields [data-field]").first.wait_for(state="attached")  # (in a folded panel)
    _at_rest(home, server)
    other = start_run(url, "weather_agent", "Is it sunny in Tokyo?")
    wait_for(lambda: _rows(home) == [other, handler_id], "the new run at the top, pushed")
    home.locator(f'#runs tr[data-id="{other}"] .badge', has_text="completed").wait_for()

    # The run page at rest: no request; it follows the run answered by another client.
    page = open_run(browser, handler_id, "waiting")
    _at_rest(page, server)

    # The server restarts (killed, started again on the same store and port): the pages
    # reconnect by themselves, the run page with the id of the last update it drew.
    streams: list[Any] = []
    page.on("request", lambda r: streams.append(r) if "/api/live/runs/" in r.url else None)
    server.kill()
    page.locator("#live.off").wait_for()
    server.start()

    def resumed() -> bool:
        # The browser's own reconnection sends Last-Event-ID; the page's, ?last_event_id=.
        return any(r.all_headers().get("last-event-id") or "last_event_id=" in r.url for r in streams)

    wait_for(lambda: page.evaluate("true") and resumed(), "the run page to reconnect with the last event's id")
    page.locator("#live:not(.off)").wait_for()
    answer(url, handler_id, "yes")
    page.locator("#status .badge", has_text="completed").wait_for()
    assert "Lisbon: 21 °C" in page.locator("#result-body").inner_text()
    home.locator(f'#runs tr[data-id="{handler_id}"] .badge', has_text="completed").wait_for()
    # While the server was down the browser logged the cut and refused connections, and nothing else.
    assert all(e.startswith("Failed to load resource: net::ERR_") for e in browser.errors), browser.errors
    browser.errors.clear()
    browser.check()


def test_bulk_cancel_of_a_filtered_set_and_rerun_of_the_failed_runs(make_server: Any, chromium: Any) -> None:
    server = _server(make_server)
    url = server.url
    waiting = [start_run(url, "travel_assistant", f"Is it warmer in Lisbon or in city {n}?") for n in range(3)]
    done = start_run(url, "weather_agent", "Is it sunny in Tokyo?")
    failed = start_run(url, "fails", "Mars")
    for handler_id in waiting:
        wait_status(url, handler_id, "waiting")
    wait_status(url, done, "completed")
    wait_status(url, failed, "failed")
    browser = Browser(url, chromium)
    page = browser.page()
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.accept()))

    # Two runs a page, filtered to the waiting ones: select the page, then all 3 matching.
    page.goto(url + "/?limit=2&status=waiting")
    wait_for(lambda: len(_rows(page)) == 2, "the first page of waiting runs")
    page.check("#pick-page")
    page.locator("#bulk-count", has_text="2 runs selected").wait_for()
    page.click("#pick-all")
    page.locator("#bulk-count", has_text="All 3 runs matching the filter are selected").wait_for()
    page.click("#bulk-cancel")
    page.locator("#bulk-summary").wait_for()
    assert dialogs == ["Cancel 3 runs (finished runs are skipped)?"]
    assert "3 cancelled, 0 skipped, 0 failed, of 3" in page.locator("#bulk-summary").inner_text()
    outcomes = page.eval_on_selector_all("#bulk-outcomes tr", "rs => rs.map(r => [r.dataset.id, r.dataset.outcome])")
    assert sorted(outcomes) == sorted([h, "done"] for h in waiting)
    assert all(run_status(url, h) == "cancelled" for h in waiting)
    assert run_status(url, done) == "completed"
    page.locator("#runs td.empty", has_text="No run matches").wait_for()  # pushed: none waits any more

    # Chosen runs, one by one: re-run the failed one; the completed one is skipped.
    page.goto(url + "/")
    wait_for(lambda: len(_rows(page)) == 5, "every run")
    page.check(f'#runs tr[data-id="{failed}"] input.pick')
    page.check(f'#runs tr[data-id="{done}"] input.pick')
    page.click("#bulk-rerun")
    page.locator("#bulk-summary").wait_for()
    assert dialogs[-1] == "Re-run 2 runs (only the failed ones are re-run, with the same input)?"
    assert "1 re-run, 1 skipped, 0 failed, of 2" in page.locator("#bulk-summary").inner_text()
    assert "only failed runs are re-run" in page.locator(f'#bulk-outcomes tr[data-id="{done}"]').inner_text()
    new = page.locator(f'#bulk-outcomes tr[data-id="{failed}"] a', has_text="new run")
    new.click()
    page.locator("#parent-link").wait_for()
    assert page.get_attribute("#parent-link", "href") == f"/runs/{failed}"
    browser.check()


def test_a_read_only_viewer_sees_no_action_buttons(make_server: Any, chromium: Any) -> None:
    server = _server(make_server, WORKFLOWS_SERVER_TOKEN=TOKEN, WORKFLOWS_SERVER_READ_TOKEN=READ_TOKEN)
    url = server.url
    bearer = {"Authorization": f"Bearer {TOKEN}"}
    response = httpx.post(f"{url}/workflows/travel_assistant/run-nowait", headers=bearer,
                          json={"start_event": {"question": "Is it warmer in Lisbon or in Oslo?"}})
    handler_id = response.json()["handler_id"]
    wait_for(lambda: httpx.get(f"{url}/api/runs/{handler_id}", headers=bearer).json()["status"] == "waiting",
             "the run to wait")
    browser = Browser(url, chromium)
    page = browser.page()
    page.goto(url + "/")
    page.wait_for_url("**/login?next=*")
    page.fill("#token", READ_TOKEN)
    page.click("#login-submit")
    page.wait_for_url(url + "/")
    page.locator(f'#runs tr[data-id="{handler_id}"]').wait_for()
    assert page.locator("#role").inner_text() == "read-only"
    # No selection, no bulk actions, no start form.
    assert page.locator("#pick-page").is_hidden() and page.locator("input.pick").first.is_hidden()
    assert page.locator("#bulk").is_hidden() and page.locator("#start-card").is_hidden()
    # The run page: the question is shown; no answer form, no cancel, re-run or fork; export is reading.
    page.goto(f"{url}/runs/{handler_id}")
    page.locator("#question-text").wait_for()
    assert page.locator("#answer-form").is_hidden()
    assert page.locator("#cancel").count() == 0 and page.locator("#rerun").count() == 0
    page.locator('#steps tr.step-row[data-step="draft"]').click()
    assert page.locator("tr.detail button.fork").count() == 0
    assert page.locator("#export").is_visible()
    # The bulk endpoint refuses the read-only token too, from the page and from a client.
    refused = page.evaluate("""async () => (await fetch('/api/runs/actions', {method: 'POST',
        headers: {'Content-Type': 'application/json'}, body: JSON.stringify({action: 'cancel', filter: {}})})).status""")
    assert refused == 403
    assert browser.errors == ["Failed to load resource: the server responded with a status of 403 (Forbidden)"]
    browser.errors.clear()
    response = httpx.post(f"{url}/api/runs/actions", json={"action": "cancel", "ids": [handler_id]},
                          headers={"Authorization": f"Bearer {READ_TOKEN}"})
    assert response.status_code == 403 and "read-only" in response.json()["detail"]
    assert httpx.get(f"{url}/api/runs/{handler_id}", headers=bearer).json()["status"] == "waiting"
    browser.check()


def test_a_step_link_opens_that_step(make_server: Any, chromium: Any) -> None:
    server = _server(make_server)
    url = server.url
    handler_id = waiting_run(url)
    browser = Browser(url, chromium)
    page = browser.page()
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=url)
    page.goto(f"{url}/runs/{handler_id}")
    draft = page.locator('#steps tr.step-row[data-step="draft"]')
    draft.click()
    seq = draft.get_attribute("data-seq")
    address = f"{url}/runs/{handler_id}#step-{seq}"
    assert page.input_value("tr.detail input.step-url") == address
    page.click("tr.detail button.copy-link")
    page.locator("tr.detail .copied", has_text="copied").wait_for()
    assert page.evaluate("navigator.clipboard.readText()") == address

    # Someone opens the link: that step is open, marked, in view.
    other = browser.page()
    other.goto(address)
    other.locator('#steps tr.step-row.linked[data-step="draft"]').wait_for()
    assert other.locator("tr.detail").count() == 1
    assert "Here is the weather you asked for" in other.locator("tr.detail .llm-answer").inner_text()
    assert other.locator("tr.detail").is_visible()
    # Following another step's link on the same page.
    other.locator('#steps tr.step-row[data-step="plan"]').click()
    other.locator("tr.detail a.step-anchor").first.click()
    assert other.url.endswith("#step-" + other.locator('#steps tr.step-row[data-step="plan"]').get_attribute("data-seq"))
    browser.check()


def test_export_then_view_the_run_read_only_with_no_store(make_server: Any, chromium: Any, tmp_path: Path) -> None:
    server = _server(make_server)
    url = server.url
    handler_id = waiting_run(url)
    browser = Browser(url, chromium)
    page = open_run(browser, handler_id, "waiting")
    with page.expect_download() as download:
        page.click("#export")
    exported = tmp_path / download.value.suggested_filename
    download.value.save_as(exported)
    assert exported.name == f"run-{handler_id}.json"
    server.stop()  # production is gone: the file alone is shown
    browser.check()

    port = free_port()
    viewer = subprocess.Popen(
        [sys.executable, "-m", "workflows_server.cli", "view", str(exported), "--port", str(port)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )
    try:
        view_url = f"http://127.0.0.1:{port}"

        def up() -> bool:
            assert viewer.poll() is None, viewer.stdout.read().decode() if viewer.stdout else ""
            try:
                return httpx.get(view_url + "/api/session", timeout=1).status_code == 200
            except httpx.HTTPError:
                return False

        wait_for(up, "workflows-server view to answer")
        shown = Browser(view_url, chromium)
        page = shown.page()
        page.goto(view_url + "/")
        page.locator(f'#runs tr[data-id="{handler_id}"]').click()
        page.wait_for_url(f"**/runs/{handler_id}")
        page.locator("#status .badge", has_text="waiting").wait_for()
        assert page.locator("#role").inner_text() == "exported run · read-only"
        assert "Send this answer to the traveller?" in page.locator("#question-text").inner_text()
        assert page.locator("#steps tr.step-row").count() == 5
        assert page.eval_on_selector('#graph g.node[data-id="review"]', "n => n.dataset.state") == "waiting"
        assert page.locator(".tl-bar.wait").count() == 1 and page.locator(".tl-bar.llm").count() == 2
        assert page.locator("#answer-form").is_hidden() and page.locator("#cancel").count() == 0
        assert page.locator("#rerun").count() == 0
        refused = httpx.post(f"{view_url}/api/runs/actions", json={"action": "cancel", "ids": [handler_id]})
        assert refused.status_code == 403
        shown.check()
    finally:
        viewer.terminate()
        viewer.wait(timeout=10)


def test_view_refuses_a_file_that_is_not_an_export(tmp_path: Path) -> None:
    bad = tmp_path / "notes.json"
    bad.write_text('{"hello": 1}')
    done = subprocess.run([sys.executable, "-m", "workflows_server.cli", "view", str(bad)],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode != 0
    assert "not a run exported by the workflow debugger" in done.stderr and str(bad) in done.stderr
