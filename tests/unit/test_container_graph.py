"""`build_graph` and its renderers, and the `core container graph` command."""

from __future__ import annotations

import hashlib
import hmac
import importlib
import re
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cyclopts import CycloptsError
from dependency_injector import containers, providers
from sqlalchemy.orm import Mapped

from core import AutoRouter, CoreApp, Field, Model, ModelViewSet, action
from core.auth.registry import register_password_hasher, register_token_backend
from core.cli.container import container_app
from core.containers import CoreContainer, build_container
from core.containers.graph import (
    ContainerGraph,
    build_graph,
    render_dot,
    render_mermaid,
    render_text,
)
from core.containers.graph.table import ADAPTERS, BUILDERS
from core.errors import ConfigurationError
from core.ports.hashing import PasswordHasher
from core.ports.tokens import TokenBackend
from core.settings import Settings
from core.testing import isolated_declarations

AREAS = ("database", "metrics", "auth", "messaging", "tasks", "throttling", "idempotency")
SQLITE_URL = "sqlite+aiosqlite:///./never-created.db"


def settings(**values: Any) -> Settings:
    return Settings(_env_file=None, **values)


def memory_container() -> CoreContainer:
    return build_container(settings(database_url="memory://"))


class FakeRepository:
    """Stands in for the repository a test swaps in."""


def test_memory_url_selects_the_memory_database_and_lists_sqlalchemy_as_alternative() -> None:
    graph = build_graph(memory_container())

    node = graph.node("database.database")
    assert node.kind == "Selector"
    assert node.selector is not None
    assert node.selector.setting == "config.database_backend"
    assert (node.selector.value, node.selector.selected) == ("memory", "memory")
    assert node.selector.alternatives == ("sqlalchemy",)
    text = render_text(graph)
    assert "database.database: Selector config.database_backend = memory -> memory" in text
    assert "memory (selected): Singleton core.adapters.memory.database.InMemoryDatabase" in text
    assert "sqlalchemy (alternative): Singleton" in text


def test_sqlite_url_selects_sqlalchemy() -> None:
    graph = build_graph(build_container(settings(database_url=SQLITE_URL)))

    for path in ("database.database", "database.repository"):
        state = graph.node(path).selector
        assert state is not None
        assert (state.value, state.selected, state.alternatives) == (
            "sqlalchemy",
            "sqlalchemy",
            ("memory",),
        )
    text = render_text(graph)
    assert "database.database: Selector config.database_backend = sqlalchemy -> sqlalchemy" in text
    assert "memory (alternative): Singleton" in text


POSTGRES_URL = "postgresql+asyncpg://shop:s3cret-pw@db.internal:5433/shop_prod"


class CustomHasher(PasswordHasher):
    """The spec's custom hasher: stores `custom_sha512$...` hashes."""

    name = "custom_sha512"
    rounds = 1

    def hash(self, password: str) -> str:
        return "custom_sha512$" + hashlib.sha512(password.encode()).hexdigest()

    def verify(self, password: str, hashed: str) -> bool:
        return hmac.compare_digest(self.hash(password), hashed)


class CustomTokens(TokenBackend):
    """A registered token backend (its tokens are never used here)."""

    name = "custom_tokens"

    def create_token(
        self, payload: dict[str, Any], token_type: str = "access", expires_delta: Any = None
    ) -> str:
        return f"{token_type}:{payload['sub']}"

    def decode_token(self, token: str) -> dict[str, Any] | None:
        kind, _, sub = token.partition(":")
        return {"sub": sub, "type": kind} if sub else None

    def verify_token(self, token: str, token_type: str = "access") -> dict[str, Any] | None:
        payload = self.decode_token(token)
        return payload if payload is not None and payload["type"] == token_type else None


@pytest.fixture
def registries() -> Iterator[None]:
    with isolated_declarations():
        yield


def everything(graph: ContainerGraph) -> str:
    return render_text(graph) + render_mermaid(graph) + render_dot(graph)


