"""The container graph: every provider of a container, the adapter each Selector picks, who depends
on whom, and which providers a test has overridden — built without calling a single provider.

`build_graph(container)` returns a `ContainerGraph`; `render_text`, `render_mermaid` and
`render_dot` draw it. `core container graph` prints it.
"""

from __future__ import annotations

import ast
import functools
import inspect
import sys
import textwrap
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from dependency_injector import providers

__all__ = (
    "ContainerGraph",
    "GraphEdge",
    "GraphNode",
    "SelectorState",
    "build_graph",
    "render_dot",
    "render_mermaid",
    "render_text",
)

Relation = Literal["depends", "branch", "binds"]

CONFIGURATION_OPTION = "Configuration option"


@dataclass(frozen=True, slots=True)
class SelectorState:
    """What a Selector reads and which branch that picks under the container's current config.

    Attributes:
        setting: The dotted path of the configuration option it reads (`config.database_backend`),
            or a description of its selector when that is not a configuration option.
        value: The option's current value as text; None when it was not read or is undefined.
        selected: The branch the value names; None when no declared branch matches.
        branches: The branch names, in declaration order.
        note: Why nothing is selected, or that an override bypasses the selection.
    """

    setting: str
    value: str | None
    selected: str | None
    branches: tuple[str, ...]
    note: str | None = None

    @property
    def alternatives(self) -> tuple[str, ...]:
        """The branches the current value does not pick."""
        return tuple(branch for branch in self.branches if branch != self.selected)


@dataclass(frozen=True, slots=True)
class GraphNode:
    """One provider of the container.

    Attributes:
        path: Where the provider is reached from the root, e.g. `database.repository`; a Selector
            branch is `database.repository.memory`, an option `config.database_backend`.
        kind: The provider type: `Singleton`, `Factory`, `Selector`, `Resource`, `Callable`,
            `Dependency`, `Container`, `Configuration`, `Configuration option`, ...
        area: The top-level nested container it belongs to (`database`); "" for the root.
        owner: The path of the node it is declared in: its container, its Selector (branches),
            its Configuration (options), or the provider it is injected into (inline providers).
        target: What it provides: the qualified name of the class or callable, the class a
            Dependency expects, or the declarative container a Container instantiates.
        builds: For builder functions, the adapter classes they construct, read from the source
            without calling them (e.g. `_sqlalchemy_database` builds `SqlAlchemyDatabase`).
        branch: The branch name under its owning Selector; None for other nodes.
        selector: For a Selector, what it reads and which branch that picks.
        dependencies: The paths of the providers it injects, in declaration order.
        overridden_by: Descriptions of the providers overriding it (newest last).
        bound_to: For a nested Configuration, the root Configuration that feeds it.
        supplied_by: For a Dependency, what supplies it (the composition root's value).
    """

    path: str
    kind: str
    area: str
    owner: str | None
    target: str | None = None
    builds: tuple[str, ...] = ()
    branch: str | None = None
    selector: SelectorState | None = None
    dependencies: tuple[str, ...] = ()
    overridden_by: tuple[str, ...] = ()
    bound_to: str | None = None
    supplied_by: str | None = None

    @property
    def overridden(self) -> bool:
        """Whether something (usually a test) replaced this provider."""
        return bool(self.overridden_by)

    @property
    def name(self) -> str:
        """The last segment of the path."""
        return self.path.rsplit(".", 1)[-1]


@dataclass(frozen=True, slots=True)
class GraphEdge:
    """`source` uses `target`.

    Attributes:
        relation: `depends` (an injection, config options included), `branch` (a Selector's
            branch; `selected` tells whether the current config picks it), or `binds` (a nested
            Configuration fed by the root one).
        label: The branch name for `branch` edges.
    """

    source: str
    target: str
    relation: Relation
    label: str | None = None
    selected: bool = False


