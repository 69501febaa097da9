"""The instrumentation scope (name and version) of the spans and metrics this package records."""

from __future__ import annotations

import functools

TRACER_NAME = "openinference.instrumentation.workflows"
"""The scope of every span. It sits under ``openinference.`` because OpenInference
attributes are what the spans carry, and because Langfuse's SDK exports spans of that
scope without extra configuration (it drops unknown scopes by default)."""

METER_NAME = "workflows"


@functools.lru_cache(maxsize=1)
def version() -> str:
    """The installed version of the ``otel-workflows`` distribution."""
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as distribution_version

    try:
        return distribution_version("otel-workflows")
    except PackageNotFoundError:
        return "0.0.0"
