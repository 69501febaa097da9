"""The debugger, clicked through in headless Chromium against a real server process.

The server serves the example agent (examples/agent_server.py, through
tests/apps/debugger_app.py which adds a failing workflow); its LLM calls go to the
scripted OpenAI-compatible model on loopback through the real ``openai`` client and
OpenInference. Every page is checked for console errors and for requests that leave
the server.
"""

from __future__ import annotations

import json
import re

import httpx
from debugger_helpers import Browser, answer, needs_chromium, open_run, run_status, start_run, wait_status, waiting_run
from server_helpers import wait_for

pytestmark = needs_chromium

PHOENIX = "http://phoenix.invalid:6006"
LANGFUSE = "https://langfuse.invalid"


def _server(make_server, **env):
    return make_server(app="debugger_app.py").start(
        WORKFLOWS_SERVER_PHOENIX_URL=PHOENIX, WORKFLOWS_SERVER_LANGFUSE_URL=LANGFUSE,
        WORKFLOWS_SERVER_LLM_PRICES="scripted-model=0.15/0.6", **env,
    )


def _rows(page) -> list[str]:
    return page.eval_on_selector_all("#runs tbody tr[data-id]", "rows => rows.map(r => r.dataset.id)")


def test_home_lists_runs_newest_first_filters_searches_paginates_and_updates_live(make_server, chromium) -> None:
    server = _server(make_server)
    url = server.url
    lisbon = start_run(url, "travel_assistant", "Is it warmer in Lisbon or in Oslo?")
    wait_status(url, lisbon, "waiting")
    tokyo = start_run(url, "weather_agent", "Is it sunny in Tokyo?")
    wait_status(url, tokyo, "completed")
    failed = start_run(url, "fails", "Mars")
    wait_status(url, failed, "failed")
    browser = Browser(url, chromium)
    page = browser.page()
    page.goto(url + "/")
    wait_for(lambda: _rows(page) == [failed, tokyo, lisbon], "the three runs, newest first")
    row = page.locator(f'#runs tr[data-id="{tokyo}"]')
    assert row.locator(".badge").inner_text() == "completed"
    cells = row.locator("td").all_inner_texts()
    assert cells[2] == "weather_agent" and cells[6] == "5"  # steps: start, call_llm, 2 x call_tool... attempts
    assert int(cells[7].replace(",", "")) > 0, "the run's tokens, from its LLM spans"
    assert cells[8].startswith("$"), "the cost, from WORKFLOWS_SERVER_LLM_PRICES"
    assert page.locator(f'#runs tr[data-id="{lisbon}"] .badge').inner_text() == "waiting"

    # Live: a new run and a status change appear without a reload.
    newer = start_run(url, "weather_agent", "Is it raining in Paris?")
    wait_for(lambda: _rows(page)[:1] == [newer], "the new run at the top without a reload")
    answer(url, lisbon, "yes")
    page.locator(f'#runs tr[data-id="{lisbon}"] .badge', has_text="completed").wait_for()

    # Filters, answered by the store: status, workflow, text search, session, time range.
    page.select_option("#f-status", "failed")
    wait_for(lambda: _rows(page) == [failed], "only the failed run")
    page.select_option("#f-status", "")
    page.select_option("#f-workflow", "weather_agent")
    wait_for(lambda: _rows(page) == [newer, tokyo], "only the weather_agent runs")
    page.select_option("#f-workflow", "")
    page.fill("#f-q", "lisbon")
    wait_for(lambda: _rows(page) == [lisbon], "the run whose input names Lisbon")
    page.fill("#f-q", "21 °c")  # in the result only
    wait_for(lambda: _rows(page) == [lisbon], "the run whose result says 21 °C")
    page.fill("#f-q", "")
    session = page.locator(f'#runs tr[data-id="{tokyo}"] td').nth(9).inner_text()
    full_session = httpx.get(f"{url}/api/runs/{tokyo}").json()["session_id"]
    assert full_session.startswith(session)
    page.fill("#f-session", full_session)
    wait_for(lambda: _rows(page) == [tokyo], "the runs of one session")
    page.click("#f-clear")
    wait_for(lambda: len(_rows(page)) == 4, "every run again")
    page.fill("#f-since", "2999-01-01T00:00:00")
    page.dispatch_event("#f-since", "change")
    page.locator("#runs td.empty", has_text="No run matches").wait_for()
    page.fill("#f-since", "")
    page.fill("#f-until", "2999-01-01T00:00:00")
    page.dispatch_event("#f-until", "change")
    wait_for(lambda: len(_rows(page)) == 4, "every run started before 2999")
    assert "until=2999" in page.url, "filters are in the address, to share"

    # Paginated: two runs a page, older and newer.
    page.goto(url + "/?limit=2")
    wait_for(lambda: _rows(page) == [newer, failed], "the first page")
    page.click("#older")
    wait_for(lambda: _rows(page) == [tokyo, lisbon], "the second page")
    assert page.locator("#older").is_disabled()
    page.click("#newer")
    wait_for(lambda: _rows(page) == [newer, failed], "the first page again")
    page.click(f'#runs tr[data-id="{failed}"] a')
    page.wait_for_url(f"**/runs/{failed}")
    page.locator("#error #traceback").wait_for()
    browser.check()


