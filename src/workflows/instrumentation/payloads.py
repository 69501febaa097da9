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
import re
import traceback
import types
import typing
import uuid
from decimal import Decimal
from pathlib import PurePath
from typing import Any, Callable, Iterable, Mapping, NamedTuple

from pydantic import BaseModel
from pydantic.fields import FieldInfo
from pydantic_core import SchemaSerializer

from workflows.events import DictLikeModel
from workflows.instrumentation.events import MISSING
from workflows.instrumentation.semconv import exception_type
from workflows.instrumentation.settings import CAPTURE_CONTENT_VAR, MAX_PAYLOAD_BYTES_VAR, env_flag, env_int

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


# Secrets written inside free text (exception messages, tracebacks, ids): a secret-looking
# name followed by ``=`` or ``:`` (the value is masked when the name passes
# is_secret_key), and the shapes of well-known credentials wherever they appear.
_ASSIGNMENT = re.compile(
    r"""(?<![\w.-])(?P<key>[A-Za-z_][\w.-]*)(?P<sep>["']?\s*[:=]\s*)(?P<scheme>(?:Bearer|Basic|Token)\s+)?"""
    r"""(?P<quote>["']?)(?P<value>[^\s"',;&)}\]]+)""",
    re.IGNORECASE,
)
_CREDENTIAL = re.compile(
    r"\b(?:sk|rk)-[A-Za-z0-9_-]{12,}"  # OpenAI, Anthropic (sk-ant-), Langfuse (sk-lf-) secret keys
    r"|\bgh[pousr]_[A-Za-z0-9]{20,}"  # GitHub tokens
    r"|\bxox[abprs]-[A-Za-z0-9-]{10,}"  # Slack tokens
    r"|\bAKIA[0-9A-Z]{16}\b"  # AWS access key ids
    r"|\bAIza[0-9A-Za-z_-]{35}"  # Google API keys
    r"|\beyJ[\w-]{8,}\.[\w-]{8,}\.[\w-]{8,}"  # JSON Web Tokens
    r"|(?<=Bearer )[A-Za-z0-9._~+/=-]{8,}",
    re.IGNORECASE,
)
# What free text is cut to before it is scrubbed: past the cap plus this margin, so a
# secret cut by the cap is still recognised whole.
_SCRUB_MARGIN = 512
# Dumped exceptions (SerializableException) carry their message under this key; it is
# scrubbed like free text, after a cut to this many characters (the payload cap comes after).
_EXCEPTION_MESSAGE_KEY = "exception_message"
_EXCEPTION_MESSAGE_LIMIT = 64 * 1024


def scrub_text(text: str) -> str:
    """``text`` with the secrets written inside it masked: values after secret-looking
    names (``api_key=...``, ``"password": "..."``, ``Authorization: Bearer ...``) and
    well-known credential shapes (``sk-...``, ``ghp_...``, ``AKIA...``, JWTs, bearer
    tokens) become ``***``."""
    if not text:
        return text
    if any(map(text.lower().__contains__, _MAYBE_SECRET)):
        text = _ASSIGNMENT.sub(_mask_assignment, text)
    return _CREDENTIAL.sub(MASK, text)


def _scrub_message(text: str) -> str:
    if len(text) > _EXCEPTION_MESSAGE_LIMIT:
        text = f"{text[:_EXCEPTION_MESSAGE_LIMIT]}...[truncated: {len(text.encode('utf-8'))} bytes]"
    return scrub_text(text)


def _mask_assignment(match: re.Match[str]) -> str:
    if not is_secret_key(match.group("key")):
        return match.group(0)
    return f"{match.group('key')}{match.group('sep')}{match.group('scheme') or ''}{match.group('quote')}{MASK}"


@functools.lru_cache(maxsize=4096)
def is_secret_key(key: str) -> bool:
    """Whether values under ``key`` are masked by default.

    Case-insensitive; ``-`` and camelCase count as word separators, so ``openai_api_key``,
    ``X-Auth-Token``, ``accessToken`` and ``client_secret`` match, while ``max_tokens``,
    ``token_count``, ``token_ids`` and ``tokenizer`` do not.
    """
    normalized = _CAMEL_BOUNDARY.sub("_", key).lower().replace("-", "_")
    return _SECRET_KEY.search(normalized) is not None


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
            converted: dict[str, Any] = {}
            for k, v in items:
                key = str(k)
                if mask and v is not None and is_secret_key(key):
                    converted[key] = MASK
                elif mask and key == _EXCEPTION_MESSAGE_KEY and type(v) is str:
                    converted[key] = _scrub_message(v)
                else:
                    converted[key] = _jsonable(v, mask, depth + 1, seen)
            return converted
        if mask:
            return [_pair(v, mask, depth, seen) for v in value]
        return [_jsonable(v, mask, depth + 1, seen) for v in value]
    finally:
        seen.discard(id(value))


