"""``Workflow``: a class of steps, validated once and run as many times as needed."""

from __future__ import annotations

import asyncio
import logging
import random
import string
import weakref
from types import MappingProxyType
from typing import Any, Callable, ClassVar, Mapping

from pydantic import BaseModel, ValidationError

from workflows.context.context import Context
from workflows.context.serializers import BaseSerializer
from workflows.context.state_store import DictState
from workflows.errors import ContextStateError, WorkflowConfigurationError, WorkflowRuntimeError, WorkflowValidationError
from workflows.events import Event, HumanResponseEvent, InputRequiredEvent, StartEvent, StopEvent
from workflows.handler import WorkflowHandler
from workflows.resource import (
    ResourceDefinition,
    ResourceManager,
    resolve_resources,
    validate_resource_configs as check_resource_configs,
    validate_resources as build_resources,
)
from workflows.runtime.config import RunConfig
from workflows.runtime.run import WorkflowRun
from workflows import validation
from workflows.runtime.routing import RouteTable
from workflows.runtime.steps import StepSpec

logger = logging.getLogger("workflows")

_RUN_ID_ALPHABET = string.ascii_letters + string.digits
# Run id -> the driver task of the live run using it. Weak, so a run whose loop was closed
# before it ended (an un-awaited cancel) does not keep its Workflow alive through this map.
_live_runs: weakref.WeakValueDictionary[str, asyncio.Task[Any]] = weakref.WeakValueDictionary()


def _run_id_in_use(run_id: str) -> bool:
    driver = _live_runs.get(run_id)
    # A run whose loop is closed can never go on: its id is free again, as in the reference.
    return driver is not None and not driver.done() and not driver.get_loop().is_closed()


class WorkflowMeta(type):
    """Gives every workflow class its own registry of free-function steps (not inherited)."""

    def __init__(cls, name: str, bases: tuple[type, ...], dct: dict[str, Any]) -> None:
        super().__init__(name, bases, dct)
        cls._added_steps: dict[str, Callable[..., Any]] = {}
        cls._steps_version = 0


