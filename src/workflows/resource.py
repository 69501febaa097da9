"""Resources: values a step asks for in its signature and the engine builds and caches.

A step declares ``db: Annotated[Database, Resource(get_db)]`` or
``cfg: Annotated[LLMConfig, ResourceConfig("config.json", path_selector="llm")]``; before each
invocation the runtime resolves those parameters through the workflow instance's
:class:`ResourceManager` and passes them as keyword arguments.

Factories may themselves declare resource parameters, which are resolved first (recursively).
Cached resources (the default) are built once per workflow instance, keyed by the factory's
``__qualname__`` (configs: ``file.json`` or ``file.json.selector``); ``cache=False`` ones are
built again for every step invocation (never taken from the workflow's cache, even when the
same factory is cached elsewhere) but shared by all parameters of that invocation.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import json
import os
import typing
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import pydantic

from workflows._namespace import caller_namespace
from workflows.errors import WorkflowValidationError


@runtime_checkable
class ResourceDescriptor(Protocol):
    """What goes in ``Annotated[T, ...]`` to have the engine inject a value of type ``T``.

    ``name`` is the cache key; ``cache`` says whether the value lives as long as the workflow
    instance (True) or one step invocation (False). ``dependencies()`` lists the resources that
    must be resolved first and handed to ``create`` by parameter name.
    """

    name: str
    cache: bool

    def dependencies(self) -> list[ResourceDefinition]: ...

    async def create(self, type_annotation: Any, dependencies: dict[str, Any]) -> Any: ...


@dataclass(frozen=True, kw_only=True)
class ResourceDefinition:
    """One resource parameter: its name, its descriptor, and the ``T`` of ``Annotated[T, ...]``."""

    name: str
    resource: ResourceDescriptor
    type_annotation: Any = None


def find_resource_definitions(type_hints: Mapping[str, Any]) -> list[ResourceDefinition]:
    """Pick the ``Annotated[T, <ResourceDescriptor>]`` parameters out of resolved type hints.

    ``type_hints`` is what ``typing.get_type_hints(func, include_extras=True)`` returns; the
    ``return`` entry is ignored. Parameters keep their declaration order.
    """
    definitions = []
    for name, hint in type_hints.items():
        if name == "return" or typing.get_origin(hint) is not typing.Annotated:
            continue
        descriptor = next((m for m in hint.__metadata__ if isinstance(m, ResourceDescriptor)), None)
        if descriptor is not None:
            definitions.append(ResourceDefinition(name=name, resource=descriptor, type_annotation=typing.get_args(hint)[0]))
    return definitions


def _annotated_callable(factory: Callable[..., Any]) -> Callable[..., Any]:
    """The function whose annotations describe the parameters ``factory`` is called with."""
    if isinstance(factory, functools.partial):
        return _annotated_callable(factory.func)
    if inspect.isclass(factory):
        return factory.__init__
    if inspect.isroutine(factory):
        return factory
    return type(factory).__call__


class Resource:
    """Inject the value returned by ``factory`` (a sync or async callable).

    The factory is called with keyword arguments only: one for each of its own parameters
    annotated ``Annotated[T, Resource(...)]`` or ``Annotated[T, ResourceConfig(...)]``; other
    parameters keep their defaults. With ``cache=True`` the value is built once per workflow
    instance and shared by every step and run; with ``cache=False`` it is built for each step
    invocation. Factories without a ``__qualname__`` (partials, callable objects) are cached
    per factory object.
    """

    def __init__(self, factory: Callable[..., Any], cache: bool = True, description: str | None = None) -> None:
        if not callable(factory):
            raise TypeError(f"Resource(factory) needs a function or other callable that builds the value, got {factory!r}")
        self.factory = factory
        self.cache = cache
        self.description = description
        qualname = getattr(factory, "__qualname__", None)
        self.name: str = qualname if isinstance(qualname, str) else f"{type(factory).__qualname__}@{id(factory):x}"
        self._namespace = caller_namespace(1)
        self._dependencies: list[ResourceDefinition] | None = None

    def dependencies(self) -> list[ResourceDefinition]:
        """The factory's own resource parameters (worked out on first use, then remembered)."""
        if self._dependencies is None:
            self._dependencies = self._find_dependencies()
        return self._dependencies

    def _find_dependencies(self) -> list[ResourceDefinition]:
        target = _annotated_callable(self.factory)
        try:
            hints = typing.get_type_hints(target, localns=self._namespace, include_extras=True)
        except NameError as exc:
            missing = getattr(exc, "name", None) or str(exc)
            raise WorkflowValidationError(
                f"Failed to resolve type annotations of resource factory {self.name}. Missing name: {missing}. "
                "Define or import it at module level, or before the step that uses this resource."
            ) from exc
        try:
            parameters = inspect.signature(self.factory).parameters
        except (TypeError, ValueError):  # some builtins have no signature; they take no resources
            return []
        return [d for d in find_resource_definitions(hints) if d.name in parameters]

    async def create(self, type_annotation: Any, dependencies: dict[str, Any]) -> Any:
        """Call the factory with its resolved dependencies, awaiting the result if needed."""
        value = self.factory(**dependencies)
        if inspect.isawaitable(value):
            value = await value
        return value

    def __repr__(self) -> str:
        return f"Resource({getattr(self.factory, '__name__', self.factory)!r}, cache={self.cache})"


