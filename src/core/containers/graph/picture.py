"""What the pictures (mermaid, dot) share: short labels, node ids, branch roles, area boxes."""

from __future__ import annotations

from core.containers.graph.model import (
    CONFIGURATION_OPTION,
    ContainerGraph,
    GraphNode,
    PortUse,
    ProviderUser,
)


def short_name(qualified: str) -> str:
    """`core.adapters.memory.repository.InMemoryRepository.for_session` -> the part after the
    module: a qualname segment starts with an upper-case class or a private/lower function, so
    keep the last segment and its class when the last is a method."""
    segments = qualified.removesuffix(" instance").split(".")
    if len(segments) >= 2 and segments[-2][:1].isupper():
        return ".".join(segments[-2:])
    return segments[-1]


def picture_label(node: GraphNode, graph: ContainerGraph) -> list[str]:
    """The lines a picture shows for a node: short names, so the boxes stay small."""
    title = node.branch if node.branch is not None else node.path
    lines = [title] if node.kind == CONFIGURATION_OPTION else [title, node.kind]
    if node.selector is not None:
        state = node.selector
        value = "undefined" if state.value is None else state.value
        lines.append(f"{state.setting} = {value}")
    elif node.target and node.kind != "Container":
        target = short_name(node.target)
        if node.builds:
            target += " -> " + ", ".join(short_name(name) for name in node.builds)
        lines.append(target)
    for use in graph.ports:
        if use.provider == node.path and node.kind != "Selector":
            lines += port_lines(use)
        elif use.provider == node.path:  # a Selector already shows its setting and value
            lines.append(port_lines(use)[1])
    if node.bound_to is not None:
        lines.append(f"= {node.bound_to}")
    if node.overridden:
        lines.append("OVERRIDDEN")
    return lines


def node_ids(graph: ContainerGraph, prefix: str) -> dict[str, str]:
    ids: dict[str, str] = {}
    used: set[str] = set()
    for node in graph.nodes:
        base = prefix + "".join(c if c.isalnum() else "_" for c in node.path)
        candidate, suffix = base, 2
        while candidate in used:
            candidate, suffix = f"{base}_{suffix}", suffix + 1
        used.add(candidate)
        ids[node.path] = candidate
    return ids


def branch_roles(graph: ContainerGraph) -> tuple[set[str], set[str]]:
    selected: set[str] = set()
    unselected: set[str] = set()
    for edge in graph.edges:
        if edge.relation == "branch":
            (selected if edge.selected else unselected).add(edge.target)
    return selected, unselected


def descendants_in_area(graph: ContainerGraph, container_path: str) -> list[GraphNode]:
    """The nodes drawn inside a container's box: its providers and everything they own,
    except nested containers, which draw their own box."""
    result: list[GraphNode] = []
    pending = list(graph.children(container_path))
    while pending:
        node = pending.pop(0)
        result.append(node)
        if node.kind != "Container":
            pending[0:0] = list(graph.children(node.path))
    return result


def port_lines(use: PortUse) -> list[str]:
    """The extra lines a picture shows on a port's provider: the adapter really in use."""
    mark = " (registered)" if use.registered else ""
    adapter = short_name(use.adapter) if use.adapter else "(nothing)"
    return [f"{use.setting}={use.value}{mark}", f"uses {adapter}"]


def user_label(user: ProviderUser) -> str:
    """A user's name in a picture: `PostViewSet.list`, `consumer Notifier`, `task send_email`."""
    if user.kind == "viewset":
        return user.label
    return f"{user.kind} {short_name(user.name)}"


def user_groups(graph: ContainerGraph) -> list[tuple[str, str, tuple[str, ...]]]:
    """One box per ViewSet (its actions on one line), consumer and task: (id suffix, label,
    the providers any of them resolves)."""
    groups: dict[str, tuple[list[str], list[str]]] = {}
    for user in graph.users:
        key = f"{user.kind}:{user.name}"
        actions, resolved = groups.setdefault(key, ([], []))
        if user.action and user.kind == "viewset":
            actions.append(user.action)
        resolved.extend(p for p in user.providers if p not in resolved and p in graph)
    result = []
    for key, (actions, resolved) in groups.items():
        kind, _, name = key.partition(":")
        label = short_name(name) if kind != "viewset" else name
        text = f"{label} ({', '.join(actions)})" if actions else f"{kind} {label}"
        result.append((key, text, tuple(resolved)))
    return result