def test_default_project_names_the_adapters_it_really_uses() -> None:
    container = build_container(settings())

    graph = build_graph(container)

    uses = {use.provider: use.adapter for use in graph.ports}
    assert uses == {
        "database.database": "core.adapters.sqlalchemy.database.SqlAlchemyDatabase",
        "database.repository": "core.adapters.sqlalchemy.repository.SqlAlchemyRepository",
        "auth.password_hasher": "core.adapters.passlib.hashers.PasslibPasswordHasher",
        "auth.token_backend": "core.adapters.jwt.tokens.JwtTokenBackend",
        "auth.token_store": "core.adapters.memory.tokens.InMemoryTokenStore",
        "throttling.rate_limiter": "core.adapters.memory.ratelimit.InMemoryRateLimiter",
        "messaging.broker": "core.adapters.memory.broker.InMemoryEventBroker",
        "tasks.queue": "core.adapters.memory.tasks.InMemoryTaskQueue",
        "metrics.recorder": "core.ports.metrics.NullMetrics",
        "idempotency.store": "core.adapters.sqlalchemy.idempotency.SqlAlchemyIdempotencyStore",
    }
    # What the graph names is what the container builds.
    for path in ("database.database", "auth.password_hasher", "auth.token_backend"):
        assert _qualified(_provider_at(container, path)()) == uses[path]
    for path in ("auth.token_store", "messaging.broker", "tasks.queue"):
        assert _qualified(_provider_at(container, path)()) == uses[path]
    text = render_text(graph)
    assert (
        "database.database: Database DATABASE_URL backend=sqlalchemy -> "
        "core.adapters.sqlalchemy.database.SqlAlchemyDatabase" in text
    )
    assert "dialect=sqlite+aiosqlite, database=./app.db" in text
    assert (
        "auth.password_hasher: PasswordHasher AUTH_PASSWORD_HASHER=pbkdf2_sha256 -> "
        "core.adapters.passlib.hashers.PasslibPasswordHasher" in text
    )
    assert "scheme=pbkdf2_sha256, rounds=600000" in text
    assert "SECRET_KEY=***, AUTH_ALGORITHM=HS256" in text
    assert "MESSAGE_BROKER=memory -> core.adapters.memory.broker.InMemoryEventBroker" in text
    assert "AUTH_TOKEN_STORE=memory -> core.adapters.memory.tokens.InMemoryTokenStore" in text
    assert "TASK_BROKER=memory -> core.adapters.memory.tasks.InMemoryTaskQueue" in text
    for picture in (render_mermaid(graph), render_dot(graph)):
        for adapter in ("SqlAlchemyDatabase", "PasslibPasswordHasher", "InMemoryEventBroker"):
            assert f"uses {adapter}" in picture


def test_text_groups_the_settings_by_area_instead_of_a_line_per_option() -> None:
    text = render_text(build_graph(memory_container()))

    assert "config.database_url" not in text
    assert re.search(r"^    \d+ options read, by area:$", text, re.MULTILINE)
    assert re.search(r"^      database: database_url, database_echo,", text, re.MULTILINE)
    # The outbox reads the database backend too (it tracks uncommitted rows in memory).
    assert re.search(r"^      shared: database_backend, redis_url$", text, re.MULTILINE)
    assert len(text.splitlines()) < 270  # a few lines per provider, not one per option


def test_postgresql_and_argon2_show_their_effective_values_with_the_password_masked() -> None:
    container = build_container(
        settings(
            database_url=POSTGRES_URL,
            auth_password_hasher="argon2",
            message_broker="redis",
            redis_url="redis://:cache-pw@cache.internal:6380/2",
            task_broker="redis",
            auth_token_store="redis",
        )
    )

    graph = build_graph(container)

    database = graph.port("database.database")
    assert database.adapter == "core.adapters.sqlalchemy.database.SqlAlchemyDatabase"
    assert dict(database.values)["dialect"] == "postgresql+asyncpg"
    assert dict(database.values)["host"] == "db.internal:5433"
    assert dict(database.values)["database"] == "shop_prod"
    hasher = graph.port("auth.password_hasher")
    assert (hasher.value, hasher.adapter) == (
        "argon2",
        "core.adapters.passlib.hashers.PasslibPasswordHasher",
    )
    assert dict(hasher.values)["scheme"] == "argon2"
    assert dict(hasher.values)["rounds"] == "3"
    assert repr(_provider_at(container, "auth.password_hasher")()) == (
        "PasslibPasswordHasher('argon2')"
    )
    assert graph.port("messaging.broker").adapter == (
        "core.adapters.faststream.redis.RedisEventBroker"
    )
    assert graph.port("tasks.queue").adapter == "core.adapters.taskiq.queue.TaskiqTaskQueue"
    assert graph.port("auth.token_store").adapter == "core.adapters.redis.tokens.RedisTokenStore"
    text = render_text(graph)
    assert "dialect=postgresql+asyncpg, host=db.internal:5433, database=shop_prod" in text
    assert "DATABASE_URL=postgresql+asyncpg://shop:***@db.internal:5433/shop_prod" in text
    assert "scheme=argon2, type=ID, rounds=3, memory_cost=65536" in text
    assert "MESSAGE_BROKER=redis -> core.adapters.faststream.redis.RedisEventBroker" in text
    assert "REDIS_URL=redis://:***@cache.internal:6380/2" in text
    assert "TASK_BROKER=redis -> core.adapters.taskiq.queue.TaskiqTaskQueue" in text
    # No secret in any form; and SQLite and PostgreSQL no longer draw the same graph.
    for secret in ("s3cret-pw", "cache-pw", "change-me-insecure"):
        assert secret not in everything(graph)
    assert render_text(graph) != render_text(build_graph(build_container(settings())))


