"""Hostile input is answered with a 4xx naming the field and the limit, never a 500.

The limits (documented in docs/security.md):

- handler ids: 1 to ``MAX_ID_CHARS`` characters of ``ID_ALPHABET``;
- JSON bodies: nested at most ``MAX_JSON_DEPTH`` deep, no NUL (``\\u0000``), no unpaired surrogate;
- search text: at most ``MAX_SEARCH_CHARS`` characters;
- integer parameters: within the range each one states (sequence numbers up to ``MAX_SEQUENCE``);
- NUL: refused in the path and in every query parameter (``InputCheck``).
"""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import parse_qsl

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Receive, Scope, Send

from workflows_server.http.guard.refuse import refuse, shown

ID_ALPHABET = "A-Z a-z 0-9 . _ : -"
MAX_ID_CHARS = 128
ID_PATTERN = re.compile(r"[A-Za-z0-9._:-]{1,%d}" % MAX_ID_CHARS)
MAX_JSON_DEPTH = 100
MAX_SEARCH_CHARS = 1000
MAX_SEQUENCE = 2**63 - 1
"""The largest sequence number a store can keep (a 64-bit integer column)."""

# A JSON string (with its escapes) or a bracket: strings are skipped whole, so a bracket
# inside one does not count.
_TOKENS = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"|[\[\]{}]')
_NUL_ESCAPE = re.compile(rb"(?<!\\)(?:\\\\)*\\u0000")


def check_handler_id(value: object, field: str = "handler_id") -> str:
    """``value`` if it is a handler id (1-128 of ``A-Z a-z 0-9 . _ : -``); else 400 naming ``field``."""
    if isinstance(value, str) and ID_PATTERN.fullmatch(value):
        return value
    what = f"{len(value)} characters" if isinstance(value, str) else type(value).__name__
    raise HTTPException(400, f"'{field}' must be 1 to {MAX_ID_CHARS} characters of {ID_ALPHABET} "
                             f"(letters, digits, dot, underscore, colon, hyphen), got {what}"
                        + (f": {shown(value, 40)}" if isinstance(value, str) and value else ""))


def json_problem(body: bytes) -> str | None:
    """What makes ``body`` unacceptable before it is parsed (nesting, NUL), or ``None``."""
    if b"\x00" in body:
        return "request body contains a NUL byte"
    deep = body.count(b"[") + body.count(b"{") > MAX_JSON_DEPTH
    nul = b"\\u0000" in body
    if not deep and not nul:
        return None
    depth = 0
    for match in _TOKENS.finditer(body):
        token = match.group()
        if token[:1] == b'"':
            if nul and _NUL_ESCAPE.search(token):
                return "request body contains a NUL character (\\u0000) in a string; NUL is not accepted anywhere"
        elif token in (b"[", b"{"):
            depth += 1
            if depth > MAX_JSON_DEPTH:
                return f"request body is nested more than {MAX_JSON_DEPTH} levels deep (the limit)"
        else:
            depth -= 1
    return None


def parse_json(body: bytes) -> Any:
    """The JSON value of ``body``; 400 naming the problem when it is not JSON, nested past
    ``MAX_JSON_DEPTH``, or holds a NUL or an unpaired surrogate (which no store can keep)."""
    problem = json_problem(body)
    if problem:
        raise HTTPException(400, problem)
    try:
        value = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise HTTPException(400, f"request body is not valid JSON: {exc}") from None
    except RecursionError:
        raise HTTPException(400, f"request body is nested more than {MAX_JSON_DEPTH} levels deep (the limit)") from None
    try:
        json.dumps(value, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        raise HTTPException(400, "request body contains an unpaired surrogate escape (such as \\ud800) in a string; "
                                 "send valid Unicode") from None
    return value


def integer_param(raw: str, name: str, low: int, high: int) -> int:
    """``raw`` as an integer from ``low`` to ``high``; else 400 naming ``name`` and the range."""
    text = raw.strip()
    if len(text) <= 20 and re.fullmatch(r"[+-]?[0-9]+", text):
        value = int(text)
        if low <= value <= high:
            return value
    raise HTTPException(400, f"{name} must be an integer from {low} to {high}, got {shown(raw, 40)}")


def search_text(raw: str | None, name: str) -> str | None:
    """Search text of at most ``MAX_SEARCH_CHARS`` characters (``None`` when empty); else 400."""
    if raw and len(raw) > MAX_SEARCH_CHARS:
        raise HTTPException(400, f"query parameter {name!r} is {len(raw)} characters long; the limit is "
                                 f"{MAX_SEARCH_CHARS}")
    return raw or None


class InputCheck:
    """400 for a NUL anywhere in the path or the query string, naming where."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            problem = self.problem(scope)
            if problem:
                await refuse(scope, receive, send, 400, problem)
                return
        await self.app(scope, receive, send)

    @staticmethod
    def problem(scope: Scope) -> str | None:
        if "\x00" in scope.get("path", ""):
            return "the path contains a NUL character (%00); NUL is not accepted anywhere"
        query = scope.get("query_string", b"")
        if b"%00" in query or b"\x00" in query:
            for key, value in parse_qsl(query.decode("latin-1"), keep_blank_values=True):
                if "\x00" in key or "\x00" in value:
                    return f"query parameter {shown(key.replace(chr(0), '%00'), 40)} contains a NUL character (%00); " \
                           "NUL is not accepted anywhere"
            return "the query string contains a NUL character (%00); NUL is not accepted anywhere"
        return None


__all__ = [
    "ID_ALPHABET",
    "MAX_ID_CHARS",
    "MAX_JSON_DEPTH",
    "MAX_SEARCH_CHARS",
    "MAX_SEQUENCE",
    "InputCheck",
    "check_handler_id",
    "integer_param",
    "json_problem",
    "parse_json",
    "search_text",
]