def test_run_page_shows_graph_timeline_events_state_diffs_llm_calls_and_links(make_server, chromium) -> None:
    server = _server(make_server)
    url = server.url
    handler_id = waiting_run(url)
    browser = Browser(url, chromium)
    page = open_run(browser, handler_id, "waiting")

    # The graph, with live step states.
    states = page.eval_on_selector_all("#graph g.node.step", "ns => Object.fromEntries(ns.map(n => [n.dataset.id, n.dataset.state]))")
    assert states == {"plan": "finished", "lookup": "finished", "draft": "finished", "review": "waiting"}

    # The timeline: attempts, the retry back-off (with its reason), the wait for a person, LLM calls.
    assert page.locator(".tl-row").count() == 5  # plan, lookup x2, draft, review (waiting)
    backoff = page.locator(".tl-bar.backoff")
    assert "retry in 0.5 s" in backoff.inner_text()
    assert "weather service did not answer" in (backoff.get_attribute("title") or "")
    assert "waiting for a person" in page.locator(".tl-bar.wait").inner_text()
    assert page.locator(".tl-bar.llm").count() == 2

    # Steps: outcome, slowest, tokens, the keys each step changed; details with the diff and LLM answer.
    rows = page.locator("#steps tr.step-row")
    assert rows.count() == 5
    lookup_retry = page.locator('#steps tr.step-row[data-step="lookup"]').first
    assert lookup_retry.locator(".badge").inner_text() == "retrying"
    assert page.locator('#steps tr.step-row[data-step="lookup"]').nth(1).locator(".badge.slowest").count() == 1
    plan = page.locator('#steps tr.step-row[data-step="plan"]')
    assert plan.locator("td").nth(8).inner_text() == "question, messages, cities"
    assert int(plan.locator("td").nth(6).inner_text()) > 0
    plan.click()
    detail = page.locator("tr.detail")
    assert '~ /question = "Is it warmer in Lisbon or in Oslo?"' in detail.locator(".diff").inner_text()
    assert "+ /cities/0 = \"Lisbon\"" in detail.locator(".diff").inner_text()
    assert "get_weather" in detail.locator(".llm-answer").inner_text()
    detail.locator("details summary").click()
    state_after = json.loads(detail.locator("details pre").inner_text())
    assert state_after["cities"] == ["Lisbon", "Oslo"] and state_after["draft"] == ""
    plan.click()  # closes it
    assert page.locator("tr.detail").count() == 0
    page.locator('#steps tr.step-row[data-step="draft"]').click()
    assert "Here is the weather you asked for" in page.locator("tr.detail .llm-answer").inner_text()

    # Events: the question on the stream; internal events on request.
    visible = page.locator("#events .ev").count()
    assert page.locator('#events .ev[data-type="InputRequiredEvent"]').count() == 1
    page.check("#internal")
    assert page.locator("#events .ev.internal").count() > 0 and page.locator("#events .ev").count() > visible

    # Totals and trace links (the trace id is the run's, stored with it).
    trace_id = httpx.get(f"{url}/api/runs/{handler_id}").json()["links"]["trace_id"]
    assert re.fullmatch(r"[0-9a-f]{32}", trace_id)
    assert page.get_attribute("#phoenix-link", "href") == f"{PHOENIX}/redirects/traces/{trace_id}"
    assert page.get_attribute("#langfuse-link", "href") == f"{LANGFUSE}/trace/{trace_id}"
    assert int(page.locator("#meta-tokens b").inner_text()) > 0

    # Live: answering from elsewhere finishes the page's run without a reload.
    answer(url, handler_id, "yes")
    page.locator("#status .badge", has_text="completed").wait_for()
    assert "Lisbon: 21 °C" in page.locator("#result-body").inner_text()
    assert page.eval_on_selector('#graph g.node[data-id="review"]', "n => n.dataset.state") == "finished"
    browser.check()