class ResourceConfig:
    """Inject a JSON file's content, validated into the annotated type (usually a Pydantic model).

    ``path_selector`` is a dot path (``"llm.openai"``) into nested objects of the file; each
    value it walks through, the selected one included, must be a JSON object. Relative
    paths are read from the current directory when the value is first needed. Config values are
    always cached per workflow instance, keyed by file and selector.
    """

    cache = True

    def __init__(
        self,
        config_file: str | os.PathLike[str],
        path_selector: str | None = None,
        label: str | None = None,
        description: str | None = None,
    ) -> None:
        self._given = os.fspath(config_file)
        if not self._given.endswith(".json"):
            raise ValueError("Only JSON files can be used to load Pydantic-based resources.")
        self._resolved: str | None = None
        self.path_selector = path_selector
        self.label = label
        self.description = description

    @property
    def config_file(self) -> str:
        """The file's absolute path: a relative one is resolved from the current directory when first read."""
        if self._resolved is None:
            self._resolved = str(Path(self._given).resolve())
        return self._resolved

    @property
    def name(self) -> str:
        """The cache key, as the reference builds it: the path as given, a dot, the selector (``config.json.llm``)."""
        return self._given if self.path_selector is None else f"{self._given}.{self.path_selector}"

    def dependencies(self) -> list[ResourceDefinition]:
        return []

    async def create(self, type_annotation: Any, dependencies: dict[str, Any]) -> Any:
        return self.load(type_annotation)

    def load(self, type_annotation: Any = None) -> Any:
        """Read the file, follow ``path_selector`` and validate into ``type_annotation``.

        Without a type (or with ``Any``) the selected JSON value is returned as is. Raises
        ``FileNotFoundError`` for a missing file, ``ValueError`` for bad JSON or a selector that
        does not lead through objects to an object, and ``pydantic.ValidationError`` for invalid content.
        """
        try:
            with open(self.config_file, encoding="utf-8") as file:
                data = json.load(file)
        except FileNotFoundError:
            raise FileNotFoundError(f"No such file: {self._given}") from None
        except json.JSONDecodeError as exc:
            raise ValueError(f"Invalid JSON in {self.config_file}: {exc}") from exc
        data = self._select(data)
        if type_annotation is None or type_annotation is Any:
            return data
        return pydantic.TypeAdapter(type_annotation).validate_python(data)

    def _select(self, data: Any) -> Any:
        # As in LlamaIndex Workflows: the selector is split on dots (an empty one names the
        # key ""), and every value it walks through, the selected one included, must be an
        # object. The message is the reference's, with what was there added.
        if self.path_selector is None:
            return data
        walked: list[str] = []
        for key in self.path_selector.split("."):
            parent = ".".join(walked) or "the top level"
            walked.append(key)
            got = data.get(key) if isinstance(data, dict) else None
            if not isinstance(got, dict):
                if not isinstance(data, dict):
                    why = f"the value at {parent} is a {type(data).__name__}"
                elif key not in data:
                    why = f"no key {key!r} at {parent}"
                else:
                    why = f"path_selector={self.path_selector!r} walks and selects JSON objects only"
                raise ValueError(
                    f"Expected dictionary for configuration from {self.config_file} at path "
                    f"{'.'.join(walked)}, got: {type(got)} ({why})"
                )
            data = got
        return data

    def __repr__(self) -> str:
        return f"ResourceConfig(config_file={self._given!r}, path_selector={self.path_selector!r})"


