"""What the run service refuses with: the routes turn each into its HTTP status."""


class RunNotFound(LookupError):
    """No handler with this id (404)."""


class RunConflict(RuntimeError):
    """The request does not fit the run's state: finished, already running, not served here (409)."""


__all__ = ["RunConflict", "RunNotFound"]