@dataclass(frozen=True, slots=True)
class ContainerGraph:
    """The providers of one container and the edges between them, in declaration order.

    Attributes:
        name: The container's class name, e.g. `CoreContainer`.
        target: The container's qualified class name.
    """

    name: str
    target: str | None
    nodes: tuple[GraphNode, ...]
    edges: tuple[GraphEdge, ...]
    _index: dict[str, GraphNode] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_index", {node.path: node for node in self.nodes})

    def node(self, path: str) -> GraphNode:
        """The node at `path`.

        Raises:
            KeyError: no provider has that path.
        """
        return self._index[path]

    def __contains__(self, path: object) -> bool:
        return path in self._index

    def children(self, owner: str | None) -> tuple[GraphNode, ...]:
        """The nodes declared in `owner` (None: the root's own providers), in order."""
        return tuple(node for node in self.nodes if node.owner == owner)

    @property
    def areas(self) -> tuple[str, ...]:
        """The names of the root's nested containers, in declaration order."""
        return tuple(node.path for node in self.children(None) if node.kind == "Container")

    def readers(self, path: str) -> tuple[str, ...]:
        """The paths of the nodes that inject `path` (reverse `depends` edges)."""
        return tuple(
            edge.source for edge in self.edges if edge.relation == "depends" and edge.target == path
        )


def build_graph(container: Any) -> ContainerGraph:
    """Describe a container's providers, Selector choices and dependencies.

    Reads the container's declarations and the configuration values its Selectors read; it calls
    no other provider, so nothing is instantiated, connected or initialised.

    Args:
        container: A container instance (`build_container(settings)`, `app.container`) or a
            declarative container class.

    Returns:
        The graph, deterministic: declaration order throughout.

    Example:
        >>> from core.containers import build_container
        >>> from core.settings import Settings
        >>> graph = build_graph(build_container(Settings(database_url="memory://")))
        >>> graph.node("database.database").selector.selected
        'memory'
    """
    return _GraphBuilder().build(container)


# --------------------------------------------------------------------------- building


def _kind(provider: Any) -> str:
    if isinstance(provider, providers.ConfigurationOption | providers.TypedConfigurationOption):
        return CONFIGURATION_OPTION
    return type(provider).__name__


def _qualified_name(obj: Any) -> str:
    if isinstance(obj, functools.partial):
        return f"functools.partial({_qualified_name(obj.func)})"
    qualname = getattr(obj, "__qualname__", None)
    if not isinstance(qualname, str):
        kind = type(obj)
        return f"{_qualified_name(kind)} instance"
    module = getattr(obj, "__module__", None)
    return f"{module}.{qualname}" if module and module != "builtins" else qualname


def _short_name(qualified: str) -> str:
    # `core.adapters.memory.repository.InMemoryRepository.for_session` -> the part after the
    # module: a qualname segment starts with an upper-case class or a private/lower function,
    # so keep the last segment and its class when the last is a method.
    segments = qualified.removesuffix(" instance").split(".")
    if len(segments) >= 2 and segments[-2][:1].isupper():
        return ".".join(segments[-2:])
    return segments[-1]


def _target(provider: Any) -> str | None:
    if isinstance(provider, providers.Container):
        inner = provider.container
        return None if inner is None else _container_class_name(inner)
    if isinstance(provider, providers.Dependency):
        instance_of = provider.instance_of
        return None if instance_of is object else _qualified_name(instance_of)
    if isinstance(provider, providers.Configuration | providers.ConfigurationOption):
        return None
    if isinstance(provider, providers.TypedConfigurationOption):
        return None
    if isinstance(provider, providers.Object):
        value = provider.provides
        # The value itself may be a secret (a URL with a password); its type is enough.
        return _qualified_name(value if isinstance(value, type) else type(value)) + (
            "" if isinstance(value, type) else " instance"
        )
    provides = getattr(provider, "provides", None) if _has_injections(provider) else None
    if provides is None or providers.is_provider(provides):
        return None
    return _qualified_name(provides)


def _container_class_name(container: Any) -> str:
    cls = getattr(container, "declarative_parent", None)
    if cls is None:
        cls = container if isinstance(container, type) else type(container)
    return _qualified_name(cls)