def _pair(item: Any, mask: bool, depth: int, seen: set[int]) -> Any:
    """An item of a list; a ``(name, value)`` pair (headers given as a list of pairs) has
    its value masked when the name looks like a secret's."""
    if (
        type(item) in (tuple, list)
        and len(item) == 2
        and type(item[0]) is str
        and item[1] is not None
        and is_secret_key(item[0])
    ):
        return [item[0], MASK]
    return _jsonable(item, mask, depth + 1, seen)


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


class _JsonShape(NamedTuple):
    """What the fast path knows of a model class, worked out once per class."""

    fields_serializer: SchemaSerializer
    """Renders an instance without dynamic fields: for an event, its fields' serializer
    without the Python hook that files dynamic fields under ``_data`` (a call back into
    Python per dump, and that hook returns what it is given when there are none)."""
    plain_keys: bool
    """The JSON of an instance without dynamic fields has no key but the class's own
    field names (scalar fields only, no computed field, no serializer of the user's),
    none of them secret-looking: there is nothing to mask and no need to scan it."""


_JSON_SHAPES: dict[type, _JsonShape] = {}
_JSON_SHAPES_MAX = 1024  # classes made on the fly must not grow it for ever
_SCALARS = frozenset({str, int, float, bool, type(None)})
# DictLikeModel's serializer hook, the only one the fast path knows to leave out.
_EVENT_HOOK = DictLikeModel.__pydantic_core_schema__["serialization"]["function"]


def _json_shape(cls: type[BaseModel]) -> _JsonShape:
    shape = _JSON_SHAPES.get(cls)
    if shape is None:
        if len(_JSON_SHAPES) >= _JSON_SHAPES_MAX:
            _JSON_SHAPES.clear()
        shape = _JSON_SHAPES[cls] = _work_out_json_shape(cls)
    return shape


def _work_out_json_shape(cls: type[BaseModel]) -> _JsonShape:
    serializer = cls.__pydantic_serializer__
    schema = cls.__pydantic_core_schema__
    if schema.get("type") != "model":  # a wrapper (definitions of a recursive model): not known here
        return _JsonShape(serializer, False)
    hook = schema.get("serialization")
    if hook is not None and hook.get("function") is _EVENT_HOOK:
        try:
            serializer = SchemaSerializer({k: v for k, v in schema.items() if k != "serialization"})
            hook = None
        except Exception:  # a schema this pydantic cannot take apart: keep the class's own
            pass
    decorators = cls.__pydantic_decorators__
    plain_keys = (
        hook is None
        and not cls.__pydantic_computed_fields__
        and not decorators.field_serializers
        and all(_is_plain_field(name, info) for name, info in cls.__pydantic_fields__.items())
    )
    return _JsonShape(serializer, plain_keys)


def _is_plain_field(name: str, info: FieldInfo) -> bool:
    """A field whose value is a scalar, under names that are neither masked nor scrubbed."""
    annotation = info.annotation
    if annotation not in _SCALARS and not (
        typing.get_origin(annotation) in (typing.Union, types.UnionType)
        and all(arg in _SCALARS for arg in typing.get_args(annotation))
    ):
        return False
    keys = {name, info.alias or name, info.serialization_alias or name}
    return not any(is_secret_key(key) or key == _EXCEPTION_MESSAGE_KEY for key in keys)


def _model_json(model: BaseModel, mask: bool, shape: _JsonShape | None = None) -> str | None:
    """The model's JSON straight from pydantic, or ``None`` when it needs the slow path
    (dynamic fields to merge, a key that may be a secret, a dump that fails)."""
    if shape is None:
        shape = _json_shape(type(model))
    plain = not getattr(model, "__pydantic_extra__", None)
    try:
        # What model_dump_json() does, without its Python wrapper (a third of the cost).
        if plain and shape.plain_keys:
            # Scalar fields only: nothing for the fallback to show (a value of another type
            # raises, and takes the slow path), and nothing to mask.
            return shape.fields_serializer.to_json(model).decode()
        serializer = shape.fields_serializer if plain else type(model).__pydantic_serializer__
        text: str = serializer.to_json(model, **_FALLBACK).decode()
    except Exception:
        return None
    if '"_data":' in text:
        return None
    if mask:
        if '"exception_message":' in text:
            return None
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