class Workflow(metaclass=WorkflowMeta):
    """Subclass it and decorate methods with ``@step``; then ``await MyWorkflow().run(...)``.

    ``timeout`` (seconds, ``None`` for none) bounds each run. ``disable_validation``
    skips the graph checks of ``run()`` (start/stop event checks still apply at
    construction). ``num_concurrent_runs`` limits how many runs of this instance go on
    at once (the others wait). ``workflow_name`` names the workflow in traces (default:
    the class name). Set the class attribute ``is_agent = True`` to have traces mark the
    workflow's runs as AGENT spans.
    """

    is_agent: ClassVar[bool] = False
    _added_steps: ClassVar[dict[str, Callable[..., Any]]]
    _steps_version: ClassVar[int]

    def __init__(
        self,
        timeout: float | None = 45.0,
        disable_validation: bool = False,
        verbose: bool = False,
        resource_manager: ResourceManager | None = None,
        num_concurrent_runs: int | None = None,
        runtime: Any = None,
        workflow_name: str | None = None,
        skip_graph_checks: set[str] | None = None,
        serializer: BaseSerializer | None = None,
    ) -> None:
        if num_concurrent_runs is not None and (
            isinstance(num_concurrent_runs, bool) or not isinstance(num_concurrent_runs, int) or num_concurrent_runs <= 0
        ):
            raise WorkflowValidationError("num_concurrent_runs must be an integer greater than 0 or None")
        self._timeout = timeout
        self._disable_validation = disable_validation
        self._verbose = verbose
        self._resource_manager = resource_manager or ResourceManager()
        self._num_concurrent_runs = num_concurrent_runs
        self._semaphores: tuple[asyncio.AbstractEventLoop, asyncio.Semaphore] | None = None
        self._runtime = runtime
        self._explicit_name = workflow_name
        self._skip_graph_checks = validation.check_skip_names(skip_graph_checks or ())
        self._serializer = serializer
        self._validated_version = -1
        self._compiled_version = -1
        # Built by the first run and shared by the next ones (see _run_config).
        self._config: RunConfig | None = None
        self._compile()

    # ------------------------------------------------------------------ steps
    @classmethod
    def add_step(cls, func: Callable[..., Any]) -> None:
        """Register a ``@step``-decorated free function on this class (and so on all its instances)."""
        if not hasattr(func, "_step_config"):
            raise WorkflowValidationError(f"Step function {func.__name__} is missing the `@step` decorator.")
        name = func.__name__
        if name in cls._added_steps or any(hasattr(getattr(c, name, None), "_step_config") for c in cls.__mro__):
            raise WorkflowValidationError(f"A step {name} is already part of this workflow, please choose another name.")
        cls._added_steps[name] = func
        cls._steps_version += 1

    @classmethod
    def _get_steps_from_class(cls) -> dict[str, Callable[..., Any]]:
        """The class's ``@step`` functions by name, added free functions included (drawing tools call this)."""
        from workflows.utils import get_steps_from_class

        return dict(get_steps_from_class(cls))

    def _get_steps(self) -> dict[str, Callable[..., Any]]:
        """The steps by name: bound methods, and free functions added to the class.

        Each carries its ``_step_config``. The reference's private accessor, which runtimes
        and test helpers written for it call (docs/compatibility.md).
        """
        return {name: spec.func for name, spec in self.step_specs.items()}

    def _collect_steps(self) -> dict[str, StepSpec]:
        steps: dict[str, StepSpec] = {}
        for klass in reversed(type(self).__mro__):
            for name, attr in vars(klass).items():
                if hasattr(attr, "_step_config"):
                    steps[name] = StepSpec(name, getattr(self, name), attr._step_config)
                elif name in steps:
                    del steps[name]  # overridden by a plain method
        for name, func in type(self)._added_steps.items():
            steps[name] = StepSpec(name, func, func._step_config)  # type: ignore[attr-defined]
        return steps

    def _compile(self) -> None:
        self._steps = self._collect_steps()
        self._start_event_class, self._stop_event_class = validation.start_and_stop_events(
            type(self).__name__, self._steps
        )
        self._routes = RouteTable(self._steps)
        self._error_handler_for, self._error_handler_problems = validation.error_handler_owners(self._steps)
        self._compiled_version = type(self)._steps_version

    def _current(self) -> None:
        if self._compiled_version != type(self)._steps_version:
            self._compile()

    @property
    def step_specs(self) -> Mapping[str, StepSpec]:
        """The steps by name, as runs and saved contexts see them (read-only).

        Compiled again first if a step was added to the class since they last were.
        """
        self._current()
        return MappingProxyType(self._steps)

    @property
    def start_event_class(self) -> type[StartEvent]:
        """The StartEvent (sub)class the workflow's first step accepts."""
        return self._start_event_class

    @property
    def stop_event_class(self) -> type[StopEvent]:
        """The StopEvent (sub)class the workflow's last step returns."""
        return self._stop_event_class

    @property
    def events(self) -> list[type[Event]]:
        """Every event type a step accepts or returns."""
        seen: dict[type, None] = {}
        for spec in self._steps.values():
            for t in [*spec.config.accepted_events, *spec.config.return_types]:
                if isinstance(t, type) and issubclass(t, Event):
                    seen[t] = None
        return list(seen)

    @property
    def workflow_name(self) -> str:
        """``workflow_name`` if given, else ``module.QualifiedClassName``."""
        return self._explicit_name or f"{type(self).__module__}.{type(self).__qualname__}"

    @property
    def _trace_name(self) -> str:
        return self._explicit_name or type(self).__name__

    @property
    def runtime(self) -> Any:
        """The runtime runs execute on (this engine's in-process ``basic_runtime``)."""
        from workflows.plugins import get_current_runtime

        return self._runtime or get_current_runtime()

    @runtime.setter
    def runtime(self, runtime: Any) -> None:
        """Set the runtime later runs use (a server gives the workflows it serves its durable runtime)."""
        self._runtime = runtime

    @property
    def serializer(self) -> BaseSerializer | None:
        return self._serializer

    @property
    def context_state_type(self) -> type[BaseModel]:
        """The state model of the steps' ``Context[S]`` annotations (``DictState`` if none names one).

        Several annotations give the most derived of them; ``ValueError`` if they are not on
        one inheritance chain.
        """
        found = [s.config.context_state_type for s in self.step_specs.values() if s.config.context_state_type is not None]
        if not found:
            return DictState
        most_derived = found[0]
        for candidate in found[1:]:
            if issubclass(candidate, most_derived):
                most_derived = candidate
            elif not issubclass(most_derived, candidate):
                names = ", ".join(dict.fromkeys(t.__name__ for t in found))
                raise ValueError(
                    "Multiple state types are not in a compatible inheritance hierarchy. "
                    f"All Context[...] annotations must use the same state type or types on one inheritance chain. Found: {names}"
                )
        return most_derived

    # ------------------------------------------------------------------ validation
    def validate(self, *, validate_resource_configs: bool = True, validate_resources: bool = False) -> bool:
        """Run every check of the step graph; return True if the workflow uses human-in-the-loop.

        ``validate_resources`` also builds every resource (through ``asyncio.run``, so
        call it with no running event loop).
        """
        self._current()
        uses_hitl = self._check_steps(
            self._steps, validate_resource_configs=validate_resource_configs, validate_resources=validate_resources
        )
        self._validated_version = type(self)._steps_version
        return uses_hitl

    def _validate(self) -> bool:
        """``validate()`` under the reference's private name, which scripts and tools call.

        Checks the steps ``_get_steps()`` returns; does nothing (and returns False) for a
        workflow built with ``disable_validation=True``.
        """
        if self._disable_validation:
            return False
        steps = {name: StepSpec(name, func, func._step_config) for name, func in self._get_steps().items()}  # type: ignore[attr-defined]
        return self._check_steps(steps, validate_resource_configs=True, validate_resources=False)

    def _check_steps(
        self, steps: dict[str, StepSpec], *, validate_resource_configs: bool, validate_resources: bool
    ) -> bool:
        if not steps:
            raise WorkflowConfigurationError(
                f"Workflow '{type(self).__name__}' has no configured steps. Did you forget to decorate methods with @step?"
            )
        start_event_class, _ = validation.start_and_stop_events(type(self).__name__, steps)
        validation.check_collect_bindings(steps, self._routes.bindings)
        validation.check_connectivity(steps, start_event_class)
        if self._error_handler_problems:
            raise WorkflowValidationError("\n".join(self._error_handler_problems))
        validation.check_graph(steps, start_event_class, self._skip_graph_checks)
        definitions = {n: s.config.resources for n, s in steps.items() if s.config.resources}
        if validate_resource_configs and definitions:
            errors = check_resource_configs(definitions)
            if errors:
                raise WorkflowValidationError("Resource config validation failed:\n" + "\n".join(f"  - {e}" for e in errors))
        if validate_resources and definitions:
            errors = asyncio.run(build_resources(self._resource_manager, definitions))
            if errors:
                raise WorkflowValidationError("Resource validation failed: " + "; ".join(errors))
        return any(
            issubclass(t, InputRequiredEvent) for s in steps.values() for t in s.config.return_types if isinstance(t, type)
        ) or any(issubclass(t, HumanResponseEvent) for s in steps.values() for t in s.config.accepted_events)

    async def _resolve_resources(self, definitions: list[ResourceDefinition]) -> dict[str, Any]:
        return await resolve_resources(self._resource_manager, definitions)

    @property
    def _run_semaphore(self) -> asyncio.Semaphore | None:
        """The ``num_concurrent_runs`` limit for the running loop (a semaphore binds to one loop)."""
        if self._num_concurrent_runs is None:
            return None
        loop = asyncio.get_running_loop()
        if self._semaphores is None or self._semaphores[0] is not loop:
            self._semaphores = (loop, asyncio.Semaphore(self._num_concurrent_runs))
        return self._semaphores[1]

    # ------------------------------------------------------------------ running
    def run(
        self,
        ctx: Context[Any] | None = None,
        start_event: StartEvent | None = None,
        **kwargs: Any,
    ) -> WorkflowHandler:
        """Start a run in the background and return its handler (await it for the result).

        Must be called with an event loop running. Keyword arguments build the start
        event (``run(topic="x")`` gives the first step ``StartEvent(topic="x")``);
        ``start_event`` passes one directly; ``run_id`` names the run. Given a ``ctx``
        that finished a run, the new run keeps its state; given a ``ctx`` restored from a
        mid-run snapshot, the run resumes where it stopped (no start event is sent).
        Validation errors are raised here, synchronously.
        """
        # As in the reference: a bad workflow or start event is reported first, even with no
        # event loop; then "no running event loop", before any side effect.
        self._current()
        if not self._disable_validation and self._validated_version != type(self)._steps_version:
            self.validate()
        if self._error_handler_problems:
            raise WorkflowValidationError("\n".join(self._error_handler_problems))
        if start_event is not None and not isinstance(start_event, StartEvent):
            raise ValueError("The 'start_event' argument must be an instance of 'StartEvent'.")
        asyncio.get_running_loop()
        run_id = kwargs.pop("run_id", None) or "".join(random.choices(_RUN_ID_ALPHABET, k=10))
        if _run_id_in_use(run_id):
            raise RuntimeError(f"Workflow run with run_id '{run_id}' already exists.")
        ctx = ctx if ctx is not None else Context(self)
        if ctx._face == "internal":
            raise ContextStateError("Cannot start workflow from a step function context")
        snapshot = ctx._pending_snapshot()
        event: Event | None = None
        if snapshot is None:
            event = self._make_start_event(start_event, kwargs)
        ctx._prepare_store()  # typed-state problems surface here, before the run starts
        if ctx._run is not None:
            raise ContextStateError(
                "Cannot start a new run while context is already running. Wait for completion or use a new Context."
            )
        run = WorkflowRun(self._run_config(), ctx, run_id, event, snapshot)
        ctx._attach(run)
        _live_runs[run_id] = run.driver
        return WorkflowHandler(run)

    def _run_config(self) -> RunConfig:
        """What the run loop reads of this workflow: one ``RunConfig``, shared by its runs while it holds."""
        runtime, is_agent = self.runtime, bool(getattr(self, "is_agent", False))
        config = self._config
        # Rebuilt when something it holds changed (steps added, another runtime, ...).
        if (
            config is None
            or config.workflow is not self
            or config.routes is not self._routes
            or config.runtime is not runtime
            or config.timeout != self._timeout
            or config.verbose != self._verbose
            or config.is_agent != is_agent
        ):
            cls = type(self)
            config = self._config = RunConfig(
                workflow=self,
                trace_name=self._trace_name,
                workflow_class=f"{cls.__module__}.{cls.__qualname__}",
                is_agent=is_agent,
                timeout=self._timeout,
                verbose=self._verbose,
                routes=self._routes,
                error_handlers=self._error_handler_for,
                resolve_resources=self._resolve_resources,
                run_semaphore=lambda: self._run_semaphore,
                make_step_context=Context._for_step,
                runtime=runtime,
            )
        return config

    def _get_start_event_instance(self, start_event: StartEvent | None, **kwargs: Any) -> StartEvent:
        """The start event ``run(start_event=..., **kwargs)`` would send, under the reference's private
        name, which servers call to build one from keyword arguments (docs/compatibility.md)."""
        return self._make_start_event(start_event, kwargs)

    def _make_start_event(self, start_event: StartEvent | None, kwargs: dict[str, Any]) -> StartEvent:
        if start_event is not None:
            if not isinstance(start_event, StartEvent):
                raise ValueError("The 'start_event' argument must be an instance of 'StartEvent'.")
            if kwargs:
                logger.warning(
                    "Keyword arguments are not supported when 'run()' is invoked with the 'start_event' parameter. "
                    "These keyword arguments will be ignored: %s",
                    kwargs,
                )
            return start_event
        try:
            return self.start_event_class(**kwargs)
        except ValidationError as exc:
            raise WorkflowRuntimeError(
                f"Failed creating a start event of type '{self.start_event_class.__name__}' "
                f"with the keyword arguments: {kwargs}"
            ) from exc


__all__ = ["Workflow", "WorkflowMeta"]
