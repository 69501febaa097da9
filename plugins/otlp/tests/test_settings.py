"""How protocol, endpoint and headers of each signal are resolved from arguments and OTEL_* variables."""

from __future__ import annotations

import pytest
from workflows_otlp.settings import OTLPConfigurationError, resolve


def test_defaults_are_http_protobuf_to_localhost_4318_with_the_signal_path() -> None:
    for signal in ("traces", "metrics", "logs"):
        settings = resolve(signal, environ={})
        assert settings.protocol == "http/protobuf"
        assert settings.endpoint == f"http://localhost:4318/v1/{signal}"
        assert settings.headers == {}


def test_grpc_default_endpoint_is_localhost_4317_without_a_path() -> None:
    assert resolve("traces", protocol="grpc", environ={}).endpoint == "http://localhost:4317"


def test_base_endpoint_variable_gets_the_signal_path_over_http_and_is_kept_as_is_over_grpc() -> None:
    env = {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318/"}
    assert resolve("metrics", environ=env).endpoint == "http://collector:4318/v1/metrics"
    env = {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4317", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}
    assert resolve("metrics", environ=env).endpoint == "http://collector:4317"


def test_signal_endpoint_variable_is_used_unchanged_and_wins_over_the_base_one() -> None:
    env = {
        "OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318",
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "https://cloud.example/api/public/otel/v1/traces",
    }
    assert resolve("traces", environ=env).endpoint == "https://cloud.example/api/public/otel/v1/traces"
    assert resolve("logs", environ=env).endpoint == "http://collector:4318/v1/logs"


def test_endpoint_argument_wins_over_every_variable() -> None:
    env = {
        "OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318",
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://other:4318/v1/traces",
    }
    assert resolve("traces", endpoint="http://mine:9999", environ=env).endpoint == "http://mine:9999/v1/traces"


def test_a_traces_url_given_as_endpoint_still_serves_every_signal() -> None:
    url = "http://127.0.0.1:6006/v1/traces"
    assert resolve("traces", endpoint=url, environ={}).endpoint == url
    assert resolve("metrics", endpoint=url, environ={}).endpoint == "http://127.0.0.1:6006/v1/metrics"


def test_protocol_comes_from_the_signal_variable_before_the_general_one() -> None:
    env = {"OTEL_EXPORTER_OTLP_PROTOCOL": "grpc", "OTEL_EXPORTER_OTLP_LOGS_PROTOCOL": "http/protobuf"}
    assert resolve("traces", environ=env).protocol == "grpc"
    assert resolve("logs", environ=env).protocol == "http/protobuf"
    assert resolve("logs", protocol="GRPC", environ=env).protocol == "grpc"


def test_unsupported_protocol_names_the_setting_and_the_valid_values() -> None:
    with pytest.raises(OTLPConfigurationError) as error:
        resolve("traces", environ={"OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "http/json"})
    message = str(error.value)
    assert "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL" in message
    assert "'grpc'" in message and "'http/protobuf'" in message
    assert "no OTLP/JSON exporter" in message
    with pytest.raises(OTLPConfigurationError, match="protocol= is 'thrift'"):
        resolve("traces", protocol="thrift", environ={})


def test_header_arguments_are_merged_over_the_environment_and_lower_cased() -> None:
    env = {"OTEL_EXPORTER_OTLP_HEADERS": "Authorization=Basic%20abc,X-Team=core"}
    settings = resolve("traces", headers={"X-Team": "ml", "X-Extra": "1"}, environ=env)
    assert settings.headers == {"authorization": "Basic abc", "x-team": "ml", "x-extra": "1"}


def test_signal_headers_variable_replaces_the_general_one() -> None:
    env = {"OTEL_EXPORTER_OTLP_HEADERS": "a=1", "OTEL_EXPORTER_OTLP_METRICS_HEADERS": "b=2"}
    assert resolve("metrics", environ=env).headers == {"b": "2"}
    assert resolve("traces", environ=env).headers == {"a": "1"}