def test_registered_hasher_and_token_backend_are_named_by_name_and_class(
    registries: None,
) -> None:
    register_password_hasher(CustomHasher())
    register_token_backend(CustomTokens())
    container = build_container(
        settings(auth_password_hasher="custom_sha512", auth_token_backend="custom_tokens")
    )

    graph = build_graph(container)

    hasher = graph.port("auth.password_hasher")
    assert (hasher.value, hasher.registered) == ("custom_sha512", True)
    assert hasher.adapter == f"{__name__}.CustomHasher"
    assert isinstance(_provider_at(container, "auth.password_hasher")(), CustomHasher)
    tokens = graph.port("auth.token_backend")
    assert (tokens.value, tokens.registered) == ("custom_tokens", True)
    assert tokens.adapter == f"{__name__}.CustomTokens"
    assert graph.node("auth.password_hasher").builds == (f"{__name__}.CustomHasher",)
    assert graph.node("auth.token_backend").builds == (f"{__name__}.CustomTokens",)
    text = render_text(graph)
    assert (
        "auth.password_hasher: PasswordHasher AUTH_PASSWORD_HASHER=custom_sha512 (registered) "
        f"-> {__name__}.CustomHasher" in text
    )
    assert (
        "auth.token_backend: TokenBackend AUTH_TOKEN_BACKEND=custom_tokens (registered) "
        f"-> {__name__}.CustomTokens" in text
    )
    assert "name=custom_sha512, rounds=1" in text
    assert "PasslibPasswordHasher" not in text
    assert "JwtTokenBackend" not in text
    for picture in (render_mermaid(graph), render_dot(graph)):
        assert "uses CustomHasher" in picture and "uses CustomTokens" in picture
        assert "PasslibPasswordHasher" not in picture


def test_the_graph_reads_the_declarations_its_container_was_given(registries: None) -> None:
    from core.declarations import Declarations

    own = Declarations()
    own.password_hashers["custom_sha512"] = CustomHasher()
    container = build_container(settings(auth_password_hasher="custom_sha512"), declarations=own)

    hasher = build_graph(container).port("auth.password_hasher")

    # Registered in that app's declarations only, not the process's: still named.
    assert (hasher.adapter, hasher.registered) == (f"{__name__}.CustomHasher", True)
    assert isinstance(container.auth.password_hasher(), CustomHasher)


def test_configure_auth_wins_over_the_setting_and_says_so(registries: None) -> None:
    from core.auth import configure_auth

    configure_auth(password_hasher="bcrypt")
    container = build_container(settings(auth_password_hasher="argon2"))

    hasher = build_graph(container).port("auth.password_hasher")

    assert (hasher.value, hasher.declared) == ("bcrypt", True)
    assert dict(hasher.values)["scheme"] == "bcrypt_sha256"
    assert "AUTH_PASSWORD_HASHER=bcrypt (by configure_auth)" in render_text(build_graph(container))


def test_an_unknown_hasher_name_is_reported_not_raised(registries: None) -> None:
    container = build_container(settings(auth_password_hasher="nope"))

    hasher = build_graph(container).port("auth.password_hasher")

    assert hasher.adapter is None
    assert hasher.note is not None and "Unknown AUTH_PASSWORD_HASHER 'nope'" in hasher.note
    assert "-> (nothing)" in render_text(build_graph(container))


