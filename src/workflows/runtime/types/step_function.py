"""The instrumentation events of a step's and a run's end (a compatibility module).

OpenInference's LlamaIndex instrumentor (``openinference-instrumentation-llama-index``)
imports ``SpanCancelledEvent``, ``WorkflowRunOutputEvent`` and ``WorkflowStepOutputEvent``
from here when it is imported, as LlamaIndex Workflows defines them in this module. They
are the classes the bridge to ``llama_index_instrumentation`` sends
(``workflows.instrumentation.llamaindex``), so handlers registered for them see ours.

They subclass ``llama_index_instrumentation``'s ``BaseEvent``: importing them needs that
package installed (``pip install otel-workflows[llamaindex]``), and raises
``ImportError`` naming it otherwise.
"""

from __future__ import annotations

from typing import Any

_NAMES = ("SpanCancelledEvent", "WorkflowRunOutputEvent", "WorkflowStepOutputEvent")


def __getattr__(name: str) -> Any:
    if name in _NAMES:
        from workflows.instrumentation import llamaindex

        try:
            return getattr(llamaindex, name)
        except ModuleNotFoundError as exc:
            raise ImportError(
                f"{name} subclasses llama_index_instrumentation's BaseEvent, which is not installed: "
                "pip install 'otel-workflows[llamaindex]' (or llama-index-instrumentation)"
            ) from exc
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_NAMES])


__all__ = list(_NAMES)  # built on access (module __getattr__)