def check_acyclic(resource: ResourceDescriptor) -> None:
    """Raise ``ValueError("Circular resource dependency detected: a -> b -> a")`` for a cycle.

    Cycles are found by cache key, before anything is built, so two tasks can never wait on
    each other's half-built resources.
    """

    def visit(descriptor: ResourceDescriptor, chain: tuple[str, ...]) -> None:
        if descriptor.name in chain:
            cycle = [*chain[chain.index(descriptor.name) :], descriptor.name]
            raise ValueError(f"Circular resource dependency detected: {' -> '.join(cycle)}")
        for dependency in descriptor.dependencies():
            visit(dependency.resource, (*chain, descriptor.name))

    visit(resource, ())


class ResourceManager:
    """The resource cache of one workflow instance (it outlives runs).

    ``resources`` maps cache keys (factory ``__qualname__``, or config file and selector) to
    values. Concurrent steps asking for the same cached resource share one factory call.
    """

    def __init__(self) -> None:
        self.resources: dict[str, Any] = {}
        self._being_built: dict[str, asyncio.Event] = {}

    async def set(self, name: str, val: Any) -> None:
        """Pre-seed a value under a cache key, e.g. a factory's ``__qualname__``, so cached resources never build it."""
        self.resources[name] = val

    async def get(
        self,
        resource: ResourceDescriptor,
        type_annotation: Any = None,
        *,
        invocation_cache: dict[str, Any] | None = None,
    ) -> Any:
        """Resolve ``resource`` and its dependencies, building what is not cached yet.

        ``invocation_cache`` holds the ``cache=False`` values of one step invocation; pass the
        same dict for all parameters of that invocation. Raises ``ValueError`` for circular
        dependencies; a factory's exception propagates unchanged.
        """
        check_acyclic(resource)
        return await self._resolve(resource, type_annotation, {} if invocation_cache is None else invocation_cache)

    def get_all(self) -> dict[str, Any]:
        """A copy of the cached values by key."""
        return dict(self.resources)

    async def _resolve(self, resource: ResourceDescriptor, type_annotation: Any, invocation_cache: dict[str, Any]) -> Any:
        key = resource.name
        if resource.cache:
            if key in self.resources:  # built earlier, or pre-seeded with set()
                return self.resources[key]
            return await self._build_shared(key, lambda: self._build(resource, type_annotation, invocation_cache))
        if key not in invocation_cache:
            invocation_cache[key] = await self._build(resource, type_annotation, invocation_cache)
        return invocation_cache[key]

    async def _build(self, resource: ResourceDescriptor, type_annotation: Any, invocation_cache: dict[str, Any]) -> Any:
        dependencies = {
            d.name: await self._resolve(d.resource, d.type_annotation, invocation_cache) for d in resource.dependencies()
        }
        return await resource.create(type_annotation, dependencies)

    async def _build_shared(self, key: str, build: Callable[[], typing.Awaitable[Any]]) -> Any:
        while True:
            if key in self.resources:
                return self.resources[key]
            in_progress = self._being_built.get(key)
            if in_progress is None:
                break
            # Another invocation is building it; if that build fails, the loop lets us try ourselves.
            await in_progress.wait()
        done = asyncio.Event()
        self._being_built[key] = done
        try:
            value = await build()
            self.resources[key] = value
            return value
        finally:
            del self._being_built[key]
            done.set()