def test_an_overridden_port_is_marked_in_the_adapters_in_use() -> None:
    container = memory_container()

    with container.auth.password_hasher.override(CustomHasher()):
        graph = build_graph(container)

    assert graph.port("auth.password_hasher").overridden_by == (
        f"Object({__name__}.CustomHasher instance)",
    )
    assert f"OVERRIDDEN by Object({__name__}.CustomHasher instance): the override serves" in (
        render_text(graph)
    )


def test_the_adapter_table_matches_the_containers() -> None:
    graph = build_graph(memory_container())
    entries = {entry.provider: entry for entry in ADAPTERS}

    for node in graph.nodes:
        if node.kind == "Selector" and node.path in entries:
            entry = entries[node.path]
            # One table entry per branch, and each adapter reads exactly the settings listed.
            assert node.selector is not None
            assert set(node.selector.branches) == set(entry.adapters), node.path
            assert node.selector.setting == f"config.{entry.setting}"
            for value, adapter in entry.adapters.items():
                read = _config_read(graph, f"{node.path}.{value}")
                assert read == set(adapter.settings), f"{node.path}.{value}"
        elif node.path in entries:
            entry = entries[node.path]
            for adapter in entry.adapters.values():
                assert _config_read(graph, node.path) == {entry.setting, *adapter.settings}
    # Every provider built by a function says what it builds; every class named exists.
    for node in graph.nodes:
        if node.target and "._" in node.target and node.kind in ("Singleton", "Factory"):
            assert node.builds, f"{node.path} ({node.target}) is missing from the table"
    for path in [entry.provider for entry in ADAPTERS] + list(BUILDERS):
        assert path in graph
    for name in [a.cls for e in ADAPTERS for a in e.adapters.values()] + list(BUILDERS.values()):
        module, _, attribute = name.rpartition(".")
        assert isinstance(getattr(importlib.import_module(module), attribute), type), name


class GraphNote(Model):
    __tablename__ = "graph_users_notes"

    id: Mapped[int] = Field.pk()
    text: Mapped[str] = Field.text()


class NoteViewSet(ModelViewSet):
    model = GraphNote

    @action(methods=["POST"], detail=True)
    async def pin(self, request: Any, db: Any, **kwargs: Any) -> Any:
        return {"pinned": True}


@pytest.fixture
def declarations() -> Iterator[None]:
    """Only the consumers and tasks a test declares are there, and are forgotten after it."""
    with isolated_declarations(empty=True):
        yield


def users_app(registries: None, declarations: None) -> CoreApp:
    from core.auth.views import AuthViewSet
    from core.messaging import consumer, on_event
    from core.tasks import task

    @consumer("graph-users-group", topics=["graph-users-notes"])
    class NoteCounter:
        @on_event("note.created")
        async def count(self, event: Any) -> None: ...

    @task(name="graph_users.reindex", queue="search")
    async def reindex(note_id: int) -> None: ...

    notes = AutoRouter(prefix="/notes")
    notes.register("", NoteViewSet)
    auth = AutoRouter(prefix="/auth")
    auth.register("", AuthViewSet, basename="auth")
    return CoreApp(settings=settings(database_url="memory://"), routers=[notes, auth])


