"""The text form of a container graph: the adapters in use with their effective values, the
settings grouped by area, the provider tree, and (when asked) who resolves each provider."""

from __future__ import annotations

import textwrap
from collections.abc import Iterable

from core.containers.graph.model import (
    CONFIGURATION_OPTION,
    ContainerGraph,
    GraphNode,
    PortUse,
    SelectorState,
)
from core.containers.graph.users import PROJECT_HANDLER

__all__ = ("render_text",)

_WIDTH = 100
_SHARED = "shared"


def render_text(graph: ContainerGraph) -> str:
    """The graph as text.

    First the adapter each port serves (`SETTING=value -> class`, registered and overridden
    ones marked) with the effective values it is built from; then the configuration options
    grouped by the area that reads them; then the provider tree (the root's providers, one
    block per area: a Selector shows `setting = value -> branch`, then the selected branch and
    the alternatives); last, when the graph has them, the ViewSets, consumers and tasks that
    resolve each provider.
    """
    lines: list[str] = [f"{graph.name}" + (f" ({graph.target})" if graph.target else "")]
    if graph.ports:
        lines += ["", "Adapters in use:"]
        for use in graph.ports:
            lines += _port_lines(use)
        lines.append("")
    for node in graph.children(None):
        if node.kind != "Container":
            _text_node(graph, node, depth=1, lines=lines)
    for node in graph.children(None):
        if node.kind == "Container":
            lines.append("")
            _text_node(graph, node, depth=0, lines=lines)
    if graph.users:
        lines += ["", "Used by:"]
        lines += _user_lines(graph)
    return "\n".join(lines) + "\n"


def _port_lines(use: PortUse) -> list[str]:
    flags = (("registered", use.registered), ("by configure_auth", use.declared))
    marks = [mark for mark, on in flags if on]
    value = f"{use.setting}={use.value}" + (f" ({', '.join(marks)})" if marks else "")
    head = f"  {use.provider}: {use.port} {value} -> {use.adapter or '(nothing)'}"
    lines = [head]
    if use.overridden_by:
        lines.append(f"      OVERRIDDEN by {', '.join(use.overridden_by)}: the override serves")
    if use.note:
        lines.append(f"      {use.note}")
    if use.values:
        pairs = ", ".join(f"{label}={text}" for label, text in use.values)
        lines += _wrapped(pairs, indent=6)
    return lines


def _wrapped(text: str, indent: int) -> list[str]:
    prefix = " " * indent
    return textwrap.wrap(
        text,
        width=_WIDTH,
        initial_indent=prefix,
        subsequent_indent=prefix + "  ",
        break_long_words=False,
        break_on_hyphens=False,
    )


def _target_text(node: GraphNode) -> str:
    text = node.target or ""
    if node.builds:
        text += f" (builds {', '.join(node.builds)})"
    return text


def _selector_text(state: SelectorState) -> str:
    value = "<undefined>" if state.value is None else state.value
    picked = state.selected if state.selected is not None else "(nothing)"
    text = f"{state.setting} = {value} -> {picked}"
    return f"{text}; {state.note}" if state.note else text


def _status_text(node: GraphNode) -> str:
    parts: list[str] = []
    if node.bound_to is not None:
        parts.append(f"bound to {node.bound_to}")
    if node.supplied_by is not None:
        parts.append(f"supplied by {node.supplied_by}")
    if node.overridden:
        parts.append(f"OVERRIDDEN by {', '.join(node.overridden_by)}")
    return f" [{'; '.join(parts)}]" if parts else ""


