"""Serializers that turn state values and events into strings and back (for ``Context.to_dict``).

Type resolution (what ``JsonSerializer.deserialize`` may rebuild)
-----------------------------------------------------------------
A payload names the classes of its tagged values (``"qualified_name": "pkg.mod.Cls"``).
``JsonSerializer`` never imports a module because a payload names it. A name resolves
only when it is

* a class of the framework (``workflows.events``, ``DictState``, ``workflows.errors``,
  built-in exceptions), found in modules that are already loaded;
* one of the *known types* in scope: ``Context.from_dict`` puts the workflow's own event
  and state types in scope (see ``known_types``);
* on the serializer's allow-list: ``JsonSerializer(allowed_types=[...])`` or
  ``serializer.allow(...)``, with classes, dotted class names or ``"pkg.mod.*"`` (every
  class of a module *you* named; that module is imported);
* a Pydantic model class (events included) defined at the name the payload gives, in a
  module the process has **already imported** (looked up in ``sys.modules``, never
  imported, and never a class that is not a model). This is what lets a saved agent
  name llama-index's ``ChatMessage``. ``JsonSerializer(imported_models=False)`` turns it
  off, leaving only the three rules above.

Anything else is refused with ``ContextSerdeError`` naming the type and the way to allow
it. ``PickleSerializer`` is for trusted data only and imports what its payload names.

Models that cannot dump themselves
----------------------------------
A Pydantic model whose own serialization fails (llama-index-core's ``ChatMemoryBuffer``
and ``SimpleChatStore`` with current Pydantic releases: their message serializer raises
inside Pydantic), and a component whose ``to_dict()`` fails, are saved field by field
instead (``{"__is_pydantic": true, "fields": {...}}``: each field and extra through
this serializer, fields marked ``exclude`` and private attributes left out, as
``model_dump`` leaves them) and rebuilt with ``model_validate``.

JSON details
------------
Output is strict JSON (no ``NaN`` tokens): a float JSON cannot hold is written as
``{"__is_float": "nan" | "inf" | "-inf"}`` and read back as that float, also inside
Pydantic models. Values nested deeper than ``MAX_NESTING`` levels, and values that
contain themselves, are refused with an error saying so. Error messages name the path
and the type of the offending value, never the value itself.
"""

from __future__ import annotations

import base64
import contextvars
import json
import math
import pickle
import sys
import weakref
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ValidationError
from pydantic_core import SchemaSerializer

from workflows import events as _events
from workflows.errors import ContextSerdeError
from workflows.events import import_qualified_name, qualified_name

MAX_NESTING = 200
"""Deepest nesting of dicts and lists (inside a value) that ``JsonSerializer`` writes or reads."""

# Resolved from sys.modules (never imported on a payload's say-so), whatever the allow-list says.
_FRAMEWORK_MODULES = frozenset(
    {"workflows.events", "workflows.context.state_store", "workflows.errors", "builtins"}
)
_FLOAT_TAG = "__is_float"
_FLOATS_OUT = {"nan": math.nan, "inf": math.inf, "-inf": -math.inf}
_NAME_CAP = 200

_known: contextvars.ContextVar[dict[str, type] | None] = contextvars.ContextVar("workflows_known_types", default=None)


@contextmanager
def known_types(types: Iterable[type]) -> Iterator[None]:
    """Let ``JsonSerializer.deserialize`` rebuild ``types`` (by their qualified names) in this block.

    ``Context.from_dict`` uses it with the workflow's own event and state types; use it
    yourself to deserialize values outside a Context. Scopes nest: inner ones add types.
    """
    outer = _known.get() or {}
    token = _known.set({**outer, **{qualified_name(t): t for t in types}})
    try:
        yield
    finally:
        _known.reset(token)


def _short(text: str) -> str:
    return text if len(text) <= _NAME_CAP else text[:_NAME_CAP] + "..."


def _child_path(path: str, key: Any) -> str:
    if isinstance(key, int) and not isinstance(key, bool):
        return f"{path}[{key}]"
    return f"{path}.{_short(str(key))}" if path else _short(str(key))


class _SerializeError(Exception):
    """Why a value cannot be serialized, with where (path) and what (type) but no value."""

    def __init__(self, path: str, type_name: str, reason: str) -> None:
        where = f" at {path}" if path else ""
        article = "an" if type_name[:1].lower() in "aeiou" else "a"
        super().__init__(f"{article} {type_name}{where} {reason}")


