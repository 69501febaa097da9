"""Turn on exporter plugins named in ``WORKFLOWS_EXPORTERS``, without code.

Each plugin distribution (``otel-workflows-phoenix``, ``otel-workflows-otlp``, ...)
declares a ``workflows.exporters`` entry point whose target is its ``register``
function. ``WORKFLOWS_EXPORTERS=phoenix,otlp`` loads those entry points and calls each
with no arguments, so every plugin configures itself from its usual environment
variables. The core never imports a plugin: it only knows the entry-point group.

Failure policy (tracing must never break a workflow):

- ``configure_exporters_from_env()`` called explicitly raises
  ``ExporterConfigurationError`` for an unknown name or a plugin whose ``register``
  fails, so a misconfiguration shows up where the user asked for it.
- The automatic set-up that runs once before the first run of the process logs the
  same problems as errors and goes on with the other exporters and the run.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Mapping
from importlib.metadata import EntryPoint, entry_points
from typing import Any

from workflows.instrumentation.dispatcher import on_first_run

ENV_VAR = "WORKFLOWS_EXPORTERS"
ENTRY_POINT_GROUP = "workflows.exporters"

logger = logging.getLogger("workflows.instrumentation.exporters")

_lock = threading.Lock()
_configured: dict[str, Any] | None = None


class ExporterConfigurationError(Exception):
    """``WORKFLOWS_EXPORTERS`` names an exporter that is not installed, or its set-up failed."""


def installed_exporters() -> dict[str, EntryPoint]:
    """The exporter plugins installed in this environment, by entry-point name."""
    return {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}


def requested_exporters(environ: Mapping[str, str] | None = None) -> list[str]:
    """The names listed in ``WORKFLOWS_EXPORTERS`` (comma separated), in order, without duplicates."""
    raw = (os.environ if environ is None else environ).get(ENV_VAR, "")
    names: list[str] = []
    for part in raw.split(","):
        name = part.strip().lower()
        if name and name not in names:
            names.append(name)
    return names


def configure_exporters_from_env(environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Call ``register()`` of every plugin named in ``WORKFLOWS_EXPORTERS``, in order.

    Returns what each ``register()`` returned, by name (use it to flush or shut the
    exporters down). Runs at most once per process, whether called by the user or by
    the automatic set-up before the first run; later calls return the first result.
    Raises ``ExporterConfigurationError`` when a name is not installed (before any
    plugin is registered) or when a plugin's ``register()`` raises.
    """
    return _configure(environ, strict=True)


def _configure(environ: Mapping[str, str] | None, *, strict: bool) -> dict[str, Any]:
    global _configured
    with _lock:
        if _configured is not None:
            return _configured
        names = requested_exporters(environ)
        if not names:
            _configured = {}
            return _configured
        available = installed_exporters()
        unknown = [name for name in names if name not in available]
        if unknown:
            _fail(strict, _unknown_message(unknown, available))
        # Recorded before registering, so that a plugin failing half-way is never
        # registered twice by a later call.
        results: dict[str, Any] = {}
        _configured = results
        for name in names:
            if name not in available:
                continue
            try:
                results[name] = available[name].load()()
            except Exception as exc:
                _fail(
                    strict,
                    f"exporter {name!r} (from {ENV_VAR}) failed to set up: {type(exc).__name__}: {exc}; "
                    f"check that plugin's settings (entry point {available[name].value})",
                    cause=exc,
                )
        return results


def _unknown_message(unknown: list[str], available: Mapping[str, EntryPoint]) -> str:
    installed = ", ".join(sorted(available)) or "none"
    return (
        f"{ENV_VAR} names exporter(s) that are not installed: {', '.join(unknown)}. "
        f"Installed exporters: {installed}. Install the plugin (for example "
        f"`pip install otel-workflows-{unknown[0]}`) or fix the name."
    )


def _fail(strict: bool, message: str, cause: Exception | None = None) -> None:
    if strict:
        raise ExporterConfigurationError(message) from cause
    logger.error("%s; workflows run on without it", message, exc_info=cause)


def _configure_before_first_run() -> None:
    _configure(None, strict=False)


on_first_run(_configure_before_first_run)
