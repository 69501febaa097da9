"""A rule-based stand-in for an LLM, so that the agent examples run offline.

``fake_model_server()`` starts ``ScriptedOpenAIServer`` (shipped in
``workflows.testing``) on 127.0.0.1: an HTTP server that speaks the OpenAI chat
completions API, so the real ``openai`` client and its instrumentation work unchanged.
Its answers come from ``respond``, which plays a weather assistant:

- asked a question, it calls ``get_weather`` once for every city the question names
  (capitalised words after the first one), all in one turn, as parallel tool calls;
- given the tools' results, it answers with them;
- asked anything else, or given no tools, it says what it can do.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from workflows.testing.openai_server import (
    ScriptedOpenAIServer,
    ScriptedReply,
    ScriptedToolCall,
)

MODEL = "scripted-model"


def respond(request: dict[str, Any]) -> ScriptedReply:
    """The fake model's answer to one chat completion request."""
    messages = request["messages"]
    last_question = max(i for i, m in enumerate(messages) if m["role"] == "user")
    results = [m["content"] for m in messages[last_question + 1 :] if m["role"] == "tool"]
    if results:
        return ScriptedReply.text("Here is the weather you asked for. " + " ".join(results))
    offers_weather = any(t["function"]["name"] == "get_weather" for t in request.get("tools") or [])
    cities = _cities_in(messages[last_question]["content"])
    if not (offers_weather and cities):
        return ScriptedReply.text("I can tell you the weather: ask me about a city, for example Paris.")
    return ScriptedReply(tool_calls=tuple(ScriptedToolCall("get_weather", {"city": c}) for c in cities))


def _cities_in(question: str) -> list[str]:
    words = re.findall(r"[A-Za-z][\w-]*", question)
    return list(dict.fromkeys(w for w in words[1:] if w[0].isupper() and w != "I"))


@contextmanager
def fake_model_server() -> Iterator[ScriptedOpenAIServer]:
    """The fake model, served on a free loopback port until the block ends."""
    with ScriptedOpenAIServer(responder=respond, models=[MODEL]) as server:
        yield server

