"""Where and how each signal is sent: arguments first, then the standard ``OTEL_*`` variables.

The OpenTelemetry Python exporters read most ``OTEL_EXPORTER_OTLP_*`` variables
themselves, but not the protocol (only auto-instrumentation does), and the two
protocols treat endpoints and headers differently (the HTTP exporter appends
``/v1/<signal>`` to the base endpoint and merges headers; the gRPC one does neither).
This module resolves protocol, endpoint and headers per signal the same way for both,
following the OTLP exporter specification:

- protocol: ``protocol=`` > ``OTEL_EXPORTER_OTLP_<SIGNAL>_PROTOCOL`` >
  ``OTEL_EXPORTER_OTLP_PROTOCOL`` > ``http/protobuf``;
- endpoint: ``endpoint=`` (a base URL; for HTTP ``/v1/<signal>`` is appended) >
  ``OTEL_EXPORTER_OTLP_<SIGNAL>_ENDPOINT`` (used as is) > ``OTEL_EXPORTER_OTLP_ENDPOINT``
  (a base URL) > ``http://localhost:4318`` (HTTP) or ``http://localhost:4317`` (gRPC);
- headers: ``OTEL_EXPORTER_OTLP_<SIGNAL>_HEADERS`` or else ``OTEL_EXPORTER_OTLP_HEADERS``,
  with ``headers=`` merged on top; names are lower-cased (gRPC metadata requires it).

Everything else (timeouts, compression, certificates, batching, export interval,
limits, sampler) is left to the SDK, which reads its own variables.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from opentelemetry.util.re import parse_env_headers

Signal = Literal["traces", "metrics", "logs"]

GRPC = "grpc"
HTTP_PROTOBUF = "http/protobuf"
PROTOCOLS = (GRPC, HTTP_PROTOBUF)
DEFAULT_PROTOCOL = HTTP_PROTOBUF
DEFAULT_HTTP_ENDPOINT = "http://localhost:4318"
DEFAULT_GRPC_ENDPOINT = "http://localhost:4317"

_SIGNAL_PATHS = ("/v1/traces", "/v1/metrics", "/v1/logs")


class OTLPConfigurationError(ValueError):
    """An argument or ``OTEL_*`` variable has a value the OTLP plugin cannot use."""


@dataclass(frozen=True)
class SignalSettings:
    """The resolved destination of one signal.

    ``endpoint`` is the full URL for ``http/protobuf`` and the receiver's address
    (``scheme://host:port``; ``http`` means plaintext) for ``grpc``.
    """

    signal: Signal
    protocol: str
    endpoint: str
    headers: dict[str, str] = field(default_factory=dict)


def resolve(
    signal: Signal,
    *,
    endpoint: str | None = None,
    protocol: str | None = None,
    headers: Mapping[str, str] | None = None,
    environ: Mapping[str, str] | None = None,
) -> SignalSettings:
    """Resolve protocol, endpoint and headers of ``signal`` from the arguments and ``environ``."""
    env = os.environ if environ is None else environ
    chosen_protocol = _resolve_protocol(signal, protocol, env)
    return SignalSettings(
        signal=signal,
        protocol=chosen_protocol,
        endpoint=_resolve_endpoint(signal, chosen_protocol, endpoint, env),
        headers=_resolve_headers(signal, headers, env),
    )


def _variable(signal: Signal, suffix: str) -> str:
    return f"OTEL_EXPORTER_OTLP_{signal.upper()}_{suffix}"


def _resolve_protocol(signal: Signal, protocol: str | None, env: Mapping[str, str]) -> str:
    source, value = "protocol=", protocol
    if value is None:
        for name in (_variable(signal, "PROTOCOL"), "OTEL_EXPORTER_OTLP_PROTOCOL"):
            if env.get(name, "").strip():
                source, value = name, env[name]
                break
    if value is None:
        return DEFAULT_PROTOCOL
    normalized = value.strip().lower()
    if normalized in PROTOCOLS:
        return normalized
    hint = (
        " The OpenTelemetry Python SDK has no OTLP/JSON exporter; use http/protobuf."
        if normalized == "http/json"
        else ""
    )
    raise OTLPConfigurationError(
        f"{source} is {value!r}; the OTLP plugin supports {' or '.join(repr(p) for p in PROTOCOLS)}.{hint}"
    )


def _resolve_endpoint(signal: Signal, protocol: str, endpoint: str | None, env: Mapping[str, str]) -> str:
    if endpoint is None:
        signal_endpoint = env.get(_variable(signal, "ENDPOINT"), "").strip()
        if signal_endpoint:
            return signal_endpoint
        endpoint = env.get("OTEL_EXPORTER_OTLP_ENDPOINT", "").strip() or None
    if endpoint is None:
        endpoint = DEFAULT_GRPC_ENDPOINT if protocol == GRPC else DEFAULT_HTTP_ENDPOINT
    if protocol == GRPC:
        return endpoint
    return f"{_base_url(endpoint)}/v1/{signal}"


def _base_url(endpoint: str) -> str:
    # A traces URL given where a base URL is expected (a common slip) still works for
    # every signal: its /v1/<signal> suffix is dropped before the signal's own is added.
    base = endpoint.rstrip("/")
    for path in _SIGNAL_PATHS:
        if base.endswith(path):
            return base[: -len(path)]
    return base


def _resolve_headers(signal: Signal, headers: Mapping[str, str] | None, env: Mapping[str, str]) -> dict[str, str]:
    raw = env.get(_variable(signal, "HEADERS")) or env.get("OTEL_EXPORTER_OTLP_HEADERS", "")
    resolved = {name.lower(): value for name, value in parse_env_headers(raw, liberal=True).items()}
    for name, value in (headers or {}).items():
        resolved[name.lower()] = value
    return resolved
