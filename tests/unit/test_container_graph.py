"""`build_graph` and its renderers, and the `core container graph` command."""

from __future__ import annotations

import re
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cyclopts import CycloptsError
from dependency_injector import containers, providers

from core.cli.container import container_app
from core.containers import CoreContainer, build_container
from core.containers.graph import (
    build_graph,
    render_dot,
    render_mermaid,
    render_text,
)
from core.errors import ConfigurationError
from core.settings import Settings

AREAS = ("database", "auth", "messaging", "tasks")
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
