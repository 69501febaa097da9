"""Langfuse plugin for otel-workflows: ``workflows_langfuse.register()`` and every
workflow run shows up in Langfuse as a trace named after the workflow, with its steps,
emitted events, state changes and LLM calls as observations, grouped in sessions by
Context.

Also enabled without code by ``WORKFLOWS_EXPORTERS=langfuse`` (entry point
``workflows.exporters``), which calls ``register()`` with Langfuse's environment
variables (``LANGFUSE_PUBLIC_KEY``, ``LANGFUSE_SECRET_KEY``, ``LANGFUSE_BASE_URL``).
"""

from workflows_langfuse.exporter import LangfuseMappingExporter
from workflows_langfuse.mapping import langfuse_attributes
from workflows_langfuse.settings import LangfuseConfigurationError, LangfuseSettings
from workflows_langfuse.setup import LangfuseSetup, default_span_filter, is_workflow_span, register

__all__ = [
    "LangfuseConfigurationError",
    "LangfuseMappingExporter",
    "LangfuseSettings",
    "LangfuseSetup",
    "default_span_filter",
    "is_workflow_span",
    "langfuse_attributes",
    "register",
]