def _has_injections(provider: Any) -> bool:
    # The providers with args/kwargs/attributes; asking a Selector or Container for `.args`
    # would look up a branch or a child provider of that name instead.
    return isinstance(
        provider,
        providers.Factory
        | providers.BaseSingleton
        | providers.Callable
        | providers.BaseResource
        | providers.List
        | providers.Dict
        | providers.MethodCaller,
    ) and not isinstance(provider, providers.TypedConfigurationOption)


def _builds(provider: Any) -> tuple[str, ...]:
    if not _has_injections(provider) or isinstance(provider, providers.List | providers.Dict):
        return ()
    provides = getattr(provider, "provides", None)
    if isinstance(provides, functools.partial):
        provides = provides.func
    if provides is None or isinstance(provides, type) or providers.is_provider(provides):
        return ()
    owner = getattr(provides, "__self__", None)
    if isinstance(owner, type):
        # An alternate constructor (`InMemoryRepository.for_session`) builds its own class.
        return (_qualified_name(owner),)
    if inspect.isfunction(provides):
        return _classes_returned(provides)
    return ()


def _classes_returned(function: Callable[..., Any]) -> tuple[str, ...]:
    """The classes `function` constructs in its `return` statements, read from its source.

    Builders import their adapter inside the body (so `import core` works without the extra),
    so the class is found from the AST: calling the builder would construct the adapter, and
    importing its module could fail when the extra is missing.
    """
    try:
        tree = ast.parse(textwrap.dedent(inspect.getsource(function)))
    except (OSError, TypeError, SyntaxError):
        return ()
    definition = tree.body[0] if tree.body else None
    if not isinstance(definition, ast.FunctionDef | ast.AsyncFunctionDef):
        return ()
    imports: dict[str, str] = {}
    returned: list[ast.expr] = []
    for statement in _own_statements(definition):
        if isinstance(statement, ast.ImportFrom):
            module = _absolute_module(statement, function)
            for alias in statement.names:
                imports[alias.asname or alias.name] = f"{module}.{alias.name}"
        elif isinstance(statement, ast.Import):
            for alias in statement.names:
                local = alias.asname or alias.name.partition(".")[0]
                imports[local] = alias.name if alias.asname else local
        elif isinstance(statement, ast.Return) and isinstance(statement.value, ast.Call):
            returned.append(statement.value.func)
    found: list[str] = []
    for callee in returned:
        name = _resolve_callee(callee, imports, function)
        if name is not None and name not in found:
            found.append(name)
    return tuple(found)


def _own_statements(definition: ast.FunctionDef | ast.AsyncFunctionDef) -> Iterator[ast.stmt]:
    # Every statement of this function, inside `try`/`except`/`if`/`with` too, but not those of
    # a nested def, class or lambda: their returns are not this builder's.
    nested = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda)
    pending: list[ast.AST] = list(definition.body)
    while pending:
        node = pending.pop(0)
        if isinstance(node, nested):
            continue
        if isinstance(node, ast.stmt):
            yield node
        pending.extend(ast.iter_child_nodes(node))


def _absolute_module(statement: ast.ImportFrom, function: Callable[..., Any]) -> str:
    module = statement.module or ""
    if not statement.level:
        return module
    package = (getattr(function, "__module__", "") or "").split(".")
    base = package[: len(package) - statement.level]
    return ".".join([*base, module] if module else base)


def _dotted(expression: ast.expr) -> str | None:
    if isinstance(expression, ast.Name):
        return expression.id
    if isinstance(expression, ast.Attribute):
        head = _dotted(expression.value)
        return None if head is None else f"{head}.{expression.attr}"
    return None


def _resolve_callee(
    callee: ast.expr, imports: Mapping[str, str], function: Callable[..., Any]
) -> str | None:
    dotted = _dotted(callee)
    if dotted is None:
        return None
    head, _, rest = dotted.partition(".")
    if head in imports:
        qualified = imports[head] + (f".{rest}" if rest else "")
        module, _, attribute = qualified.rpartition(".")
        loaded = sys.modules.get(module)
        if loaded is not None:
            # Already imported: check it really is a class; getattr_static so a module-level
            # `__getattr__` cannot import anything on our behalf.
            return _class_name(inspect.getattr_static(loaded, attribute, None))
        # Not imported yet (the adapter's extra may be missing): trust the naming convention,
        # classes are CapWords, builder functions are not.
        return qualified if attribute[:1].isupper() else None
    value: Any = getattr(function, "__globals__", {}).get(head)
    for attribute in rest.split(".") if rest else ():
        value = inspect.getattr_static(value, attribute, None)
    return _class_name(value)


