"""Drawing a workflow graph: Mermaid text, and a self-contained HTML page (inline SVG).

The HTML page needs nothing from the network: the layout is computed here (nodes in
layers by their distance from the start), and the page is plain SVG with a legend.
"""

from __future__ import annotations

import html
import re
from pathlib import Path
from typing import TYPE_CHECKING, Union

from workflows.representation.graph import WorkflowEventNode, WorkflowGraph, WorkflowNodeBase, get_workflow_representation

if TYPE_CHECKING:
    from workflows.workflow import Workflow

Drawable = Union["Workflow", "type[Workflow]", WorkflowGraph]

COLORS = {
    "step": "#ADD8E6",
    "start": "#E27AFF",
    "stop": "#FFA07A",
    "event": "#90EE90",
    "external": "#BEDAE4",
    "resource": "#DDA0DD",
    "resource_config": "#B2DFDB",
}


def _graph(target: Drawable) -> WorkflowGraph:
    return target if isinstance(target, WorkflowGraph) else get_workflow_representation(target)


def _color_key(node: WorkflowNodeBase) -> str:
    if isinstance(node, WorkflowEventNode):
        if node.is_subclass_of("StartEvent"):
            return "start"
        if node.is_subclass_of("StopEvent"):
            return "stop"
        return "event"
    return node.node_type if node.node_type in COLORS else "event"


def _mermaid_id(node_id: str, node_type: str) -> str:
    return f"{node_type}_{re.sub(r'[^A-Za-z0-9_]', '_', node_id)}"


def draw_mermaid(target: Drawable, filename: str | None = None, max_label_length: int | None = None) -> str:
    """A Mermaid ``flowchart TD`` of the workflow; written to ``filename`` when given."""
    graph = _graph(target)
    ids = {n.id: _mermaid_id(n.id, n.node_type) for n in graph.nodes}
    lines = ["flowchart TD"]
    for node in graph.nodes:
        label = node.truncated_label(max_label_length).replace('"', "'")
        shape = f'(["{label}"])' if node.node_type == "event" else f'["{label}"]'
        lines.append(f"    {ids[node.id]}{shape}")
    for edge in graph.edges:
        arrow = f" -->|{edge.label}| " if edge.label else " --> "
        lines.append(f"    {ids[edge.source]}{arrow}{ids[edge.target]}")
    for key, color in COLORS.items():
        lines.append(f"    classDef {key}Style fill:{color},color:#000")
    for node in graph.nodes:
        lines.append(f"    class {ids[node.id]} {_color_key(node)}Style")
    text = "\n".join(lines) + "\n"
    if filename:
        Path(filename).write_text(text, encoding="utf-8")
    return text


def _layers(graph: WorkflowGraph) -> list[list[WorkflowNodeBase]]:
    incoming: dict[str, int] = {n.id: 0 for n in graph.nodes}
    outgoing: dict[str, list[str]] = {n.id: [] for n in graph.nodes}
    for edge in graph.edges:
        incoming[edge.target] += 1
        outgoing[edge.source].append(edge.target)
    by_id = {n.id: n for n in graph.nodes}
    roots = [n.id for n in graph.nodes if isinstance(n, WorkflowEventNode) and n.is_subclass_of("StartEvent")]
    roots += [n.id for n in graph.nodes if incoming[n.id] == 0 and n.id not in roots]
    level: dict[str, int] = {}
    frontier = roots
    depth = 0
    while frontier:
        nxt: list[str] = []
        for node_id in frontier:
            if node_id in level:
                continue
            level[node_id] = depth
            nxt.extend(t for t in outgoing[node_id] if t not in level)
        frontier, depth = nxt, depth + 1
    for node in graph.nodes:  # cycles unreachable from any root
        level.setdefault(node.id, depth)
    layers: list[list[WorkflowNodeBase]] = [[] for _ in range(max(level.values(), default=-1) + 1)]
    for node_id, lvl in level.items():
        layers[lvl].append(by_id[node_id])
    return layers


