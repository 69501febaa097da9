"""Naming and importing classes by qualified name (a compatibility module).

LlamaIndex's ``llama_index.core.workflow.utils`` re-exports these two helpers from here,
as it did from LlamaIndex Workflows. They are thin wrappers over the helpers the
serializers use (``workflows.events.qualified_name`` / ``import_qualified_name``).
"""

from __future__ import annotations

from typing import Any

from workflows.events import import_qualified_name


def get_qualified_name(value: Any) -> str:
    """``module.ClassName`` of ``value``'s class (``value.__module__`` plus its class name).

    Raises ``AttributeError`` naming the object when it has no ``__module__``.
    """
    try:
        return value.__module__ + "." + value.__class__.__name__
    except AttributeError as exc:
        raise AttributeError(f"Object {value!r} does not have required attributes: {exc}") from exc


def import_module_from_qualified_name(qualified_name: str) -> Any:
    """Import and return the object named ``pkg.module.Name`` (also ``pkg.module.Outer.Inner``).

    Raises ``ImportError`` when no module prefix of the name holds the rest of it.
    """
    if not isinstance(qualified_name, str) or "." not in qualified_name:
        raise ImportError(f"{qualified_name!r} is not a qualified name of the form 'package.module.Name'")
    return import_qualified_name(qualified_name)


__all__ = ["get_qualified_name", "import_module_from_qualified_name"]