def _class_name(value: Any) -> str | None:
    return _qualified_name(value) if isinstance(value, type) else None


def _children_of(provider: providers.Container[Any]) -> dict[str, Any]:
    inner = provider.container
    return {} if inner is None else dict(inner.providers)


def _describe(provider: Any, paths: Mapping[int, str]) -> str:
    path = paths.get(id(provider))
    if path is not None:
        return path
    kind = _kind(provider)
    target = _target(provider)
    return f"{kind}({target})" if target else kind


class _GraphBuilder:
    """Walks the declared providers in declaration order, keyed by identity.

    `container.traverse()` would find the same providers, but it visits them in set order, so
    the output would change from run to run; `.related` (in order) gives the edges instead.
    """

    def __init__(self) -> None:
        self._paths: dict[int, str] = {}
        self._areas: dict[int, str] = {}
        self._nodes: dict[str, GraphNode] = {}
        self._edges: list[GraphEdge] = []
        self._config_aliases: dict[str, str] = {}
        self._declared: dict[int, Any] = {}
        # Providers created while walking (`.required()` options) must outlive the walk, or a
        # recycled id() could give two providers one path.
        self._keep: list[Any] = []

    def build(self, container: Any) -> ContainerGraph:
        declared = dict(container.providers)
        self._name(declared, prefix="", area="")
        self._bind_configurations()
        self._add_declared(declared, prefix="", owner=None, area="")
        cls_name = _container_class_name(container)
        return ContainerGraph(
            name=cls_name.rsplit(".", 1)[-1],
            target=cls_name,
            nodes=tuple(self._nodes.values()),
            edges=tuple(self._edges),
        )

    # Pass 1: give every declared provider (and every Selector branch) its path, so a
    # reference to a provider declared later, or in another area, resolves to its name.
    def _name(self, declared: Mapping[str, Any], prefix: str, area: str) -> None:
        for name, provider in declared.items():
            if id(provider) in self._paths:
                continue  # an alias of a provider already named: the first name wins
            path = f"{prefix}{name}"
            node_area = area or (name if isinstance(provider, providers.Container) else "")
            self._paths[id(provider)] = path
            self._areas[id(provider)] = node_area
            self._declared[id(provider)] = provider
            if isinstance(provider, providers.Selector):
                self._name(provider.providers, prefix=f"{path}.", area=node_area)
            elif isinstance(provider, providers.Container):
                self._name(_children_of(provider), prefix=f"{path}.", area=node_area)

    def _bind_configurations(self) -> None:
        # `providers.Container(Area, config=config)` overrides the area's Configuration with the
        # root's: its options read the root's values, so they are drawn as the root's options.
        for key, path in self._paths.items():
            provider = self._declared[key]
            if isinstance(provider, providers.Configuration):
                feeding = provider.last_overriding
                if isinstance(feeding, providers.Configuration) and id(feeding) in self._paths:
                    self._config_aliases[path] = self._paths[id(feeding)]

    def _config_path(self, path: str) -> str:
        seen: set[str] = set()
        while path in self._config_aliases and path not in seen:
            seen.add(path)
            path = self._config_aliases[path]
        return path

    # Pass 2: one node per provider, in declaration order; inline providers and config options
    # are added where they are first injected.
    def _add_declared(
        self, declared: Mapping[str, Any], prefix: str, owner: str | None, area: str
    ) -> None:
        for name, provider in declared.items():
            path = f"{prefix}{name}"
            if self._paths.get(id(provider)) != path:
                continue  # an alias: drawn once, under its first name
            node_area = self._areas[id(provider)]
            self._add(provider, path, owner=owner, area=node_area)
            if isinstance(provider, providers.Container):
                self._add_declared(
                    _children_of(provider), prefix=f"{path}.", owner=path, area=node_area
                )

    def _add(
        self, provider: Any, path: str, *, owner: str | None, area: str, branch: str | None = None
    ) -> None:
        if path in self._nodes:
            return
        # Reserve the path first: a cycle through inline providers must not recurse forever.
        self._nodes[path] = GraphNode(path=path, kind=_kind(provider), area=area, owner=owner)
        dependencies = tuple(
            self._dependency_path(dependency, label, owner=path, area=area)
            for label, dependency in self._labelled_dependencies(provider)
        )
        for dependency in dependencies:
            self._edges.append(GraphEdge(path, dependency, "depends"))
        selector = (
            self._selector_state(provider) if isinstance(provider, providers.Selector) else None
        )
        overridden_by, bound_to, supplied_by = self._overrides(provider, path)
        self._nodes[path] = GraphNode(
            path=path,
            kind=_kind(provider),
            area=area,
            owner=owner,
            target=_target(provider),
            builds=_builds(provider),
            branch=branch,
            selector=selector,
            dependencies=dependencies,
            overridden_by=overridden_by,
            bound_to=bound_to,
            supplied_by=supplied_by,
        )
        if bound_to is not None:
            self._edges.append(GraphEdge(path, bound_to, "binds"))
        if isinstance(provider, providers.Selector):
            for key, branch_provider in provider.providers.items():
                branch_path = self._paths.get(id(branch_provider), f"{path}.{key}")
                self._paths.setdefault(id(branch_provider), branch_path)
                self._add(branch_provider, branch_path, owner=path, area=area, branch=key)
                is_selected = selector is not None and selector.selected == key
                self._edges.append(
                    GraphEdge(path, branch_path, "branch", label=key, selected=is_selected)
                )

    def _labelled_dependencies(self, provider: Any) -> list[tuple[str, Any]]:
        if isinstance(
            provider,
            providers.Configuration | providers.ConfigurationOption | providers.Container,
        ):
            # A Configuration's related providers are its options, a Container's its children:
            # neither is something it injects.
            return []
        if isinstance(provider, providers.TypedConfigurationOption):
            return []
        if isinstance(provider, providers.Selector):
            selector = provider.selector
            return [("selector", selector)] if providers.is_provider(selector) else []
        labels: dict[int, str] = {}
        if _has_injections(provider):
            for index, value in enumerate(provider.args):
                labels.setdefault(id(value), f"arg{index}")
            for key, value in provider.kwargs.items():
                labels.setdefault(id(value), str(key))
            for key, value in getattr(provider, "attributes", {}).items():
                labels.setdefault(id(value), str(key))
        overriding = {id(overrider) for overrider in provider.overridden}
        result: list[tuple[str, Any]] = []
        seen: set[int] = set()
        for index, related in enumerate(provider.related):
            if id(related) in overriding or id(related) in seen:
                continue
            seen.add(id(related))
            result.append((labels.get(id(related), f"dep{index}"), related))
        return result

    def _dependency_path(self, dependency: Any, label: str, *, owner: str, area: str) -> str:
        if isinstance(dependency, providers.TypedConfigurationOption):
            dependency = dependency.option  # `config.x.as_int()` reads option `config.x`
        if isinstance(dependency, providers.ConfigurationOption):
            return self._option_node(dependency)
        known = self._paths.get(id(dependency))
        if known is not None:
            return known
        # An inline provider (`Factory(A, b=Factory(B))`): named after where it is injected.
        path = f"{owner}.{label}"
        suffix = 2
        while path in self._nodes or path in self._paths.values():
            path = f"{owner}.{label}{suffix}"
            suffix += 1
        self._paths[id(dependency)] = path
        self._keep.append(dependency)
        self._add(dependency, path, owner=owner, area=area)
        return path

    def _option_node(self, option: Any) -> str:
        self._keep.append(option)
        # No public accessor for an option's Configuration in dependency-injector 4.49; the
        # option's own `get_name()` starts with the Configuration's name ("config"), which every
        # area shares, so it cannot tell the areas apart.
        root = option._get_root()
        root_path = self._config_path(self._paths.get(id(root), root.get_name()))
        segments = [
            "{" + _describe(segment, self._paths) + "}"
            if providers.is_provider(segment)
            else segment
            for segment in option.get_name_segments()
        ]
        path = ".".join([root_path, *map(str, segments)])
        if path not in self._nodes:
            root_node = self._nodes.get(root_path)
            self._nodes[path] = GraphNode(
                path=path,
                kind=CONFIGURATION_OPTION,
                area=root_node.area if root_node is not None else "",
                owner=root_path,
            )
        return path

    def _selector_state(self, selector: Any) -> SelectorState:
        branches = tuple(selector.providers)
        reads = selector.selector
        if isinstance(reads, providers.TypedConfigurationOption):
            reads = reads.option
        if isinstance(reads, providers.ConfigurationOption):
            setting = self._option_node(reads)
        else:
            setting = _describe(reads, self._paths) if reads is not None else "(no selector)"
        note: str | None = None
        value: Any = None
        readable = isinstance(
            reads, providers.ConfigurationOption | providers.Object
        ) and not isinstance(reads, providers.Configuration)
        if reads is None:
            note = "the Selector has no selector"
        elif not readable:
            # Anything but a config value could do work (a Callable), so it is not called.
            note = f"not evaluated: the selector is a {_kind(reads)}"
        else:
            try:
                value = selector.selector()  # a config lookup: no adapter is touched
            except Exception as exc:  # strict Configuration raises on an undefined option
                reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
                note = f"undefined ({reason})"
        selected = value if isinstance(value, str) and value in selector.providers else None
        if readable and note is None:
            if value is None:
                note = "undefined"
            elif selected is None:
                note = f"no branch named {value!r}"
        if selector.overridden:
            note = "overridden: the override is used, not the selected branch"
        return SelectorState(
            setting=setting,
            value=None if value is None else str(value),
            selected=selected,
            branches=branches,
            note=note,
        )

    def _overrides(
        self, provider: Any, path: str
    ) -> tuple[tuple[str, ...], str | None, str | None]:
        overriding = tuple(provider.overridden)
        if isinstance(provider, providers.Configuration):
            # A Configuration is loaded by being overridden (`from_dict` overrides it with an
            # Object, a nested one with the root's): that is its value, not a test override.
            return (), self._config_aliases.get(path), None
        if isinstance(provider, providers.Dependency):
            # The composition root supplies a Dependency by overriding it once
            # (`CoreContainer(settings=...)`); any further override is a test's.
            if overriding:
                supplied = _describe(overriding[0], self._paths)
                return tuple(_describe(p, self._paths) for p in overriding[1:]), None, supplied
            default = provider.default
            supplied = None if default is None else f"default {_describe(default, self._paths)}"
            return (), None, supplied
        return tuple(_describe(p, self._paths) for p in overriding), None, None


