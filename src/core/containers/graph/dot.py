"""The Graphviz form of a container graph: a digraph (`| dot -Tsvg > graph.svg`)."""

from __future__ import annotations

from core.containers.graph.model import CONFIGURATION_OPTION, ContainerGraph, GraphNode
from core.containers.graph.picture import (
    branch_roles,
    descendants_in_area,
    picture_label,
    short_name,
    user_groups,
)

__all__ = ("render_dot",)

_DOT_SHAPES: dict[str, str] = {
    "Selector": "hexagon",
    "Resource": "cylinder",
    "Configuration": "folder",
    CONFIGURATION_OPTION: "note",
    "Dependency": "invhouse",
}


def _dot_text(text: str) -> str:
    return '"' + _dot_escape(text) + '"'


def _dot_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"')


def _dot_label(lines: list[str]) -> str:
    # `\n` is Graphviz's centred line break inside a quoted label; a raw newline is not.
    return '"' + "\\n".join(_dot_escape(line) for line in lines) + '"'


def render_dot(graph: ContainerGraph) -> str:
    """A Graphviz digraph: a cluster per area, arrows from a provider to what it injects.

    The branch each Selector picks is bold and green; the other branches are dashed. A port's
    provider names the adapter in use. Overridden providers are outlined in red. With users, a
    `users` cluster holds the ViewSets, consumers and tasks, with a dotted arrow to each provider
    they resolve.
    """
    selected, unselected = branch_roles(graph)
    lines = [
        f"digraph {_dot_text(graph.name)} {{",
        "  rankdir=LR;",
        '  node [shape=box, fontname="Helvetica", fontsize=10];',
        '  edge [fontname="Helvetica", fontsize=9];',
    ]

    def emit(node: GraphNode, depth: int) -> None:
        indent = "  " * depth
        if node.kind == "Container":
            label = f"{node.path}: {short_name(node.target)}" if node.target else node.path
            lines.append(f"{indent}subgraph {_dot_text('cluster_' + node.path)} {{")
            lines.append(f"{indent}  label={_dot_text(label)};")
            for child in descendants_in_area(graph, node.path):
                emit(child, depth + 1)
            lines.append(f"{indent}}}")
            return
        attributes = [
            f"label={_dot_label(picture_label(node, graph))}",
            f"shape={_DOT_SHAPES.get(node.kind, 'box')}",
        ]
        if node.path in selected:
            attributes += ["style=filled", 'fillcolor="#d9f2d9"', "penwidth=2"]
        elif node.path in unselected:
            attributes += ["style=dashed", 'fontcolor="#757575"']
        if node.overridden:
            attributes += ['color="#c62828"', "penwidth=3"]
        lines.append(f"{indent}{_dot_text(node.path)} [{', '.join(attributes)}];")

    root_nodes = [n for n in graph.nodes if n.area == "" and n.kind != "Container"]
    if root_nodes:
        lines.append(f"  subgraph {_dot_text('cluster_root')} {{")
        lines.append(f"    label={_dot_text(graph.name)};")
        for node in root_nodes:
            emit(node, 2)
        lines.append("  }")
    for area in graph.areas:
        emit(graph.node(area), 1)
    for edge in graph.edges:
        attributes: list[str] = []
        if edge.relation == "branch":
            attributes.append(f"label={_dot_text(edge.label or '')}")
            if edge.selected:
                attributes += ["style=bold", 'color="#2e7d32"', "penwidth=2"]
            else:
                attributes.append("style=dashed")
        elif edge.relation == "binds":
            attributes += [f"label={_dot_text('bound to')}", "style=dotted"]
        suffix = f" [{', '.join(attributes)}]" if attributes else ""
        lines.append(f"  {_dot_text(edge.source)} -> {_dot_text(edge.target)}{suffix};")
    groups = user_groups(graph)
    if groups:
        lines.append(f"  subgraph {_dot_text('cluster_users')} {{")
        lines.append(f"    label={_dot_text('users')};")
        for key, label, _ in groups:
            lines.append(f"    {_dot_text(key)} [label={_dot_text(label)}, shape=oval];")
        lines.append("  }")
        for key, _, resolved in groups:
            for path in resolved:
                lines.append(f"  {_dot_text(key)} -> {_dot_text(path)} [style=dotted];")
    lines.append("}")
    return "\n".join(lines) + "\n"
