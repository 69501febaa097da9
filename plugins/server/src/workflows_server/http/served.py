"""``Served``: what the routes and the debugger use of the server that serves them.

``WorkflowServer`` is one; the routes and the debugger name this protocol, not the
server, so the server can build them without an import circle.
"""

from __future__ import annotations

from typing import Protocol

from workflows import Workflow
from workflows.events import Event
from workflows_server.durable import DurableRuntime
from workflows_server.runs import RunService
from workflows_server.settings import ServerSettings


class Served(Protocol):
    settings: ServerSettings
    workflows: dict[str, Workflow]

    @property
    def runtime(self) -> DurableRuntime: ...

    @property
    def runs(self) -> RunService: ...

    def event_classes(self, name: str) -> list[type[Event]]:
        """The event classes of workflow ``name`` that clients may send or see."""
        ...


__all__ = ["Served"]
