"""Medians and ratios over the repetitions of each variant and engine."""

from __future__ import annotations

import statistics
from collections import defaultdict

from benchmarks.measure import Measurement


class Summary:
    """All measurements of one invocation, queried by variant, engine and metric."""

    def __init__(self, measurements: list[Measurement]) -> None:
        self.measurements = measurements
        self._values: dict[tuple[str, str, str], list[float]] = defaultdict(list)
        for m in measurements:
            for metric, value in m.metrics.items():
                self._values[(m.variant, m.engine, metric)].append(value)

    def values(self, variant: str, engine: str, metric: str) -> list[float]:
        return self._values.get((variant, engine, metric), [])

    def median(self, variant: str, engine: str, metric: str) -> float | None:
        values = self.values(variant, engine, metric)
        return statistics.median(values) if values else None

    def ratio(self, variant: str, metric: str) -> float | None:
        """ours / reference, on the medians."""
        ours = self.median(variant, "ours", metric)
        theirs = self.median(variant, "llama", metric)
        if ours is None or not theirs:
            return None
        return ours / theirs

    def errors(self) -> list[Measurement]:
        return [m for m in self.measurements if m.error]

    def versions(self, engine: str) -> dict[str, str]:
        """The Python and package versions the engine's scenario processes reported."""
        merged: dict[str, str] = {}
        for m in self.measurements:
            if m.engine == engine and not m.error:
                merged.update(m.info.get("versions", {}))
        return merged
