"""Where register() sends spans, from its arguments and Phoenix's environment variables."""

from __future__ import annotations

import pytest
from workflows_phoenix.endpoint import GRPC, HTTP, Destination, resolve_destination


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (
        "PHOENIX_COLLECTOR_ENDPOINT",
        "PHOENIX_GRPC_PORT",
        "OTEL_EXPORTER_OTLP_ENDPOINT",
    ):
        monkeypatch.delenv(name, raising=False)
    # no .env.phoenix file from the developer's folders either
    monkeypatch.setenv("PHOENIX_DISCOVER_CONFIG", "false")


def test_phoenix_base_url_is_sent_to_over_http_on_its_traces_path() -> None:
    assert resolve_destination("http://phoenix.internal:6006") == Destination(
        "http://phoenix.internal:6006/v1/traces", HTTP
    )


def test_full_traces_url_is_used_as_given() -> None:
    assert resolve_destination("https://phoenix.example.com/v1/traces/") == Destination(
        "https://phoenix.example.com/v1/traces", HTTP
    )


def test_url_without_scheme_is_taken_as_http() -> None:
    assert resolve_destination("localhost:6006") == Destination("http://localhost:6006/v1/traces", HTTP)


def test_path_prefix_is_kept_in_front_of_the_traces_path() -> None:
    # Phoenix Cloud spaces and Phoenix behind a reverse proxy live under a prefix
    assert resolve_destination("https://app.phoenix.arize.com/s/my-space") == Destination(
        "https://app.phoenix.arize.com/s/my-space/v1/traces", HTTP
    )


def test_bare_address_on_the_grpc_port_is_sent_to_over_grpc() -> None:
    assert resolve_destination("http://localhost:4317") == Destination("http://localhost:4317", GRPC)


def test_grpc_port_is_read_from_phoenix_grpc_port(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PHOENIX_GRPC_PORT", "14317")
    assert resolve_destination("http://localhost:14317").protocol == GRPC
    assert resolve_destination("http://localhost:4317").protocol == HTTP


def test_explicit_protocol_wins_over_the_guess() -> None:
    assert resolve_destination("http://collector:9000", "grpc") == Destination("http://collector:9000", GRPC)
    assert resolve_destination("http://localhost:4317", "http/protobuf") == Destination(
        "http://localhost:4317/v1/traces", HTTP
    )


def test_collector_endpoint_comes_from_the_environment_when_not_given(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PHOENIX_COLLECTOR_ENDPOINT", "http://phoenix-from-env:6006")
    assert resolve_destination() == Destination("http://phoenix-from-env:6006/v1/traces", HTTP)
    assert resolve_destination("http://argument:6006").endpoint == "http://argument:6006/v1/traces"


def test_standard_otlp_endpoint_variable_is_the_fallback(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318")
    assert resolve_destination() == Destination("http://collector:4318/v1/traces", HTTP)


def test_local_phoenix_is_the_default() -> None:
    assert resolve_destination() == Destination("http://localhost:6006/v1/traces", HTTP)


def test_unknown_protocol_is_refused_with_the_accepted_values() -> None:
    with pytest.raises(ValueError, match="'http/protobuf'.*'grpc'"):
        resolve_destination("http://localhost:6006", "http/json")


def test_endpoint_without_host_is_refused_with_an_example() -> None:
    with pytest.raises(ValueError, match="has no host.*http://localhost:6006"):
        resolve_destination("http:///v1/traces")
