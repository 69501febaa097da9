"""``from workflows.client import WorkflowClient``, as LlamaIndex Workflows 2.x code writes it.

The reference re-exports ``llama_agents.client.WorkflowClient`` here (deprecated upstream in
favour of importing it from ``llama_agents.client``); so does this module. The client talks
to ``workflows.server.WorkflowServer`` (``otel-workflows-server``) over HTTP. Install
``llama-agents-client`` with ``--no-deps``: its own requirement on ``llama-index-workflows``
would replace this engine's ``workflows`` (see docs/compatibility.md).
"""

from __future__ import annotations

import warnings

warnings.warn(
    "Importing from 'workflows.client' is deprecated: import WorkflowClient from 'llama_agents.client' instead.",
    DeprecationWarning,
    stacklevel=2,
)

try:
    # llama-agents-client ships no py.typed; without it installed the import is not found at all.
    from llama_agents.client import WorkflowClient  # type: ignore[import-untyped, import-not-found, unused-ignore]
except ImportError as exc:  # an optional package
    raise ImportError(
        "workflows.client needs the llama-agents-client package: "
        "pip install --no-deps llama-agents-client (and its requirements other than llama-index-workflows)"
    ) from exc

__all__ = ["WorkflowClient"]