def test_failed_run_shows_its_error_with_the_traceback(make_server, chromium) -> None:
    server = _server(make_server)
    handler_id = start_run(server.url, "fails", "Mars")
    wait_status(server.url, handler_id, "failed")
    browser = Browser(server.url, chromium)
    page = browser.page()
    page.goto(f"{server.url}/runs/{handler_id}")
    error = page.locator("#error")
    error.locator("#traceback").wait_for()
    assert "ValueError" in error.inner_text() and "cannot plan a trip to 'Mars'" in error.inner_text()
    assert 'raise ValueError(f"cannot plan a trip to' in page.locator("#traceback").inner_text()
    assert page.eval_on_selector('#graph g.node[data-id="explode"]', "n => n.dataset.state") == "failed"
    assert page.locator("#cancel").count() == 0
    browser.check()


def test_actions_answer_cancel_rerun_and_fork_with_an_edited_state(make_server, chromium) -> None:
    server = _server(make_server)
    url = server.url
    browser = Browser(url, chromium)
    page = browser.page()

    # Answer a waiting run: its question is shown, with a form.
    first = start_run(url, "travel_assistant", "Is it warmer in Lisbon or in Oslo?")
    wait_status(url, first, "waiting")
    page.goto(f"{url}/runs/{first}")
    question = page.locator("#question")
    question.wait_for()
    assert "Send this answer to the traveller? (yes / no)" in page.locator("#question-text").inner_text()
    page.fill("#answer-response", "yes")
    page.click("#answer-submit")
    page.locator("#status .badge", has_text="completed").wait_for()
    assert question.is_hidden()

    # Re-run with the same input: a new run, linked to the old one.
    page.click("#rerun")
    page.wait_for_url(re.compile(r".*/runs/(?!" + first + ")[0-9a-f]+$"))
    again = page.url.rsplit("/", 1)[1]
    page.locator("#parent-link").wait_for()
    assert "Re-run of run" in page.locator("#lineage").inner_text()
    assert page.get_attribute("#parent-link", "href") == f"/runs/{first}"
    page.locator("#question").wait_for()
    assert httpx.get(f"{url}/api/runs/{again}").json()["input"] == {"question": "Is it warmer in Lisbon or in Oslo?"}

    # Cancel it.
    page.on("dialog", lambda dialog: dialog.accept())
    page.click("#cancel")
    page.locator("#status .badge", has_text="cancelled").wait_for()
    assert run_status(url, again) == "cancelled"

    # Fork the first run after its draft step, with an edited draft: review asks about the edit.
    page.goto(f"{url}/runs/{first}")
    page.locator('#steps tr.step-row[data-step="draft"]').click()
    page.locator("tr.detail button.fork").click()
    edited = json.loads(page.input_value("#fork-state"))
    assert edited["draft"].startswith("Here is the weather")
    edited["draft"] = "Pack a jumper for Oslo."
    page.fill("#fork-state", json.dumps(edited))
    page.click("#fork-submit")
    page.wait_for_url(re.compile(r".*/runs/(?!" + first + ")[0-9a-f]+$"))
    forked = page.url.rsplit("/", 1)[1]
    page.locator("#parent-link").wait_for()
    assert "Forked from run" in page.locator("#lineage").inner_text()
    page.locator("#question").wait_for()
    # Only the steps after draft ran in the fork; the state it continued with is the edited one.
    view = httpx.get(f"{url}/api/runs/{forked}").json()
    assert [a["step"] for a in view["attempts"]] == ["review"]
    assert view["state"]["draft"] == "Pack a jumper for Oslo."
    page.fill("#answer-response", "yes")
    page.click("#answer-submit")
    page.locator("#status .badge", has_text="completed").wait_for()
    # The old run lists both new runs.
    page.goto(f"{url}/runs/{first}")
    page.locator(".child-link").nth(1).wait_for()
    assert {a.rsplit("/", 1)[1] for a in page.eval_on_selector_all(".child-link", "ls => ls.map(l => l.getAttribute('href'))")} == {again, forked}
    browser.check()