# --------------------------------------------------------------------------- rendering


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


def render_text(graph: ContainerGraph) -> str:
    """A tree: the root's providers, then one block per area.

    Each provider shows its kind and target; a Selector shows `setting = value -> branch`, then
    the selected branch and the alternatives; dependencies are indented under what injects them.
    """
    lines: list[str] = [f"{graph.name}" + (f" ({graph.target})" if graph.target else "")]
    for node in graph.children(None):
        if node.kind != "Container":
            _text_node(graph, node, depth=1, lines=lines)
    for node in graph.children(None):
        if node.kind == "Container":
            lines.append("")
            _text_node(graph, node, depth=0, lines=lines)
    return "\n".join(lines) + "\n"


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
        readers = graph.readers(node.path)
        read_by = f", read by {', '.join(readers)}" if readers else ""
        lines.append(f"{indent}{label}{read_by}")
        return
    head = f"{indent}{label}: {node.kind}"
    if node.selector is not None:
        head += f" {_selector_text(node.selector)}"
    elif node.target or node.builds:
        head += f" {_target_text(node)}"
    lines.append(head + _status_text(node))
    children = graph.children(node.path)
    branches = [child for child in children if child.branch is not None]
    selected = [b for b in branches if node.selector and b.branch == node.selector.selected]
    for branch in [*selected, *(b for b in branches if b not in selected)]:
        _text_node(graph, branch, depth + 1, lines)
    for dependency in node.dependencies:
        if node.selector is not None and dependency == node.selector.setting:
            continue  # already on the Selector's own line
        lines.append(f"{indent}    depends on {dependency}")
    for child in children:
        if child.branch is None:
            _text_node(graph, child, depth + 1, lines)


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