async def resolve_resources(manager: ResourceManager, definitions: list[ResourceDefinition]) -> dict[str, Any]:
    """Resolve all resource parameters of one step invocation, as keyword arguments for the step.

    ``cache=False`` resources are shared between the parameters of this invocation only.
    """
    invocation_cache: dict[str, Any] = {}
    return {
        d.name: await manager.get(d.resource, d.type_annotation, invocation_cache=invocation_cache) for d in definitions
    }


def _walk(definition: ResourceDefinition) -> Iterator[tuple[list[str], ResourceDefinition]]:
    """Each definition reachable from ``definition`` with its parameter path, stopping at cycles."""

    def visit(d: ResourceDefinition, path: list[str], seen: frozenset[str]) -> Iterator[tuple[list[str], ResourceDefinition]]:
        yield path, d
        if d.resource.name in seen:
            return
        for dependency in d.resource.dependencies():
            yield from visit(dependency, [*path, dependency.name], seen | {d.resource.name})

    return visit(definition, [definition.name], frozenset())


def _where(step_name: str, path: list[str]) -> str:
    where = f"In step '{step_name}', parameter '{path[0]}'"
    if len(path) > 1:
        where += f" (through resource parameter{'s' if len(path) > 2 else ''} {' -> '.join(path[1:])})"
    return where


def validate_resource_configs(steps: Mapping[str, list[ResourceDefinition]]) -> list[str]:
    """Load and validate every ``ResourceConfig`` the steps use, directly or through factories.

    ``steps`` maps step names to their resource definitions. Returns one line per problem, such
    as ``In step 's', parameter 'cfg': No such file: missing.json``; nothing is cached.
    """
    problems = []
    for step_name, definitions in steps.items():
        for definition in definitions:
            try:
                for path, d in _walk(definition):
                    if isinstance(d.resource, ResourceConfig):
                        try:
                            d.resource.load(d.type_annotation)
                        except Exception as exc:  # noqa: BLE001 -- report any load failure as a validation problem
                            problems.append(f"{_where(step_name, path)}: {exc}")
            except WorkflowValidationError as exc:  # a factory's annotations cannot be resolved
                problems.append(f"{_where(step_name, [definition.name])}: {exc}")
    return problems


async def validate_resources(manager: ResourceManager, steps: Mapping[str, list[ResourceDefinition]]) -> list[str]:
    """Build every resource the steps use, reporting what fails (cycles, factory errors, configs).

    Values are built in a scratch manager that starts from ``manager``'s cached values, so
    pre-seeded values are honoured and nothing built here (possibly bound to a short-lived event
    loop) ends up in the workflow's cache. Returns one line per failing parameter, naming the
    exception type (``In step 's', parameter 'db': ValueError: Circular resource ...``).
    """
    scratch = ResourceManager()
    scratch.resources.update(manager.resources)
    problems = []
    for step_name, definitions in steps.items():
        invocation_cache: dict[str, Any] = {}
        for d in definitions:
            try:
                await scratch.get(d.resource, d.type_annotation, invocation_cache=invocation_cache)
            except Exception as exc:  # noqa: BLE001 -- a factory may fail any way; report it, do not raise
                problems.append(f"{_where(step_name, [d.name])}: {type(exc).__name__}: {exc}")
    return problems


__all__ = [
    "Resource",
    "ResourceConfig",
    "ResourceDefinition",
    "ResourceDescriptor",
    "ResourceManager",
    "check_acyclic",
    "find_resource_definitions",
    "resolve_resources",
    "validate_resource_configs",
    "validate_resources",
]