def test_users_are_the_viewset_actions_consumers_and_tasks_resolving_each_provider(
    registries: None, declarations: None
) -> None:
    app = users_app(registries, declarations)

    graph = build_graph(app.container, app=app, users=True)

    def users(provider: str) -> set[str]:
        return {user.label for user in graph.users_of(provider)}

    crud = {f"NoteViewSet.{a}" for a in ("list", "create", "retrieve", "update", "destroy")}
    assert crud | {"NoteViewSet.pin", "consumer " + _name("NoteCounter")} <= users(
        "database.database"
    )
    assert "task graph_users.reindex" in users("database.database")
    assert crud <= users("database.repository")
    # A handler the project wrote is not claimed to use the repository: only what the
    # framework resolves around it (unit of work, user) is known.
    assert "NoteViewSet.pin" not in users("database.repository")
    assert "NoteViewSet.pin" in users("auth.authenticator")
    # Other tests' modules may have declared consumers and tasks of their own.
    assert "task graph_users.reindex" in users("tasks.queue")
    assert not {u for u in users("tasks.queue") if u.startswith("NoteViewSet")}
    assert "consumer " + _name("NoteCounter") in users("messaging.broker")
    assert "task graph_users.reindex" not in users("messaging.broker")
    assert {"AuthViewSet.register", "AuthViewSet.login"} <= users("auth.password_hasher")
    assert {"AuthViewSet.refresh", "AuthViewSet.logout"} <= users("auth.refresh_tokens")
    # Through another provider: every route's authenticator injects the token backend.
    assert "NoteViewSet.list" not in users("auth.token_backend")
    through = {user.label for user in graph.users_of("auth.token_backend", through=True)}
    assert crud | {"NoteViewSet.pin", "AuthViewSet.refresh"} <= through
    assert "auth.authenticator" in graph.resolvers("auth.token_backend")
    pin = next(user for user in graph.users if user.label == "NoteViewSet.pin")
    assert pin.detail == "POST /notes/{id}/pin (its own code may resolve more)"
    text = " ".join(render_text(graph).split("Used by:")[1].split())
    assert (
        "database.repository: NoteViewSet (list, create, retrieve, update, partial_update, "
        "destroy), AuthViewSet (register, login) auth." in text
    )
    assert "database.database: NoteViewSet (list, create, retrieve, update, partial_update, " in (
        text
    )
    assert "destroy, pin*)" in text
    assert re.search(r"tasks\.queue: (task [\w.]+, )*task graph_users\.reindex", text)
    # The authenticator reaches the token backend directly and through refresh_tokens (which
    # checks revocations): either may be listed first.
    assert re.search(
        r"auth\.token_backend \(through auth\.(authenticator|refresh_tokens), "
        r"auth\.(authenticator|refresh_tokens)\): NoteViewSet \(list,",
        text,
    )
    assert text.endswith("* a handler of the project's own: its own code may resolve more")
    mermaid, dot = render_mermaid(graph), render_dot(graph)
    assert 'subgraph users["users"]' in mermaid and '"NoteViewSet (list, create,' in mermaid
    assert re.search(r"u_\d+ -.-> n_tasks_queue", mermaid)
    assert '"task:graph_users.reindex" -> "tasks.queue" [style=dotted];' in dot
    # Without asking, no users are looked for.
    assert build_graph(app.container, app=app).users == ()


def test_users_of_the_rate_limiter_follow_the_default_throttles(
    registries: None, declarations: None
) -> None:
    app = users_app(registries, declarations)
    throttled = CoreApp(
        settings=settings(database_url="memory://", throttle_default_classes="anon"),
        routers=app._routers,
    )

    def limiter_users(application: CoreApp) -> set[str]:
        graph = build_graph(application.container, app=application, users=True)
        return {user.label for user in graph.users_of("throttling.rate_limiter")}

    # AuthViewSet throttles login, register and refresh itself; other views only by default.
    assert limiter_users(app) == {
        "AuthViewSet.login",
        "AuthViewSet.register",
        "AuthViewSet.refresh",
    }
    assert {"NoteViewSet.list", "NoteViewSet.pin", "AuthViewSet.me"} <= limiter_users(throttled)


def _name(cls_name: str) -> str:
    return f"{__name__}.users_app.<locals>.{cls_name}"


def _config_read(graph: ContainerGraph, path: str) -> set[str]:
    return {
        dependency.removeprefix("config.")
        for dependency in graph.node(path).dependencies
        if dependency.startswith("config.")
    }


def _qualified(obj: object) -> str:
    return f"{type(obj).__module__}.{type(obj).__qualname__}"


def test_builder_functions_show_the_adapter_class_they_build() -> None:
    node = build_graph(memory_container()).node("database.database.sqlalchemy")

    assert node.kind == "Singleton"
    assert node.target == "core.containers.database._sqlalchemy_database"
    assert node.builds == ("core.adapters.sqlalchemy.database.SqlAlchemyDatabase",)


