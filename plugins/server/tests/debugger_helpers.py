"""Driving the debugger in headless Chromium against a real server process.

``Browser.page()`` opens a page that records every console error and every request
that leaves the server's origin; ``Browser.check()`` fails the test if there was any
(the debugger works offline and makes no request outside its server).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from server_helpers import wait_for

CHROMIUM = Path("/usr/bin/chromium")
BROWSER_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"]

needs_chromium = pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian's chromium is not installed (scripts/setup.sh --test)")


@dataclass
class Browser:
    base_url: str
    browser: Any
    errors: list[str] = field(default_factory=list)
    outside: list[str] = field(default_factory=list)

    def page(self) -> Any:
        page = self.browser.new_page(viewport={"width": 1360, "height": 900})
        page.set_default_timeout(15000)
        page.on("console", lambda message: self.errors.append(message.text) if message.type == "error" else None)
        page.on("pageerror", lambda error: self.errors.append(f"page error: {error}"))
        page.on("request", self._request)
        return page

    def _request(self, request: Any) -> None:
        url = request.url
        if not (url.startswith(self.base_url + "/") or url.startswith("data:") or url == self.base_url):
            self.outside.append(url)

    def check(self) -> None:
        assert not self.errors, f"console errors: {self.errors}"
        assert not self.outside, f"requests outside the server: {self.outside}"


def start_run(url: str, workflow: str, question: str, **body: Any) -> str:
    response = httpx.post(
        f"{url}/workflows/{workflow}/run-nowait", json={"start_event": {"question": question}, **body}, timeout=10
    )
    assert response.status_code == 200, response.text
    return str(response.json()["handler_id"])


def waiting_run(url: str) -> str:
    """A run of the example's travel assistant, waiting for its reviewer's answer."""
    handler_id = start_run(url, "travel_assistant", "Is it warmer in Lisbon or in Oslo?")
    wait_status(url, handler_id, "waiting")
    return handler_id


def open_run(browser: Browser, handler_id: str, status: str) -> Any:
    """A new page on the run's page, once it shows the run with ``status``."""
    page = browser.page()
    page.goto(f"{browser.base_url}/runs/{handler_id}")
    page.locator("#status .badge", has_text=status).wait_for()
    return page


def run_status(url: str, handler_id: str) -> str:
    return str(httpx.get(f"{url}/api/runs/{handler_id}", timeout=10).json()["status"])


def wait_status(url: str, handler_id: str, status: str) -> None:
    wait_for(lambda: run_status(url, handler_id) == status, f"run {handler_id} to be {status}")


def answer(url: str, handler_id: str, text: str) -> None:
    response = httpx.post(
        f"{url}/events/{handler_id}", json={"event": {"type": "HumanResponseEvent", "value": {"response": text}}}, timeout=10
    )
    assert response.status_code == 200, response.text
