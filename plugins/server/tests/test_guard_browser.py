"""In headless Chromium: a page from another origin cannot act on runs, and people log in with
the token (full) or the read-only token (sees everything, acts on nothing)."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Iterator

import httpx
import pytest
from debugger_helpers import Browser, needs_chromium, run_status, start_run, wait_status
from server_helpers import wait_for

pytestmark = needs_chromium

TOKEN = "full-secret-token-4242"
READ_TOKEN = "read-secret-token-1717"

# Every action a debugger user can take, tried the ways a hostile page can: simple requests
# (text/plain, no preflight, with the person's credentials) and a plain HTML form.
ATTACK = """<!DOCTYPE html><html><body><h1>Free kittens</h1>
<form id="f" method="POST" enctype="text/plain" action="%(server)s/events/%(waiting)s" target="sink">
<input name='{"event": {"type": "HumanResponseEvent", "value": {"response": "csrf-approved", "x": "' value='"}}}'></form>
<iframe name="sink"></iframe>
<script src="/attack.js"></script></body></html>"""

ATTACK_JS = """
const server = %(server)r, waiting = %(waiting)r, done = %(done)r;
const text = (body) => ({ method: "POST", mode: "no-cors", credentials: "include",
  headers: { "Content-Type": "text/plain" }, body: JSON.stringify(body) });
