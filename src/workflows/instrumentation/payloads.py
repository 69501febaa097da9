"""Payloads: events, results and state turned into the JSON strings spans carry.

The rules (see docs/tracing.md):

- Values take the shape the Context serializer gives them: pydantic models become
  ``model_dump(mode="json")``, and an Event's dynamic fields are merged in beside its
  declared ones, so ``StartEvent(topic="x")`` reads ``{"topic": "x"}``. Anything that
  cannot be serialized is shown by its type name (``"<Client>"``); rendering never raises.
- Values under keys named like secrets (``api_key``, ``password``, ``token``, ``secret``,
  ``authorization``, ...) are masked, then the user's redaction hook sees the value.
- With content capture off only the type and the size of a value are kept.
- Every rendered payload is capped (16 KiB by default) and marked when cut.
"""

from __future__ import annotations

import dataclasses
import datetime
import enum
import functools
import inspect
import json
import logging
import math
import os
import re
import uuid
from decimal import Decimal
from pathlib import PurePath
from typing import Any, Callable, Iterable, Mapping, NamedTuple

from pydantic import BaseModel

from workflows.instrumentation.events import MISSING

logger = logging.getLogger("workflows.instrumentation")

Redactor = Callable[[Any], Any]
"""A redaction hook: gets a JSON-compatible value (dicts, lists, strings, numbers), a
fresh copy it may change in place, and returns the value to record instead."""

MIN_PAYLOAD_BYTES = 64
DEFAULT_MAX_PAYLOAD_BYTES = 16 * 1024
MASK = "***"
JSON = "application/json"
TEXT = "text/plain"

_MAX_DEPTH = 32
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}

# Secret-looking key names: a plain substring match for the unambiguous words, and a
# word match for "token" so that LLM counters such as `max_tokens`, `token_count` or
# `token_ids` stay visible.
_SECRET_KEY = re.compile(
    r"api_?key|password|passwd|secret|authorization|credential|private_?key|cookie"
    r"|(?<![a-z])token(?![a-z]|_(?:count|limit|usage|type|ids?)(?![a-z]))"
)
_CAMEL_BOUNDARY = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")
# A loose version of the above for JSON text, as plain substrings of its lower-case form
# (much faster than a regular expression): whatever is_secret_key accepts contains one.
_MAYBE_SECRET = (
    "apikey", "api_key", "api-key", "password", "passwd", "secret", "authorization",
    "credential", "privatekey", "private_key", "private-key", "cookie", "token",
)  # fmt: skip


@functools.lru_cache(maxsize=4096)
def is_secret_key(key: str) -> bool:
    """Whether values under ``key`` are masked by default.

    Case-insensitive; ``-`` and camelCase count as word separators, so ``openai_api_key``,
    ``X-Auth-Token``, ``accessToken`` and ``client_secret`` match, while ``max_tokens``,
    ``token_count``, ``token_ids`` and ``tokenizer`` do not.
    """
    normalized = _CAMEL_BOUNDARY.sub("_", key).lower().replace("-", "_")
    return _SECRET_KEY.search(normalized) is not None


def env_flag(name: str, default: bool) -> bool:
    """Read a boolean environment variable (``true/false``, ``1/0``, ``yes/no``, ``on/off``)."""
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    logger.warning("%s=%r is not a boolean (use true or false); using %s", name, raw, default)
    return default


def type_name(value: Any) -> str:
    """How an unserializable value is shown: its class name in angle brackets."""
    return f"<{type(value).__qualname__}>"


def to_jsonable(value: Any, *, mask_secrets: bool = True) -> Any:
    """``value`` as plain JSON data (dicts, lists, strings, numbers, booleans, ``None``).

    Never raises: whatever cannot be converted becomes its type name. With
    ``mask_secrets`` the values under secret-looking keys become ``"***"``.
    """
    return _jsonable(value, mask_secrets, 0, set())


