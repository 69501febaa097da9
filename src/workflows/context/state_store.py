"""The state store behind ``ctx.store``: one Pydantic model, read by dot paths, edited transactionally.

Values are stored by reference. Writers (``set``, ``set_state``, ``clear``,
``edit_state``) are serialised by one lock per store; readers never wait.
``edit_state`` works on a deep copy and commits it when the block exits, so readers
see either the old or the new state, never half an edit.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import warnings
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any, Generic, Protocol, TypeVar, cast, overload

from pydantic import BaseModel, ValidationError

from workflows.context.serializers import BaseSerializer
from workflows.errors import ContextSerdeError
from workflows.events import DictLikeModel
from workflows.instrumentation.events import MISSING

logger = logging.getLogger(__name__)

MAX_DEPTH = 1000
"""Longest dot path (in segments) that ``get``/``set`` accept."""

MODEL_T = TypeVar("MODEL_T", bound=BaseModel)
_STATE_co = TypeVar("_STATE_co", bound=BaseModel, covariant=True)

StateChangeHook = Callable[[str, str, "tuple[str, ...]", Any, Any], None]
"""``on_change(op, path, keys, before, after)``; see ``InMemoryStateStore.on_change``."""

_WRITER_IN_EDIT = "writer called inside edit_state: mutate the yielded state instead"

# ids of the stores whose edit_state block the current task (or its children) is inside.
_editing: contextvars.ContextVar[frozenset[int]] = contextvars.ContextVar(
    "workflows_state_store_editing", default=frozenset()
)

_NOT_FOUND = object()


class UnserializableKeyWarning(Warning):
    """A state key was left out of a serialized context because its value cannot be serialized."""


class DictState(DictLikeModel):
    """The default state: no declared fields, every key lives in the dynamic ``_data``."""


class StateStore(Protocol[_STATE_co]):
    """What ``ctx.store`` offers; ``InMemoryStateStore`` is the implementation."""

    on_change: StateChangeHook | None

    @property
    def state_type(self) -> type[_STATE_co]: ...

    async def get(self, path: str, default: Any = ...) -> Any: ...

    async def set(self, path: str, value: Any) -> None: ...

    async def get_state(self) -> _STATE_co: ...

    async def set_state(self, state: BaseModel) -> None: ...

    async def clear(self) -> None: ...

    def edit_state(self) -> AbstractAsyncContextManager[_STATE_co]: ...

    def to_dict(self, serializer: BaseSerializer) -> dict[str, Any]: ...


class InMemoryStateStore(Generic[MODEL_T]):
    """Holds one state model in memory.

    Built from an instance (``InMemoryStateStore(MyState(...))``) or a type
    (``InMemoryStateStore(state_type=MyState)``, which needs defaults for every field
    and raises ``pydantic.ValidationError`` otherwise); with neither, a ``DictState``.

    ``on_change``, when set, is called synchronously after every committed mutation
    as ``on_change(op, path, keys, before, after)``: ``op`` is ``set``, ``edit``,
    ``set_state`` or ``clear``; ``path`` a JSON Pointer (``""`` for the whole state);
    ``keys`` the top-level keys affected; ``before`` is ``MISSING`` when a ``set``
    created the path. Exceptions from the hook are logged and swallowed.
    """

    @overload
    def __init__(
        self: InMemoryStateStore[DictState], initial_state: None = None, *, state_type: None = None
    ) -> None: ...

    @overload
    def __init__(self, initial_state: MODEL_T, *, state_type: type[MODEL_T] | None = None) -> None: ...

    @overload
    def __init__(self, initial_state: None = None, *, state_type: type[MODEL_T]) -> None: ...

    def __init__(
        self, initial_state: MODEL_T | None = None, *, state_type: type[MODEL_T] | None = None
    ) -> None:
        if initial_state is None:
            initial_state = (state_type or cast("type[MODEL_T]", DictState))()
        self._state: MODEL_T = initial_state
        self._state_type: type[MODEL_T] = state_type or type(initial_state)
        self.on_change: StateChangeHook | None = None
        # A store outlives event loops (a Context may be reused across asyncio.run
        # calls) while an asyncio.Lock binds to one loop, so keep one lock per loop.
        self._lock: asyncio.Lock | None = None
        self._lock_loop: asyncio.AbstractEventLoop | None = None

    @property
    def state_type(self) -> type[MODEL_T]:
        """The state model class."""
        return self._state_type

    # --- reads -------------------------------------------------------------------

    async def get(self, path: str, default: Any = MISSING) -> Any:
        """The value at a dot path (``"a.b"``, ``"items.0"``).

        Raises ``ValueError`` when the path is missing and no ``default`` was given.
        """
        value: Any = self._state
        for segment in _split(path):
            value = _child(value, segment)
            if value is _NOT_FOUND:
                if default is not MISSING:
                    return default
                raise ValueError(f"Path '{path}' not found in state")
        return value

    async def get_state(self) -> MODEL_T:
        """A shallow copy of the state model."""
        return self._state.model_copy()

    # --- writes ------------------------------------------------------------------

    async def set(self, path: str, value: Any) -> None:
        """Store ``value`` at a dot path, creating missing intermediate dicts.

        On a typed state, an unknown top-level field raises ``ValueError``.
        """
        if not path:
            raise ValueError("Path cannot be empty")
        segments = _split(path)
        self._check_not_editing()
        async with self._writer_lock():
            parent: Any = self._state
            depth = 0
            while depth < len(segments) - 1:
                child = _child(parent, segments[depth])
                if child is _NOT_FOUND:
                    break
                parent = child
                depth += 1
            # Build the missing tail detached, then attach it in one assignment, so a
            # failing assignment leaves the state untouched.
            new_value = value
            for segment in reversed(segments[depth + 1 :]):
                new_value = {segment: new_value}
            hook = self.on_change
            before = MISSING
            if hook is not None and depth == len(segments) - 1:
                found = _child(parent, segments[-1])
                before = MISSING if found is _NOT_FOUND else found
            _assign(parent, segments[depth], new_value, path)
            if hook is not None:
                pointer = "/" + "/".join(s.replace("~", "~0").replace("/", "~1") for s in segments)
                self._notify(hook, "set", pointer, (segments[0],), before, value)

    async def set_state(self, state: BaseModel) -> None:
        """Replace the state, or merge into it when ``state`` is of a parent class of the state type."""
        self._check_not_editing()
        async with self._writer_lock():
            current = self._state
            if isinstance(state, self._state_type):
                new = state
            elif isinstance(state, BaseModel) and issubclass(self._state_type, type(state)):
                update = {name: getattr(state, name) for name in type(state).__pydantic_fields__}
                new = current.model_copy(update=update)
                if isinstance(state, DictLikeModel) and isinstance(new, DictLikeModel):
                    new._data = {**new._data, **state._data}
            else:
                raise ValueError(
                    f"State must be of type {self._state_type.__name__} or a parent type, "
                    f"got {type(state).__name__}"
                )
            self._state = new
            hook = self.on_change
            if hook is not None:
                self._notify(hook, "set_state", "", _changed_keys(current, new), current, new)

    async def clear(self) -> None:
        """Reset the state to a default instance of the state type."""
        self._check_not_editing()
        async with self._writer_lock():
            try:
                new = self._state_type()
            except ValidationError:
                raise ValueError("State must have defaults for all fields") from None
            current = self._state
            self._state = new
            hook = self.on_change
            if hook is not None:
                self._notify(hook, "clear", "", _changed_keys(current, new), current, new)

    def edit_state(self) -> AbstractAsyncContextManager[MODEL_T]:
        """Edit a private deep copy of the state; it replaces the state when the block exits.

        Other writers wait until the block ends; if the block raises, nothing is
        committed. Writers called inside the block, or from tasks it starts (which
        would otherwise wait for the block forever), raise ``RuntimeError``.
        """
        return self._edit()

    @asynccontextmanager
    async def _edit(self) -> AsyncIterator[MODEL_T]:
        self._check_not_editing()
        async with self._writer_lock():
            before = self._state
            try:
                draft = before.model_copy(deep=True)
            except Exception as exc:
                raise TypeError(
                    f"edit_state needs a deep copy of the state, but a value in it cannot be "
                    f"copied ({exc}); keep such objects out of the state or use get/set"
                ) from exc
            token = _editing.set(_editing.get() | {id(self)})
            try:
                yield draft
            finally:
                _editing.reset(token)
            self._state = draft
            hook = self.on_change
            if hook is not None:
                keys = _changed_keys(before, draft)
                if keys:
                    self._notify(hook, "edit", "", keys, before, draft)

    def apply_change(self, path: str, value: Any) -> None:
        """Apply a journaled change (``StateChanged.path``/``after``) without notifying or locking.

        Used to rebuild a run's state from its journal (``workflows.runtime.replay``):
        ``path`` ``""`` replaces the whole state with ``value``; a JSON Pointer sets the
        value there, creating missing intermediate dicts.
        """
        if path == "":
            if not isinstance(value, BaseModel):
                raise ValueError(f"a whole-state change needs a {self._state_type.__name__}, got {type(value).__name__}")
            self._state = cast("MODEL_T", value)
            return
        segments = [s.replace("~1", "/").replace("~0", "~") for s in path.lstrip("/").split("/")]
        parent: Any = self._state
        for depth, segment in enumerate(segments[:-1]):
            child = _child(parent, segment)
            if child is _NOT_FOUND:
                tail: Any = value
                for later in reversed(segments[depth + 1 :]):
                    tail = {later: tail}
                _assign(parent, segment, tail, path)
                return
            parent = child
        _assign(parent, segments[-1], value, path)

    # --- serialization ------------------------------------------------------------

    def to_dict(self, serializer: BaseSerializer) -> dict[str, Any]:
        """The ``state`` payload of a serialized context.

        A plain ``DictState`` is serialized one string per key (an unserializable ``memory``
        key is skipped with ``UnserializableKeyWarning``); a typed state as one string.
        Raises ``ValueError`` naming the key whose value cannot be serialized.
        """
        state = self._state
        state_data: Any
        if isinstance(state, DictState) and type(state) is DictState:
            serialized: dict[str, str] = {}
            for key, value in state._data.items():
                try:
                    serialized[key] = serializer.serialize(value)
                except Exception as exc:
                    if key == "memory":
                        warnings.warn(
                            f"State key 'memory' cannot be serialized and is left out: {exc}",
                            UnserializableKeyWarning,
                            stacklevel=2,
                        )
                        continue
                    raise ValueError(f"Failed to serialize state value for key {key}: {exc}") from exc
            state_data = {"_data": serialized}
        else:
            try:
                state_data = serializer.serialize(state)
            except Exception as exc:
                raise ValueError(
                    f"Failed to serialize state of type {type(state).__name__}: {exc}"
                ) from exc
        return {
            "store_type": "in_memory",
            "state_type": type(state).__name__,
            "state_module": type(state).__module__,
            "state_data": state_data,
        }

    @classmethod
    def from_dict(
        cls,
        data: dict[str, Any],
        serializer: BaseSerializer,
        *,
        state_type: type[BaseModel] | None = None,
    ) -> InMemoryStateStore[Any]:
        """Rebuild a store from ``to_dict`` output; an empty payload gives a fresh store.

        ``state_type`` is the type a fresh store starts with (default ``DictState``).
        Raises ``ContextSerdeError`` when the payload is malformed or a value cannot
        be deserialized.
        """
        make = cast("type[InMemoryStateStore[Any]]", cls)
        if not data:
            return make(state_type=state_type)
        if not isinstance(data, dict) or data.get("store_type") != "in_memory":
            raise ContextSerdeError(
                f"Unsupported state payload: expected store_type 'in_memory', got {data!r:.200}"
            )
        state_data = data.get("state_data")
        try:
            with serializer.validation_context():
                if isinstance(state_data, dict):
                    values = state_data.get("_data")
                    if not isinstance(values, dict):
                        raise ContextSerdeError("DictState payload needs a '_data' object of strings")
                    restored = DictState()
                    restored._data.update(
                        {key: serializer.deserialize(value) for key, value in values.items()}
                    )
                    return make(restored)
                if isinstance(state_data, str):
                    state = serializer.deserialize(state_data)
                    if not isinstance(state, BaseModel):
                        raise ContextSerdeError(
                            f"State payload rebuilt a {type(state).__name__}, not a Pydantic model"
                        )
                    return make(state)
        except ContextSerdeError:
            raise
        except Exception as exc:
            raise ContextSerdeError(f"Cannot restore the state store: {exc}") from exc
        raise ContextSerdeError("State payload needs 'state_data' (an object or a string)")

    # --- internals ----------------------------------------------------------------

    def _writer_lock(self) -> asyncio.Lock:
        loop = asyncio.get_running_loop()
        if self._lock is None or self._lock_loop is not loop:
            self._lock = asyncio.Lock()
            self._lock_loop = loop
        return self._lock

    def _check_not_editing(self) -> None:
        if id(self) in _editing.get():
            raise RuntimeError(_WRITER_IN_EDIT)

    @staticmethod
    def _notify(
        hook: StateChangeHook, op: str, path: str, keys: tuple[str, ...], before: Any, after: Any
    ) -> None:
        try:
            hook(op, path, keys, before, after)
        except Exception:
            logger.exception("state store on_change hook failed (op=%s, path=%r)", op, path)


def _split(path: str) -> list[str]:
    segments = path.split(".")
    if len(segments) > MAX_DEPTH:
        raise ValueError(f"Path '{path[:50]}...' is deeper than the maximum of {MAX_DEPTH} segments")
    return segments


def _child(container: Any, segment: str) -> Any:
    """``container``'s member named ``segment``, or ``_NOT_FOUND``."""
    if isinstance(container, dict):
        return container.get(segment, _NOT_FOUND)
    if isinstance(container, DictLikeModel):
        data = container._data
        if segment in data:
            return data[segment]
        if segment in type(container).__pydantic_fields__:
            return getattr(container, segment)
        return _NOT_FOUND
    if isinstance(container, (list, tuple)):
        try:
            return container[int(segment)]
        except (ValueError, IndexError):
            return _NOT_FOUND
    if isinstance(container, BaseModel):
        if segment in type(container).__pydantic_fields__:
            return getattr(container, segment)
        extra = container.__pydantic_extra__
        if extra and segment in extra:
            return extra[segment]
        return _NOT_FOUND
    if segment.startswith("_"):
        return _NOT_FOUND
    return getattr(container, segment, _NOT_FOUND)


