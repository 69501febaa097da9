"""A scripted OpenAI-compatible chat server on loopback, for tests and examples.

The real ``openai`` client (and any instrumentation wrapped around it) can talk to
:class:`ScriptedOpenAIServer` exactly as it talks to the real API: the server serves
``POST /v1/chat/completions`` (plain JSON, or server-sent events when the request asks
for ``stream: true``) and ``GET /v1/models``. What it answers comes from a script of
:class:`ScriptedReply` objects consumed in order, or from a ``responder`` callable that
decides from the request. Every request is recorded so tests can assert on what the
client really sent.

Standard library only: the core package must not depend on anything else.

Example::

    with ScriptedOpenAIServer([ScriptedReply.text("Paris")]) as server:
        client = openai.OpenAI(base_url=server.base_url, api_key="test")
        client.chat.completions.create(model="gpt-test", messages=[...])
        assert server.requests[0].json["model"] == "gpt-test"
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

__all__ = [
    "RecordedRequest",
    "Responder",
    "ScriptExhaustedError",
    "ScriptedOpenAIServer",
    "ScriptedReply",
    "ScriptedToolCall",
]


@dataclass(frozen=True)
class ScriptedToolCall:
    """One function call the scripted model asks the client to make.

    ``arguments`` may be a mapping (sent as JSON) or a string sent as is, so a test can
    also script malformed arguments. ``id`` defaults to a fresh ``call_...`` id.
    """

    name: str
    arguments: Mapping[str, Any] | str = field(default_factory=dict)
    id: str | None = None

    def arguments_json(self) -> str:
        if isinstance(self.arguments, str):
            return self.arguments
        return json.dumps(dict(self.arguments))


@dataclass(frozen=True)
class ScriptedReply:
    """One assistant answer: text, tool calls, or both, with its token usage.

    When ``prompt_tokens`` or ``completion_tokens`` is left as ``None`` the server
    counts whitespace-separated words (of all request messages, and of the reply), so
    usage is deterministic without having to be spelled out in every test.
    """

    content: str | None = None
    tool_calls: tuple[ScriptedToolCall, ...] = ()
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    finish_reason: str | None = None

    @classmethod
    def text(
        cls,
        content: str,
        *,
        prompt_tokens: int | None = None,
        completion_tokens: int | None = None,
    ) -> ScriptedReply:
        """A plain text answer."""
        return cls(content=content, prompt_tokens=prompt_tokens, completion_tokens=completion_tokens)

    @classmethod
    def tool_call(
        cls,
        name: str,
        arguments: Mapping[str, Any] | str | None = None,
        *,
        id: str | None = None,
        prompt_tokens: int | None = None,
        completion_tokens: int | None = None,
    ) -> ScriptedReply:
        """An answer that asks for a single function call."""
        call = ScriptedToolCall(name=name, arguments=arguments if arguments is not None else {}, id=id)
        return cls(tool_calls=(call,), prompt_tokens=prompt_tokens, completion_tokens=completion_tokens)

    @classmethod
    def tool_calls_of(
        cls,
        calls: Iterable[ScriptedToolCall | tuple[str, Mapping[str, Any] | str]],
        *,
        prompt_tokens: int | None = None,
        completion_tokens: int | None = None,
    ) -> ScriptedReply:
        """An answer that asks for several function calls (parallel tool calls)."""
        normalized = tuple(
            call if isinstance(call, ScriptedToolCall) else ScriptedToolCall(name=call[0], arguments=call[1])
            for call in calls
        )
        return cls(tool_calls=normalized, prompt_tokens=prompt_tokens, completion_tokens=completion_tokens)


# A responder receives the decoded request body and returns the reply to send; a plain
# string is shorthand for ScriptedReply.text(...).
Responder = Callable[[dict[str, Any]], "ScriptedReply | str"]


class ScriptExhaustedError(RuntimeError):
    """The server received more requests than its script has replies."""


@dataclass(frozen=True)
class RecordedRequest:
    """A request as the server received it (header names lower-cased)."""

    method: str
    path: str
    headers: dict[str, str]
    json: Any


@dataclass(frozen=True)
class _Usage:
    prompt_tokens: int
    completion_tokens: int

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def as_dict(self) -> dict[str, int]:
        return {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "total_tokens": self.total_tokens,
        }


class ScriptedOpenAIServer:
    """An OpenAI-compatible HTTP server on 127.0.0.1 that answers from a script.

    ``script`` is consumed in order, one reply per chat completion request (strings
    are text replies). ``responder``, when given, is asked first whenever the script is
    empty, so a test can mix fixed replies with rule-based behaviour. A request that
    finds neither gets HTTP 500 with a message saying the script is exhausted (the
    ``openai`` client retries 5xx answers unless built with ``max_retries=0``).

    Use as a context manager, or call :meth:`start` and :meth:`stop`.
    """

    def __init__(
        self,
        script: Iterable[ScriptedReply | str] = (),
        *,
        responder: Responder | None = None,
        models: Iterable[str] = ("scripted-model",),
    ) -> None:
        self._script: deque[ScriptedReply] = deque(_as_reply(item) for item in script)
        self.responder = responder
        self.models = list(models)
        self._requests: list[RecordedRequest] = []
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- script -------------------------------------------------------------------------

    def add_reply(self, reply: ScriptedReply | str) -> None:
        """Append one reply to the end of the script."""
        with self._lock:
            self._script.append(_as_reply(reply))

    def add_replies(self, replies: Iterable[ScriptedReply | str]) -> None:
        """Append several replies to the end of the script."""
        with self._lock:
            self._script.extend(_as_reply(item) for item in replies)

    @property
    def remaining(self) -> int:
        """How many scripted replies have not been served yet."""
        with self._lock:
            return len(self._script)

    @property
    def requests(self) -> list[RecordedRequest]:
        """A copy of every request received so far, in arrival order."""
        with self._lock:
            return list(self._requests)

    @property
    def chat_requests(self) -> list[dict[str, Any]]:
        """The JSON bodies of the chat completion requests received so far."""
        return [r.json for r in self.requests if r.path.endswith("/chat/completions")]

    # -- lifecycle ----------------------------------------------------------------------

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("ScriptedOpenAIServer is not started; call start() or use it as a context manager")
        return int(self._server.server_address[1])

    @property
    def base_url(self) -> str:
        """The URL to give ``openai.OpenAI(base_url=...)``, ending in ``/v1``."""
        return f"http://127.0.0.1:{self.port}/v1"

    def start(self) -> ScriptedOpenAIServer:
        if self._server is not None:
            raise RuntimeError("ScriptedOpenAIServer is already started")
        self._server = _HTTPServer(("127.0.0.1", 0), _make_handler(self))
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"scripted-openai:{self.port}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and join the server thread and every request thread."""
        server, thread = self._server, self._thread
        self._server, self._thread = None, None
        if server is None:
            return
        server.shutdown()
        server.server_close()
        if thread is not None:
            thread.join()

    def __enter__(self) -> ScriptedOpenAIServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # -- request handling (called from request threads) ----------------------------------

    def _record(self, request: RecordedRequest) -> None:
        with self._lock:
            self._requests.append(request)

    def _next_reply(self, body: dict[str, Any]) -> ScriptedReply:
        with self._lock:
            if self._script:
                return self._script.popleft()
        if self.responder is not None:
            return _as_reply(self.responder(body))
        served = len(self.chat_requests) - 1
        raise ScriptExhaustedError(
            f"ScriptedOpenAIServer script is exhausted: request #{served + 1} arrived after "
            f"{served} scripted replies were served; add replies with add_reply() or pass a responder="
        )


