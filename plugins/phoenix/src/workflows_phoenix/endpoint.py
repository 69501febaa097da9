"""Where the spans go: Phoenix's OTLP endpoint and protocol, from arguments or environment.

One rule, easy to predict: a URL is sent to over HTTP (``/v1/traces`` is appended when
missing, so Phoenix's base URL, the one its UI is on, just works), unless ``grpc`` is
asked for or the URL is a bare ``host:port`` on Phoenix's gRPC port (``PHOENIX_GRPC_PORT``,
4317 by default). When no endpoint is given, Phoenix's own settings reader supplies one
(``PHOENIX_COLLECTOR_ENDPOINT``, then ``OTEL_EXPORTER_OTLP_ENDPOINT``), else a Phoenix on
``http://localhost:6006``.

``arize-phoenix-otel`` infers the protocol too, but from a base URL without a path it
picks gRPC (or, for an explicit endpoint, posts to the bare URL and gets nothing
stored), which silently loses spans against a Phoenix on non-default ports.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal
from urllib.parse import urlparse

from phoenix.otel.settings import get_env_collector_endpoint, get_env_grpc_port

Protocol = Literal["http/protobuf", "grpc"]

HTTP: Protocol = "http/protobuf"
GRPC: Protocol = "grpc"
TRACES_PATH = "/v1/traces"
DEFAULT_BASE_URL = "http://localhost:6006"


@dataclass(frozen=True)
class Destination:
    """A resolved OTLP endpoint: the full URL for HTTP, ``scheme://host:port`` for gRPC."""

    endpoint: str
    protocol: Protocol


def resolve_destination(endpoint: str | None = None, protocol: str | None = None) -> Destination:
    """The endpoint and protocol to export to; raises ``ValueError`` on a protocol or URL
    that cannot work, naming the accepted values."""
    if protocol not in (None, HTTP, GRPC):
        raise ValueError(
            f"protocol={protocol!r} is not supported: use 'http/protobuf' (Phoenix's HTTP port, "
            "6006 by default) or 'grpc' (its gRPC port, 4317 by default), or leave it out"
        )
    url = endpoint or get_env_collector_endpoint() or DEFAULT_BASE_URL
    if "//" not in url:  # "localhost:6006": no scheme given
        url = f"http://{url}"
    parsed = urlparse(url)
    if not parsed.hostname:
        raise ValueError(
            f"endpoint {url!r} has no host: give Phoenix's URL, for example "
            "'http://localhost:6006' (or set PHOENIX_COLLECTOR_ENDPOINT)"
        )
    if protocol == GRPC or (protocol is None and _is_bare_grpc_address(parsed.path, parsed.port)):
        return Destination(parsed.geturl(), GRPC)
    path = parsed.path.rstrip("/")
    if not path.endswith(TRACES_PATH):
        path = f"{path}{TRACES_PATH}"
    return Destination(parsed._replace(path=path).geturl(), HTTP)


def _is_bare_grpc_address(path: str, port: int | None) -> bool:
    return path in ("", "/") and port == get_env_grpc_port()
