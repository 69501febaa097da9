"""Markers of list-collect steps (``Annotated[list[E], Collect(Take(n))]``).

They exist so that code written for LlamaIndex Workflows imports; this engine gathers
events with ``ctx.collect_events`` and rejects list-collect step signatures at
decoration time with an error that says so.
"""

from __future__ import annotations

from dataclasses import dataclass, field


class Cardinality:
    """How many events a collect step waits for."""


@dataclass(frozen=True)
class All(Cardinality):
    """Every event of the fan-out."""


@dataclass(frozen=True)
class Take(Cardinality):
    """The first ``n`` events (``n`` a whole number >= 1)."""

    n: int

    def __post_init__(self) -> None:
        if isinstance(self.n, bool) or not isinstance(self.n, int) or self.n < 1:
            raise ValueError(f"Take(n) needs a whole number n >= 1, got {self.n!r}")


@dataclass(frozen=True)
class Collect:
    """Marks a ``list[E]`` step parameter as a collection of events."""

    cardinality: Cardinality = field(default_factory=All)


__all__ = ["Collect", "Cardinality", "All", "Take"]
