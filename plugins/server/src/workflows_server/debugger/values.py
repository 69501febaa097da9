"""Stored values as plain JSON for people to read, and JSON Patch (RFC 6902) between two of them.

Journal records keep values as the workflow's serializer wrote them (``{"serialized":
"..."}``, or ``{"repr": "..."}`` for what could not be serialized). The debugger shows
them without importing the workflow's classes, so it can show any replica's runs: the
serializer's JSON is read as JSON, and its wrappers (a pydantic model's
``{"__is_pydantic": true, "value": ...}``, a dict-like model's ``_data``) are unwrapped.
"""

from __future__ import annotations

import json
from typing import Any

MISSING_TEXT = "(missing)"


class Missing:
    """Stands for 'no value' (a state path that did not exist before a change)."""

    def __repr__(self) -> str:
        return "Missing"


MISSING = Missing()


def unwrap(value: Any) -> Any:
    """A serializer's JSON without its wrappers (pydantic's ``__is_pydantic``/``value``, dict-like ``_data``)."""
    return _unwrap(value)


def _unwrap(value: Any) -> Any:
    if isinstance(value, dict):
        if value.get("__is_pydantic") is True and "value" in value:
            return _unwrap(value["value"])
        if set(value) == {"_data"} and isinstance(value["_data"], dict):
            return _unwrap(value["_data"])
        out = {key: _unwrap(item) for key, item in value.items() if key != "_data"}
        data = value.get("_data")
        if isinstance(data, dict):
            out.update({key: _unwrap(item) for key, item in data.items()})
        return out
    if isinstance(value, list):
        return [_unwrap(item) for item in value]
    return value


def from_serialized(text: Any) -> Any:
    """A serializer's output (JSON text) as plain JSON; text that is not JSON stays text."""
    if not isinstance(text, str):
        return _unwrap(text)
    try:
        return _unwrap(json.loads(text))
    except (json.JSONDecodeError, ValueError):
        return text


def readable(value: Any) -> Any:
    """A journal record's encoded value (``{"serialized"}``, ``{"repr"}``, ``{"__missing__"}``) as plain JSON."""
    if value is None:
        return None
    if isinstance(value, dict):
        if value.get("__missing__") is True:
            return MISSING
        if "serialized" in value:
            return from_serialized(value["serialized"])
        if "repr" in value:
            return value["repr"]
    return value


def state_of_snapshot(payload: dict[str, Any]) -> dict[str, Any]:
    """The state of a ``Context.to_dict()`` payload as plain JSON (``{}`` when it has none)."""
    state = payload.get("state") or {}
    data = state.get("state_data")
    if isinstance(data, dict) and isinstance(data.get("_data"), dict):
        return {key: from_serialized(item) for key, item in data["_data"].items()}
    if isinstance(data, str):
        found = from_serialized(data)
        return found if isinstance(found, dict) else {"value": found}
    return {}


def _escape(segment: str) -> str:
    return segment.replace("~", "~0").replace("/", "~1")


def _segments(pointer: str) -> list[str]:
    if pointer == "":
        return []
    if not pointer.startswith("/"):
        raise ValueError(f"{pointer!r} is not a JSON Pointer (it must start with '/')")
    return [s.replace("~1", "/").replace("~0", "~") for s in pointer[1:].split("/")]


def diff(before: Any, after: Any, path: str = "") -> list[dict[str, Any]]:
    """The JSON Patch that turns ``before`` into ``after`` (objects compared key by key, lists by index)."""
    if before is MISSING and after is MISSING:
        return []
    if before is MISSING:
        return [{"op": "add", "path": path, "value": after}]
    if after is MISSING:
        return [{"op": "remove", "path": path}]
    if isinstance(before, dict) and isinstance(after, dict):
        ops: list[dict[str, Any]] = []
        for key in before:
            if key not in after:
                ops.append({"op": "remove", "path": f"{path}/{_escape(str(key))}"})
        for key, value in after.items():
            child = f"{path}/{_escape(str(key))}"
            if key not in before:
                ops.append({"op": "add", "path": child, "value": value})
            else:
                ops.extend(diff(before[key], value, child))
        return ops
    if isinstance(before, list) and isinstance(after, list) and path:
        ops = []
        common = min(len(before), len(after))
        for index in range(common):
            ops.extend(diff(before[index], after[index], f"{path}/{index}"))
        for index in range(common, len(after)):
            ops.append({"op": "add", "path": f"{path}/{index}", "value": after[index]})
        for index in range(len(before) - 1, common - 1, -1):
            ops.append({"op": "remove", "path": f"{path}/{index}"})
        return ops
    if before == after and type(before) is type(after):
        return []
    return [{"op": "replace", "path": path, "value": after}]


def apply_at(document: Any, pointer: str, value: Any) -> Any:
    """``document`` with ``value`` set at ``pointer`` (``MISSING``: removed); missing parents become objects.

    Returns the new document (the whole of it when ``pointer`` is ``""``); containers
    along the way are copied, so earlier documents stay as they were.
    """
    segments = _segments(pointer)
    if not segments:
        return {} if value is MISSING else value
    root = _copy(document) if isinstance(document, (dict, list)) else {}
    parent: Any = root
    for segment in segments[:-1]:
        child = parent.get(segment) if isinstance(parent, dict) else _index(parent, segment)
        child = _copy(child) if isinstance(child, (dict, list)) else {}
        _put(parent, segment, child)
        parent = child
    last = segments[-1]
    if value is MISSING:
        if isinstance(parent, dict):
            parent.pop(last, None)
        elif isinstance(parent, list) and last.isdigit() and int(last) < len(parent):
            del parent[int(last)]
    else:
        _put(parent, last, value)
    return root


def _copy(value: Any) -> Any:
    return dict(value) if isinstance(value, dict) else list(value)


def _index(container: Any, segment: str) -> Any:
    if isinstance(container, list) and segment.isdigit() and int(segment) < len(container):
        return container[int(segment)]
    return None


def _put(container: Any, segment: str, value: Any) -> None:
    if isinstance(container, dict):
        container[segment] = value
    elif isinstance(container, list):
        if segment == "-" or (segment.isdigit() and int(segment) == len(container)):
            container.append(value)
        elif segment.isdigit() and int(segment) < len(container):
            container[int(segment)] = value


def jsonable(value: Any) -> Any:
    """``value`` with ``MISSING`` written as a marker, so it can be sent as JSON."""
    if value is MISSING:
        return {"$missing": True}
    if isinstance(value, dict):
        return {key: jsonable(item) for key, item in value.items()}
    if isinstance(value, list):
        return [jsonable(item) for item in value]
    return value


__all__ = ["MISSING", "apply_at", "diff", "from_serialized", "jsonable", "readable", "state_of_snapshot", "unwrap"]