def test_edges_run_from_a_provider_to_what_it_injects_config_options_included() -> None:
    graph = build_graph(memory_container())

    assert graph.node("database.lifecycle").dependencies == ("database.database",)
    assert "config.database_url" in graph.node("database.database.sqlalchemy").dependencies
    assert graph.node("config.database_backend").kind == "Configuration option"
    assert set(graph.readers("config.database_backend")) == {
        "database.database",
        "database.repository",
        "messaging.outbox",  # tracks uncommitted rows on the in-memory database
    }
    branch_edges = {
        (edge.target, edge.selected) for edge in graph.edges if edge.source == "database.database"
    }
    assert ("database.database.memory", True) in branch_edges
    assert ("database.database.sqlalchemy", False) in branch_edges


def test_every_area_is_a_container_node_of_the_root() -> None:
    graph = build_graph(memory_container())

    assert graph.name == "CoreContainer"
    assert graph.areas == AREAS
    for area in AREAS:
        assert graph.node(area).kind == "Container"
        # Each area's Configuration is fed by the root's, which is wiring, not an override.
        config = graph.node(f"{area}.config")
        assert (config.bound_to, config.overridden) == ("config", False)


def test_an_override_shows_as_overridden_and_goes_away_with_it() -> None:
    container = memory_container()

    with container.database.repository.override(FakeRepository()):
        graph = build_graph(container)
        node = graph.node("database.repository")
        assert node.overridden
        assert node.overridden_by == (f"Object({__name__}.FakeRepository instance)",)
        assert node.selector is not None and node.selector.note is not None
        assert "OVERRIDDEN by Object(" in render_text(graph)
        assert re.search(
            r"class [\w,]*\bn_database_repository\b[\w,]* overridden", render_mermaid(graph)
        )

    assert not build_graph(container).node("database.repository").overridden


def test_the_supplied_settings_are_not_an_override_but_a_second_supply_is() -> None:
    container = memory_container()
    assert not build_graph(container).node("settings").overridden
    assert build_graph(container).node("settings").supplied_by is not None

    with container.settings.override(settings(database_url="memory://")):
        assert build_graph(container).node("settings").overridden


def test_building_the_graph_calls_no_provider() -> None:
    container = build_container(settings(database_url=SQLITE_URL))
    calls: list[str] = []
    # dependency-injector has no public "is this Singleton built?" check, so every provider
    # that could build or start something is overridden by one that records being called.
    builders = ("Singleton", "Factory", "Callable", "Coroutine", "Resource")
    paths = [node.path for node in build_graph(container).nodes if node.kind in builders]
    assert "database.database.sqlalchemy" in paths and "database.lifecycle" in paths
    for path in paths:
        provider = _provider_at(container, path)
        provider.override(providers.Callable(calls.append, path))

    graph = build_graph(container)

    assert calls == []
    state = graph.node("database.database").selector
    assert state is not None and state.selected == "sqlalchemy"
    for resource in container.traverse(types=[providers.Resource]):
        assert not resource.initialized


def test_a_value_without_a_branch_or_undefined_is_reported_not_raised() -> None:
    class Area(containers.DeclarativeContainer):
        config = providers.Configuration(strict=True)
        broker = providers.Selector(config.broker, memory=providers.Singleton(object))
        queue = providers.Selector(config.queue, memory=providers.Singleton(object))

    area = Area()
    area.config.from_dict({"broker": "kafka"})

    graph = build_graph(area)

    broker = graph.node("broker").selector
    assert broker is not None
    assert (broker.value, broker.selected, broker.note) == (
        "kafka",
        None,
        "no branch named 'kafka'",
    )
    assert "config.broker = kafka -> (nothing); no branch named 'kafka'" in render_text(graph)
    queue = graph.node("queue").selector
    assert queue is not None and queue.value is None and queue.selected is None
    assert queue.note is not None and queue.note.startswith("undefined")


def test_what_an_area_declares_it_needs_is_supplied_by_the_root_not_overridden() -> None:
    class Declared:
        """Stands in for what the root gives every area."""

    class Storage(containers.DeclarativeContainer):
        store = providers.Singleton(dict)

    class Consumer(containers.DeclarativeContainer):
        storage = providers.DependenciesContainer()
        declared = providers.Dependency(instance_of=Declared)
        service = providers.Factory(list, storage.store)

    class Root(containers.DeclarativeContainer):
        declared = providers.Dependency(instance_of=Declared)
        storage = providers.Container(Storage)
        consumer = providers.Container(Consumer, storage=storage, declared=declared)

    root = Root(declared=Declared())

    graph = build_graph(root)

    needs = graph.node("consumer.storage")
    assert (needs.kind, needs.supplied_by, needs.overridden) == (
        "DependenciesContainer",
        "storage",
        False,
    )
    assert graph.node("consumer.storage.store").supplied_by == "storage.store"
    assert graph.node("consumer.service").dependencies == ("consumer.storage.store",)
    declared = graph.node("consumer.declared")
    assert (declared.supplied_by, declared.overridden) == ("declared", False)
    # Not a CoreContainer: no adapter table applies.
    assert graph.ports == ()
    with root.consumer.declared.override(providers.Object(Declared())):
        assert build_graph(root).node("consumer.declared").overridden