def test_a_session_is_shown_as_one_conversation(make_server, chromium) -> None:
    server = _server(make_server)
    url = server.url
    first = start_run(url, "weather_agent", "Is it sunny in Tokyo?")
    wait_status(url, first, "completed")
    # A second run on the same Context (what a client does to continue a conversation).
    context = httpx.get(f"{url}/api/handlers/{first}/snapshots").json()["snapshots"][0]["payload"]
    second = start_run(url, "weather_agent", "And in Paris?", context=context)
    wait_status(url, second, "completed")
    browser = Browser(url, chromium)
    page = browser.page()
    page.goto(f"{url}/runs/{second}")
    page.locator("#session-link", has_text="2 runs").click()
    page.wait_for_url("**/sessions/**")
    turns = page.locator(".turn")
    turns.nth(1).wait_for()
    assert page.eval_on_selector_all(".turn", "ts => ts.map(t => t.dataset.id)") == [first, second]
    assert "Is it sunny in Tokyo?" in turns.nth(0).locator(".bubble.user").inner_text()
    assert "Tokyo: 24 °C, sunny" in turns.nth(0).locator(".bubble.agent").inner_text()
    assert "And in Paris?" in turns.nth(1).locator(".bubble.user").inner_text()
    browser.check()


def test_a_big_store_shows_a_capped_count_and_searches_from_three_characters(make_server, chromium, tmp_path) -> None:
    # 10 050 finished runs written into the server's store beforehand (create_handlers, one
    # transaction; finished in the future, so retention leaves them): more than the count's cap of 10 000.
    from workflows_server.store import HandlerRow, NewRun, SqliteStore
    from workflows_server.store.queries import RunIndexUpdate

    store = SqliteStore(tmp_path / "runs.db")
    store.create_handlers([
        NewRun(row=HandlerRow(handler_id=f"old-{n:05d}", workflow_name="imported", run_id=f"r{n}", status="completed",
                              started_at=f"2030-01-01T00:{n // 600 % 60:02d}:{n % 60:02d}.{n:06d}+00:00",
                              completed_at="2030-01-02T00:00:00+00:00"),
               index=RunIndexUpdate(input_text=json.dumps({"city": "Zanzibar" if n % 1000 == 7 else "Lima"})))
        for n in range(10_050)
    ])
    store.close()
    url = _server(make_server).url
    listed = httpx.get(url + "/api/runs").json()
    assert (listed["total"], listed["total_capped"], len(listed["runs"])) == (10_000, True, 25)
    found = httpx.get(url + "/api/runs", params={"q": "zanzibar"}).json()
    assert (found["total"], found["total_capped"]) == (11, False)
    short = httpx.get(url + "/api/runs", params={"q": "za"})
    assert short.status_code == 400 and "at least 3 characters" in short.json()["detail"]

    browser = Browser(url, chromium)
    page = browser.page()
    page.goto(url + "/")
    page.locator("#count", has_text="10 000+ runs").wait_for()
    assert page.locator("#page-info").inner_text().endswith("of 10 000+")
    page.fill("#f-q", "za")
    page.locator("#notice", has_text="at least 3 characters").wait_for()
    assert page.locator("#count").inner_text() == "10 000+ runs", "a short text does not search"
    page.fill("#f-q", "zanz")
    page.locator("#count", has_text="11 runs").wait_for()
    assert len(_rows(page)) == 11 and page.locator("#notice").inner_text() == ""
    browser.check()
