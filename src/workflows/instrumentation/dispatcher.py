"""The dispatcher: where the runtime publishes its transitions and handlers subscribe.

A handler is any object with a ``handle(event)`` method (see ``InstrumentationHandler``).
When a run starts, every handler of the root dispatcher sees ``RunStarted`` and answers
whether it wants the rest of that run: a handler that returns ``False`` (for example
the OpenTelemetry handler when no SDK is configured, so its run span does not record)
is not called again for the run, and a run nobody follows publishes nothing more.
That is what makes instrumentation nearly free when it is off.

A handler that raises never breaks the run: the error is logged once per handler and
error type, and counted in ``Dispatcher.handler_errors``.
"""

from __future__ import annotations

import functools
import inspect
import itertools
import logging
import threading
from typing import Any, Callable, Iterable, Protocol, TypeVar, overload, runtime_checkable

from workflows.instrumentation.events import (
    InstrumentationEvent,
    RunInfo,
    RunStarted,
    SpanEntered,
    SpanExited,
    UserEvent,
    current_run,
)
from workflows.instrumentation.semconv import SpanKind, check_span_kind

logger = logging.getLogger("workflows.instrumentation")

F = TypeVar("F", bound=Callable[..., Any])


@runtime_checkable
class InstrumentationHandler(Protocol):
    """What the dispatcher calls. ``handle`` runs synchronously in the publishing task.

    Returning ``False`` from ``handle(RunStarted)`` opts out of the rest of that run;
    any other return value (``None`` included) opts in. A handler may also define
    ``inject(run, carrier)`` to add entries (such as a W3C ``traceparent``) to what a
    serialized Context carries, and receives them back in ``RunStarted.carrier`` when
    the run is resumed.
    """

    def handle(self, event: InstrumentationEvent) -> bool | None: ...


Handlers = tuple[InstrumentationHandler, ...]

_span_ids = itertools.count(1)