def test_inline_providers_are_named_after_where_they_are_injected() -> None:
    class Area(containers.DeclarativeContainer):
        service: providers.Factory[dict[str, Any]] = providers.Factory(
            dict, inner=providers.Factory(list)
        )

    graph = build_graph(Area())

    assert graph.node("service").dependencies == ("service.inner",)
    inner = graph.node("service.inner")
    assert (inner.kind, inner.target, inner.owner) == ("Factory", "list", "service")


def test_output_is_deterministic() -> None:
    first = build_graph(memory_container())
    second = build_graph(memory_container())

    for render in (render_text, render_mermaid, render_dot):
        assert render(first) == render(second)


def test_mermaid_is_a_flowchart_with_a_subgraph_per_area() -> None:
    mermaid = render_mermaid(build_graph(memory_container()))

    assert mermaid.startswith("flowchart LR\n")
    for area in AREAS:
        assert re.search(rf'^  subgraph n_{area}\["{area}: ', mermaid, re.MULTILINE)
    assert mermaid.count("subgraph") == mermaid.count("\n  end") + mermaid.count("\n    end")
    # The selected branch is a thick arrow and highlighted, the alternative a dashed one.
    assert 'n_database_database ==>|"memory"| n_database_database_memory' in mermaid
    assert 'n_database_database -.->|"sqlalchemy"| n_database_database_sqlalchemy' in mermaid
    assert re.search(r"class [\w,]*\bn_database_database_memory\b[\w,]* selected", mermaid)
    assert re.search(r"class [\w,]*\bn_database_database_sqlalchemy\b[\w,]* unselected", mermaid)


def test_dot_is_a_digraph_with_a_cluster_per_area() -> None:
    graph = build_graph(memory_container())
    dot = render_dot(graph)

    assert dot.startswith('digraph "CoreContainer" {\n')
    assert dot.rstrip().endswith("}")
    assert dot.count("{") == dot.count("}")
    for area in AREAS:
        assert f'subgraph "cluster_{area}" {{' in dot
    declared = set(re.findall(r'^\s*"([^"]+)" \[label=', dot, re.MULTILINE))
    edges = re.findall(r'^\s*"([^"]+)" -> "([^"]+)"', dot, re.MULTILINE)
    assert declared == {node.path for node in graph.nodes if node.kind != "Container"}
    assert edges and all(source in declared and target in declared for source, target in edges)
    assert len(edges) == len(graph.edges)
    selected = re.search(r'"database\.database" -> "database\.database\.memory" \[([^\]]*)\]', dot)
    assert selected is not None and "style=bold" in selected.group(1)
    unselected = re.search(
        r'"database\.database" -> "database\.database\.sqlalchemy" \[([^\]]*)\]', dot
    )
    assert unselected is not None and "style=dashed" in unselected.group(1)


# --------------------------------------------------------------------------- the command


@pytest.fixture
def project(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Path]:
    """An empty project directory as the cwd, with every backend in memory and no app module."""
    monkeypatch.chdir(tmp_path)
    # The command puts the cwd on sys.path, as the console script must; undo it afterwards.
    monkeypatch.setattr(sys, "path", [*sys.path])
    monkeypatch.setenv("APP_MODULE", f"no_such_project_{uuid.uuid4().hex}:app")
    monkeypatch.setenv("DATABASE_URL", "memory://")
    monkeypatch.setenv("MESSAGE_BROKER", "memory")
    monkeypatch.setenv("TASK_BROKER", "memory")
    monkeypatch.setenv("ENVIRONMENT", "test")
    before = set(sys.modules)
    yield tmp_path
    for name in set(sys.modules) - before:
        if name.startswith("graph_cli_app_"):
            del sys.modules[name]


