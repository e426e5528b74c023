"""The Mermaid form of a container graph: a `flowchart LR` for Markdown."""

from __future__ import annotations

from core.containers.graph.model import CONFIGURATION_OPTION, ContainerGraph, GraphNode
from core.containers.graph.picture import (
    branch_roles,
    descendants_in_area,
    node_ids,
    picture_label,
    short_name,
    user_groups,
)

__all__ = ("render_mermaid",)

_MERMAID_SHAPES: dict[str, tuple[str, str]] = {
    "Selector": ("{{", "}}"),
    "Resource": ("([", "])"),
    "Configuration": ("[/", "/]"),
    CONFIGURATION_OPTION: ("[/", "/]"),
    "Dependency": ("[\\", "\\]"),
}


def _mermaid_text(text: str) -> str:
    # Mermaid labels are HTML inside double quotes: escape what would end the string or tag.
    return (
        text.replace("&", "#amp;").replace('"', "#quot;").replace("<", "#lt;").replace(">", "#gt;")
    )


def render_mermaid(graph: ContainerGraph) -> str:
    """A Mermaid `flowchart LR`: a subgraph per area, arrows from a provider to what it injects.

    The branch each Selector picks is drawn bold and highlighted; the other branches are dashed.
    A port's provider names the adapter in use. Overridden providers are outlined in red. With
    users, a `users` subgraph holds the ViewSets, consumers and tasks, with an arrow to each
    provider they resolve.
    """
    ids = node_ids(graph, "n_")
    lines = ["flowchart LR"]

    def emit(node: GraphNode, depth: int) -> None:
        indent = "  " * depth
        if node.kind == "Container":
            label = f"{node.path}: {short_name(node.target)}" if node.target else node.path
            lines.append(f'{indent}subgraph {ids[node.path]}["{_mermaid_text(label)}"]')
            for child in descendants_in_area(graph, node.path):
                emit(child, depth + 1)
            lines.append(f"{indent}end")
            return
        left, right = _MERMAID_SHAPES.get(node.kind, ("[", "]"))
        label = "<br/>".join(_mermaid_text(line) for line in picture_label(node, graph))
        lines.append(f'{indent}{ids[node.path]}{left}"{label}"{right}')

    root_nodes = [n for n in graph.nodes if n.area == "" and n.kind != "Container"]
    if root_nodes:
        lines.append(f'  subgraph root["{_mermaid_text(graph.name)}"]')
        for node in root_nodes:
            emit(node, 2)
        lines.append("  end")
    for area in graph.areas:
        emit(graph.node(area), 1)

    highlighted: list[int] = []
    for index, edge in enumerate(graph.edges):
        source, target = ids[edge.source], ids[edge.target]
        if edge.relation == "branch" and edge.selected:
            lines.append(f'  {source} ==>|"{_mermaid_text(edge.label or "")}"| {target}')
            highlighted.append(index)
        elif edge.relation == "branch":
            lines.append(f'  {source} -.->|"{_mermaid_text(edge.label or "")}"| {target}')
        elif edge.relation == "binds":
            lines.append(f'  {source} -.->|"bound to"| {target}')
        else:
            lines.append(f"  {source} --> {target}")

    groups = user_groups(graph)
    if groups:
        lines.append('  subgraph users["users"]')
        for index, (_, label, _) in enumerate(groups):
            lines.append(f'    u_{index}(["{_mermaid_text(label)}"])')
        lines.append("  end")
        for index, (_, _, resolved) in enumerate(groups):
            for path in resolved:
                lines.append(f"  u_{index} -.-> {ids[path]}")

    selected, unselected = branch_roles(graph)
    overridden = [node.path for node in graph.nodes if node.overridden]
    lines.append("  classDef selected fill:#d9f2d9,stroke:#2e7d32,stroke-width:3px")
    lines.append(
        "  classDef unselected fill:#f5f5f5,stroke:#9e9e9e,stroke-dasharray:5 5,color:#757575"
    )
    lines.append("  classDef overridden stroke:#c62828,stroke-width:3px")
    for name, paths in (
        ("selected", [n.path for n in graph.nodes if n.path in selected]),
        ("unselected", [n.path for n in graph.nodes if n.path in unselected]),
        ("overridden", overridden),
    ):
        if paths:
            lines.append(f"  class {','.join(ids[path] for path in paths)} {name}")
    if highlighted:
        indexes = ",".join(str(index) for index in highlighted)
        lines.append(f"  linkStyle {indexes} stroke:#2e7d32,stroke-width:3px")
    return "\n".join(lines) + "\n"