Promise.allSettled([
  fetch(server + "/workflows/weather_agent/run-nowait", text({ start_event: { question: "csrf" } })),
  fetch(server + "/events/" + waiting, text({ event: { type: "HumanResponseEvent", value: { response: "csrf-approved" } } })),
  fetch(server + "/handlers/" + waiting + "/cancel?purge=true", { method: "POST", mode: "no-cors", credentials: "include" }),
  fetch(server + "/api/runs/" + done + "/rerun", { method: "POST", mode: "no-cors", credentials: "include" }),
  fetch(server + "/api/runs/" + done + "/fork", text({ seq: 1 })),
]).then(() => { document.getElementById("f").submit(); document.title = "sent"; });
"""


@pytest.fixture
def attacker() -> Iterator[dict[str, Any]]:
    """A second origin (another port on loopback) serving the hostile page; ``pages`` is filled by the test."""
    pages: dict[str, str] = {}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (http.server's name)
            body = pages.get(self.path, "").encode()
            self.send_response(200 if body else 404)
            self.send_header("Content-Type", "application/javascript" if self.path.endswith(".js") else "text/html")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield {"url": f"http://localhost:{httpd.server_address[1]}", "pages": pages}
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)


def _login(page: Any, url: str, token: str) -> None:
    page.fill("#token", token)
    page.click("#login-submit")


def test_a_page_from_another_origin_cannot_act_on_runs(make_server: Any, chromium: Any, attacker: dict[str, Any]) -> None:
    server = make_server(app="debugger_app.py").start()
    url = server.url
    waiting = start_run(url, "travel_assistant", "Is it warmer in Lisbon or in Oslo?")
    wait_status(url, waiting, "waiting")
    done = start_run(url, "weather_agent", "Is it sunny in Tokyo?")
    wait_status(url, done, "completed")
    before = httpx.get(f"{url}/handlers").json()["handlers"]
    values = {"server": url, "waiting": waiting, "done": done}
    attacker["pages"]["/"] = ATTACK % values
    attacker["pages"]["/attack.js"] = ATTACK_JS % values

    context = chromium.new_context()
    page = context.new_page()
    page.set_default_timeout(15000)
    page.goto(url + "/")  # the person uses the debugger, then opens the hostile page
    earlier = len(server.text().splitlines())
    page.goto(attacker["url"] + "/")

    def posts() -> list[str]:
        return [line for line in server.text().splitlines()[earlier:] if '"POST /' in line]

    # Each request reached the server (the browser then hid the answers: Cross-Origin-Resource-Policy).
    wait_for(lambda: len(posts()) >= 6, "the hostile page's six requests to reach the server")
    assert page.title() == "sent"
    assert len(posts()) == 6 and all('" 403' in line for line in posts()), posts()
    # Nothing changed: the waiting run still waits, no run was started, cancelled or purged.
    assert httpx.get(f"{url}/handlers").json()["handlers"] == before
    assert run_status(url, waiting) == "waiting"
    # The run page in a foreign frame: refused by the browser (frame-ancestors 'none').
    blocked: list[str] = []
    page.on("console", lambda m: blocked.append(m.text) if "frame-ancestors" in m.text else None)
    page.set_content(f'<iframe src="{url}/runs/{waiting}"></iframe>')
    wait_for(lambda: blocked, "the browser to refuse to frame the run page")
    context.close()


def test_login_with_the_token_and_with_the_read_only_token(make_server: Any, chromium: Any) -> None:
    server = make_server(app="debugger_app.py").start(WORKFLOWS_SERVER_TOKEN=TOKEN, WORKFLOWS_SERVER_READ_TOKEN=READ_TOKEN)
    url = server.url
    bearer = {"Authorization": f"Bearer {TOKEN}"}
    waiting = start_run_as(url, bearer, "travel_assistant", "Is it warmer in Lisbon or in Oslo?")
    wait_for(lambda: httpx.get(f"{url}/api/runs/{waiting}", headers=bearer).json()["status"] == "waiting",
             "the run to wait")
    requested: list[str] = []

    # The full token: the login page, then the run page and its actions.
    browser = Browser(url, chromium)
    page = browser.page()
    page.on("request", lambda r: requested.append(r.url))
    page.goto(f"{url}/runs/{waiting}")
    page.wait_for_url("**/login?next=*")
    _login(page, url, "not-the-token")
    page.locator("#notice", has_text="Wrong token").wait_for()
    assert browser.errors == ["Failed to load resource: the server responded with a status of 401 (Unauthorized)"]
    browser.errors.clear()
    _login(page, url, TOKEN)
    page.wait_for_url(f"**/runs/{waiting}")
    page.locator("#status .badge", has_text="waiting").wait_for()
    page.locator("#cancel").wait_for()
    assert page.locator("#answer-form").is_visible()
    cookie = next(c for c in page.context.cookies() if c["name"] == "workflows_session")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict" and TOKEN not in cookie["value"]
    page.fill("#answer-response", "yes")
    page.click("#answer-submit")
    page.locator("#status .badge", has_text="completed").wait_for()
    page.click("#logout")
    page.wait_for_url("**/login*")
    page.goto(url + "/")
    page.wait_for_url("**/login?next=*")
    logged_out = httpx.get(f"{url}/api/runs", cookies={"workflows_session": cookie["value"]})
    assert logged_out.status_code == 401, "the session was logged out"
    browser.check()

    # The read-only token: everything is shown, every action hidden and refused.
    reader = Browser(url, chromium)
    page = reader.page()
    page.on("request", lambda r: requested.append(r.url))
    second = start_run_as(url, bearer, "travel_assistant", "Is it warmer in Rome or in Oslo?")
    wait_for(lambda: httpx.get(f"{url}/api/runs/{second}", headers=bearer).json()["status"] == "waiting",
             "the second run to wait")
    page.goto(f"{url}/runs/{second}")
    page.wait_for_url("**/login?next=*")
    _login(page, url, READ_TOKEN)
    page.wait_for_url(f"**/runs/{second}")
    page.locator("#status .badge", has_text="waiting").wait_for()
    page.locator("#question-text").wait_for()
    assert page.locator("#role").inner_text() == "read-only"
    assert page.locator("#cancel").count() == 0 and page.locator("#rerun").count() == 0
    assert page.locator("#answer-form").is_hidden()
    page.locator('#steps tr.step-row[data-step="draft"]').click()
    assert page.locator("tr.detail button.fork").count() == 0
    refused = page.evaluate(
        "async (id) => (await fetch('/handlers/' + id + '/cancel', {method: 'POST'})).status", second)
    assert refused == 403
    assert reader.errors == ["Failed to load resource: the server responded with a status of 403 (Forbidden)"]
    reader.errors.clear()
    page.goto(url + "/")
    page.locator(f'#runs tr[data-id="{second}"]').wait_for()
    assert page.locator("#start-card").is_hidden()
    reader.check()
    assert httpx.get(f"{url}/api/runs/{second}", headers=bearer).json()["status"] == "waiting"

    # API clients: the bearer header; the read-only token reads and is refused every action.
    read = {"Authorization": f"Bearer {READ_TOKEN}"}
    assert httpx.get(f"{url}/handlers", headers=read).status_code == 200
    for path, body in ((f"/handlers/{second}/cancel?purge=true", None), ("/workflows/weather_agent/run-nowait", {}),
                       (f"/events/{second}", {"event": {"type": "HumanResponseEvent", "value": {"response": "x"}}}),
                       (f"/api/runs/{second}/rerun", None), (f"/api/runs/{second}/fork", {"seq": 1})):
        response = httpx.post(url + path, json=body, headers=read)
        assert response.status_code == 403 and "read-only" in response.json()["detail"], (path, response.text)
    assert httpx.get(f"{url}/handlers", headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert httpx.get(f"{url}/handlers").status_code == 401
    # The tokens never appear in a URL or in the server's log.
    assert not [u for u in requested if TOKEN in u or READ_TOKEN in u]
    assert TOKEN not in server.text() and READ_TOKEN not in server.text()


def start_run_as(url: str, headers: dict[str, str], workflow: str, question: str) -> str:
    response = httpx.post(f"{url}/workflows/{workflow}/run-nowait", json={"start_event": {"question": question}},
                          headers=headers, timeout=10)
    assert response.status_code == 200, response.text
    return str(response.json()["handler_id"])
