"""The graph checks of a workflow as functions of its step configs (the reference's module path).

``validate_graph`` returns every failure as a ``GraphValidationError`` instead of raising;
``build_step_graph`` gives the graph they walk. Both take ``{step name: StepConfig}``,
as ``{n: f._step_config for n, f in workflow._get_steps().items()}`` gives it.
"""

from workflows.decorators import WorkflowGraphCheck
from workflows.validation import GraphNode, GraphValidationError, StepGraph, build_step_graph, validate_graph

__all__ = ["GraphNode", "GraphValidationError", "StepGraph", "WorkflowGraphCheck", "build_step_graph", "validate_graph"]
