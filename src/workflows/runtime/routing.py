"""Work items and routing: which steps (and which parked waits) an event goes to.

``RouteTable`` is built once per workflow instance (and again when a step is added to
the class), so routing an event at run time is one dict look-up of its exact type.
``route`` is a pure decision: it returns the steps an event is for and the waiters it
wakes, and the run applies it (journals it, queues the work, resumes the waiters).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Sequence

from workflows.events import Event
from workflows.runtime.steps import StepSpec
from workflows.runtime.fanout import collect_bindings

if TYPE_CHECKING:
    from workflows.runtime.waits import Waiter


class WorkItem:
    """One delivery of an event to one step (and what a replay of it already knows).

    ``seq`` names the delivery for the whole life of the run, across save and resume;
    ``resolved``/``timed_out`` are the waits of this delivery that already ended (the
    step runs again from the top and ``wait_for_event`` answers from them);
    ``attempts`` counts attempts made before this process took the delivery over;
    ``stream`` is the fan-out stream the delivery belongs to (``None`` outside any).
    """

    __slots__ = ("event", "event_id", "seq", "resolved", "timed_out", "lineage", "attempts", "stream")

    def __init__(
        self,
        event: Event,
        event_id: str | None,
        seq: int,
        lineage: dict[str, int] | None = None,
        resolved: dict[str, Event] | None = None,
        timed_out: frozenset[str] | None = None,
        attempts: int = 0,
        stream: int | None = None,
    ) -> None:
        self.event = event
        self.event_id = event_id
        self.seq = seq
        self.lineage = lineage
        self.resolved = resolved
        self.timed_out = timed_out
        self.attempts = attempts
        self.stream = stream


@dataclass(slots=True, kw_only=True)
class Route:
    """Where one event goes: ``targets`` get a new delivery each, ``woken`` waiters resume.

    ``collectors`` are the ``list[E]`` collect steps of the event's type: they take it
    into a stream's batch, not as a delivery.
    """

    targets: tuple[StepSpec, ...]
    woken: tuple[Waiter, ...]
    collectors: tuple[StepSpec, ...] = ()
    # Worked out on first use: a plain route (one per event type) is journaled for every
    # event of its type when a run is traced, and never read when it is not.
    _names: tuple[str, ...] | None = field(default=None, init=False, repr=False)

    @property
    def step_names(self) -> tuple[str, ...]:
        """Every step the event reaches, a step whose waiter it wakes counted once."""
        names = self._names
        if names is None:
            names = tuple(s.name for s in self.targets)
            if self.woken:
                names += tuple(w.step for w in self.woken if w.step not in names)
            self._names = names
        return names


_NO_WAITERS: tuple[Waiter, ...] = ()


class RouteTable:
    """Event type -> the steps that accept it, memoised per concrete type.

    Catch-error handlers are left out: they only receive the ``StepFailedEvent`` the
    runtime sends them directly, never a broadcast one. So are ``list[E]`` collect
    steps, which get their events as a batch (``collectors``). ``bindings`` maps each
    fan-out step to the collect steps its streams feed.
    """

    def __init__(self, steps: dict[str, StepSpec]) -> None:
        self.steps = steps
        self._routable = [s for s in steps.values() if s.config.role == "step" and s.config.inputs != "collect"]
        self._collecting = [s for s in steps.values() if s.config.inputs == "collect"]
        self._cache: dict[type, tuple[StepSpec, ...]] = {}
        self._collectors: dict[type, tuple[StepSpec, ...]] = {}
        self._plain: dict[type, Route] = {}
        self.bindings = collect_bindings(steps)

    def targets(self, event_type: type) -> tuple[StepSpec, ...]:
        targets = self._cache.get(event_type)
        if targets is None:
            targets = self._cache[event_type] = tuple(s for s in self._routable if s.accepts(event_type))
        return targets

    def collectors(self, event_type: type) -> tuple[StepSpec, ...]:
        collectors = self._collectors.get(event_type)
        if collectors is None:
            collectors = self._collectors[event_type] = tuple(s for s in self._collecting if s.accepts(event_type))
        return collectors

    def plain_route(self, event_type: type) -> Route:
        """The route of an event type when no step waits for anything: one object per type."""
        plain = self._plain.get(event_type)
        if plain is None:
            plain = self._plain[event_type] = Route(
                targets=self.targets(event_type), woken=(), collectors=self.collectors(event_type)
            )
        return plain


def route(routes: RouteTable, waiters: Sequence[Waiter], event: Event, target: StepSpec | None) -> Route:
    """Decide where ``event`` goes: every step accepting its type (or only ``target``).

    A parked waiter of a step that the event matches consumes it for that step: the
    step resumes its waiting delivery instead of getting a new one. An event sent to
    one step never reaches a collect step's batch.
    """
    if not waiters and target is None:
        return routes.plain_route(type(event))
    targets = (target,) if target is not None else routes.targets(type(event))
    collectors = () if target is not None else routes.collectors(type(event))
    woken = _NO_WAITERS
    for waiter in waiters:
        if (target is None or waiter.step == target.name) and waiter.matches(event):
            woken = (*woken, waiter)
    if woken:
        steps = {w.step for w in woken}
        targets = tuple(s for s in targets if s.name not in steps)
    return Route(targets=targets, woken=woken, collectors=collectors)
