"""Serializers that turn state values and events into strings and back (for ``Context.to_dict``)."""

from __future__ import annotations

import base64
import json
import pickle
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

from pydantic import BaseModel

from workflows.events import import_qualified_name, qualified_name

# Types from these modules always resolve, whatever ``allowed_types`` says.
_FRAMEWORK_MODULES = frozenset({"workflows.events", "workflows.context.state_store"})


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


class JsonSerializer(BaseSerializer):
    """JSON, with Pydantic models (events included) and LlamaIndex components tagged by class.

    ``allowed_types`` (classes or dotted names) restricts which classes ``deserialize``
    may rebuild; ``None`` allows importing any class named in the payload.
    """

    def __init__(self, *, allowed_types: Iterable[type | str] | None = None) -> None:
        self._allowed: dict[str, type | None] | None = None
        if allowed_types is not None:
            self._allowed = {}
            for entry in allowed_types:
                if isinstance(entry, str):
                    self._allowed[entry] = None
                else:
                    self._allowed[qualified_name(entry)] = entry

    def serialize_value(self, value: Any) -> Any:
        """The JSON-ready form of ``value`` (dicts and lists walked recursively)."""
        cls = type(value)
        # Checked on the class so an event's dynamic ``class_name`` key cannot mislead it.
        if hasattr(cls, "class_name") and hasattr(value, "to_dict"):
            return {"__is_component": True, "value": value.to_dict(), "qualified_name": qualified_name(cls)}
        if isinstance(value, BaseModel):
            return {
                "__is_pydantic": True,
                "value": value.model_dump(mode="json"),
                "qualified_name": qualified_name(cls),
            }
        if isinstance(value, dict):
            return {key: self.serialize_value(item) for key, item in value.items()}
        if isinstance(value, list):
            return [self.serialize_value(item) for item in value]
        return value

    def serialize(self, value: Any) -> str:
        try:
            return json.dumps(self.serialize_value(value))
        except Exception as exc:
            raise ValueError(f"Failed to serialize value: {type(value)}: {value}") from exc

    def deserialize_value(self, data: Any) -> Any:
        """Inverse of ``serialize_value``: rebuilds tagged models and components."""
        if isinstance(data, dict):
            if data.get("__is_pydantic") and "qualified_name" in data:
                return self._resolve(data["qualified_name"]).model_validate(data["value"])
            if data.get("__is_component") and "qualified_name" in data:
                return self._resolve(data["qualified_name"]).from_dict(data["value"])
            return {key: self.deserialize_value(item) for key, item in data.items()}
        if isinstance(data, list):
            return [self.deserialize_value(item) for item in data]
        return data

    def deserialize(self, value: str) -> Any:
        return self.deserialize_value(json.loads(value))

    def resolve_class(self, name: str) -> Any:
        """The class a dotted name names, if ``allowed_types`` allows it (``ValueError`` otherwise).

        llama-agents-client resolves event envelopes' ``qualified_name`` with it.
        """
        return self._resolve(name)

    def _resolve(self, name: str) -> Any:
        allowed = self._allowed
        if allowed is not None:
            cls = allowed.get(name)
            if cls is not None:
                return cls
            module = name.rpartition(".")[0]
            if name not in allowed and module not in _FRAMEWORK_MODULES:
                raise ValueError(
                    f"Type {name} is not allowed: add the class or its dotted name to "
                    "JsonSerializer(allowed_types=[...]) to deserialize it"
                )
        try:
            return import_qualified_name(name)
        except ImportError as exc:
            raise ValueError(f"Cannot deserialize {name}: the class cannot be imported") from exc


class PickleSerializer(JsonSerializer):
    """JSON when possible, base64-encoded pickle otherwise.

    Only deserialize payloads you trust: unpickling can run arbitrary code.
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
            except json.JSONDecodeError:
                raise ValueError(
                    f"Cannot deserialize value: it is neither a pickle ({pickle_error}) nor JSON"
                ) from pickle_error


JsonPickleSerializer = PickleSerializer

__all__ = ["BaseSerializer", "JsonSerializer", "PickleSerializer", "JsonPickleSerializer"]