def render_html(target: Drawable, max_label_length: int | None = None) -> str:
    """The workflow graph as a standalone HTML page (no scripts, no network)."""
    graph = _graph(target)
    layers = _layers(graph)
    box_w, box_h, gap_x, gap_y, margin = 180, 40, 30, 60, 40
    widest = max((len(layer) for layer in layers), default=1)
    width = margin * 2 + widest * box_w + (widest - 1) * gap_x
    height = margin * 2 + len(layers) * box_h + max(len(layers) - 1, 0) * gap_y
    pos: dict[str, tuple[float, float]] = {}
    for row, layer in enumerate(layers):
        row_w = len(layer) * box_w + (len(layer) - 1) * gap_x
        x0 = (width - row_w) / 2
        for col, node in enumerate(layer):
            pos[node.id] = (x0 + col * (box_w + gap_x), margin + row * (box_h + gap_y))
    parts: list[str] = []
    for edge in graph.edges:
        (x1, y1), (x2, y2) = pos[edge.source], pos[edge.target]
        sx, sy, tx, ty = x1 + box_w / 2, y1 + box_h, x2 + box_w / 2, y2
        if ty <= sy:  # an edge back up the page (a loop): curve it around the side
            sy, ty = y1 + box_h / 2, y2 + box_h / 2
            sx, tx = x1 + box_w, x2 + box_w
            bend = max(sx, tx) + 60
            path = f"M{sx},{sy} C{bend},{sy} {bend},{ty} {tx},{ty}"
        else:
            path = f"M{sx},{sy} L{tx},{ty}"
        parts.append(f'<path class="edge" d="{path}" marker-end="url(#arrow)"/>')
        if edge.label:
            parts.append(
                f'<text class="edge-label" x="{(sx + tx) / 2 + 4}" y="{(sy + ty) / 2}">{html.escape(edge.label)}</text>'
            )
    for node in graph.nodes:
        x, y = pos[node.id]
        rx = box_h / 2 if node.node_type == "event" else 4
        color = COLORS[_color_key(node)]
        label = html.escape(node.truncated_label(max_label_length))
        title = html.escape(f"{node.node_type}: {node.id}")
        parts.append(
            f'<g class="node {node.node_type}" data-id="{html.escape(node.id)}"><title>{title}</title>'
            f'<rect x="{x}" y="{y}" width="{box_w}" height="{box_h}" rx="{rx}" fill="{color}"/>'
            f'<text x="{x + box_w / 2}" y="{y + box_h / 2 + 5}" text-anchor="middle">{label}</text></g>'
        )
    legend = "".join(
        f'<span class="key"><i style="background:{c}"></i>{html.escape(k.replace("_", " "))}</span>' for k, c in COLORS.items()
    )
    title = html.escape(graph.name)
    description = f"<p>{html.escape(graph.description)}</p>" if graph.description else ""
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 24px; color: #222; }}
svg text {{ font-size: 13px; }}
.edge {{ fill: none; stroke: #555; stroke-width: 1.4; }}
.edge-label {{ font-size: 11px; fill: #555; }}
.node rect {{ stroke: #333; stroke-width: 1; }}
.key {{ margin-right: 14px; font-size: 13px; }}
.key i {{ display: inline-block; width: 12px; height: 12px; margin-right: 4px; border: 1px solid #333; vertical-align: -1px; }}
</style></head>
<body><h1>{title}</h1>{description}<div class="legend">{legend}</div>
<svg xmlns="http://www.w3.org/2000/svg" width="{width + 80}" height="{height}" viewBox="0 0 {width + 80} {height}">
<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse">
<path d="M0,0 L10,5 L0,10 z" fill="#555"/></marker></defs>
{chr(10).join(parts)}
</svg></body></html>
"""


def draw_html(target: Drawable, filename: str = "workflow_all_flows.html", max_label_length: int | None = None) -> str:
    """Write the page of ``render_html`` to ``filename`` and return its path."""
    Path(filename).write_text(render_html(target, max_label_length), encoding="utf-8")
    return filename


def draw_all_possible_flows(
    workflow: Drawable, filename: str = "workflow_all_flows.html", max_label_length: int | None = None
) -> None:
    """Compatibility name (llama-index-utils-workflow) for ``draw_html``."""
    draw_html(workflow, filename, max_label_length)


def draw_all_possible_flows_mermaid(
    workflow: Drawable, filename: str | None = "workflow_all_flows.mermaid", max_label_length: int | None = None
) -> str:
    """Compatibility name (llama-index-utils-workflow) for ``draw_mermaid``."""
    return draw_mermaid(workflow, filename, max_label_length)
