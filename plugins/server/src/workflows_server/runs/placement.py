"""``Placement``: where the server's runs go: this process alone, or the replicas sharing a store.

``RunService`` asks its placement the few questions whose answer differs between a
server with a store of its own (``LocalPlacement``) and replicas on one PostgreSQL
(``ReplicaPlacement``): which runs to continue at start, whether a new run runs here,
where an event for a run goes, how a run this process does not hold is cancelled, and
what a run's task that ended means.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

from workflows.events import Event
from workflows.handler import WorkflowHandler
from workflows_server.runs.live import Stranded
from workflows_server.store import HandlerRow


class Placement(ABC):
    poll_seconds: float | None = None
    """How long a request waits on a notification before reading the store again (``None``: it
    never needs to, every write of a run is seen in this process)."""

    @abstractmethod
    async def start(self) -> None:
        """Take up the runs the store holds as running (after a crash or a restart)."""

    @abstractmethod
    async def stop(self) -> None:
        """Stop looking for work (before the live runs are let go of)."""

    @abstractmethod
    async def let_go(self) -> None:
        """After the live runs were let go of: hand them to whoever continues them."""

    @abstractmethod
    async def create(self, row: HandlerRow, base: dict[str, Any]) -> bool:
        """Write a new run's row and base snapshot; whether this process runs it now (else another
        replica will). ``HandlerExists`` if its id is taken."""

    @abstractmethod
    async def run_here(self, handler_id: str) -> bool:
        """A run's row was written again (restarted): whether this process runs it now (else another replica will)."""

    @abstractmethod
    async def ended(self, handler_id: str, handler: WorkflowHandler, concluded: bool) -> None:
        """A live run's task ended (the server is not stopping): record an end it left unrecorded
        (``concluded``: its end is stored, there is none to record)."""

    @abstractmethod
    def holds(self, handler_id: str) -> bool:
        """Whether an event for the run is delivered by this process (else ``send_elsewhere``)."""

    async def send_elsewhere(self, handler_id: str, event: Event, step: str | None) -> None:
        """Deliver an event to a run another process holds (or will continue)."""
        raise NotImplementedError

    @abstractmethod
    async def cancel_unheld(self, handler_id: str) -> None:
        """Cancel a running run that this process does not hold in memory."""

    @abstractmethod
    async def recover(self, handler_id: str, stranded: Stranded) -> None:
        """The store writes again: carry on with a run a store failure stranded (``StoreError`` if it fails again)."""

    def may_release(self, handler_id: str) -> bool:
        """Whether an idle run may be let go of now."""
        return True


__all__ = ["Placement"]