def _uncut(text: str, mime_type: str) -> Rendered:
    """``Rendered(text, mime_type, False)``, made without the NamedTuple's own ``__new__``
    (a Python function the type call goes through): this is on every traced step."""
    return tuple.__new__(Rendered, (text, mime_type, False))


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
            capture_content = env_flag(CAPTURE_CONTENT_VAR, True)
        if max_bytes is None:
            # A bad environment value must not turn tracing off: it falls back, with a warning.
            max_bytes = env_int(MAX_PAYLOAD_BYTES_VAR, DEFAULT_MAX_PAYLOAD_BYTES, minimum=MIN_PAYLOAD_BYTES)
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
            kind = type(value)
            if kind is str:
                return self.cap(value, TEXT)
            shape = _JSON_SHAPES.get(kind)  # a model class rendered before: no isinstance check
            if shape is not None or isinstance(value, BaseModel):
                text = _model_json(value, self.mask_secrets, shape)
                if text is not None:
                    if len(text) <= self.max_bytes // 4:  # cap()'s first test: most payloads of a traced step
                        return _uncut(text, JSON)
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

    def cap(self, text: str, mime_type: str, total_bytes: int | None = None) -> Rendered:
        """Cut ``text`` to ``max_bytes`` UTF-8 bytes, ending with a visible truncation mark
        (which gives ``total_bytes``, when ``text`` is already a cut of something longer)."""
        if total_bytes is None and len(text) <= self.max_bytes // 4:  # at most 4 bytes per character
            return _uncut(text, mime_type)
        encoded = text.encode("utf-8")
        if total_bytes is None and len(encoded) <= self.max_bytes:
            return Rendered(text, mime_type, False)
        if len(encoded) <= self.max_bytes:
            return Rendered(text, mime_type, False)
        mark = f"...[truncated: {total_bytes or len(encoded)} bytes]"
        kept = encoded[: self.max_bytes - len(mark)].decode("utf-8", "ignore")
        # a cut JSON document is no longer JSON: let viewers show it as text
        return Rendered(kept + mark, TEXT, True)

    def render_text(self, text: str, *, redact: bool = True) -> str:
        """Free text that may hold secrets (an exception message, a traceback, an id, a
        user event's string) as an attribute value: scrubbed (see ``scrub_text``),
        passed to the redaction hook, and capped. Cut before it is scrubbed, so a
        5 MB message costs what its first ``max_bytes`` cost. ``redact=False`` skips the
        hook, for text that went through ``prepare`` already."""
        total = None
        if len(text) > self.max_bytes + _SCRUB_MARGIN:
            total = len(text.encode("utf-8"))
            text = text[: self.max_bytes + _SCRUB_MARGIN]
        if self.mask_secrets:
            text = scrub_text(text)
        if redact and self.redact is not None:
            redacted = self.prepare(text)
            text = redacted if isinstance(redacted, str) else dumps(redacted)
        rendered = self.cap(text, TEXT, total)
        if total is not None and not rendered.truncated:
            return rendered.text + f"...[truncated: {total} bytes]"
        return rendered.text

    def exception_attributes(self, error: BaseException) -> dict[str, str]:
        """The attributes of an ``exception`` span event for ``error``, as OpenTelemetry
        names them; the message and the stack are payloads (scrubbed, redacted, capped;
        with content capture off the message is dropped and the stack keeps its frames)."""
        kind = type(error)
        name = exception_type(error)
        if not self.capture_content:
            frames = "".join(traceback.format_list(traceback.extract_tb(error.__traceback__)))
            return {"exception.type": name, "exception.message": "", "exception.stacktrace": f"{frames}{name}"}
        try:
            message = str(error)
        except Exception:  # a broken __str__ must not lose the event
            message = type_name(error)
        try:
            stack = "".join(traceback.format_exception(kind, error, error.__traceback__))
        except Exception:
            stack = f"{name}: {message}"
        return {
            "exception.type": name,
            "exception.message": self.render_text(message),
            "exception.stacktrace": self.render_text(stack),
        }

    def describe_exception(self, error: BaseException | None, fallback: str) -> str:
        """A span status description for ``error``: ``Type: message``, scrubbed and capped."""
        if error is None:
            return fallback
        if not self.capture_content:
            return type(error).__name__
        try:
            message = str(error)
        except Exception:
            message = ""
        return self.render_text(f"{type(error).__name__}: {message}" if message else type(error).__name__)

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

