"""One-line summaries of events, for verbose output and span tags: ``StopEvent(result='done')``."""

from __future__ import annotations

from typing import Any

from workflows.events import Event, StopEvent

_MAX_STRING = 50
_MAX_ITEMS = 3
_MAX_SUMMARY = 200


def summarize_event(event: Event) -> str:
    """A one-line summary: ``ClassName(k=v, ...)``, at most 200 characters.

    Made of ``result`` (for stop events), the declared fields, then the dynamic
    fields. Strings longer than 50 characters are cut (ending ``...``), and lists and
    dicts of more than 3 items are shown as ``[N items]`` / ``{N keys}``.
    """
    parts: list[str] = []
    if isinstance(event, StopEvent):
        parts.append(f"result={_short(event.result)}")
    for name in type(event).model_fields:
        parts.append(f"{name}={_short(getattr(event, name, None))}")
    for key, value in event.items():
        parts.append(f"{key}={_short(value)}")
    summary = f"{type(event).__name__}({', '.join(parts)})"
    if len(summary) > _MAX_SUMMARY:
        return summary[: _MAX_SUMMARY - 3] + "..."
    return summary


def _short(value: Any) -> str:
    if isinstance(value, str):
        return repr(value if len(value) <= _MAX_STRING else value[:_MAX_STRING] + "...")
    if isinstance(value, list) and len(value) > _MAX_ITEMS:
        return f"[{len(value)} items]"
    if isinstance(value, dict) and len(value) > _MAX_ITEMS:
        return f"{{{len(value)} keys}}"
    try:
        return repr(value)
    except Exception:  # noqa: BLE001  (a broken __repr__ must not cost the span)
        return f"<{type(value).__name__}>"
