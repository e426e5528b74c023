"""Which container code runs on: the ambient one, else the one running app's, else the process
default (core/context.py)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import core
from core import CoreApp, context
from core.context import current_container, use_container
from core.declarations import declarations
from core.errors import AmbiguousContainerError, ConfigurationError
from core.messaging import Event, consumer, on_event, publish_event
from core.settings import Settings
from core.tasks import task, wait_for_result
from core.testing import test_settings
from tests.asgi import served
from tests.scripts import DEFAULT_ACROSS_LOOPS, run_script


@pytest.fixture
def declared() -> Iterator[dict[str, Any]]:
    """A task and an in-process consumer, declared for one test and forgotten afterwards."""
    saved = declarations().snapshot()
    received: list[Event] = []
    arrived = asyncio.Event()

    @consumer("rule-readers", topics=["rule-pings"])
    class Readers:
        @on_event("ping")
        async def on_ping(self: Any, event: Event, db: Any) -> None:
            received.append(event)
            arrived.set()

    @task(name="rule.double")
    async def double(n: int) -> int:
        return n * 2

    yield {"task": double, "received": received, "arrived": arrived}
    declarations().restore(saved)


async def test_code_outside_any_request_uses_the_one_running_app(
    declared: dict[str, Any],
) -> None:
    app = CoreApp(settings=test_settings(), title="Shop")

    # The app runs as a server runs it: its lifespan in a task of its own. This code is in no
    # request, message, task or use_container block.
    async with served(app):
        assert context.ambient_container() is None
        assert current_container() is app.container

        task_id = await declared["task"].delay(21)
        async with asyncio.timeout(10):
            assert (await wait_for_result(task_id, poll_interval=0.01)).value == 42

        sent = await publish_event("ping", data={"n": 1}, topic="rule-pings")
        async with asyncio.timeout(10):
            await declared["arrived"].wait()
        assert [event.id for event in declared["received"]] == [sent.id]


async def test_two_running_apps_are_ambiguous_until_use_container_says_which(
    declared: dict[str, Any],
) -> None:
    first = CoreApp(settings=test_settings(), title="Shop")
    second = CoreApp(settings=test_settings(), title="Billing")

    async with served(first), served(second):
        with pytest.raises(AmbiguousContainerError) as caught:
            current_container()
        message = str(caught.value)
        assert "'Shop'" in message and "'Billing'" in message and "use_container" in message
        assert len(message.splitlines()) == 1
        with pytest.raises(AmbiguousContainerError):
            await declared["task"].delay(1)

        with use_container(second.container):
            task_id = await declared["task"].delay(2)
            async with asyncio.timeout(10):
                assert (await wait_for_result(task_id, poll_interval=0.01)).value == 4

    assert context.running_apps() == []


async def test_with_no_app_running_the_process_default_serves(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DATABASE_URL", "memory://")
    monkeypatch.setenv("APP_NAME", "from-env")

    default = current_container()

    assert default is context.default_container() is core.setup()
    assert default.settings().app_name == "from-env"
    with pytest.raises(ConfigurationError, match=r"core\.shutdown\(\)"):
        core.setup(Settings(_env_file=None, app_name="other"))

    await core.shutdown()
    assert not context.has_default()
    chosen = core.setup(Settings(_env_file=None, database_url="memory://", app_name="chosen"))
    assert current_container() is chosen
    assert chosen.settings().app_name == "chosen"


def test_the_process_default_closes_with_each_event_loop_and_serves_the_next(
    tmp_path: Path,
) -> None:
    lines = run_script(tmp_path, DEFAULT_ACROSS_LOOPS, f"sqlite+aiosqlite:///{tmp_path}/app.db")

    assert lines == ["1 2"]


def test_at_exit_the_clients_of_a_loop_left_open_are_closed_on_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A shell or a notebook leaves its loop open: interpreter exit closes the default's
    # clients on that loop (asyncio.run's end does it for scripts).
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DATABASE_URL", "memory://")
    loop = asyncio.new_event_loop()
    closed_on: list[Any] = []

    async def use() -> Any:
        return current_container().database.database()

    try:
        database = loop.run_until_complete(use())

        async def dispose() -> None:
            closed_on.append(asyncio.get_running_loop())

        monkeypatch.setattr(database, "dispose", dispose)
        context._close_at_exit()
    finally:
        loop.close()

    assert closed_on == [loop]
