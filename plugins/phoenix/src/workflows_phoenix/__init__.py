"""Arize Phoenix plugin for otel-workflows: ``workflows_phoenix.register()`` and every
workflow run shows up in Phoenix as a trace (run, steps, events, state changes, LLM calls).

Also enabled without code by ``WORKFLOWS_EXPORTERS=phoenix`` (entry point
``workflows.exporters``), which calls ``register()`` with Phoenix's environment variables.
"""

from workflows_phoenix.provider import register

__all__ = ["register"]
