"""The in-memory state store: dot paths, typed states, edit_state, serialization, on_change."""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import warnings
from typing import Any

import pytest
from pydantic import BaseModel, Field, ValidationError

from workflows.context import JsonSerializer, PickleSerializer
from workflows.context.state_store import (
    MAX_DEPTH,
    DictState,
    InMemoryStateStore,
    StateStore,
    UnserializableKeyWarning,
)
from workflows.errors import ContextSerdeError
from workflows.events import Event
from workflows.instrumentation.events import MISSING


class Counter(BaseModel):
    count: int = 0
    tags: list[str] = Field(default_factory=list)


class ParentState(BaseModel):
    name: str = "p"


class ChildState(ParentState):
    extra: int = 7


class NoDefaults(BaseModel):
    required: int


class Opaque:
    def __init__(self, n: int) -> None:
        self.n = n


Change = tuple[str, str, tuple[str, ...], Any, Any]


def recording(store: InMemoryStateStore[Any]) -> list[Change]:
    changes: list[Change] = []
    store.on_change = lambda *args: changes.append(args)
    return changes


# --- get / set ----------------------------------------------------------------------------


async def test_default_store_holds_a_dict_state() -> None:
    store = InMemoryStateStore()
    assert store.state_type is DictState
    assert isinstance(await store.get_state(), DictState)


async def test_get_missing_path_raises_unless_default_given() -> None:
    store = InMemoryStateStore()
    with pytest.raises(ValueError, match="Path 'missing' not found in state"):
        await store.get("missing")
    assert await store.get("missing", default=None) is None
    assert await store.get("missing", 5) == 5


async def test_set_creates_intermediate_dicts() -> None:
    store = InMemoryStateStore()
    await store.set("a.b.c", 1)
    assert await store.get("a") == {"b": {"c": 1}}
    assert await store.get("a.b.c") == 1


async def test_paths_walk_list_indices_events_and_models() -> None:
    store = InMemoryStateStore()
    await store.set("lst", [10, {"k": "v"}])
    await store.set("ev", Event(dyn=1))
    await store.set("model", Counter(count=3))
    assert await store.get("lst.1.k") == "v"
    assert await store.get("ev.dyn") == 1
    assert await store.get("model.count") == 3
    assert await store.get("lst.5", "absent") == "absent"
    await store.set("lst.0", 11)
    await store.set("model.count", 4)
    assert await store.get("lst") == [11, {"k": "v"}]
    assert (await store.get("model")).count == 4


async def test_set_into_missing_list_index_fails_without_touching_state() -> None:
    store = InMemoryStateStore()
    await store.set("lst", [1])
    with pytest.raises(ValueError, match="not an index"):
        await store.set("lst.3.x", 1)
    assert await store.get("lst") == [1]


async def test_empty_path_and_too_deep_paths_are_rejected() -> None:
    store = InMemoryStateStore()
    with pytest.raises(ValueError, match="Path cannot be empty"):
        await store.set("", 1)
    too_deep = ".".join(["a"] * (MAX_DEPTH + 1))
    with pytest.raises(ValueError, match=str(MAX_DEPTH)):
        await store.get(too_deep)
    with pytest.raises(ValueError, match=str(MAX_DEPTH)):
        await store.set(too_deep, 1)


async def test_values_are_stored_by_reference() -> None:
    store = InMemoryStateStore()
    items = [1]
    await store.set("items", items)
    items.append(2)
    (await store.get("items")).append(3)
    assert await store.get("items") == [1, 2, 3]


async def test_get_state_is_a_shallow_copy() -> None:
    store = InMemoryStateStore(Counter())
    copy = await store.get_state()
    copy.count = 99
    assert await store.get("count") == 0


# --- typed states --------------------------------------------------------------------------


async def test_typed_store_returns_its_model_and_rejects_unknown_fields() -> None:
    store = InMemoryStateStore(state_type=Counter)
    assert store.state_type is Counter
    assert isinstance(await store.get_state(), Counter)
    await store.set("count", 2)
    assert (await store.get_state()).count == 2
    with pytest.raises(ValueError, match="no field"):
        await store.set("unknown", 1)