def run(*tokens: str) -> Any:
    return container_app(
        ["graph", *tokens], exit_on_error=False, print_error=False, result_action="return_value"
    )


def test_command_without_an_app_draws_the_container_built_from_settings(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run("--format", "mermaid")

    out, err = capsys.readouterr()
    assert out.startswith("flowchart LR\n")
    assert "config.database_backend = memory" in out
    assert "build_container()" in err


def test_command_users_without_an_app_says_viewsets_are_not_listed(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run("--users")

    out, err = capsys.readouterr()
    assert out.startswith("CoreContainer")
    assert "no app: --users lists the declared consumers and tasks only" in err


def test_command_text_is_the_default(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run()

    out, _ = capsys.readouterr()
    assert out.startswith("CoreContainer")
    assert "database.database: Selector config.database_backend = memory -> memory" in out


def test_command_reads_the_container_of_the_app_module(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    name = f"graph_cli_app_{uuid.uuid4().hex}"
    (project / f"{name}.py").write_text(
        "from core.app import CoreApp\n"
        "from core.settings import Settings\n\n"
        f"app = CoreApp(settings=Settings(_env_file=None, database_url={SQLITE_URL!r}))\n"
    )

    run("--app", f"{name}:app", "--format", "dot")

    out, err = capsys.readouterr()
    assert out.startswith("digraph")
    assert "config.database_backend = sqlalchemy" in out
    assert f"container: {name}:app" in err
    assert not (project / "never-created.db").exists()


def test_command_names_the_registered_hasher_and_lists_users(
    project: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    registries: None,
    declarations: None,
) -> None:
    name = f"graph_cli_app_{uuid.uuid4().hex}"
    (project / f"{name}.py").write_text(
        "import hashlib\n"
        "from core import AutoRouter, CoreApp\n"
        "from core.auth import register_password_hasher\n"
        "from core.ports.hashing import PasswordHasher\n"
        "from core.tasks import task\n"
        f"from {__name__} import NoteViewSet\n\n"
        "class Sha512Hasher(PasswordHasher):\n"
        "    name = 'custom_sha512'\n"
        "    def hash(self, password):\n"
        "        return 'sha512$' + hashlib.sha512(password.encode()).hexdigest()\n"
        "    def verify(self, password, hashed):\n"
        "        return self.hash(password) == hashed\n\n"
        "register_password_hasher(Sha512Hasher())\n\n"
        "@task(name='graph_cli.cleanup')\n"
        "async def cleanup() -> None: ...\n\n"
        "router = AutoRouter(prefix='/api/v1')\n"
        "router.register('/notes', NoteViewSet)\n"
        "app = CoreApp(routers=[router])\n"
    )
    monkeypatch.setenv("AUTH_PASSWORD_HASHER", "custom_sha512")
    monkeypatch.setenv("DATABASE_URL", POSTGRES_URL)

    run("--app", f"{name}:app", "--users")

    out, _ = capsys.readouterr()
    assert (
        "auth.password_hasher: PasswordHasher AUTH_PASSWORD_HASHER=custom_sha512 (registered) "
        f"-> {name}.Sha512Hasher" in out
    )
    assert "PasslibPasswordHasher" not in out
    assert "dialect=postgresql+asyncpg, host=db.internal:5433, database=shop_prod" in out
    assert "s3cret-pw" not in out
    used_by = " ".join(out.split("Used by:")[1].split())
    assert "database.repository: NoteViewSet (list, create, retrieve, update, partial_update" in (
        used_by
    )
    assert "tasks.queue: task graph_cli.cleanup" in used_by


def test_command_refuses_an_explicit_app_that_does_not_exist(project: Path) -> None:
    with pytest.raises(ConfigurationError, match="Cannot find the app module"):
        run("--app", "graph_cli_app_missing:app")


def test_command_rejects_an_unknown_format(project: Path) -> None:
    with pytest.raises(CycloptsError, match="png"):
        run("--format", "png")
    with pytest.raises(SystemExit) as exited:
        container_app(["graph", "--format", "png"], print_error=False)
    assert exited.value.code != 0


def _provider_at(container: Any, path: str) -> Any:
    provider = container
    for segment in path.split("."):
        provider = getattr(provider, segment)
    return provider
