"""Walking a container: one node per provider, in declaration order, keyed by identity, and an
edge from each provider to what it injects. Reads declarations and configuration values only.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from dependency_injector import providers

from core.containers.graph.describe import (
    builds,
    children_of,
    container_class_name,
    describe,
    has_injections,
    kind,
    target,
)
from core.containers.graph.model import (
    CONFIGURATION_OPTION,
    ContainerGraph,
    GraphEdge,
    GraphNode,
    SelectorState,
)
from core.containers.graph.ports import resolve_ports
from core.containers.graph.users import find_users
from core.declarations import Declarations
from core.declarations import declarations as process_declarations

__all__ = ("build_graph",)


def build_graph(container: Any, *, app: Any | None = None, users: bool = False) -> ContainerGraph:
    """Describe a container's providers, the adapter each port serves, and their dependencies.

    Reads the container's declarations of providers, its configuration values and its
    `Declarations` (the `configure_auth` declaration, the adapters registered with
    `register_*`, the consumers and tasks); it calls no other provider, so nothing is
    instantiated, connected or initialised.

    Args:
        container: A container instance (`build_container(settings)`, `app.container`) or a
            declarative container class.
        app: The CoreApp the container serves, whose AutoRouters list the ViewSets.
        users: Also find who resolves each provider: the app's ViewSet actions, the declared
            consumers and tasks.

    Returns:
        The graph, deterministic: declaration order throughout.

    Example:
        >>> from core.containers import build_container
        >>> from core.settings import Settings
        >>> graph = build_graph(build_container(Settings(database_url="memory://")))
        >>> graph.node("database.database").selector.selected
        'memory'
        >>> graph.port("database.database").adapter
        'core.adapters.memory.database.InMemoryDatabase'
    """
    # The adapter table describes CoreContainer (and subclasses, as an enterprise app's root);
    # another container's providers may share a path but not what they build.
    is_core = _is_core(container)
    graph = _GraphBuilder(use_table=is_core).build(container)
    config = _config_values(container) if is_core else {}
    declarations = _declarations(container)
    ports = resolve_ports(config, {node.path: node for node in graph.nodes}, declarations)
    # A port chosen by name (no Selector, e.g. a registered hasher) builds what the name picks.
    chosen = {use.provider: use.adapter for use in ports if use.adapter is not None}
    nodes = tuple(
        replace(node, builds=(chosen[node.path],))
        if node.path in chosen and node.kind != "Selector"
        else node
        for node in graph.nodes
    )
    return ContainerGraph(
        name=graph.name,
        target=graph.target,
        nodes=nodes,
        edges=graph.edges,
        ports=ports,
        users=find_users(app, config, declarations) if users else (),
    )


def _is_core(container: Any) -> bool:
    from core.containers.core import CoreContainer

    cls = getattr(container, "declarative_parent", None) or container
    return isinstance(cls, type) and issubclass(cls, CoreContainer)


def _declarations(container: Any) -> Declarations:
    # The container's own, which the root was given (`build_container(declarations=...)`);
    # the process's for a container given none.
    provider = getattr(container, "providers", {}).get("declarations")
    if isinstance(provider, providers.Dependency) and provider.overridden:
        given = provider()  # the object the root was given: nothing is built
        if isinstance(given, Declarations):
            return given
    return process_declarations()


def _config_values(container: Any) -> dict[str, Any]:
    config = getattr(container, "providers", {}).get("config")
    if isinstance(container, type) or not isinstance(config, providers.Configuration):
        return {}
    try:
        values = config()  # the configuration's dict: no adapter is touched
    except Exception:  # an undefined strict option; the Selectors report it themselves
        return {}
    return dict(values) if isinstance(values, Mapping) else {}


class _GraphBuilder:
    """Walks the declared providers in declaration order, keyed by identity.

    `container.traverse()` would find the same providers, but it visits them in set order, so
    the output would change from run to run; `.related` (in order) gives the edges instead.
    """

    def __init__(self, *, use_table: bool) -> None:
        self._use_table = use_table
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
        cls_name = container_class_name(container)
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
                self._name(children_of(provider), prefix=f"{path}.", area=node_area)
            elif isinstance(provider, providers.DependenciesContainer):
                self._name(provider.providers, prefix=f"{path}.", area=node_area)

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
                    children_of(provider), prefix=f"{path}.", owner=path, area=node_area
                )
            elif isinstance(provider, providers.DependenciesContainer):
                # What an area needs from another, each a Dependency the root supplies.
                self._add_declared(
                    provider.providers, prefix=f"{path}.", owner=path, area=node_area
                )

    def _add(
        self, provider: Any, path: str, *, owner: str | None, area: str, branch: str | None = None
    ) -> None:
        if path in self._nodes:
            return
        # Reserve the path first: a cycle through inline providers must not recurse forever.
        self._nodes[path] = GraphNode(path=path, kind=kind(provider), area=area, owner=owner)
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
            kind=kind(provider),
            area=area,
            owner=owner,
            target=target(provider),
            builds=builds(provider, path, self._use_table),
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
            providers.Configuration
            | providers.ConfigurationOption
            | providers.Container
            | providers.DependenciesContainer,
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
        if has_injections(provider):
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
            "{" + describe(segment, self._paths) + "}"
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
            setting = describe(reads, self._paths) if reads is not None else "(no selector)"
        note: str | None = None
        value: Any = None
        readable = isinstance(
            reads, providers.ConfigurationOption | providers.Object
        ) and not isinstance(reads, providers.Configuration)
        if reads is None:
            note = "the Selector has no selector"
        elif not readable:
            # Anything but a config value could do work (a Callable), so it is not called.
            note = f"not evaluated: the selector is a {kind(reads)}"
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
        if isinstance(provider, providers.Dependency | providers.DependenciesContainer):
            # The composition root supplies a Dependency by overriding it
            # (`CoreContainer(settings=...)`, `providers.Container(Area, database=database)`,
            # which may apply the same provider more than once); any other override is a test's.
            if overriding:
                supplier = overriding[0]
                supplied = describe(supplier, self._paths)
                others = [p for p in overriding[1:] if p is not supplier]
                return tuple(describe(p, self._paths) for p in others), None, supplied
            default = provider.default
            supplied = None if default is None else f"default {describe(default, self._paths)}"
            return (), None, supplied
        return tuple(describe(p, self._paths) for p in overriding), None, None