async def test_typed_store_does_not_validate_values() -> None:
    store = InMemoryStateStore(state_type=Counter)
    await store.set("count", "not an int")
    assert await store.get("count") == "not an int"


def test_store_for_a_model_without_defaults_raises_validation_error() -> None:
    with pytest.raises(ValidationError):
        InMemoryStateStore(state_type=NoDefaults)


async def test_set_state_replaces_with_same_type() -> None:
    store = InMemoryStateStore(Counter())
    new = Counter(count=5)
    await store.set_state(new)
    assert (await store.get_state()) == new


async def test_set_state_with_parent_type_merges_and_keeps_child_fields() -> None:
    store = InMemoryStateStore(ChildState(extra=3))
    await store.set_state(ParentState(name="new"))
    state = await store.get_state()
    assert isinstance(state, ChildState)
    assert (state.name, state.extra) == ("new", 3)


async def test_set_state_with_unrelated_type_raises() -> None:
    store = InMemoryStateStore(ChildState())
    with pytest.raises(ValueError, match="State must be of type ChildState or a parent type, got Counter"):
        await store.set_state(Counter())


async def test_clear_resets_to_defaults() -> None:
    store = InMemoryStateStore(Counter(count=4))
    await store.clear()
    assert await store.get("count") == 0
    dict_store = InMemoryStateStore()
    await dict_store.set("a", 1)
    await dict_store.clear()
    assert await dict_store.get("a", None) is None


async def test_clear_without_defaults_raises_value_error() -> None:
    store = InMemoryStateStore(NoDefaults(required=1))
    with pytest.raises(ValueError, match="State must have defaults for all fields"):
        await store.clear()


def test_in_memory_store_satisfies_the_protocol() -> None:
    store: StateStore[DictState] = InMemoryStateStore()
    assert store.on_change is None


# --- edit_state ----------------------------------------------------------------------------


async def test_edit_state_commits_on_exit_and_reads_inside_see_pre_edit_state() -> None:
    store = InMemoryStateStore(Counter())
    async with store.edit_state() as state:
        assert isinstance(state, Counter)
        state.count = 10
        assert await store.get("count") == 0
        assert (await store.get_state()).count == 0
    assert await store.get("count") == 10


async def test_edit_state_on_dict_state_edits_dynamic_keys() -> None:
    store = InMemoryStateStore()
    await store.set("items", [1])
    async with store.edit_state() as state:
        state["items"].append(2)
        state.new_key = "v"
        assert await store.get("items") == [1]
    assert await store.get("items") == [1, 2]
    assert await store.get("new_key") == "v"


async def test_edit_state_block_that_raises_commits_nothing() -> None:
    store = InMemoryStateStore(Counter())
    with pytest.raises(KeyError):
        async with store.edit_state() as state:
            state.count = 5
            raise KeyError("boom")
    assert await store.get("count") == 0
    await store.set("count", 1)  # the writer lock was released
    assert await store.get("count") == 1


@pytest.mark.parametrize("writer", ["set", "set_state", "clear", "edit_state"])
async def test_writer_inside_edit_state_raises_runtime_error(writer: str) -> None:
    store = InMemoryStateStore(Counter())
    message = "writer called inside edit_state: mutate the yielded state instead"
    async with store.edit_state():
        with pytest.raises(RuntimeError, match=message):
            if writer == "set":
                await store.set("count", 1)
            elif writer == "set_state":
                await store.set_state(Counter())
            elif writer == "clear":
                await store.clear()
            else:
                async with store.edit_state():
                    pass


async def test_writer_of_another_store_inside_edit_state_works() -> None:
    store, other = InMemoryStateStore(Counter()), InMemoryStateStore()
    async with store.edit_state() as state:
        await other.set("a", 1)
        state.count = 1
    assert await other.get("a") == 1