def _as_reply(item: ScriptedReply | str) -> ScriptedReply:
    if isinstance(item, ScriptedReply):
        return item
    if isinstance(item, str):
        return ScriptedReply.text(item)
    raise TypeError(f"a scripted reply must be a ScriptedReply or a str, got {type(item).__name__}")


class _HTTPServer(ThreadingHTTPServer):
    # Request threads are joined on close (the handler speaks HTTP/1.0, so every
    # connection ends with its response and the join cannot hang on an idle client).
    daemon_threads = False
    block_on_close = True


def _make_handler(owner: ScriptedOpenAIServer) -> type[BaseHTTPRequestHandler]:
    class Handler(_ChatHandler):
        server_owner = owner

    return Handler


class _ChatHandler(BaseHTTPRequestHandler):
    server_owner: ScriptedOpenAIServer
    protocol_version = "HTTP/1.0"
    timeout = 30  # a stuck client must not keep a request thread alive forever

    def log_message(self, format: str, *args: Any) -> None:
        pass  # keep test output clean

    def do_GET(self) -> None:
        self.server_owner._record(RecordedRequest("GET", self.path, _lower(self.headers.items()), None))
        if self.path.rstrip("/") == "/v1/models":
            data = [
                {"id": m, "object": "model", "created": 0, "owned_by": "scripted"} for m in self.server_owner.models
            ]
            self._send_json(200, {"object": "list", "data": data})
        else:
            self._send_error(404, f"no route for GET {self.path}", "not_found")

    def do_POST(self) -> None:
        length = int(self.headers.get("content-length") or 0)
        raw = self.rfile.read(length) if length else b""
        error: str | None
        try:
            body = json.loads(raw or b"null")
        except json.JSONDecodeError as exc:
            body = None
            error = f"request body is not JSON: {exc}"
        else:
            error = None
        self.server_owner._record(RecordedRequest("POST", self.path, _lower(self.headers.items()), body))
        if self.path.rstrip("/") != "/v1/chat/completions":
            self._send_error(404, f"no route for POST {self.path}; only /v1/chat/completions is served", "not_found")
            return
        if error is not None or not isinstance(body, dict):
            self._send_error(400, error or "request body must be a JSON object", "invalid_request_error")
            return
        try:
            reply = self.server_owner._next_reply(body)
        except Exception as exc:  # an exhausted script or a failing responder
            self._send_error(500, str(exc), "server_error")
            return
        completion_id = f"chatcmpl-{uuid.uuid4().hex[:24]}"
        model = str(body.get("model") or "scripted-model")
        usage = _usage_for(reply, body)
        if body.get("stream"):
            include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
            self._send_stream(_stream_chunks(reply, completion_id, model, usage, include_usage))
        else:
            self._send_json(200, _completion(reply, completion_id, model, usage))

    def _send_json(self, status: int, payload: Any) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _send_error(self, status: int, message: str, error_type: str) -> None:
        self._send_json(status, {"error": {"message": message, "type": error_type, "param": None, "code": None}})

    def _send_stream(self, chunks: list[dict[str, Any]]) -> None:
        self.send_response(200)
        self.send_header("content-type", "text/event-stream")
        self.send_header("cache-control", "no-cache")
        self.end_headers()
        for chunk in chunks:
            self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
        self.wfile.write(b"data: [DONE]\n\n")
        self.wfile.flush()