class Dispatcher:
    """A named set of handlers. Named dispatchers forward to their parent (the root)."""

    def __init__(self, name: str = "root", parent: Dispatcher | None = None) -> None:
        self.name = name
        self.parent = parent
        self._handlers: Handlers = ()
        self._lock = threading.Lock()
        self.handler_errors: dict[str, int] = {}
        self._logged: set[tuple[str, str]] = set()

    # -- subscription -------------------------------------------------------------
    @property
    def handlers(self) -> Handlers:
        """The handlers of this dispatcher (not of its parents)."""
        return self._handlers

    def add_handler(self, handler: InstrumentationHandler) -> None:
        """Subscribe ``handler``; it sees runs that start from now on. Adding twice is a no-op."""
        if not callable(getattr(handler, "handle", None)):
            raise TypeError(
                f"{handler!r} is not an instrumentation handler: it needs a handle(event) method"
            )
        with self._lock:
            if handler not in self._handlers:
                self._handlers = (*self._handlers, handler)

    def remove_handler(self, handler: InstrumentationHandler) -> None:
        """Unsubscribe ``handler``; runs already going on keep calling it until they end."""
        with self._lock:
            self._handlers = tuple(h for h in self._handlers if h is not handler)

    def all_handlers(self) -> Handlers:
        """This dispatcher's handlers followed by its parents'."""
        handlers = self._handlers
        parent = self.parent
        while parent is not None:
            handlers = handlers + parent._handlers
            parent = parent.parent
        return handlers

    # -- publishing ---------------------------------------------------------------
    def start_run(self, event: RunStarted) -> Handlers:
        """Publish ``RunStarted`` and return the handlers that follow the run."""
        _ensure_configured()
        following: list[InstrumentationHandler] = []
        for handler in self.all_handlers():
            try:
                wants = handler.handle(event)
            except Exception as exc:  # tracing must never break a run
                self._record_error(handler, exc)
                continue
            if wants is not False:
                following.append(handler)
        return tuple(following)

    def publish(self, event: InstrumentationEvent, handlers: Iterable[InstrumentationHandler] | None = None) -> None:
        """Hand ``event`` to ``handlers`` (default: all of this dispatcher's and its parents')."""
        for handler in self.all_handlers() if handlers is None else handlers:
            try:
                handler.handle(event)
            except Exception as exc:  # tracing must never break a run
                self._record_error(handler, exc)

    def inject(self, run: RunInfo, handlers: Iterable[InstrumentationHandler]) -> dict[str, str]:
        """Collect what ``handlers`` want a serialized Context to carry for ``run``."""
        carrier: dict[str, str] = {}
        for handler in handlers:
            inject = getattr(handler, "inject", None)
            if inject is None:
                continue
            try:
                inject(run, carrier)
            except Exception as exc:
                self._record_error(handler, exc)
        return carrier

    def _record_error(self, handler: object, exc: Exception) -> None:
        root = self._root()
        key = type(handler).__qualname__
        root.handler_errors[key] = root.handler_errors.get(key, 0) + 1
        seen = (key, type(exc).__qualname__)
        if seen not in root._logged:
            root._logged.add(seen)
            logger.error(
                "instrumentation handler %s raised %s; the run goes on (logged once, counted in "
                "Dispatcher.handler_errors)",
                key,
                type(exc).__name__,
                exc_info=exc,
            )

    def _root(self) -> Dispatcher:
        node = self
        while node.parent is not None:
            node = node.parent
        return node

    # -- user instrumentation -------------------------------------------------------
    @overload
    def span(self, func: F, *, kind: SpanKind | None = None, name: str | None = None) -> F: ...

    @overload
    def span(self, func: None = None, *, kind: SpanKind | None = None, name: str | None = None) -> Callable[[F], F]: ...

    def span(self, func: F | None = None, *, kind: SpanKind | None = None, name: str | None = None) -> Any:
        """Decorate a sync or async function so each call is a span under the current one.

        Used bare (``@dispatcher.span``) or with options (``@dispatcher.span(kind="TOOL")``).
        The span is named after the function's qualified name (or ``name``), parented to
        whatever span is current (inside a step: that step's span), and records the error
        if the function raises. The function's behaviour and return value are unchanged.

        ``kind`` is the OpenInference span kind (default ``CHAIN``; ``ValueError`` for a
        value that is not one). ``kind="TOOL"`` makes the call a tool execution in
        OpenTelemetry's GenAI terms (``gen_ai.operation.name=execute_tool``,
        ``gen_ai.tool.name`` = ``name`` or the function's ``__name__``, and
        ``gen_ai.tool.call.id`` from an argument named ``tool_call_id``, ``tool_id`` or
        ``call_id``, or such a field of an argument); ``kind="AGENT"`` an agent's
        invocation (``invoke_agent``). See docs/tracing.md.
        """
        checked = check_span_kind(kind, "@dispatcher.span")
        if func is None:
            return lambda f: self._span(f, checked, name)
        return self._span(func, checked, name)

    def _span(self, func: F, kind: SpanKind | None, given_name: str | None) -> F:
        name = given_name or func.__qualname__
        gen_ai_name: str = given_name or getattr(func, "__name__", None) or name
        signature = inspect.signature(func)

        def arguments(args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
            try:
                bound = signature.bind_partial(*args, **kwargs)
            except TypeError:
                return {}
            return {k: v for k, v in bound.arguments.items() if k not in ("self", "cls")}

        def entered(run: RunInfo | None, span_id: int, args: tuple[Any, ...], kwargs: dict[str, Any]) -> SpanEntered:
            return SpanEntered(
                run=run, span_id=span_id, name=name, arguments=arguments(args, kwargs), kind=kind, gen_ai_name=gen_ai_name
            )

        if inspect.iscoroutinefunction(func):

            @functools.wraps(func)
            async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
                _ensure_configured()  # default handlers exist before the first run too
                handlers = self.all_handlers()
                if not handlers:
                    return await func(*args, **kwargs)
                span_id = next(_span_ids)
                run = current_run.get()
                self.publish(entered(run, span_id, args, kwargs), handlers)
                try:
                    result = await func(*args, **kwargs)
                except BaseException as exc:
                    self.publish(SpanExited(run=run, span_id=span_id, name=name, error=exc), reversed(handlers))
                    raise
                self.publish(SpanExited(run=run, span_id=span_id, name=name, result=result), reversed(handlers))
                return result

            return async_wrapper  # type: ignore[return-value]

        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            _ensure_configured()  # default handlers exist before the first run too
            handlers = self.all_handlers()
            if not handlers:
                return func(*args, **kwargs)
            span_id = next(_span_ids)
            run = current_run.get()
            self.publish(entered(run, span_id, args, kwargs), handlers)
            try:
                result = func(*args, **kwargs)
            except BaseException as exc:
                self.publish(SpanExited(run=run, span_id=span_id, name=name, error=exc), reversed(handlers))
                raise
            self.publish(SpanExited(run=run, span_id=span_id, name=name, result=result), reversed(handlers))
            return result

        return wrapper  # type: ignore[return-value]

    def event(self, name: str, **attributes: Any) -> None:
        """Publish a user record; the OpenTelemetry handler adds it to the current span as a span event."""
        _ensure_configured()
        self.publish(UserEvent(run=current_run.get(), name=name, attributes=attributes))


_root = Dispatcher()
_named: dict[str, Dispatcher] = {}
_named_lock = threading.Lock()
_configured = False
_configure_hooks: list[Callable[[], None]] = []


def get_dispatcher(name: str | None = None) -> Dispatcher:
    """The root dispatcher, or a named one whose handlers see only what is published to it
    (while what it publishes also reaches the root's handlers)."""
    if name is None or name == "root":
        return _root
    with _named_lock:
        dispatcher = _named.get(name)
        if dispatcher is None:
            dispatcher = _named[name] = Dispatcher(name, parent=_root)
        return dispatcher


def on_first_run(hook: Callable[[], None]) -> None:
    """Run ``hook`` once, just before the first run of the process starts publishing.

    Used to install the default handlers and the exporters named in
    ``WORKFLOWS_EXPORTERS`` without paying for them at import time.
    """
    _configure_hooks.append(hook)


def _ensure_configured() -> None:
    global _configured
    if _configured:
        return
    with _named_lock:
        if _configured:
            return
        _configured = True
        for hook in _configure_hooks:
            try:
                hook()
            except Exception as exc:
                logger.error("instrumentation set-up hook %r failed; tracing may be incomplete", hook, exc_info=exc)