class BaseSerializer(ABC):
    """Turns one value into a string and back."""

    @abstractmethod
    def serialize(self, value: Any) -> str: ...

    @abstractmethod
    def deserialize(self, value: str) -> Any: ...

    @contextmanager
    def validation_context(self) -> Iterator[None]:
        """Wraps a batch of ``deserialize`` calls; subclasses may set up state for them."""
        yield


@dataclass(frozen=True)
class _ModelCodec:
    """What ``JsonSerializer`` writes a model class with, worked out once per class."""

    cls: weakref.ref[type[BaseModel]]
    dumper: SchemaSerializer | None
    """The class's serializer, keeping non-finite floats (``None``: Pydantic could not build
    one; ``model_dump`` is used)."""
    component: bool
    """A LlamaIndex component's class: ``serialize`` leaves it to the general path (``_out``)."""
    suffix: str
    """The text after the model's JSON in ``serialize``: its qualified name, and the closing brace."""


# What a model class is written with depends on the class alone: shared by every serializer
# (a durable runtime makes one per run). Keyed by id() with a weak reference, so a lookup
# costs a dict access (a WeakKeyDictionary makes a reference per lookup) and a class is
# not kept alive.
_MODEL_CODECS: dict[int, _ModelCodec] = {}


def _model_codec(cls: type[BaseModel]) -> _ModelCodec:
    key = id(cls)
    found = _MODEL_CODECS.get(key)
    if found is not None and found.cls() is cls:
        return found
    # Pydantic writes NaN/inf as null in JSON mode unless the config says otherwise;
    # a serializer built with ser_json_inf_nan='constants' keeps them as floats.
    dumper: SchemaSerializer | None
    try:
        schema = cls.__pydantic_core_schema__
        config = dict(schema.get("config") or {}) if schema.get("type") == "model" else {}
        config["ser_json_inf_nan"] = "constants"
        dumper = SchemaSerializer(schema, config)  # type: ignore[arg-type]
    except Exception:
        dumper = None
    codecs = _MODEL_CODECS
    found = codecs[key] = _ModelCodec(
        cls=weakref.ref(cls, lambda _: codecs.pop(key, None)),
        dumper=dumper,
        component=hasattr(cls, "class_name"),
        suffix=f', "qualified_name": {json.dumps(qualified_name(cls))}}}',
    )
    return found


