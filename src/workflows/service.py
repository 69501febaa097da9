"""Named workflows attached to another workflow (a deprecated compatibility module).

LlamaIndex Workflows 1.x let a workflow hold other workflows as "services";
``llama_index.core.workflow.service`` still re-exports ``ServiceManager`` and
``ServiceNotFoundError`` from here. Nothing in this engine uses them: a workflow calls
another one by running it from a step (``await other.run(...)``), which traces it as a
child run. Building a ``ServiceManager`` warns with ``DeprecationWarning``.
"""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from workflows.workflow import Workflow


class ServiceNotFoundError(Exception):
    """``ServiceManager.get`` was asked for a name that was never added (and no default)."""


class ServiceManager:
    """A registry of workflows by name (deprecated: run the other workflow from a step instead)."""

    def __init__(self) -> None:
        warnings.warn(
            "ServiceManager is deprecated: run the other workflow from a step (await other.run(...)) instead",
            DeprecationWarning,
            stacklevel=2,
        )
        self._services: dict[str, Workflow] = {}

    def get(self, name: str, default: Workflow | None = None) -> Workflow:
        """The workflow added as ``name``, else ``default``; raises ``ServiceNotFoundError``
        naming the known services when there is neither."""
        service = self._services.get(name)
        if service is not None:
            return service
        if default is not None:
            return default
        known = ", ".join(sorted(self._services)) or "none"
        raise ServiceNotFoundError(f"Service {name} not found (known services: {known})")

    def add(self, name: str, service: Workflow) -> None:
        """Register ``service`` under ``name``, replacing any workflow added under it before."""
        self._services[name] = service


__all__ = ["ServiceManager", "ServiceNotFoundError"]
