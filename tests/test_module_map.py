"""Every public name of LlamaIndex Workflows' module map imports from the same module here."""

from __future__ import annotations

import importlib

import pytest
from support.module_map import MODULE_MAP


@pytest.mark.parametrize("module", sorted(MODULE_MAP))
def test_module_exports_its_public_names(module: str):
    imported = importlib.import_module(module)
    missing = [name for name in MODULE_MAP[module] if not hasattr(imported, name)]
    assert missing == []


def test_take_requires_a_positive_count():
    from workflows.collect import All, Collect, Take

    assert Collect().cardinality == All()
    assert Take(2).n == 2
    with pytest.raises(ValueError, match="n >= 1"):
        Take(0)


def test_workflows_use_the_basic_runtime_by_default():
    from workflows import Workflow, step
    from workflows.events import StartEvent, StopEvent
    from workflows.plugins import BasicRuntime, basic_runtime

    class W(Workflow):
        @step
        async def s(self, ev: StartEvent) -> StopEvent:
            return StopEvent()

    assert W().runtime is basic_runtime
    assert isinstance(basic_runtime, BasicRuntime)