class JsonSerializer(BaseSerializer):
    """JSON, with Pydantic models (events included) and LlamaIndex components tagged by class.

    ``allowed_types`` extends which classes ``deserialize`` may rebuild beyond the
    framework's and the known types in scope (see the module docstring): classes,
    dotted names ``"pkg.mod.Cls"``, or ``"pkg.mod.*"`` for every class of a module.
    ``allow()`` adds more later; ``imported_models=False`` refuses the Pydantic models that
    are only resolvable because their module is already imported. Give the serializer to the workflow
    (``Workflow(serializer=...)``) or to ``Context.from_dict(..., serializer=...)``.
    """

    def __init__(self, *, allowed_types: Iterable[type | str] | None = None, imported_models: bool = True) -> None:
        self.imported_models = imported_models
        self._allowed_classes: dict[str, type] = {}
        self._allowed_names: set[str] = set()
        self._allowed_modules: set[str] = set()
        if allowed_types is not None:
            self.allow(*allowed_types)

    # ------------------------------------------------------------------ allow-list
    def allow(self, *types: type | str) -> JsonSerializer:
        """Add classes, dotted class names or ``"pkg.mod.*"`` patterns to the allow-list; returns self."""
        for entry in types:
            if isinstance(entry, type):
                self._allowed_classes[qualified_name(entry)] = entry
            elif isinstance(entry, str) and entry.endswith(".*") and len(entry) > 2:
                self._allowed_modules.add(entry[:-2])
            elif isinstance(entry, str) and entry and "." in entry:
                self._allowed_names.add(entry)
            else:
                raise TypeError(
                    f"allowed_types entries are classes, 'pkg.mod.Cls' or 'pkg.mod.*' strings, got a {type(entry).__name__}"
                )
        return self

    @property
    def allowed_types(self) -> tuple[str, ...]:
        """The allow-list as sorted dotted names (module patterns end in ``.*``)."""
        names = {*self._allowed_classes, *self._allowed_names, *(f"{m}.*" for m in self._allowed_modules)}
        return tuple(sorted(names))

    # ------------------------------------------------------------------ serialize
    def serialize_value(self, value: Any) -> Any:
        """The JSON-ready form of ``value`` (dicts and lists walked, models and components tagged).

        Raises ``ValueError`` naming the path and type of what cannot be serialized.
        """
        try:
            return self._out(value, "", 0, set())
        except _SerializeError as exc:
            raise ValueError(f"Failed to serialize value: {exc}") from None

    def serialize(self, value: Any) -> str:
        if isinstance(value, BaseModel):
            text = self._model_json(value)
            if text is not None:
                return text
        try:
            ready = self._out(value, "", 0, set())
        except _SerializeError as exc:
            raise ValueError(f"Failed to serialize value: {exc}") from None
        return json.dumps(ready, allow_nan=False)

    def _model_json(self, model: BaseModel) -> str | None:
        """``serialize(model)`` from Pydantic's dump as it is, or ``None`` when the general path must
        decide: a component, a dump that fails, or one that holds a non-finite float or may nest
        deeper than ``MAX_NESTING`` (those the general path tags or refuses)."""
        found = _model_codec(type(model))
        dumper = found.dumper
        if found.component or dumper is None:
            return None
        try:
            # allow_nan=False: a non-finite float raises, and the general path tags it.
            text = json.dumps(dumper.to_python(model, mode="json"), allow_nan=False)
        except Exception:
            return None
        if text.count("{") + text.count("[") >= MAX_NESTING:
            return None
        return f'{{"__is_pydantic": true, "value": {text}{found.suffix}'

    def _out(self, value: Any, path: str, depth: int, active: set[int]) -> Any:
        if value is None or isinstance(value, (str, bool, int)):
            return value
        if isinstance(value, float):
            return value if math.isfinite(value) else {_FLOAT_TAG: "nan" if value != value else repr(value)}
        if depth > MAX_NESTING:
            raise _SerializeError(path, type(value).__name__, f"is nested deeper than {MAX_NESTING} levels")
        cls = type(value)
        # Checked on the class so an event's dynamic ``class_name`` key cannot mislead it.
        if hasattr(cls, "class_name") and hasattr(value, "to_dict"):
            try:
                dumped = value.to_dict()
            except Exception as exc:
                if isinstance(value, BaseModel):
                    return self._model_fields(value, path, depth, active, f"to_dict() raised {type(exc).__name__}")
                raise _SerializeError(path, cls.__name__, f"failed in to_dict() ({type(exc).__name__})") from exc
            return {"__is_component": True, "value": self._plain(dumped, path, depth + 1, active, cls), "qualified_name": qualified_name(cls)}
        if isinstance(value, BaseModel):
            try:
                dumped = self._dump_model(value, path, depth, active)
            except _ModelDumpFailed as failed:
                return self._model_fields(value, path, depth, active, failed.reason)
            return {"__is_pydantic": True, "value": dumped, "qualified_name": qualified_name(cls)}
        if isinstance(value, (dict, list, tuple)):
            marker = id(value)
            if marker in active:
                raise _SerializeError(path, cls.__name__, "contains itself (a reference cycle)")
            active.add(marker)
            try:
                if isinstance(value, dict):
                    out: dict[Any, Any] = {}
                    for key, item in value.items():
                        if not (key is None or isinstance(key, (str, int, float, bool))):
                            raise _SerializeError(_child_path(path, "<key>"), type(key).__name__, "is not a valid JSON object key")
                        out[key] = self._out(item, _child_path(path, key), depth + 1, active)
                    return out
                return [self._out(item, _child_path(path, i), depth + 1, active) for i, item in enumerate(value)]
            finally:
                active.discard(marker)
        raise _SerializeError(path, cls.__name__, "is not JSON-serializable (use PickleSerializer for trusted data)")

    def _dump_model(self, model: BaseModel, path: str, depth: int, active: set[int]) -> Any:
        cls = type(model)
        marker = id(model)
        if marker in active:
            raise _SerializeError(path, cls.__name__, "contains itself (a reference cycle)")
        dumper = _model_codec(cls).dumper
        active.add(marker)
        try:
            dumped = dumper.to_python(model, mode="json") if dumper is not None else model.model_dump(mode="json")
        except RecursionError:
            raise _SerializeError(path, cls.__name__, "is nested too deeply to serialize") from None
        except Exception as exc:
            message = str(exc)
            if "Circular reference" in message:
                raise _SerializeError(path, cls.__name__, "contains itself (a reference cycle)") from None
            if "recursion" in message.lower() or "depth exceeded" in message:
                raise _SerializeError(path, cls.__name__, "is nested too deeply to serialize") from None
            # Pydantic's unknown-type message names a type, never a value; others might not.
            detail = message.splitlines()[0] if message.startswith("Unable to serialize unknown type") else type(exc).__name__
            raise _ModelDumpFailed(_short(detail)) from exc
        finally:
            active.discard(marker)
        return self._plain(dumped, path, depth + 1, active, cls)

    def _model_fields(self, model: BaseModel, path: str, depth: int, active: set[int], reason: str) -> Any:
        """A model that cannot dump itself, saved field by field (see the module docstring)."""
        cls = type(model)
        marker = id(model)
        if marker in active:
            raise _SerializeError(path, cls.__name__, "contains itself (a reference cycle)")
        active.add(marker)
        values = {name: getattr(model, name) for name, info in cls.model_fields.items() if not info.exclude}
        values.update(model.__pydantic_extra__ or {})
        try:
            fields = {name: self._out(item, _child_path(path, name), depth + 1, active) for name, item in values.items()}
        except _SerializeError as exc:
            raise _SerializeError(path, cls.__name__, f"cannot be serialized ({reason}), nor field by field: {exc}") from None
        finally:
            active.discard(marker)
        return {"__is_pydantic": True, "fields": fields, "qualified_name": qualified_name(cls)}

    def _plain(self, value: Any, path: str, depth: int, active: set[int], owner: type) -> Any:
        """Re-walk a model's or component's JSON dump: tag non-finite floats, check depth."""
        if isinstance(value, float):
            return self._out(value, path, depth, active)
        if isinstance(value, (dict, list, tuple)):
            if depth > MAX_NESTING:
                raise _SerializeError(path, owner.__name__, f"is nested deeper than {MAX_NESTING} levels")
            if isinstance(value, dict):
                return {k: self._plain(v, _child_path(path, k), depth + 1, active, owner) for k, v in value.items()}
            return [self._plain(v, _child_path(path, i), depth + 1, active, owner) for i, v in enumerate(value)]
        if value is None or isinstance(value, (str, bool, int)):
            return value
        raise _SerializeError(path, type(value).__name__, f"in a {owner.__name__} dump is not JSON-serializable")

    # ------------------------------------------------------------------ deserialize
    def deserialize(self, value: str) -> Any:
        """Rebuild a value from ``serialize`` output; ``ContextSerdeError`` says what is wrong and where."""
        if not isinstance(value, str):
            raise ContextSerdeError(f"expected a serialized string, got a {type(value).__name__}")
        try:
            data = json.loads(value)
        except RecursionError:
            raise ContextSerdeError(f"the value is nested deeper than {MAX_NESTING} levels") from None
        except json.JSONDecodeError as exc:
            raise ContextSerdeError(f"not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno})") from None
        return self.deserialize_value(data)

    def deserialize_value(self, data: Any) -> Any:
        """Inverse of ``serialize_value``: rebuilds tagged models, components and floats."""
        return self._in(data, "", 0)

    def _in(self, data: Any, path: str, depth: int) -> Any:
        if isinstance(data, dict):
            if depth > MAX_NESTING:
                raise ContextSerdeError(f"the value is nested deeper than {MAX_NESTING} levels at {path or 'its top'}")
            if data.get("__is_pydantic") is True and "qualified_name" in data:
                return self._rebuild_model(data, path, depth)
            if data.get("__is_component") is True and "qualified_name" in data:
                return self._rebuild_component(data, path, depth)
            floated = _tagged_float(data)
            if floated is not None:
                return floated
            return {key: self._in(item, _child_path(path, key), depth + 1) for key, item in data.items()}
        if isinstance(data, list):
            if depth > MAX_NESTING:
                raise ContextSerdeError(f"the value is nested deeper than {MAX_NESTING} levels at {path or 'its top'}")
            return [self._in(item, _child_path(path, i), depth + 1) for i, item in enumerate(data)]
        return data

    def _rebuild_model(self, data: dict[str, Any], path: str, depth: int) -> BaseModel:
        name = data["qualified_name"]
        cls = self.resolve(name)
        if not (isinstance(cls, type) and issubclass(cls, BaseModel)):
            raise ContextSerdeError(f"{_short(str(name))!r} is not a Pydantic model class")
        if "fields" in data:
            fields = data["fields"]
            if not isinstance(fields, dict):
                raise ContextSerdeError(f"the saved {cls.__name__}'s fields at {path or 'its top'} are not an object")
            value = {key: self._in(item, _child_path(path, key), depth + 2) for key, item in fields.items()}
        else:
            value = _floats_in(data.get("value"), path, depth + 1)
        token = _events.type_resolver.set(self._resolve_nested)
        try:
            return cls.model_validate(value)
        except ValidationError as exc:
            raise ContextSerdeError(f"the saved {cls.__name__} does not validate: {describe_validation_error(exc)}") from None
        except RecursionError:
            raise ContextSerdeError(f"the saved {cls.__name__} is nested too deeply") from None
        finally:
            _events.type_resolver.reset(token)

    def _rebuild_component(self, data: dict[str, Any], path: str, depth: int) -> Any:
        name = data["qualified_name"]
        cls = self.resolve(name)
        from_dict = getattr(cls, "from_dict", None)
        if not (isinstance(cls, type) and hasattr(cls, "class_name") and callable(from_dict)):
            raise ContextSerdeError(f"{_short(str(name))!r} is not a component class (class_name and from_dict)")
        try:
            return from_dict(_floats_in(data.get("value"), path, depth + 1))
        except ContextSerdeError:
            raise
        except Exception as exc:
            raise ContextSerdeError(f"{cls.__name__}.from_dict failed ({type(exc).__name__})") from exc

    def resolve(self, name: Any) -> type:
        """The class a payload's ``qualified_name`` stands for, or ``ContextSerdeError`` if not allowed."""
        if not isinstance(name, str) or not name:
            raise ContextSerdeError(f"a type name must be a non-empty string, got a {type(name).__name__}")
        found = _framework_type(name)
        if found is not None:
            return found
        known = _known.get()
        if known is not None and name in known:
            return known[name]
        if name in self._allowed_classes:
            return self._allowed_classes[name]
        module = name.rpartition(".")[0]
        if name in self._allowed_names or module in self._allowed_modules:
            return self._import_allowed(name)
        if self.imported_models:
            found = _imported_model(name)
            if found is not None:
                return found
        raise ContextSerdeError(
            f"Type {_short(name)!r} is not allowed to be deserialized: it is not one of the workflow's "
            f"event or state types, nor a Pydantic model of a module this process has imported. "
            f"If you trust it, add it to the allow-list: "
            f"JsonSerializer(allowed_types=[...]) or serializer.allow(...), with the class or the name "
            f"{_short(name)!r} (see docs/security.md)"
        )

    def resolve_class(self, name: str) -> type:
        """``resolve`` with a refused name raised as ``ValueError`` (what llama-agents-client's envelopes expect)."""
        try:
            return self.resolve(name)
        except ContextSerdeError as exc:
            raise ValueError(str(exc)) from None

    def _import_allowed(self, name: str) -> type:
        try:
            found = import_qualified_name(name)
        except ImportError:
            raise ContextSerdeError(f"Cannot deserialize {_short(name)}: the class cannot be imported") from None
        if not isinstance(found, type):
            raise ContextSerdeError(f"Cannot deserialize {_short(name)}: it is not a class")
        return found

    def _resolve_nested(self, name: str) -> Any:
        # Called by the event field validators (SerializableEvent, ...) while a model is
        # rebuilt; they expect ImportError for a name that cannot be had.
        try:
            return self.resolve(name)
        except ContextSerdeError as exc:
            raise ImportError(str(exc)) from None


