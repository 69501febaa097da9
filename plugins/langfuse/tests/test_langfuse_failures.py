"""A Langfuse that refuses the keys or cannot be reached never breaks a workflow: the
failure is logged and counted, and the run returns its result as usual."""

from __future__ import annotations

import logging
import socket
from collections.abc import Callable

import pytest
from sample_workflows_langfuse import MyWorkflow
from support.otlp_receiver import OTLPReceiver
from workflows_langfuse import LangfuseSetup

Register = Callable[..., LangfuseSetup]


def _closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def test_langfuse_answering_401_is_logged_and_counted_not_raised(
    register_langfuse: Register, otlp_receiver: OTLPReceiver, caplog: pytest.LogCaptureFixture
) -> None:
    otlp_receiver.status = 401
    setup = register_langfuse()

    with caplog.at_level(logging.WARNING, logger="workflows_langfuse"):
        result = await MyWorkflow().run(input_msg="Hello")
        setup.force_flush()

    assert result == "Processed 1 times, data length: 5"
    assert otlp_receiver.requests and {r.status for r in otlp_receiver.requests} == {401}
    assert setup.exporter is not None
    assert setup.exporter.failed_batches >= 1
    assert setup.exporter.exported_spans == 0
    [warning] = [r for r in caplog.records if r.name == "workflows_langfuse"]
    assert setup.endpoint in warning.getMessage()
    assert "LANGFUSE_PUBLIC_KEY" in warning.getMessage()


async def test_unreachable_langfuse_is_logged_and_counted_not_raised(
    register_langfuse: Register, caplog: pytest.LogCaptureFixture
) -> None:
    setup = register_langfuse(host=f"http://127.0.0.1:{_closed_port()}", timeout=1)

    with caplog.at_level(logging.WARNING, logger="workflows_langfuse"):
        result = await MyWorkflow().run(input_msg="Hello")
        setup.force_flush()

    assert result == "Processed 1 times, data length: 5"
    assert setup.exporter is not None
    assert setup.exporter.failed_spans == 7
    assert any("could not send 7 workflow span(s)" in r.getMessage() for r in caplog.records)


async def test_export_recovers_when_langfuse_comes_back(
    register_langfuse: Register, otlp_receiver: OTLPReceiver
) -> None:
    otlp_receiver.status = 503
    setup = register_langfuse(timeout=1)
    await MyWorkflow().run(input_msg="Hello")
    setup.force_flush()
    otlp_receiver.status = 200

    await MyWorkflow().run(input_msg="Hello again")
    setup.force_flush()

    assert setup.exporter is not None
    assert setup.exporter.failed_batches >= 1
    assert setup.exporter.exported_spans == 7
    accepted = [r for r in otlp_receiver.requests if r.status == 200]
    assert accepted, "nothing was accepted after Langfuse came back"