def _assign(container: Any, segment: str, value: Any, path: str) -> None:
    if isinstance(container, dict):
        container[segment] = value
    elif isinstance(container, DictLikeModel):
        if segment in type(container).__pydantic_fields__:
            setattr(container, segment, value)
        else:
            container._data[segment] = value
    elif isinstance(container, list):
        try:
            container[int(segment)] = value
        except (ValueError, IndexError):
            raise ValueError(
                f"Cannot set '{path}': '{segment}' is not an index of a list of {len(container)} items"
            ) from None
    elif isinstance(container, BaseModel):
        # Pydantic raises ValueError('"Cls" object has no field "x"') for unknown fields.
        setattr(container, segment, value)
    else:
        try:
            setattr(container, segment, value)
        except (AttributeError, TypeError) as exc:
            raise ValueError(
                f"Cannot set '{path}': a {type(container).__name__} does not accept '{segment}'"
            ) from exc


def _top_level(state: BaseModel) -> dict[str, Any]:
    values = {name: getattr(state, name) for name in type(state).__pydantic_fields__}
    if isinstance(state, DictLikeModel):
        values.update(state._data)
    return values


def _same(a: Any, b: Any) -> bool:
    if a is b:
        return True
    try:
        return bool(a == b)
    except Exception:  # e.g. arrays whose == is elementwise
        return False


def _changed_keys(before: BaseModel, after: BaseModel) -> tuple[str, ...]:
    old, new = _top_level(before), _top_level(after)
    keys = dict.fromkeys([*old, *new])
    return tuple(
        key for key in keys if key not in old or key not in new or not _same(old[key], new[key])
    )


__all__ = [
    "StateStore",
    "InMemoryStateStore",
    "DictState",
    "MAX_DEPTH",
    "UnserializableKeyWarning",
]
