"""Naming and importing classes by qualified name (a compatibility module).

LlamaIndex's ``llama_index.core.workflow.utils`` re-exports these two helpers from here,
as it did from LlamaIndex Workflows. They are thin wrappers over the helpers the
serializers use (``workflows.events.qualified_name`` / ``import_qualified_name``).
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

from workflows.events import import_qualified_name


def get_qualified_name(value: Any) -> str:
    """``module.ClassName`` of ``value``'s class (``value.__module__`` plus its class name).

    Raises ``AttributeError`` naming the object when it has no ``__module__``.
    """
    try:
        return value.__module__ + "." + value.__class__.__name__
    except AttributeError as exc:
        raise AttributeError(f"Object {value} does not have required attributes: {exc}") from exc


def import_module_from_qualified_name(qualified_name: str) -> Any:
    """Import and return the object named ``pkg.module.Name`` (also ``pkg.module.Outer.Inner``).

    Errors are the reference's: ``ValueError`` for a name without a dot, ``ImportError``
    (``Failed to import module ...``) when the module part cannot be imported, and
    ``AttributeError`` (``Attribute ... not found in module ...``) when it lacks the name.
    """
    if not isinstance(qualified_name, str) or "." not in qualified_name:
        raise ValueError("Qualified name must be in format 'module.attribute'")
    try:
        return import_qualified_name(qualified_name)
    except ImportError:
        pass  # reported as the reference does, for the name's last dot
    module_name, _, attribute = qualified_name.rpartition(".")
    try:
        module = import_module(module_name)
    except ImportError as exc:
        raise ImportError(f"Failed to import module {module_name}: {exc}") from exc
    try:
        return getattr(module, attribute)
    except AttributeError as exc:
        raise AttributeError(f"Attribute {attribute} not found in module {module_name}: {exc}") from exc


__all__ = ["get_qualified_name", "import_module_from_qualified_name"]
