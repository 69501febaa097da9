"""``from workflows.server import WorkflowServer``, as LlamaIndex Workflows 2.x code writes it.

The reference re-exports its separate server package here (deprecated upstream in favour of
importing that package directly). This engine's HTTP server is ``otel-workflows-server``
(``plugins/server``, import ``workflows_server``): it serves the API ``llama-agents-client``
speaks, with durable runs. This module re-exports its ``WorkflowServer``
(``add_workflow(name, workflow)``, ``await serve(host, port)``) so that such code runs
unchanged. The reference's store classes (``AbstractWorkflowStore``, ``SqliteWorkflowStore``,
``PersistentHandler``, ``HandlerQuery``) are not provided: the server's stores are
``workflows_server.store`` (see docs/server.md).
"""

from __future__ import annotations

import warnings

warnings.warn(
    "Importing from 'workflows.server' is deprecated: import WorkflowServer from 'workflows_server' "
    "(the otel-workflows-server package) instead.",
    DeprecationWarning,
    stacklevel=2,
)

try:
    from workflows_server import WorkflowServer
except ImportError as exc:  # the plugin is an optional package
    raise ImportError(
        "workflows.server needs the otel-workflows-server package (plugins/server of otel-workflows): "
        "pip install otel-workflows-server, then import WorkflowServer from workflows_server"
    ) from exc

__all__ = ["WorkflowServer"]