def _picture_label(node: GraphNode, graph: ContainerGraph) -> list[str]:
    """The lines a picture shows for a node: short names, so the boxes stay small."""
    title = node.branch if node.branch is not None else node.path
    lines = [title] if node.kind == CONFIGURATION_OPTION else [title, node.kind]
    if node.selector is not None:
        state = node.selector
        value = "undefined" if state.value is None else state.value
        lines.append(f"{state.setting} = {value}")
    elif node.target and node.kind != "Container":
        target = _short_name(node.target)
        if node.builds:
            target += " -> " + ", ".join(_short_name(name) for name in node.builds)
        lines.append(target)
    if node.bound_to is not None:
        lines.append(f"= {node.bound_to}")
    if node.overridden:
        lines.append("OVERRIDDEN")
    return lines


def _node_ids(graph: ContainerGraph, prefix: str) -> dict[str, str]:
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


def _branch_roles(graph: ContainerGraph) -> tuple[set[str], set[str]]:
    selected: set[str] = set()
    unselected: set[str] = set()
    for edge in graph.edges:
        if edge.relation == "branch":
            (selected if edge.selected else unselected).add(edge.target)
    return selected, unselected


def render_mermaid(graph: ContainerGraph) -> str:
    """A Mermaid `flowchart LR`: a subgraph per area, arrows from a provider to what it injects.

    The branch each Selector picks is drawn bold and highlighted; the other branches are dashed.
    Overridden providers are outlined in red.
    """
    ids = _node_ids(graph, "n_")
    lines = ["flowchart LR"]

    def emit(node: GraphNode, depth: int) -> None:
        indent = "  " * depth
        if node.kind == "Container":
            label = f"{node.path}: {_short_name(node.target)}" if node.target else node.path
            lines.append(f'{indent}subgraph {ids[node.path]}["{_mermaid_text(label)}"]')
            for child in _descendants_in_area(graph, node.path):
                emit(child, depth + 1)
            lines.append(f"{indent}end")
            return
        left, right = _MERMAID_SHAPES.get(node.kind, ("[", "]"))
        label = "<br/>".join(_mermaid_text(line) for line in _picture_label(node, graph))
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

    selected, unselected = _branch_roles(graph)
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


def _descendants_in_area(graph: ContainerGraph, container_path: str) -> list[GraphNode]:
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

    The branch each Selector picks is bold and green; the other branches are dashed.
    Overridden providers are outlined in red.
    """
    selected, unselected = _branch_roles(graph)
    lines = [
        f"digraph {_dot_text(graph.name)} {{",
        "  rankdir=LR;",
        '  node [shape=box, fontname="Helvetica", fontsize=10];',
        '  edge [fontname="Helvetica", fontsize=9];',
    ]

    def emit(node: GraphNode, depth: int) -> None:
        indent = "  " * depth
        if node.kind == "Container":
            label = f"{node.path}: {_short_name(node.target)}" if node.target else node.path
            lines.append(f"{indent}subgraph {_dot_text('cluster_' + node.path)} {{")
            lines.append(f"{indent}  label={_dot_text(label)};")
            for child in _descendants_in_area(graph, node.path):
                emit(child, depth + 1)
            lines.append(f"{indent}}}")
            return
        attributes = [
            f"label={_dot_label(_picture_label(node, graph))}",
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
    lines.append("}")
    return "\n".join(lines) + "\n"
