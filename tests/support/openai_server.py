"""The ``openai_server`` fixture: a started :class:`ScriptedOpenAIServer`, stopped afterwards.

Script it inside the test (``openai_server.add_reply(...)`` or
``openai_server.responder = ...``) and point the real ``openai`` client at
``openai_server.base_url``.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from workflows.testing.openai_server import ScriptedOpenAIServer


@pytest.fixture
def openai_server() -> Iterator[ScriptedOpenAIServer]:
    with ScriptedOpenAIServer() as server:
        yield server
