"""Resources: finding them in signatures, building and caching them, configs, cycles, validation."""

from __future__ import annotations

import asyncio
import functools
import json
import re
import typing
from pathlib import Path
from typing import Annotated, Any

import pydantic
import pytest

from workflows.errors import WorkflowValidationError
from workflows.resource import (
    Resource,
    ResourceConfig,
    ResourceDefinition,
    ResourceDescriptor,
    ResourceManager,
    check_acyclic,
    find_resource_definitions,
    resolve_resources,
    validate_resource_configs,
    validate_resources,
)


class Counter:
    """A factory that counts its calls and returns a new object each time."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self) -> object:
        self.calls += 1
        return object()


class LLMConfig(pydantic.BaseModel):
    model: str
    temperature: float = 0.0


def get_db() -> dict[str, int]:
    return {"rows": 1}


def get_session() -> list[str]:
    return []


async def get_client(db: Annotated[dict[str, int], Resource(get_db)], retries: int = 2) -> tuple[Any, int]:
    return db, retries


def cycle_a(b: Annotated[object, Resource(cycle_b)]) -> object:
    return b


def cycle_b(a: Annotated[object, Resource(cycle_a)]) -> object:
    return a


def self_cycle(me: Annotated[object, Resource(self_cycle)]) -> object:
    return me


def needs_missing_name(x: Annotated[object, Resource(not_defined_anywhere)]) -> object:  # noqa: F821
    return x


def write_json(path: Path, data: Any) -> str:
    path.write_text(json.dumps(data))
    return str(path)


# --------------------------------------------------------------------------- finding definitions


def test_find_resource_definitions_picks_annotated_descriptors_in_order() -> None:
    db = Resource(get_db)
    cfg = ResourceConfig("c.json")

    def step(
        self: Any,
        ev: int,
        cfg_param: Annotated[LLMConfig, cfg],
        other: Annotated[int, "just metadata"],
        plain: str,
        db_param: Annotated[dict[str, int], db],
    ) -> Annotated[int, db]:
        return 0

    hints = typing.get_type_hints(step, localns={"cfg": cfg, "db": db}, include_extras=True)
    found = find_resource_definitions(hints)
    assert found == [
        ResourceDefinition(name="cfg_param", resource=cfg, type_annotation=LLMConfig),
        ResourceDefinition(name="db_param", resource=db, type_annotation=dict[str, int]),
    ]


def test_descriptors_satisfy_the_protocol() -> None:
    assert isinstance(Resource(get_db), ResourceDescriptor)
    assert isinstance(ResourceConfig("c.json"), ResourceDescriptor)
    assert not isinstance("metadata", ResourceDescriptor)


def test_resource_rejects_a_non_callable_factory() -> None:
    with pytest.raises(TypeError, match="needs a function"):
        Resource("get_db")  # type: ignore[arg-type]


# --------------------------------------------------------------------------- caching


async def test_cached_resource_is_built_once_per_manager() -> None:
    factory = Counter()
    resource = Resource(factory)
    manager = ResourceManager()
    first = await manager.get(resource)
    assert await manager.get(resource) is first
    assert await resolve_resources(manager, [ResourceDefinition(name="x", resource=resource)]) == {"x": first}
    assert factory.calls == 1
    assert await ResourceManager().get(resource) is not first


async def test_cache_key_is_the_factory_qualname() -> None:
    manager = ResourceManager()
    value = await manager.get(Resource(get_db))
    assert await manager.get(Resource(get_db)) is value
    assert manager.resources == {"get_db": value}
    assert manager.get_all() == {"get_db": value} and manager.get_all() is not manager.resources


async def test_uncached_resource_is_new_per_invocation_but_shared_within_one() -> None:
    factory = Counter()
    resource = Resource(factory, cache=False)
    definitions = [ResourceDefinition(name="a", resource=resource), ResourceDefinition(name="b", resource=Resource(factory, cache=False))]
    manager = ResourceManager()
    first = await resolve_resources(manager, definitions)
    second = await resolve_resources(manager, definitions)
    assert first["a"] is first["b"]
    assert second["a"] is not first["a"]
    assert factory.calls == 2
    assert manager.resources == {}


async def test_preseeded_value_wins_over_the_factory_of_a_cached_resource() -> None:
    factory = Counter()
    manager = ResourceManager()
    fake = object()
    await manager.set(Resource(factory).name, fake)
    assert await manager.get(Resource(factory)) is fake
    assert factory.calls == 0
    # As in the reference, cache=False never reads the workflow's cache: it always builds.
    fresh = await manager.get(Resource(factory, cache=False))
    assert fresh is not fake and factory.calls == 1


async def test_concurrent_requests_share_one_build_of_a_cached_resource() -> None:
    release = asyncio.Event()
    calls = 0

    async def slow_factory() -> object:
        nonlocal calls
        calls += 1
        await release.wait()
        return object()

    manager = ResourceManager()
    resource = Resource(slow_factory)
    tasks = [asyncio.create_task(manager.get(resource)) for _ in range(4)]
    await asyncio.sleep(0)  # let every task reach the build or the wait
    release.set()
    values = await asyncio.gather(*tasks)
    assert calls == 1
    assert all(v is values[0] for v in values)


async def test_failed_build_is_not_cached_and_is_tried_again() -> None:
    attempts = 0

    def flaky() -> str:
        nonlocal attempts
        attempts += 1
        if attempts == 1:
            raise ConnectionError("database down")
        return "connected"

    manager = ResourceManager()
    with pytest.raises(ConnectionError, match="database down"):
        await manager.get(Resource(flaky))
    assert manager.resources == {}
    assert await manager.get(Resource(flaky)) == "connected"


# --------------------------------------------------------------------------- factories


async def test_async_factory_with_a_chained_sync_dependency_and_a_default() -> None:
    manager = ResourceManager()
    client = await manager.get(Resource(get_client))
    assert client == ({"rows": 1}, 2)
    assert client[0] is manager.resources["get_db"]


async def test_factories_defined_inside_a_function_resolve_their_dependencies() -> None:
    class Engine:
        pass

    def make_engine() -> Engine:
        return Engine()

    async def make_repo(engine: Annotated[Engine, Resource(make_engine)]) -> tuple[str, Engine]:
        return "repo", engine

    manager = ResourceManager()
    repo = await manager.get(Resource(make_repo))
    assert repo[0] == "repo" and isinstance(repo[1], Engine)
    assert repo[1] is await manager.get(Resource(make_engine))


async def test_cached_resource_built_from_an_uncached_one_keeps_its_dependency() -> None:
    inner = Counter()

    def outer(dep: Annotated[object, Resource(inner, cache=False)]) -> object:
        return dep

    manager = ResourceManager()
    assert await manager.get(Resource(outer)) is await manager.get(Resource(outer))
    assert inner.calls == 1


async def test_class_partial_and_callable_object_factories() -> None:
    class Client:
        def __init__(self, db: Annotated[dict[str, int], Resource(get_db)], name: str = "c") -> None:
            self.db, self.name = db, name

    def labelled(label: str, db: Annotated[dict[str, int], Resource(get_db)]) -> tuple[str, Any]:
        return label, db

    manager = ResourceManager()
    client = await manager.get(Resource(Client))
    assert isinstance(client, Client) and client.db == {"rows": 1} and client.name == "c"
    assert await manager.get(Resource(functools.partial(labelled, label="x"))) == ("x", {"rows": 1})
    counter = Counter()
    counted = Resource(counter)
    assert await manager.get(counted) is await manager.get(counted)
    assert counter.calls == 1
    assert counted.name != Resource(Counter()).name  # objects without a qualname are keyed per object


async def test_custom_descriptor_works_with_the_manager() -> None:
    class Constant:
        cache = True

        def __init__(self, value: int) -> None:
            self.name = f"constant-{value}"
            self.value = value

        def dependencies(self) -> list[ResourceDefinition]:
            return []

        async def create(self, type_annotation: Any, dependencies: dict[str, Any]) -> Any:
            return type_annotation(self.value)

    descriptor = Constant(7)
    assert isinstance(descriptor, ResourceDescriptor)
    hints = {"n": Annotated[str, descriptor]}
    definitions = find_resource_definitions(hints)
    assert await resolve_resources(ResourceManager(), definitions) == {"n": "7"}


async def test_factory_error_propagates_unchanged() -> None:
    def broken() -> None:
        raise KeyError("no credentials")

    with pytest.raises(KeyError, match="no credentials"):
        await ResourceManager().get(Resource(broken))


# --------------------------------------------------------------------------- cycles and bad annotations


async def test_circular_dependency_is_reported_with_its_path() -> None:
    with pytest.raises(ValueError, match="^Circular resource dependency detected: cycle_a -> cycle_b -> cycle_a$"):
        await ResourceManager().get(Resource(cycle_a))
    with pytest.raises(ValueError, match="self_cycle -> self_cycle"):
        check_acyclic(Resource(self_cycle))


def test_acyclic_graph_passes_the_check() -> None:
    check_acyclic(Resource(get_client))


async def test_unresolvable_factory_annotation_names_the_missing_name() -> None:
    with pytest.raises(WorkflowValidationError, match="needs_missing_name.*Missing name: not_defined_anywhere"):
        await ResourceManager().get(Resource(needs_missing_name))


# --------------------------------------------------------------------------- ResourceConfig


async def test_config_is_loaded_selected_and_validated(tmp_path: Path) -> None:
    path = write_json(tmp_path / "c.json", {"llm": {"openai": {"model": "gpt", "temperature": 0.5}}})
    config = await ResourceManager().get(ResourceConfig(path, path_selector="llm.openai"), LLMConfig)
    assert config == LLMConfig(model="gpt", temperature=0.5)


async def test_config_without_selector_or_type(tmp_path: Path) -> None:
    path = write_json(tmp_path / "c.json", {"model": "m"})
    manager = ResourceManager()
    assert await manager.get(ResourceConfig(path), LLMConfig) == LLMConfig(model="m")
    assert ResourceConfig(path).load() == {"model": "m"}


async def test_config_is_cached_by_file_and_selector(tmp_path: Path) -> None:
    path = write_json(tmp_path / "c.json", {"a": {"model": "first"}, "b": {"model": "other"}})
    manager = ResourceManager()
    first = await manager.get(ResourceConfig(path, path_selector="a"), LLMConfig)
    write_json(tmp_path / "c.json", {"a": {"model": "changed"}, "b": {"model": "other"}})
    assert await manager.get(ResourceConfig(path, path_selector="a"), LLMConfig) is first
    assert (await manager.get(ResourceConfig(path, path_selector="b"), LLMConfig)).model == "other"
    assert set(manager.resources) == {f"{path}.a", f"{path}.b"}  # the reference's key: file.json.selector


def test_config_file_is_the_absolute_path_and_name_the_given_one(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    config = ResourceConfig("settings.json", path_selector="llm")
    # config_file: resolved from the current directory when first read, then kept.
    assert config.config_file == str(tmp_path / "settings.json")
    monkeypatch.chdir(tmp_path.parent)
    assert config.config_file == str(tmp_path / "settings.json")
    # name: the cache key as written, following a changed selector.
    assert config.name == "settings.json.llm"
    config.path_selector = None
    assert config.name == "settings.json"
    assert repr(config) == "ResourceConfig(config_file='settings.json', path_selector=None)"


def test_config_file_must_be_json() -> None:
    with pytest.raises(ValueError, match="^Only JSON files can be used to load Pydantic-based resources.$"):
        ResourceConfig("config.yaml")


def test_config_errors(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="^No such file: .*missing.json$"):
        ResourceConfig(str(tmp_path / "missing.json")).load(LLMConfig)
    path = write_json(tmp_path / "c.json", {"llm": "not an object", "ok": {"temperature": 1}})
    # The reference's messages (with the absolute file path), each followed by what was there.
    absolute = re.escape(str(Path(path).resolve()))
    with pytest.raises(ValueError, match=rf"^Expected dictionary for configuration from {absolute} at path llm, got: <class 'str'> \("):
        ResourceConfig(path, path_selector="llm.model").load()
    with pytest.raises(ValueError, match=r"at path ok.nested, got: <class 'NoneType'> \(no key 'nested' at ok\)$"):
        ResourceConfig(path, path_selector="ok.nested").load()
    # The selected value itself must be an object too, as upstream (even for a non-model annotation).
    with pytest.raises(ValueError, match=r"at path ok.temperature, got: <class 'int'>"):
        ResourceConfig(path, path_selector="ok.temperature").load(int)
    # An empty selector names the key "" (it does not select the whole file).
    with pytest.raises(ValueError, match=r"at path , got: <class 'NoneType'> \(no key '' at the top level\)"):
        ResourceConfig(path, path_selector="").load()
    listed = write_json(tmp_path / "l.json", [1, 2])
    with pytest.raises(ValueError, match=r"at path 0, got: <class 'NoneType'> \(the value at the top level is a list\)"):
        ResourceConfig(listed, path_selector="0").load()
    assert ResourceConfig(path, path_selector="").name == f"{path}."  # the reference's cache key
    with pytest.raises(pydantic.ValidationError, match="model"):
        ResourceConfig(path, path_selector="ok").load(LLMConfig)
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(ValueError, match="Invalid JSON in .*bad.json"):
        ResourceConfig(str(tmp_path / "bad.json")).load()


async def test_config_as_a_factory_dependency(tmp_path: Path) -> None:
    path = write_json(tmp_path / "c.json", {"llm": {"model": "gpt"}})

    def make_llm(config: Annotated[LLMConfig, ResourceConfig(path, path_selector="llm")]) -> str:
        return f"llm:{config.model}"

    assert await ResourceManager().get(Resource(make_llm)) == "llm:gpt"


# --------------------------------------------------------------------------- validation helpers


def test_validate_resource_configs_reports_each_problem(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    write_json(tmp_path / "bad.json", {"temperature": 1})

    def make_llm(config: Annotated[LLMConfig, ResourceConfig("bad.json")]) -> str:
        return config.model

    steps = {
        "s": [ResourceDefinition(name="cfg", resource=ResourceConfig("missing.json"), type_annotation=LLMConfig)],
        "t": [ResourceDefinition(name="llm", resource=Resource(make_llm))],
    }
    problems = validate_resource_configs(steps)
    assert problems[0] == "In step 's', parameter 'cfg': No such file: missing.json"
    assert problems[1].startswith("In step 't', parameter 'llm' (through resource parameter config): ")
    assert "model" in problems[1]
    assert len(problems) == 2


def test_validate_resource_configs_accepts_valid_configs_and_survives_cycles(tmp_path: Path) -> None:
    path = write_json(tmp_path / "c.json", {"model": "m"})
    steps = {
        "s": [ResourceDefinition(name="cfg", resource=ResourceConfig(path), type_annotation=LLMConfig), ResourceDefinition(name="x", resource=Resource(cycle_a))]
    }
    assert validate_resource_configs(steps) == []


def test_validate_resource_configs_reports_unresolvable_factory_annotations() -> None:
    problems = validate_resource_configs({"s": [ResourceDefinition(name="x", resource=Resource(needs_missing_name))]})
    assert len(problems) == 1 and problems[0].startswith("In step 's', parameter 'x': Failed to resolve")


async def test_validate_resources_builds_everything_in_a_scratch_cache() -> None:
    seen_dbs: list[dict[str, int]] = []

    def record_db(db: Annotated[dict[str, int], Resource(get_db)]) -> None:
        seen_dbs.append(db)

    factory = Counter()
    manager = ResourceManager()
    await manager.set("get_db", {"rows": 99})
    steps = {
        "ok": [ResourceDefinition(name="db", resource=Resource(record_db)), ResourceDefinition(name="c", resource=Resource(factory))],
        "bad": [ResourceDefinition(name="x", resource=Resource(cycle_a))],
    }
    problems = await validate_resources(manager, steps)
    assert problems == ["In step 'bad', parameter 'x': ValueError: Circular resource dependency detected: cycle_a -> cycle_b -> cycle_a"]
    assert factory.calls == 1
    assert seen_dbs == [{"rows": 99}]
    assert manager.resources == {"get_db": {"rows": 99}}


async def test_validate_resources_reports_factory_errors() -> None:
    def broken() -> None:
        raise RuntimeError("cannot connect")

    problems = await validate_resources(ResourceManager(), {"s": [ResourceDefinition(name="conn", resource=Resource(broken))]})
    assert problems == ["In step 's', parameter 'conn': RuntimeError: cannot connect"]
