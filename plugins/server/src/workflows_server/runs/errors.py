"""What the run service refuses with: the routes turn each into its HTTP status."""

from workflows_server.store import StoreError


class RunNotFound(LookupError):
    """No handler with this id (404)."""


class RunConflict(RuntimeError):
    """The request does not fit the run's state: finished, already running, not served here (409)."""


class StoreUnavailable(StoreError):
    """The store cannot write now (503): the run waits at its last durable record until it can."""

    def __init__(self, cause: Exception) -> None:
        super().__init__(str(cause))


__all__ = ["RunConflict", "RunNotFound", "StoreUnavailable"]
