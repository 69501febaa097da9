"""otel-workflows-server: serve workflows over HTTP with durable runs.

``WorkflowServer`` serves workflows over the API llama-agents-client speaks, and keeps
every run in a store (SQLite by default) so that it survives a crash of its process.
``DurableRuntime`` gives the same durability to workflows run from a script.
"""

from workflows_server.durable import DurableRuntime
from workflows_server.server import WorkflowServer
from workflows_server.settings import ServerSettings
from workflows_server.store import RunStore, SqliteStore, StoreError, open_store

__all__ = ["DurableRuntime", "RunStore", "ServerSettings", "SqliteStore", "StoreError", "WorkflowServer", "open_store"]
