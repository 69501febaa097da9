"""``RunIndex``: what the debugger asks of a store (its run search and the LLM calls of each run).

An interface of its own beside ``RunStore``'s (every store implements both); its
records are in ``store.queries``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

from workflows_server.store.queries import LlmCall, RunIndexUpdate, RunPage, RunQuery


class RunIndex(ABC):
    """A searchable index of runs, and the LLM calls of each run; see ``store.queries``."""

    @abstractmethod
    def index_run(self, handler_id: str, update: RunIndexUpdate) -> None:
        """Create or change the run's index entry (upsert: the entry may not exist yet)."""

    @abstractmethod
    def search_runs(self, query: RunQuery) -> RunPage:
        """Runs matching ``query``, newest first (or oldest first), one page, with totals per run.

        Raises ``ValueError`` for a malformed cursor.
        """

    @abstractmethod
    def workflow_names(self) -> list[str]:
        """Names of the workflows that have runs in the store, sorted."""

    @abstractmethod
    def add_llm_call(self, call: LlmCall) -> None:
        """Keep one LLM call of a run."""

    @abstractmethod
    def llm_calls(self, handler_id: str) -> list[LlmCall]:
        """The run's LLM calls, in the order they started."""


__all__ = ["RunIndex"]