def _framework_type(name: str) -> type | None:
    module_name, _, attr = name.rpartition(".")
    if module_name not in _FRAMEWORK_MODULES or not attr or "." in attr:
        return None
    module = sys.modules.get(module_name)
    found = getattr(module, attr, None) if module is not None else None
    # Only classes defined there (not whatever a module imported under that name).
    if isinstance(found, type) and found.__module__ == module_name:
        return found
    return None


class _ModelDumpFailed(Exception):
    """Pydantic could not dump a model (``reason`` names no value): it is saved field by field."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _imported_model(name: str) -> type | None:
    """The Pydantic model class defined at ``name`` in a module already in ``sys.modules``.

    Looks names up in module and class ``__dict__``s only: nothing is imported and no
    module ``__getattr__`` runs. Anything but a ``BaseModel`` subclass whose own
    ``module.QualName`` is ``name`` gives ``None``.
    """
    parts = name.split(".")
    for cut in range(len(parts) - 1, 0, -1):
        module = sys.modules.get(".".join(parts[:cut]))
        if module is None:
            continue
        found: Any = module
        for attr in parts[cut:]:
            found = vars(found).get(attr) if hasattr(found, "__dict__") else None
        if isinstance(found, type) and issubclass(found, BaseModel) and qualified_name(found) == name:
            return found
        return None
    return None


def _tagged_float(data: dict[str, Any]) -> float | None:
    if len(data) == 1 and _FLOAT_TAG in data:
        return _FLOATS_OUT.get(data[_FLOAT_TAG]) if isinstance(data[_FLOAT_TAG], str) else None
    return None


def _floats_in(data: Any, path: str, depth: int) -> Any:
    """Untag floats inside a model's or component's dump (nothing else is rebuilt there)."""
    if isinstance(data, dict):
        if depth > MAX_NESTING:
            raise ContextSerdeError(f"the value is nested deeper than {MAX_NESTING} levels at {path or 'its top'}")
        floated = _tagged_float(data)
        if floated is not None:
            return floated
        return {k: _floats_in(v, _child_path(path, k), depth + 1) for k, v in data.items()}
    if isinstance(data, list):
        if depth > MAX_NESTING:
            raise ContextSerdeError(f"the value is nested deeper than {MAX_NESTING} levels at {path or 'its top'}")
        return [_floats_in(v, _child_path(path, i), depth + 1) for i, v in enumerate(data)]
    return data


def describe_validation_error(exc: ValidationError, limit: int = 5) -> str:
    """``loc: msg`` for each of a ValidationError's first errors, without the input values."""
    parts = []
    for error in exc.errors(include_url=False, include_input=False, include_context=False)[:limit]:
        loc = ""
        for key in error["loc"]:
            loc = _child_path(loc, key)
        parts.append(f"{loc or '(top)'}: {_short(error['msg'])}")
    more = exc.error_count() - limit
    if more > 0:
        parts.append(f"and {more} more")
    return "; ".join(parts)


