"""The server's runs: the service the routes call, the runs held in memory, and where runs go.

- ``service``: ``RunService``, every command and query the HTTP routes and the debugger use;
- ``live``: ``LiveRuns``, the runs this process holds in memory, their locks and tasks;
- ``placement``: ``Placement``, what differs between ``local`` (a store of its own) and
  ``replicas`` (several processes on one PostgreSQL);
- ``health``: ``StoreHealth``, whether the store writes now, and the recovery of runs a failed write stranded;
- ``hub``, ``tasks``, ``errors``: wake-ups, owned background tasks, refusals.
"""

from workflows_server.runs.errors import RunConflict, RunNotFound, StoreUnavailable
from workflows_server.runs.live import LiveRuns
from workflows_server.runs.service import RunService

__all__ = ["LiveRuns", "RunConflict", "RunNotFound", "RunService", "StoreUnavailable"]