async def test_concurrent_task_writer_waits_for_the_edit_instead_of_raising() -> None:
    store = InMemoryStateStore(Counter())
    inside = asyncio.Event()
    release = asyncio.Event()

    async def editor() -> None:
        async with store.edit_state() as state:
            state.tags.append("edit")
            inside.set()
            await release.wait()

    async def writer() -> None:
        await inside.wait()
        await store.set("count", 5)

    edit_task = asyncio.create_task(editor())
    write_task = asyncio.create_task(writer())
    await inside.wait()
    for _ in range(5):  # give the writer every chance to run while the edit is open
        await asyncio.sleep(0)
    assert not write_task.done()
    release.set()
    await asyncio.gather(edit_task, write_task)
    state = await store.get_state()
    assert (state.count, state.tags) == (5, ["edit"])


async def test_concurrent_increments_with_edit_state_never_lose_an_update() -> None:
    store = InMemoryStateStore(Counter())

    async def increment() -> None:
        async with store.edit_state() as state:
            current = state.count
            await asyncio.sleep(0)  # let the other tasks interleave
            state.count = current + 1

    await asyncio.gather(*(increment() for _ in range(200)))
    assert await store.get("count") == 200


async def test_edit_state_on_uncopyable_state_raises_clear_type_error() -> None:
    store = InMemoryStateStore()
    await store.set("lock", threading.Lock())
    with pytest.raises(TypeError, match="deep copy"):
        async with store.edit_state():
            pass


def test_store_works_across_event_loops() -> None:
    store = InMemoryStateStore(Counter())

    async def contended_increments() -> None:
        async def increment() -> None:
            async with store.edit_state() as state:
                await asyncio.sleep(0)
                state.count += 1

        await asyncio.gather(*(increment() for _ in range(5)))

    asyncio.run(contended_increments())
    asyncio.run(contended_increments())
    assert store._state.count == 10


# --- on_change hook -----------------------------------------------------------------------


async def test_on_change_reports_set_with_pointer_key_before_and_after() -> None:
    store = InMemoryStateStore()
    changes = recording(store)
    await store.set("a.b/c", 1)
    await store.set("a.b/c", 2)
    assert changes == [
        ("set", "/a/b~1c", ("a",), MISSING, 1),
        ("set", "/a/b~1c", ("a",), 1, 2),
    ]


async def test_on_change_set_creating_intermediates_reports_missing_before() -> None:
    store = InMemoryStateStore()
    changes = recording(store)
    await store.set("x.y.z", 3)
    assert changes == [("set", "/x/y/z", ("x",), MISSING, 3)]


async def test_on_change_reports_edit_with_changed_top_level_keys_only() -> None:
    store = InMemoryStateStore(Counter())
    changes = recording(store)
    async with store.edit_state() as state:
        state.count = 3
    assert len(changes) == 1
    op, path, keys, before, after = changes[0]
    assert (op, path, keys) == ("edit", "", ("count",))
    assert before.count == 0 and after.count == 3
    assert after is store._state


async def test_on_change_reports_dict_state_edit_keys() -> None:
    store = InMemoryStateStore()
    await store.set("keep", 1)
    await store.set("change", [1])
    changes = recording(store)
    async with store.edit_state() as state:
        state["change"].append(2)
        state.added = True
    assert [c[2] for c in changes] == [("change", "added")]


async def test_on_change_not_called_for_edit_without_changes() -> None:
    store = InMemoryStateStore(Counter())
    changes = recording(store)
    async with store.edit_state() as state:
        state.count = 0
    assert changes == []


async def test_on_change_reports_set_state_and_clear_with_whole_models() -> None:
    store = InMemoryStateStore(Counter(count=1))
    changes = recording(store)
    new = Counter(count=2)
    await store.set_state(new)
    await store.clear()
    assert [(c[0], c[1], c[2]) for c in changes] == [
        ("set_state", "", ("count",)),
        ("clear", "", ("count",)),
    ]
    assert changes[0][3] == Counter(count=1) and changes[0][4] is new
    assert changes[1][3] is new and changes[1][4] == Counter()


async def test_on_change_not_called_when_a_write_fails() -> None:
    store = InMemoryStateStore(Counter())
    changes = recording(store)
    with pytest.raises(ValueError):
        await store.set("unknown", 1)
    with pytest.raises(KeyError):
        async with store.edit_state() as state:
            state.count = 1
            raise KeyError("x")
    assert changes == []