class PickleSerializer(JsonSerializer):
    """JSON when possible, base64-encoded pickle otherwise.

    **Only load payloads you trust**: unpickling runs whatever code the payload asks
    for, and the JSON part of this serializer imports any class its payload names.
    Use it for data your own process wrote and nobody else could change, never for
    contexts that arrive over a network (see docs/security.md).
    """

    def serialize(self, value: Any) -> str:
        try:
            return super().serialize(value)
        except ValueError:
            return base64.b64encode(pickle.dumps(value)).decode("ascii")

    def deserialize(self, value: str) -> Any:
        try:
            return pickle.loads(base64.b64decode(value, validate=True))
        except Exception as pickle_error:
            try:
                return super().deserialize(value)
            except ContextSerdeError as json_error:
                raise ValueError(
                    f"Cannot deserialize value: it is neither a pickle ({type(pickle_error).__name__}) "
                    f"nor JSON ({json_error})"
                ) from pickle_error

    def resolve(self, name: Any) -> type:
        """Any importable class: this serializer trusts its payloads (pickle does anyway)."""
        try:
            return super().resolve(name)
        except ContextSerdeError:
            if not isinstance(name, str):
                raise
            try:
                found = import_qualified_name(name)
            except ImportError:
                raise ContextSerdeError(f"Cannot deserialize {_short(name)}: the class cannot be imported") from None
            if not isinstance(found, type):
                raise ContextSerdeError(f"Cannot deserialize {_short(name)}: it is not a class") from None
            return found


JsonPickleSerializer = PickleSerializer

__all__ = [
    "BaseSerializer",
    "JsonSerializer",
    "PickleSerializer",
    "JsonPickleSerializer",
    "MAX_NESTING",
    "known_types",
    "describe_validation_error",
]
