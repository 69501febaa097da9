"""A workflow's static graph: steps, the events between them, resources, as pydantic models.

Built from the steps' configs only (nothing runs), so it can be drawn, diffed or shipped
to a UI. ``filter_by_node_type`` hides a kind of node and reconnects its neighbours.
"""

from __future__ import annotations

import hashlib
import inspect
from typing import TYPE_CHECKING, Any, Callable, Literal, Union

from pydantic import BaseModel, Field

from workflows.decorators import StepConfig
from workflows.events import Event, HumanResponseEvent, InputRequiredEvent

if TYPE_CHECKING:
    from workflows.workflow import Workflow


class WorkflowNodeBase(BaseModel):
    """Common fields of every node: ``id`` is unique in the graph, ``label`` is what to show."""

    id: str
    label: str
    node_type: str

    def truncated_label(self, max_length: int | None) -> str:
        """The label cut to ``max_length`` characters, ending with ``*`` when cut."""
        if max_length is None or len(self.label) <= max_length:
            return self.label
        return self.label[: max(max_length - 1, 0)] + "*"


class WorkflowStepNode(WorkflowNodeBase):
    node_type: Literal["step"] = "step"
    description: str | None = None


class WorkflowEventNode(WorkflowNodeBase):
    """An event type; ``event_types`` lists it and its Event base classes (most specific first)."""

    node_type: Literal["event"] = "event"
    event_type: str
    event_types: list[str] = Field(default_factory=list)
    event_schema: dict[str, Any] | None = None
    produced_by: list[str] = Field(default_factory=list)

    def is_subclass_of(self, *type_names: str) -> bool:
        """Whether the event type is, or derives from, one of the classes named (by ``__name__``)."""
        return any(name in self.event_types for name in type_names)


class WorkflowExternalNode(WorkflowNodeBase):
    """The world outside the run: where ``InputRequiredEvent`` goes and human responses come from."""

    node_type: Literal["external"] = "external"


class WorkflowResourceNode(WorkflowNodeBase):
    node_type: Literal["resource"] = "resource"
    type_name: str | None = None
    getter_name: str | None = None
    source_file: str | None = None
    source_line: int | None = None
    description: str | None = None


class WorkflowResourceConfigNode(WorkflowNodeBase):
    node_type: Literal["resource_config"] = "resource_config"
    type_name: str | None = None
    config_file: str | None = None
    path_selector: str | None = None
    config_schema: dict[str, Any] | None = None
    config_value: Any = None
    description: str | None = None


class WorkflowGenericNode(WorkflowNodeBase):
    """A node of a kind this module does not know, for extensions."""

    event_type: str | None = None
    event_types: list[str] | None = None

    def is_subclass_of(self, *type_names: str) -> bool:
        """Whether ``event_types`` (the node's class and its bases, when set) names one of ``type_names``.

        Drawing code asks this of agent nodes (``node.is_subclass_of("ReActAgent")``).
        """
        return any(name in (self.event_types or ()) for name in type_names)


WorkflowGraphNode = Union[
    WorkflowStepNode,
    WorkflowEventNode,
    WorkflowExternalNode,
    WorkflowResourceNode,
    WorkflowResourceConfigNode,
    WorkflowGenericNode,
]


class WorkflowGraphEdge(BaseModel):
    source: str
    target: str
    label: str | None = None


class WorkflowGraph(BaseModel):
    """The nodes and directed edges of a workflow; ``name`` is its class name."""

    name: str
    nodes: list[WorkflowGraphNode]
    edges: list[WorkflowGraphEdge]
    description: str | None = None

    def filter_by_node_type(self, *node_types: str) -> WorkflowGraph:
        """Drop nodes of ``node_types``, linking each predecessor to each successor through them.

        A new edge takes the label of the first removed node it passes through, so
        hiding events turns ``s -> A -> t`` into ``s -> t`` labelled ``A``.
        """
        removed = {n.id: n for n in self.nodes if n.node_type in node_types}
        kept = [n for n in self.nodes if n.id not in removed]
        outgoing: dict[str, list[WorkflowGraphEdge]] = {}
        for edge in self.edges:
            outgoing.setdefault(edge.source, []).append(edge)
        edges: list[WorkflowGraphEdge] = []
        seen: set[tuple[str, str, str | None]] = set()

        def add(source: str, target: str, label: str | None) -> None:
            if (source, target, label) not in seen:
                seen.add((source, target, label))
                edges.append(WorkflowGraphEdge(source=source, target=target, label=label))

        for edge in self.edges:
            if edge.source in removed:
                continue
            if edge.target not in removed:
                add(edge.source, edge.target, edge.label)
                continue
            # Walk through removed nodes to the kept ones they lead to.
            label = removed[edge.target].label
            stack, visited = [edge.target], {edge.target}
            while stack:
                for nxt in outgoing.get(stack.pop(), []):
                    if nxt.target in removed:
                        if nxt.target not in visited:
                            visited.add(nxt.target)
                            stack.append(nxt.target)
                    else:
                        add(edge.source, nxt.target, label)
        return WorkflowGraph(name=self.name, nodes=kept, edges=edges, description=self.description)


def _event_node(event_type: type[Event], produced_by: list[str]) -> WorkflowEventNode:
    bases = [c.__name__ for c in event_type.__mro__ if isinstance(c, type) and issubclass(c, Event) and c is not Event]
    try:
        schema: dict[str, Any] | None = event_type.model_json_schema()
    except Exception:  # a field type pydantic cannot describe: show the node without a schema
        schema = None
    return WorkflowEventNode(
        id=event_type.__name__,
        label=event_type.__name__,
        event_type=event_type.__name__,
        event_types=bases,
        event_schema=schema,
        produced_by=produced_by,
    )


