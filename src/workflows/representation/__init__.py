"""A workflow's static graph (steps, events, resources) and ways to draw it."""

from workflows.representation.drawing import (
    draw_all_possible_flows,
    draw_all_possible_flows_mermaid,
    draw_html,
    draw_mermaid,
    render_html,
)
from workflows.representation.graph import (
    WorkflowEventNode,
    WorkflowExternalNode,
    WorkflowGenericNode,
    WorkflowGraph,
    WorkflowGraphEdge,
    WorkflowGraphNode,
    WorkflowNodeBase,
    WorkflowResourceConfigNode,
    WorkflowResourceNode,
    WorkflowStepNode,
    get_workflow_representation,
)

__all__ = [
    "get_workflow_representation",
    "WorkflowGraph",
    "WorkflowGraphEdge",
    "WorkflowGraphNode",
    "WorkflowNodeBase",
    "WorkflowStepNode",
    "WorkflowEventNode",
    "WorkflowExternalNode",
    "WorkflowResourceNode",
    "WorkflowResourceConfigNode",
    "WorkflowGenericNode",
    "draw_mermaid",
    "draw_html",
    "render_html",
    "draw_all_possible_flows",
    "draw_all_possible_flows_mermaid",
]
