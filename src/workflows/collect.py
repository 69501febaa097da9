"""Markers of list-collect steps (``Annotated[list[E], Collect(Take(n))]``).

A step parameter annotated ``list[E]`` receives, in one call, the ``E`` events of one
fan-out stream (a step returning ``list[...]``, followed through the 1:1 steps
downstream of it). ``Collect(All())``, the default, waits until the stream has no work
left; ``Collect(Take(n))`` fires with the first ``n`` arrivals (or with fewer, if the
stream ends first).
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
    """The first ``n`` events (``n`` an integer >= 1)."""

    n: int

    def __post_init__(self) -> None:
        if isinstance(self.n, bool) or not isinstance(self.n, int) or self.n < 1:
            raise ValueError(f"Take(n) requires an integer n >= 1, got {self.n!r}")


@dataclass(frozen=True)
class Collect:
    """Marks a ``list[E]`` step parameter as a collection of events."""

    cardinality: Cardinality = field(default_factory=All)


__all__ = ["Collect", "Cardinality", "All", "Take"]