def _lower(items: Iterable[tuple[str, str]]) -> dict[str, str]:
    return {key.lower(): value for key, value in items}


def _word_count(text: str | None) -> int:
    return len(text.split()) if text else 0


def _usage_for(reply: ScriptedReply, body: dict[str, Any]) -> _Usage:
    prompt = reply.prompt_tokens
    if prompt is None:
        prompt = max(1, sum(_word_count(_message_text(m)) for m in body.get("messages") or []))
    completion = reply.completion_tokens
    if completion is None:
        words = _word_count(reply.content) + sum(1 + _word_count(call.arguments_json()) for call in reply.tool_calls)
        completion = max(1, words)
    return _Usage(prompt, completion)


def _message_text(message: Any) -> str:
    if not isinstance(message, dict):
        return ""
    content = message.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # content parts: [{"type": "text", "text": ...}, ...]
        return " ".join(str(part.get("text", "")) for part in content if isinstance(part, dict))
    return ""


def _finish_reason(reply: ScriptedReply) -> str:
    if reply.finish_reason:
        return reply.finish_reason
    return "tool_calls" if reply.tool_calls else "stop"


def _tool_call_ids(reply: ScriptedReply) -> list[str]:
    return [call.id or f"call_{uuid.uuid4().hex[:24]}" for call in reply.tool_calls]


def _completion(reply: ScriptedReply, completion_id: str, model: str, usage: _Usage) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": reply.content, "refusal": None}
    if reply.tool_calls:
        message["tool_calls"] = [
            {"id": call_id, "type": "function", "function": {"name": call.name, "arguments": call.arguments_json()}}
            for call, call_id in zip(reply.tool_calls, _tool_call_ids(reply))
        ]
    return {
        "id": completion_id,
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "message": message, "finish_reason": _finish_reason(reply), "logprobs": None}],
        "usage": usage.as_dict(),
    }


def _stream_chunks(
    reply: ScriptedReply, completion_id: str, model: str, usage: _Usage, include_usage: bool
) -> list[dict[str, Any]]:
    created = int(time.time())

    def chunk(delta: dict[str, Any], finish_reason: str | None = None) -> dict[str, Any]:
        payload: dict[str, Any] = {
            "id": completion_id,
            "object": "chat.completion.chunk",
            "created": created,
            "model": model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason, "logprobs": None}],
        }
        if include_usage:
            payload["usage"] = None
        return payload

    chunks = [chunk({"role": "assistant", "content": ""})]
    # Text arrives word by word, as a real model would stream it.
    for piece in _split_keeping_spaces(reply.content or ""):
        chunks.append(chunk({"content": piece}))
    for index, (call, call_id) in enumerate(zip(reply.tool_calls, _tool_call_ids(reply))):
        header = {"index": index, "id": call_id, "type": "function", "function": {"name": call.name, "arguments": ""}}
        chunks.append(chunk({"tool_calls": [header]}))
        chunks.append(chunk({"tool_calls": [{"index": index, "function": {"arguments": call.arguments_json()}}]}))
    chunks.append(chunk({}, _finish_reason(reply)))
    if include_usage:
        chunks.append(
            {
                "id": completion_id,
                "object": "chat.completion.chunk",
                "created": created,
                "model": model,
                "choices": [],
                "usage": usage.as_dict(),
            }
        )
    return chunks


def _split_keeping_spaces(text: str) -> list[str]:
    pieces: list[str] = []
    for word in text.split(" "):
        pieces.append(word if not pieces else " " + word)
    return [p for p in pieces if p]
