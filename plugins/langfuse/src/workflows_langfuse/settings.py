"""Where and how to reach Langfuse: keys, base URL and OTLP endpoint, from arguments or
Langfuse's usual environment variables (the names its own SDK reads)."""

from __future__ import annotations

import base64
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import urlparse

from langfuse import __version__ as langfuse_version

PUBLIC_KEY_VAR = "LANGFUSE_PUBLIC_KEY"
SECRET_KEY_VAR = "LANGFUSE_SECRET_KEY"
BASE_URL_VAR = "LANGFUSE_BASE_URL"
HOST_VAR = "LANGFUSE_HOST"  # the SDK's older name for the base URL, still honoured
ENVIRONMENT_VAR = "LANGFUSE_TRACING_ENVIRONMENT"
RELEASE_VAR = "LANGFUSE_RELEASE"
TIMEOUT_VAR = "LANGFUSE_TIMEOUT"
SAMPLE_RATE_VAR = "LANGFUSE_SAMPLE_RATE"
TRACING_ENABLED_VAR = "LANGFUSE_TRACING_ENABLED"
EXPORT_PATH_VAR = "LANGFUSE_OTEL_TRACES_EXPORT_PATH"

DEFAULT_BASE_URL = "https://cloud.langfuse.com"
DEFAULT_EXPORT_PATH = "api/public/otel/v1/traces"
DEFAULT_TIMEOUT_SECONDS = 5.0
# Selects Langfuse's real-time ingestion path; without it Langfuse Cloud delays spans.
INGESTION_VERSION = "4"


class LangfuseConfigurationError(ValueError):
    """The Langfuse plugin was given missing or invalid settings."""


@dataclass(frozen=True)
class LangfuseSettings:
    """Resolved settings: what ``register()`` sends where, and with which credentials."""

    public_key: str
    secret_key: str = field(repr=False)
    base_url: str
    endpoint: str
    timeout: float
    environment: str | None = None
    release: str | None = None
    sample_rate: float = 1.0
    tracing_enabled: bool = True
    additional_headers: Mapping[str, str] = field(default_factory=dict, repr=False)

    @property
    def headers(self) -> dict[str, str]:
        """The HTTP headers of every export: Basic auth with the key pair, plus Langfuse's own."""
        credentials = base64.b64encode(f"{self.public_key}:{self.secret_key}".encode()).decode("ascii")
        return {
            "Authorization": f"Basic {credentials}",
            "x-langfuse-public-key": self.public_key,
            "x-langfuse-sdk-name": "python",
            "x-langfuse-sdk-version": langfuse_version,
            "x-langfuse-ingestion-version": INGESTION_VERSION,
            **self.additional_headers,
        }


def resolve(
    public_key: str | None = None,
    secret_key: str | None = None,
    host: str | None = None,
    *,
    environment: str | None = None,
    release: str | None = None,
    timeout: float | None = None,
    sample_rate: float | None = None,
    additional_headers: Mapping[str, str] | None = None,
    environ: Mapping[str, str] | None = None,
) -> LangfuseSettings:
    """Fill what the arguments leave out from the environment and check it.

    Raises ``LangfuseConfigurationError`` naming the variable to set when a key is
    missing, and explaining the expected form when the host, timeout or sample rate
    is not usable.
    """
    env = os.environ if environ is None else environ
    public_key = public_key or env.get(PUBLIC_KEY_VAR) or None
    secret_key = secret_key or env.get(SECRET_KEY_VAR) or None
    missing = [name for name, value in ((PUBLIC_KEY_VAR, public_key), (SECRET_KEY_VAR, secret_key)) if not value]
    if missing:
        raise LangfuseConfigurationError(
            f"Langfuse credentials are missing: set {' and '.join(missing)} (or pass "
            f"{' and '.join(_argument_for(name) for name in missing)} to workflows_langfuse.register()). "
            "Both keys are in your Langfuse project's settings, under API keys "
            f"(pk-lf-... and sk-lf-...); for a self-hosted Langfuse also set {BASE_URL_VAR}."
        )
    assert public_key is not None and secret_key is not None
    base_url = _base_url(host or env.get(BASE_URL_VAR) or env.get(HOST_VAR) or DEFAULT_BASE_URL)
    export_path = (env.get(EXPORT_PATH_VAR) or DEFAULT_EXPORT_PATH).strip("/")
    return LangfuseSettings(
        public_key=public_key,
        secret_key=secret_key,
        base_url=base_url,
        endpoint=f"{base_url}/{export_path}",
        timeout=_timeout(timeout, env.get(TIMEOUT_VAR)),
        environment=environment or env.get(ENVIRONMENT_VAR) or None,
        release=release or env.get(RELEASE_VAR) or None,
        sample_rate=_sample_rate(sample_rate, env.get(SAMPLE_RATE_VAR)),
        tracing_enabled=env.get(TRACING_ENABLED_VAR, "true").strip().lower() not in ("false", "0", "no"),
        additional_headers=dict(additional_headers or {}),
    )


def _argument_for(variable: str) -> str:
    return "public_key=" if variable == PUBLIC_KEY_VAR else "secret_key="


def _base_url(raw: str) -> str:
    url = raw.strip().rstrip("/")
    parsed = urlparse(url)
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise LangfuseConfigurationError(
            f"Langfuse host {raw!r} is not a URL: give the base URL of your Langfuse, such as "
            f"{DEFAULT_BASE_URL} or http://localhost:3000 (host= or {BASE_URL_VAR})"
        )
    return url


def _timeout(given: float | None, raw: str | None) -> float:
    if given is None and raw:
        try:
            given = float(raw)
        except ValueError:
            raise LangfuseConfigurationError(f"{TIMEOUT_VAR}={raw!r} is not a number of seconds") from None
    timeout = DEFAULT_TIMEOUT_SECONDS if given is None else float(given)
    if timeout <= 0:
        raise LangfuseConfigurationError(
            f"the Langfuse export timeout must be a positive number of seconds, got {timeout}"
        )
    return timeout


def _sample_rate(given: float | None, raw: str | None) -> float:
    if given is None and raw:
        try:
            given = float(raw)
        except ValueError:
            raise LangfuseConfigurationError(f"{SAMPLE_RATE_VAR}={raw!r} is not a number between 0 and 1") from None
    rate = 1.0 if given is None else float(given)
    if not 0.0 <= rate <= 1.0:
        raise LangfuseConfigurationError(f"the Langfuse sample rate must be between 0 and 1, got {rate}")
    return rate
