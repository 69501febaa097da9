"""Durable runs: the journal writer of a run on a store, and the runtime that continues runs from it.

No HTTP and no replicas here: the workflow server's ``runs`` package builds on this, and
a script can use ``DurableRuntime`` directly.
"""

from workflows_server.durable.journal import RecordListener, StoreJournal
from workflows_server.durable.runtime import DurableRuntime, Rebuilt

__all__ = ["DurableRuntime", "Rebuilt", "RecordListener", "StoreJournal"]
