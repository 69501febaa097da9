"""Fan-out streams: which collect steps a fan-out feeds, and the live state of one stream.

A step returning ``list[...]`` opens a **stream**: each element is emitted as its own
event, and every delivery made from an event of the stream belongs to it, as does what
that delivery's step returns (so the 1:1 steps downstream of a fan-out stay in it). A
``list[E]`` collect step does not receive those events one by one: they join the
stream's **batch** for that step, handed out in one ``CollectionReleaseEvent`` when the
stream has no work left (``Collect(All())``) or at the ``n``-th arrival
(``Collect(Take(n))``). A stream opened inside another one holds its parent open until
it closes, and its collect steps' results continue in the parent, so fan-outs nest.

A stream is named by the ``seq`` of the delivery that opened it: unique in a run,
known to every process that continues the run, and the key under which replay keeps
the stream's first records until that delivery is done.

Counting is what keeps the cost linear: a stream counts its live deliveries (queued,
running or parked in a wait) and child streams, so closing is noticed when the count
reaches zero, with no scan of the run's work.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Iterable, Mapping

from workflows.events import Event

if TYPE_CHECKING:
    from workflows.runtime.steps import StepSpec


class Stream:
    """One open fan-out stream of a run.

    ``pending`` counts the deliveries and child streams that may still add to it (plus
    one while its opener is still emitting the elements); ``batches`` are the events
    gathered per collect step; ``released`` the collect steps already handed theirs.
    """

    __slots__ = ("id", "step", "parent", "pending", "batches", "released")

    def __init__(self, id: int, step: str, parent: int | None) -> None:
        self.id = id
        self.step = step
        self.parent = parent
        self.pending = 0
        self.batches: dict[str, list[Event]] = {}
        self.released: set[str] = set()


def _bare_returns(spec: StepSpec) -> set[type]:
    return {
        t for t in spec.config.return_types
        if isinstance(t, type) and t is not type(None) and t not in spec.config.fan_out_only
    }


def collect_bindings(steps: Mapping[str, StepSpec]) -> dict[str, tuple[str, ...]]:
    """Fan-out step -> the collect steps its streams feed, in step order.

    An event type travels in a fan-out's stream if it is in the returned list, or is
    returned (bare) by a step that receives a type of the stream, or is returned by a
    collect step fed by a fan-out nested in the stream. A collect step is fed by the
    fan-outs whose streams carry a type it collects. Found by iterating to a fixed
    point: step graphs are small, and this runs once per version of a workflow's steps.
    """
    plain = [s for s in steps.values() if s.config.role == "step" and s.config.inputs != "collect"]
    collects = [s for s in steps.values() if s.config.inputs == "collect"]
    fan_outs = [s for s in steps.values() if s.config.fan_out_types]
    carried: dict[str, set[type]] = {f.name: set(f.config.fan_out_types) for f in fan_outs}

    def fed(collect: StepSpec, types: Iterable[type]) -> bool:
        return any(collect.accepts(t) for t in types)

    changed = True
    while changed:
        changed = False
        for fan_out in fan_outs:
            types = carried[fan_out.name]
            for spec in plain:
                if not any(spec.accepts(t) for t in list(types)):
                    continue
                new = _bare_returns(spec)
                if spec.config.fan_out_types:
                    for collect in collects:
                        if fed(collect, carried[spec.name]):
                            new |= _bare_returns(collect)
                if not new <= types:
                    types |= new
                    changed = True
    return {
        fan_out.name: tuple(c.name for c in collects if fed(c, carried[fan_out.name])) for fan_out in fan_outs
    }


def nearest(streams: Mapping[int, Stream], stream_id: int, collect: str, bindings: Mapping[str, tuple[str, ...]]) -> Stream | None:
    """The stream whose batch of ``collect`` takes an event of stream ``stream_id``.

    The nearest stream, from the event's own outwards, whose fan-out feeds ``collect``;
    the event's own stream when none does (a type the annotations do not show).
    """
    own = streams.get(stream_id)
    current = own
    while current is not None:
        if collect in bindings.get(current.step, ()):
            return current
        current = streams.get(current.parent) if current.parent is not None else None
    return own


__all__ = ["Stream", "collect_bindings", "nearest"]
