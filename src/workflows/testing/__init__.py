"""Helpers for testing workflows and the code around them (a test runner, a scripted OpenAI server)."""

from workflows.testing.runner import WorkflowTestResult, WorkflowTestRunner

__all__ = ["WorkflowTestRunner", "WorkflowTestResult"]
