"""What `build_graph` returns: providers, edges, the adapters in use and who resolves what."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

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
        builds: For builder functions, the classes they construct, from the declared adapter
            table (`core.containers.graph.table`), e.g. `_sqlalchemy_database` builds
            `SqlAlchemyDatabase`; for a port chosen by name, the class that name selects.
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
class PortUse:
    """The adapter a port's provider really serves under the current settings and declarations.

    Attributes:
        provider: The provider's path, e.g. `auth.password_hasher`.
        port: The port it serves, e.g. `PasswordHasher`.
        setting: The environment variable that chooses the adapter (`AUTH_PASSWORD_HASHER`).
        value: The name chosen: the setting's value, or what `configure_auth` declared instead.
        adapter: The qualified class name of the adapter that value builds; None when nothing
            matches (see `note`).
        registered: Whether `value` names an adapter registered by user code (`register_*`).
        declared: Whether `configure_auth` chose the value rather than the setting.
        values: The effective values the adapter is built from, as (label, text) pairs, secrets
            and passwords masked.
        overridden_by: What overrides the provider (a test's fake); it serves instead.
        note: Why no adapter is known for the value.
    """

    provider: str
    port: str
    setting: str
    value: str | None
    adapter: str | None
    registered: bool = False
    declared: bool = False
    values: tuple[tuple[str, str], ...] = ()
    overridden_by: tuple[str, ...] = ()
    note: str | None = None


@dataclass(frozen=True, slots=True)
class ProviderUser:
    """Something of the project that resolves a provider when it runs.

    Attributes:
        kind: `viewset`, `consumer` or `task`.
        name: The ViewSet class (`PostViewSet`), the consumer class or the task's name.
        action: The ViewSet action (`list`) or the events a consumer handles; None for a task.
        detail: The action's route, the consumer's group and topics, or the task's queue.
        providers: The provider paths it resolves, in the order the framework resolves them.
    """

    kind: Literal["viewset", "consumer", "task"]
    name: str
    action: str | None
    detail: str
    providers: tuple[str, ...]

    @property
    def label(self) -> str:
        """`PostViewSet.list`, `consumer app.Notifier`, `task app.send_email`."""
        if self.kind == "viewset":
            return f"{self.name}.{self.action}"
        return f"{self.kind} {self.name}"


@dataclass(frozen=True, slots=True)
class ContainerGraph:
    """The providers of one container and the edges between them, in declaration order.

    Attributes:
        name: The container's class name, e.g. `CoreContainer`.
        target: The container's qualified class name.
        ports: The adapter each port in the declared adapter table serves (empty for a
            container that is not a CoreContainer).
        users: Who resolves which provider (filled when asked for: `build_graph(users=True)`).
    """

    name: str
    target: str | None
    nodes: tuple[GraphNode, ...]
    edges: tuple[GraphEdge, ...]
    ports: tuple[PortUse, ...] = ()
    users: tuple[ProviderUser, ...] = ()
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

    def port(self, provider: str) -> PortUse:
        """The adapter in use for the port served by `provider` (`auth.password_hasher`).

        Raises:
            KeyError: `provider` serves no port of the adapter table.
        """
        for use in self.ports:
            if use.provider == provider:
                return use
        raise KeyError(provider)

    def users_of(self, provider: str, *, through: bool = False) -> tuple[ProviderUser, ...]:
        """The ViewSets, consumers and tasks that resolve `provider`.

        Args:
            provider: A provider's path.
            through: Also those that resolve it through another provider (every route resolves
                `auth.authenticator`, which injects `auth.token_backend`).
        """
        wanted = set(self.resolvers(provider)) if through else {provider}
        return tuple(user for user in self.users if wanted.intersection(user.providers))

    def resolvers(self, path: str) -> tuple[str, ...]:
        """`path` and every provider whose resolution resolves it: what injects it, the
        Selector whose selected branch it is, the Dependency it supplies, and so on up."""
        found = [path]
        index = 0
        while index < len(found):
            current = found[index]
            index += 1
            for edge in self.edges:
                uses = edge.relation == "depends" or (edge.relation == "branch" and edge.selected)
                if uses and edge.target == current and edge.source not in found:
                    found.append(edge.source)
            for node in self.nodes:
                if node.supplied_by == current and node.path not in found:
                    found.append(node.path)
        return tuple(found)
