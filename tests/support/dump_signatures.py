"""Print, as JSON, the call signatures of a ``workflows`` distribution's public names.

Run with the python of the environment to describe, with a JSON list of
``[module, [names...]]`` pairs as its one argument. It must not import anything but the
standard library and ``workflows`` itself, so that the same script describes the
reference (``llama-index-workflows`` in a throwaway venv) and this engine.

For every name: what kind of object it is and, for callables, each parameter's name,
kind and default. For classes, also their public methods (and ``__call__``) defined
in ``workflows`` modules. Defaults are compared by ``repr``, with memory addresses
replaced by the object's type, so that ``wait=wait_fixed(5)`` compares across
processes. Annotations are left out: the two code bases spell them differently.
"""

from __future__ import annotations

import enum
import importlib
import inspect
import json
import re
import sys
from typing import Any

_ADDRESS = re.compile(r"<([\w.]+) object at 0x[0-9a-fA-F]+>")


def _default(value: Any) -> str | None:
    if value is inspect.Parameter.empty:
        return None
    if isinstance(value, type) or inspect.isfunction(value):
        return f"{value.__module__}.{value.__qualname__}"
    return _ADDRESS.sub(lambda m: f"<{m.group(1).rsplit('.', 1)[-1]}>", repr(value))


def _signature(obj: Any) -> list[dict[str, Any]] | str:
    try:
        signature = inspect.signature(obj)
    except (TypeError, ValueError) as exc:
        return f"no signature ({type(exc).__name__})"
    return [
        {"name": p.name, "kind": p.kind.name, "default": _default(p.default)}
        for p in signature.parameters.values()
    ]


def _methods(cls: type) -> dict[str, Any]:
    methods: dict[str, Any] = {}
    for name in sorted(dir(cls)):
        if name.startswith("_") and name != "__call__":
            continue
        owner = next((k for k in cls.__mro__ if name in vars(k)), None)
        if owner is None or not owner.__module__.startswith("workflows"):
            continue
        raw = vars(owner)[name]
        if isinstance(raw, property):
            methods[name] = "property"
        elif isinstance(raw, (staticmethod, classmethod)) or inspect.isfunction(raw):
            methods[name] = _signature(getattr(cls, name))
    return methods


def describe(obj: Any) -> dict[str, Any]:
    if isinstance(obj, type):
        if issubclass(obj, enum.Enum):
            return {"kind": "enum", "members": sorted(obj.__members__)}
        entry: dict[str, Any] = {"kind": "class", "methods": _methods(obj)}
        if not issubclass(obj, BaseException):  # exceptions all take *args
            entry["signature"] = _signature(obj)
        return entry
    if callable(obj) and (inspect.isfunction(obj) or inspect.ismethod(obj)):
        return {"kind": "function", "signature": _signature(obj)}
    return {"kind": "value"}


def main(spec: list[tuple[str, list[str]]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for module_name, names in spec:
        module = importlib.import_module(module_name)
        for name in names:
            key = f"{module_name}.{name}"
            out[key] = describe(getattr(module, name)) if hasattr(module, name) else {"kind": "missing"}
    return out


if __name__ == "__main__":
    json.dump(main(json.loads(sys.argv[1])), sys.stdout, indent=1, sort_keys=True)