async def test_failing_on_change_hook_is_logged_and_the_write_still_commits(
    caplog: pytest.LogCaptureFixture,
) -> None:
    store = InMemoryStateStore()

    def broken(*args: Any) -> None:
        raise RuntimeError("hook broke")

    store.on_change = broken
    with caplog.at_level(logging.ERROR, logger="workflows.context.state_store"):
        await store.set("a", 1)
    assert await store.get("a") == 1
    assert "on_change hook failed" in caplog.text


# --- to_dict / from_dict -------------------------------------------------------------------


async def test_dict_state_serializes_one_string_per_key() -> None:
    store = InMemoryStateStore()
    await store.set("n", 11)
    await store.set("lst", [1, 2, 3])
    payload = store.to_dict(JsonSerializer())
    assert payload == {
        "store_type": "in_memory",
        "state_type": "DictState",
        "state_module": "workflows.context.state_store",
        "state_data": {"_data": {"n": "11", "lst": "[1, 2, 3]"}},
    }
    json.dumps(payload)


async def test_dict_state_payload_round_trips_through_json() -> None:
    store = InMemoryStateStore()
    await store.set("n", 11)
    await store.set("ev", Event(k=1))
    payload = json.loads(json.dumps(store.to_dict(JsonSerializer())))
    restored = InMemoryStateStore.from_dict(payload, JsonSerializer())
    assert await restored.get("n") == 11
    assert type(await restored.get("ev")) is Event
    assert await restored.get("ev.k") == 1


async def test_typed_state_serializes_as_one_string_and_round_trips() -> None:
    store = InMemoryStateStore(Counter(count=2, tags=["a"]))
    payload = store.to_dict(JsonSerializer())
    assert payload["state_type"] == "Counter"
    assert payload["state_module"] == __name__
    assert json.loads(payload["state_data"])["__is_pydantic"] is True
    restored = InMemoryStateStore.from_dict(json.loads(json.dumps(payload)), JsonSerializer(allowed_types=[Counter]))
    assert await restored.get_state() == Counter(count=2, tags=["a"])
    assert restored.state_type is Counter


async def test_unserializable_value_raises_value_error_naming_the_key() -> None:
    store = InMemoryStateStore()
    await store.set("thing", Opaque(1))
    with pytest.raises(ValueError, match="Failed to serialize state value for key thing"):
        store.to_dict(JsonSerializer())


async def test_unserializable_memory_key_is_skipped_with_warning() -> None:
    store = InMemoryStateStore()
    await store.set("memory", Opaque(1))
    await store.set("n", 1)
    with pytest.warns(UnserializableKeyWarning):
        payload = store.to_dict(JsonSerializer())
    assert payload["state_data"] == {"_data": {"n": "1"}}


async def test_pickle_serializer_round_trips_unserializable_values() -> None:
    store = InMemoryStateStore()
    await store.set("thing", Opaque(4))
    await store.set("n", 1)
    payload = json.loads(json.dumps(store.to_dict(PickleSerializer())))
    assert payload["state_data"]["_data"]["n"] == "1"
    restored = InMemoryStateStore.from_dict(payload, PickleSerializer())
    thing = await restored.get("thing")
    assert isinstance(thing, Opaque) and thing.n == 4


async def test_empty_payload_restores_a_fresh_store() -> None:
    fresh = InMemoryStateStore.from_dict({}, JsonSerializer())
    assert fresh.state_type is DictState
    typed = InMemoryStateStore.from_dict({}, JsonSerializer(), state_type=Counter)
    assert await typed.get_state() == Counter()


@pytest.mark.parametrize(
    "payload",
    [
        {"store_type": "redis"},
        {"store_type": "in_memory"},
        {"store_type": "in_memory", "state_data": {"nope": 1}},
        {"store_type": "in_memory", "state_data": {"_data": {"k": "{not json"}}},
        {"store_type": "in_memory", "state_data": "[1, 2]"},
    ],
)
def test_malformed_payload_raises_context_serde_error(payload: dict[str, Any]) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(ContextSerdeError):
            InMemoryStateStore.from_dict(payload, JsonSerializer())
