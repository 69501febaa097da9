"""Fixtures of the Phoenix plugin's tests.

The Phoenix server itself (``phoenix_server``, one per test session) and the REST
readers come from ``tests/support/phoenix.py``; here each test gets a project of its
own and a tracer provider registered by the plugin, shut down afterwards.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import workflows_phoenix
from support.phoenix import PhoenixProject, PhoenixServer, unique_project_name


@pytest.fixture
def phoenix_project(phoenix_server: PhoenixServer) -> Iterator[PhoenixProject]:
    """The plugin registered (without touching the global provider) for a fresh project."""
    name = unique_project_name("wf")
    provider = workflows_phoenix.register(name, endpoint=phoenix_server.base_url, set_global=False)
    try:
        yield PhoenixProject(phoenix_server, name, provider)
    finally:
        provider.shutdown()
