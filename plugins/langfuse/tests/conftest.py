"""Fixtures of the Langfuse plugin's tests: a capture receiver standing in for Langfuse.

Langfuse's server cannot run here, so the plugin sends to the shared ``OTLPReceiver``
(from ``tests/support``), which records the path, headers and decoded OTLP body of
every export. Each test gets fresh keys and the Langfuse SDK's per-key singleton is
reset afterwards, so no client leaks from one test into the next.
"""

from __future__ import annotations

import pathlib
import sys
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import workflows_langfuse
from langfuse._client.resource_manager import LangfuseResourceManager
from support.otlp_receiver import OTLPReceiver
from workflows_langfuse import LangfuseSetup

Register = Callable[..., LangfuseSetup]

# The test modules import the sample workflows that sit next to them.
sys.path.insert(0, str(pathlib.Path(__file__).parent))


@pytest.fixture(autouse=True)
def _no_langfuse_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests pass settings explicitly; variables of the machine must not leak in."""
    for name in (
        "LANGFUSE_PUBLIC_KEY",
        "LANGFUSE_SECRET_KEY",
        "LANGFUSE_BASE_URL",
        "LANGFUSE_HOST",
        "LANGFUSE_TRACING_ENABLED",
        "LANGFUSE_TRACING_ENVIRONMENT",
        "LANGFUSE_RELEASE",
        "LANGFUSE_SAMPLE_RATE",
        "LANGFUSE_TIMEOUT",
        "LANGFUSE_OTEL_TRACES_EXPORT_PATH",
        "WORKFLOWS_EXPORTERS",
    ):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def keys() -> tuple[str, str]:
    """A fresh key pair: the SDK keeps one client per public key."""
    suffix = uuid.uuid4().hex[:12]
    return f"pk-lf-{suffix}", f"sk-lf-{suffix}"


@pytest.fixture
def register_langfuse(keys: tuple[str, str], otlp_receiver: OTLPReceiver) -> Iterator[Register]:
    """``register(**overrides)`` aimed at the receiver with a private provider; every
    setup made is shut down after the test and the SDK's singletons are reset."""
    setups: list[LangfuseSetup] = []

    def register(**overrides: Any) -> LangfuseSetup:
        arguments: dict[str, Any] = {
            "public_key": keys[0],
            "secret_key": keys[1],
            "host": otlp_receiver.endpoint,
            "set_global": False,
            **overrides,
        }
        setup = workflows_langfuse.register(**arguments)
        setups.append(setup)
        return setup

    yield register
    for setup in setups:
        setup.shutdown()
    LangfuseResourceManager.reset()


@pytest.fixture
def langfuse(register_langfuse: Register) -> LangfuseSetup:
    """The plugin registered against the receiver, with default settings."""
    return register_langfuse()