def _text_node(graph: ContainerGraph, node: GraphNode, depth: int, lines: list[str]) -> None:
    indent = "  " * depth
    if node.branch is not None:
        owner = graph.node(node.owner) if node.owner else None
        state = owner.selector if owner is not None else None
        role = "selected" if state is not None and state.selected == node.branch else "alternative"
        label = f"{node.branch} ({role})"
    else:
        label = node.path
    if node.kind == CONFIGURATION_OPTION:
        return  # grouped on their Configuration's lines
    head = f"{indent}{label}: {node.kind}"
    if node.selector is not None:
        head += f" {_selector_text(node.selector)}"
    elif node.target or node.builds:
        head += f" {_target_text(node)}"
    lines.append(head + _status_text(node))
    children = graph.children(node.path)
    if node.kind == "Configuration" and node.bound_to is None:
        lines += _option_groups(graph, [c for c in children if c.kind == CONFIGURATION_OPTION])
    branches = [child for child in children if child.branch is not None]
    selected = [b for b in branches if node.selector and b.branch == node.selector.selected]
    for branch in [*selected, *(b for b in branches if b not in selected)]:
        _text_node(graph, branch, depth + 1, lines)
    options: list[str] = []
    for dependency in node.dependencies:
        if node.selector is not None and dependency == node.selector.setting:
            continue  # already on the Selector's own line
        if dependency in graph and graph.node(dependency).kind == CONFIGURATION_OPTION:
            options.append(dependency)
        else:
            lines.append(f"{indent}    depends on {dependency}")
    if options:
        lines += _wrapped(f"reads {_option_list(options)}", indent=len(indent) + 4)
    for child in children:
        if child.branch is None:
            _text_node(graph, child, depth + 1, lines)


def _option_list(paths: Iterable[str]) -> str:
    # `config.a`, `config.b` -> `config: a, b`, one prefix per Configuration.
    by_root: dict[str, list[str]] = {}
    for path in paths:
        root, _, name = path.partition(".")
        by_root.setdefault(root, []).append(name)
    return "; ".join(f"{root}: {', '.join(names)}" for root, names in by_root.items())


def _option_groups(graph: ContainerGraph, options: list[GraphNode]) -> list[str]:
    """One line (wrapped) per area: the options its providers read; those read by several
    areas are `shared`, those nobody reads are not shown."""
    groups: dict[str, list[str]] = {}
    for option in options:
        areas = {graph.node(reader).area for reader in graph.readers(option.path)}
        if not areas:
            continue
        area = areas.pop() if len(areas) == 1 else _SHARED
        groups.setdefault(area or "root", []).append(option.name)
    order = [*graph.areas, "root", _SHARED]
    lines = [f"    {sum(map(len, groups.values()))} options read, by area:"]
    for area in sorted(groups, key=lambda a: order.index(a) if a in order else len(order)):
        lines += _wrapped(f"{area}: {', '.join(groups[area])}", indent=6)
    return lines


def _user_lines(graph: ContainerGraph) -> list[str]:
    own = any(user.detail.endswith(PROJECT_HANDLER) for user in graph.users)
    lines: list[str] = []
    used = {p for user in graph.users for p in user.providers}
    providers = [node.path for node in graph.nodes if node.path in used]
    # The adapters are what one asks about: list those only reached through another provider
    # too (every route resolves auth.authenticator, which injects auth.token_backend).
    ports = [use.provider for use in graph.ports if use.provider not in used]
    for provider in [*providers, *ports]:
        viewsets: dict[str, list[str]] = {}
        others: list[str] = []
        found = graph.users_of(provider, through=provider not in used)
        if not found:
            continue
        if provider not in used:
            via = [p for p in graph.resolvers(provider)[1:] if p in used]
            provider = f"{provider} (through {', '.join(via)})"
        for user in found:
            if user.kind == "viewset":
                mark = "*" if user.detail.endswith(PROJECT_HANDLER) else ""
                viewsets.setdefault(user.name, []).append(f"{user.action}{mark}")
            else:
                others.append(user.label)
        names = [f"{view} ({', '.join(actions)})" for view, actions in viewsets.items()]
        lines += _wrapped(f"{provider}: {', '.join([*names, *others])}", indent=2)
    if own:
        lines.append(f"  * a handler of the project's own: {PROJECT_HANDLER[1:-1]}")
    return lines