def _jsonable(value: Any, mask: bool, depth: int, seen: set[int]) -> Any:
    kind = type(value)
    if kind is str or kind is int or kind is bool or value is None:
        return value
    if kind is float:
        return value if math.isfinite(value) else str(value)
    if depth >= _MAX_DEPTH:
        return type_name(value)
    if kind is dict or kind is list:  # the common containers first: no ABC checks
        return _container(value, mask, depth, seen)
    if isinstance(value, BaseModel):
        return _jsonable(_dump_model(value), mask, depth + 1, seen)
    if isinstance(value, (Mapping, list, tuple, set, frozenset)):
        return _container(value, mask, depth, seen)
    if isinstance(value, enum.Enum):
        return _jsonable(value.value, mask, depth + 1, seen)
    if isinstance(value, str):  # subclasses of the scalars
        return str(value)
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return _jsonable(float(value), mask, depth + 1, seen)
    if isinstance(value, (datetime.datetime, datetime.date, datetime.time)):
        return value.isoformat()
    if isinstance(value, (uuid.UUID, Decimal, PurePath)):
        return str(value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        fields = {f.name: getattr(value, f.name, None) for f in dataclasses.fields(value)}
        return _jsonable(fields, mask, depth + 1, seen)
    return type_name(value)


def _container(value: Any, mask: bool, depth: int, seen: set[int]) -> Any:
    if id(value) in seen:  # a cycle: show the repeated container by its type
        return type_name(value)
    seen.add(id(value))
    try:
        if isinstance(value, Mapping):
            items: Iterable[tuple[Any, Any]] = value.items()
            dynamic = value.get("_data")
            if type(dynamic) is dict:  # an Event's dynamic fields, dumped apart: merge them
                items = [*((k, v) for k, v in items if k != "_data"), *dynamic.items()]
            return {
                str(k): MASK
                if mask and v is not None and is_secret_key(str(k))
                else _jsonable(v, mask, depth + 1, seen)
                for k, v in items
            }
        return [_jsonable(v, mask, depth + 1, seen) for v in value]
    finally:
        seen.discard(id(value))


# pydantic >= 2.11 can show unknown values by a function of ours instead of raising
_FALLBACK: dict[str, Any] = (
    {"fallback": type_name} if "fallback" in inspect.signature(BaseModel.model_dump).parameters else {}
)


def _dump_model(model: BaseModel) -> Any:
    """The model as the serializer dumps it; in Python mode (converted by the caller)
    when JSON mode fails, for example on an unserializable dynamic field."""
    try:
        return model.model_dump(mode="json", **_FALLBACK)
    except Exception:
        pass
    try:
        return model.model_dump(**_FALLBACK)
    except Exception:
        return type_name(model)


def _model_json(model: BaseModel, mask: bool) -> str | None:
    """The model's JSON straight from pydantic, or ``None`` when it needs the slow path
    (dynamic fields to merge, a key that may be a secret, a dump that fails)."""
    try:
        text = model.model_dump_json(**_FALLBACK)
    except Exception:
        return None
    if '"_data":' in text:
        return None
    if mask:
        if any(map(text.lower().__contains__, _MAYBE_SECRET)):
            return None
    return text


def json_patch(before: Any, after: Any, prefix: str = "") -> list[dict[str, Any]]:
    """The RFC 6902 JSON Patch that turns ``before`` into ``after``.

    Both are JSON data (see ``to_jsonable``); ``MISSING`` stands for "absent", so a
    missing ``before`` gives an ``add`` and a missing ``after`` a ``remove``. Paths are
    prefixed with ``prefix``, the JSON Pointer (RFC 6901) of the part compared. Lists
    are compared item by item (an insertion in the middle shows as replacements plus an
    add at the end: valid, not minimal).
    """
    ops: list[dict[str, Any]] = []
    _diff(before, after, prefix, ops)
    return ops


def _diff(a: Any, b: Any, path: str, ops: list[dict[str, Any]]) -> None:
    if a is MISSING:
        if b is not MISSING:
            ops.append({"op": "add", "path": path, "value": b})
        return
    if b is MISSING:
        ops.append({"op": "remove", "path": path})
        return
    if isinstance(a, dict) and isinstance(b, dict):
        for key in a:
            if key not in b:
                ops.append({"op": "remove", "path": f"{path}/{_escape(key)}"})
        for key, value in b.items():
            child = f"{path}/{_escape(key)}"
            if key in a:
                _diff(a[key], value, child, ops)
            else:
                ops.append({"op": "add", "path": child, "value": value})
        return
    if isinstance(a, list) and isinstance(b, list):
        common = min(len(a), len(b))
        for i in range(common):
            _diff(a[i], b[i], f"{path}/{i}", ops)
        for i in range(common, len(b)):
            ops.append({"op": "add", "path": f"{path}/{i}", "value": b[i]})
        for i in reversed(range(common, len(a))):
            ops.append({"op": "remove", "path": f"{path}/{i}"})
        return
    # JSON tells true from 1, Python's == does not
    if type(a) is type(b) and a == b:
        return
    ops.append({"op": "replace", "path": path, "value": b})


def _escape(key: Any) -> str:
    return str(key).replace("~", "~0").replace("/", "~1")


def _last_pointer_token(pointer: str) -> str:
    return pointer.rsplit("/", 1)[-1].replace("~1", "/").replace("~0", "~")


class Rendered(NamedTuple):
    """A payload ready to become a span attribute."""

    text: str
    mime_type: str
    truncated: bool


class PayloadPolicy:
    """How payloads are captured: content on or off, the size cap, masking and redaction.

    ``capture_content=None`` reads ``WORKFLOWS_CAPTURE_CONTENT`` (default on) and
    ``max_bytes=None`` reads ``WORKFLOWS_MAX_PAYLOAD_BYTES`` (default 16 KiB). ``redact``
    is called with every JSON-compatible value before it is rendered (for state changes:
    with the old and the new value, before they are diffed); if it raises, the payload
    is replaced by ``"<redaction failed>"`` rather than recorded unredacted.
    """

    def __init__(
        self,
        capture_content: bool | None = None,
        max_bytes: int | None = None,
        redact: Redactor | None = None,
        mask_secrets: bool = True,
    ) -> None:
        if capture_content is None:
            capture_content = env_flag("WORKFLOWS_CAPTURE_CONTENT", True)
        if max_bytes is None:
            # A bad environment value must not turn tracing off: it falls back, with a warning.
            max_bytes = _env_int("WORKFLOWS_MAX_PAYLOAD_BYTES", DEFAULT_MAX_PAYLOAD_BYTES, minimum=MIN_PAYLOAD_BYTES)
        if isinstance(max_bytes, bool) or not isinstance(max_bytes, int) or max_bytes < MIN_PAYLOAD_BYTES:
            raise ValueError(
                f"max_payload_bytes must be an integer of at least {MIN_PAYLOAD_BYTES} bytes, got {max_bytes!r}"
            )
        if redact is not None and not callable(redact):
            raise TypeError(f"redact must be a callable taking and returning a value, got {redact!r}")
        self.capture_content = capture_content
        self.max_bytes = max_bytes
        self.redact = redact
        self.mask_secrets = mask_secrets
        self._redact_failures: set[str] = set()

    def prepare(self, value: Any, key: str | None = None) -> Any:
        """``value`` as masked, redacted JSON data. ``key`` is the name it is stored under,
        so a bare value stored as ``api_key`` is masked too."""
        if value is MISSING:
            return MISSING
        if self.mask_secrets and key is not None and value is not None and is_secret_key(key):
            data: Any = MASK
        else:
            data = _jsonable(value, self.mask_secrets, 0, set())
        if self.redact is None:
            return data
        try:
            return self.redact(data)
        except Exception as exc:
            self._log_redact_failure(exc)
            return "<redaction failed>"

    def render(self, value: Any) -> Rendered:
        """``value`` as an attribute string: text for a string, JSON for anything else."""
        if self.redact is None and self.capture_content:
            if type(value) is str:
                return self.cap(value, TEXT)
            if isinstance(value, BaseModel):
                text = _model_json(value, self.mask_secrets)
                if text is not None:
                    return self.cap(text, JSON)
        data = self.prepare(value)
        if not self.capture_content:
            return self._summary(type(value).__name__, data)
        if isinstance(value, str) and isinstance(data, str):
            return self.cap(data, TEXT)
        return self.cap(dumps(data), JSON)

    def render_state_change(self, path: str, before: Any, after: Any) -> Rendered:
        """The JSON Patch of a state change at JSON Pointer ``path`` (values dropped when
        content capture is off)."""
        key = _last_pointer_token(path) if path else None
        ops = json_patch(self.prepare(before, key), self.prepare(after, key), path)
        if not self.capture_content:
            ops = [{k: v for k, v in op.items() if k != "value"} for op in ops]
        return self.cap(dumps(ops), JSON)

    def cap(self, text: str, mime_type: str) -> Rendered:
        """Cut ``text`` to ``max_bytes`` UTF-8 bytes, ending with a visible truncation mark."""
        if len(text) <= self.max_bytes // 4:  # cannot exceed: at most 4 bytes per character
            return Rendered(text, mime_type, False)
        encoded = text.encode("utf-8")
        if len(encoded) <= self.max_bytes:
            return Rendered(text, mime_type, False)
        mark = f"...[truncated: {len(encoded)} bytes]"
        kept = encoded[: self.max_bytes - len(mark)].decode("utf-8", "ignore")
        # a cut JSON document is no longer JSON: let viewers show it as text
        return Rendered(kept + mark, TEXT, True)

    def _summary(self, type_label: str, data: Any) -> Rendered:
        size = len((data if isinstance(data, str) else dumps(data)).encode("utf-8"))
        return Rendered(dumps({"type": type_label, "bytes": size}), JSON, False)

    def _log_redact_failure(self, exc: Exception) -> None:
        kind = type(exc).__qualname__
        if kind not in self._redact_failures:
            self._redact_failures.add(kind)
            logger.error(
                "the redaction hook raised %s; the payload is recorded as '<redaction failed>' "
                "(logged once per error type)",
                kind,
                exc_info=exc,
            )


def dumps(data: Any) -> str:
    """JSON text of prepared data (never raises)."""
    try:
        return json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    except (TypeError, ValueError):  # a redaction hook returned something that is not JSON
        return json.dumps(to_jsonable(data), ensure_ascii=False, separators=(",", ":"))


def _env_int(name: str, default: int, minimum: int | None = None) -> int:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        logger.warning("%s=%r is not an integer; using %d", name, raw, default)
        return default
    if minimum is not None and value < minimum:
        logger.warning("%s=%d is below the minimum of %d; using %d", name, value, minimum, default)
        return default
    return value