def _step_configs(workflow: Workflow | type[Workflow]) -> dict[str, tuple[Callable[..., Any], StepConfig]]:
    cls = workflow if isinstance(workflow, type) else type(workflow)
    steps: dict[str, tuple[Callable[..., Any], StepConfig]] = {}
    for klass in reversed(cls.__mro__):
        for name, attr in vars(klass).items():
            if hasattr(attr, "_step_config"):
                steps[name] = (attr, attr._step_config)
            elif name in steps:
                del steps[name]
    for name, func in getattr(cls, "_added_steps", {}).items():
        steps[name] = (func, func._step_config)
    return steps


def _resource_node(descriptor: Any, type_annotation: Any) -> WorkflowNodeBase:
    type_name = getattr(type_annotation, "__name__", None) or (str(type_annotation) if type_annotation else None)
    if hasattr(descriptor, "config_file"):
        key = f"{descriptor.config_file}:{getattr(descriptor, 'path_selector', None)}"
        node_id = "resource_config_" + hashlib.sha256(key.encode()).hexdigest()[:12]
        schema = None
        if isinstance(type_annotation, type) and issubclass(type_annotation, BaseModel):
            schema = type_annotation.model_json_schema()
        try:
            value = descriptor.load(type_annotation)
            value = value.model_dump(mode="json") if isinstance(value, BaseModel) else value
        except Exception:  # missing or invalid file: validate() reports it; the graph still draws
            value = None
        return WorkflowResourceConfigNode(
            id=node_id,
            label=getattr(descriptor, "label", None) or type_name or str(descriptor.config_file),
            type_name=type_name,
            config_file=str(descriptor.config_file),
            path_selector=getattr(descriptor, "path_selector", None),
            config_schema=schema,
            config_value=value,
            description=getattr(descriptor, "description", None),
        )
    factory = getattr(descriptor, "factory", None)
    getter = getattr(factory, "__qualname__", None) or repr(descriptor)
    try:
        source_file: str | None = inspect.getsourcefile(factory) if factory else None
        source_line: int | None = inspect.getsourcelines(factory)[1] if factory else None
    except (TypeError, OSError):
        source_file = source_line = None
    return WorkflowResourceNode(
        id="resource_" + hashlib.sha256(f"{source_file}:{getter}".encode()).hexdigest()[:12],
        label=getter,
        type_name=type_name,
        getter_name=getter,
        source_file=source_file,
        source_line=source_line,
        description=getattr(descriptor, "description", None) or (inspect.getdoc(factory) if factory else None),
    )


def get_workflow_representation(workflow: Workflow | type[Workflow]) -> WorkflowGraph:
    """The static graph of a workflow class or instance."""
    cls = workflow if isinstance(workflow, type) else type(workflow)
    steps = _step_configs(workflow)
    nodes: dict[str, WorkflowNodeBase] = {}
    edges: list[WorkflowGraphEdge] = []
    produced_by: dict[type, list[str]] = {}
    for name, (_, config) in steps.items():
        for t in config.return_types:
            if isinstance(t, type) and issubclass(t, Event):
                produced_by.setdefault(t, []).append(name)

    def event_node(t: type[Event]) -> str:
        if t.__name__ not in nodes:
            nodes[t.__name__] = _event_node(t, produced_by.get(t, []))
        return t.__name__

    needs_external = False
    for name, (func, _config) in steps.items():
        nodes[name] = WorkflowStepNode(id=name, label=name, description=inspect.getdoc(func))
    for name, (_, config) in steps.items():
        for t in config.accepted_events:
            edges.append(WorkflowGraphEdge(source=event_node(t), target=name))
            if issubclass(t, HumanResponseEvent):
                needs_external = True
        for t in config.return_types:
            if t is type(None) or not (isinstance(t, type) and issubclass(t, Event)):
                continue
            edges.append(WorkflowGraphEdge(source=name, target=event_node(t)))
            if issubclass(t, InputRequiredEvent):
                needs_external = True
        for definition in config.resources:
            resource_id = _add_resource(nodes, edges, definition)
            edges.append(WorkflowGraphEdge(source=name, target=resource_id, label=definition.name))
    if needs_external:
        nodes["external_step"] = WorkflowExternalNode(id="external_step", label="external_step")
        for node in list(nodes.values()):
            if isinstance(node, WorkflowEventNode) and node.is_subclass_of("InputRequiredEvent"):
                edges.append(WorkflowGraphEdge(source=node.id, target="external_step"))
            if isinstance(node, WorkflowEventNode) and node.is_subclass_of("HumanResponseEvent"):
                edges.append(WorkflowGraphEdge(source="external_step", target=node.id))
    return WorkflowGraph(name=cls.__name__, nodes=list(nodes.values()), edges=edges, description=inspect.getdoc(cls) if cls.__doc__ else None)


def _add_resource(nodes: dict[str, WorkflowNodeBase], edges: list[WorkflowGraphEdge], definition: Any) -> str:
    descriptor = definition.resource
    node = _resource_node(descriptor, getattr(definition, "type_annotation", None))
    if node.id not in nodes:
        nodes[node.id] = node
        for dependency in getattr(descriptor, "dependencies", lambda: [])() or []:
            dep_id = _add_resource(nodes, edges, dependency)
            edges.append(WorkflowGraphEdge(source=node.id, target=dep_id, label=dependency.name))
    return node.id
