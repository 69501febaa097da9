"""How the PostgreSQL store looks a text up in ``search_text``, from the planner's statistics.

``pg_trgm``'s GIN index reads the list of every trigram of the pattern it is given, and
a run's input is JSON whose keys (``"question"``, ``"user": "user-``) put some trigrams in
every run: looking up ``user-00123`` reads the million-entry lists of ``use``, ``ser``,
``er-``. ``TextStatistics`` keeps the sample ``ANALYZE`` took of each ``search_text``
column (``pg_stats``: the commonest values and the histogram's bounds, up to
``TEXT_STATISTICS`` of each) and answers, for a text:

- ``share``: about how many of the runs hold it (what the planner would estimate);
- ``lookup``: per column, the part of the text to give the index: the text without the
  trigrams at either end found in ``COMMON`` or more of that column's sample. Any run
  holding the text holds that part, so the index finds a superset, and the rows it
  finds are tested against the whole text.

Without statistics (a new store, never analyzed) the whole text is looked up.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Sequence

COLUMNS = ("handler_id", "input_text", "result", "error")
"""The columns of ``search_text``, in the order of the lookup's patterns."""

TEXT_STATISTICS = 1000
"""The statistics target of ``search_text``'s columns (schema version 5; PostgreSQL's
default is 100): a sample fine enough to tell a text in 0.3 % of the runs from one in 1 %."""

COMMON = 0.2
"""A trigram in this share of a column's sample or more is left out of the lookup (when
at an end of the text): its list is long and it narrows the search little."""

REFRESH_SECONDS = 300.0
"""How long the statistics are kept before being read again (``ANALYZE`` runs after
every tenth of the table changed, by autovacuum)."""

STATISTICS_SQL = (
    "SELECT attname, null_frac, most_common_vals::text::text[], most_common_freqs, histogram_bounds::text::text[], "
    "(SELECT reltuples FROM pg_class WHERE oid = 'search_text'::regclass) "
    "FROM pg_stats WHERE schemaname = current_schema() AND tablename = 'search_text'"
)


@dataclass(kw_only=True)
class ColumnSample:
    """``ANALYZE``'s sample of one column: its commonest values with their shares, and the
    histogram's bounds, standing for the rest of the non-null values evenly."""

    common: list[tuple[str, float]] = field(default_factory=list)
    spread: list[str] = field(default_factory=list)
    spread_share: float = 0.0
    """The share of the rows the histogram stands for (neither null nor a common value)."""

    def share(self, text: str) -> float:
        """About how many of the rows hold ``text`` (lowered)."""
        held = sum(share for value, share in self.common if text in value)
        if self.spread:
            held += self.spread_share * sum(text in value for value in self.spread) / len(self.spread)
        return min(1.0, held)


@dataclass(kw_only=True)
class TextStatistics:
    """The statistics of ``search_text`` (see the module), read again every ``REFRESH_SECONDS``."""

    columns: dict[str, ColumnSample] = field(default_factory=dict)
    rows: float = 0.0
    """How many rows ``search_text`` had when last analyzed (0: never)."""
    read_at: float | None = None

    def stale(self) -> bool:
        return self.read_at is None or time.monotonic() - self.read_at > REFRESH_SECONDS

    def load(self, rows: Sequence[Sequence[Any]]) -> None:
        """Take the rows of ``STATISTICS_SQL``."""
        columns: dict[str, ColumnSample] = {}
        self.rows = 0.0
        for name, null_share, values, shares, bounds, tuples in rows:
            self.rows = max(0.0, float(tuples or 0.0))
            common = [(str(v).lower(), float(s)) for v, s in zip(values or (), shares or ())]
            rest = max(0.0, 1.0 - float(null_share or 0.0) - sum(s for _, s in common))
            columns[str(name)] = ColumnSample(common=common, spread=[str(b).lower() for b in bounds or ()],
                                              spread_share=rest)
        self.columns = columns
        self.read_at = time.monotonic()

    def share(self, text: str) -> float:
        """About what share of the runs hold ``text`` in one of their columns (0 without statistics)."""
        lowered = text.lower()
        missing = 1.0
        for sample in self.columns.values():
            missing *= 1.0 - sample.share(lowered)
        return 1.0 - missing

    def lookup(self, text: str) -> list[str]:
        """Per column of ``COLUMNS``, the part of ``text`` to look up in the trigram index."""
        return [self._part(text, self.columns.get(column)) for column in COLUMNS]

    @staticmethod
    def _part(text: str, sample: ColumnSample | None) -> str:
        lowered = text.lower()
        if sample is None or len(lowered) != len(text):
            return text  # (a letter whose lower case is longer: the positions would not match)
        start, end = 0, len(text)
        # Trim common trigrams off both ends, keeping 3 characters at least (one trigram).
        while end - start > 3 and sample.share(lowered[start:start + 3]) >= COMMON:
            start += 1
        while end - start > 3 and sample.share(lowered[end - 3:end]) >= COMMON:
            end -= 1
        return lowered[start:end]


__all__ = ["COLUMNS", "COMMON", "REFRESH_SECONDS", "STATISTICS_SQL", "TEXT_STATISTICS", "ColumnSample", "TextStatistics"]
