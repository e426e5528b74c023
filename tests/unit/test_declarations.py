"""Declarations: one object holds what user code declares; the root is given it and binds it.

Also the composition root's shape (STYLE.md 4b): areas declare what they need and the root
wires it, and the messaging and task services are providers built from their collaborators.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from dependency_injector import containers, providers

from core import CoreApp
from core.adapters.memory.broker import InMemoryEventBroker
from core.adapters.memory.tasks import InMemoryTaskQueue
from core.auth import PasswordHasher, configure_auth, register_password_hasher
from core.containers import build_container
from core.containers.auth import AuthContainer
from core.containers.database import DatabaseContainer
from core.containers.messaging import MessagingContainer
from core.containers.tasks import TasksContainer
from core.declarations import Declarations, declarations
from core.errors import ConfigurationError
from core.messaging import consumer, declared_consumers, event, on_event
from core.messaging.asyncapi import asyncapi_document
from core.messaging.consumers import RetryPolicy
from core.messaging.runtime import ALL_CONSUMERS
from core.tasks import Task, TaskOptions, declared_tasks, periodic_task, task, wait_for_result
from core.testing import isolated_declarations, test_settings


class PlainHasher(PasswordHasher):
    name = "plain_for_declarations_test"

    def hash(self, password: str) -> str:
        return f"plain${password}"

    def verify(self, password: str, hashed: str) -> bool:
        return hashed == f"plain${password}"


def test_isolated_declarations_forgets_everything_declared_inside() -> None:
    before = declarations().snapshot()

    with isolated_declarations() as declared:

        @task(name="declarations.inside")
        async def inside() -> None:
            return None

        @consumer("declarations-group", topics=["declarations-topic"])
        class Inside:
            @on_event("thing.happened")
            async def handle(self, event: Any, db: Any) -> None:
                return None

        register_password_hasher(PlainHasher())
        configure_auth(password_hasher=PlainHasher.name)

        assert declared is declarations()
        assert "declarations.inside" in declared.tasks
        assert any(d.cls is Inside for d in declared_consumers())
        assert PlainHasher.name in declared.password_hashers
        assert declared.auth.password_hasher == PlainHasher.name

    after = declarations().snapshot()
    assert "declarations.inside" not in after.tasks
    assert after == before


def test_the_fixture_hands_out_the_process_declarations(
    isolated_declarations: Declarations,
) -> None:
    assert isolated_declarations is declarations()


def test_restore_refills_the_mappings_in_place() -> None:
    declared = Declarations()
    tasks = declared.tasks
    saved = declared.snapshot()

    Task(_noop, name="declarations.restore", declarations=declared)
    assert list(tasks) == ["declarations.restore"]

    declared.restore(saved)
    assert declared.tasks is tasks
    assert tasks == {}


async def _noop() -> str:
    return "ran"


async def test_an_app_binds_the_tasks_of_the_declarations_it_was_given() -> None:
    mine = Declarations()
    job = Task(_noop, name="declarations.only-mine", declarations=mine)
    queue = InMemoryTaskQueue()
    application = CoreApp(container=build_container(test_settings(), declarations=mine))
    application.container.tasks.queue.override(queue)

    async with application.lifespan():
        assert set(queue._functions) == {"declarations.only-mine"}
        task_id = await job.delay()
        async with asyncio.timeout(5):
            result = await wait_for_result(task_id, poll_interval=0.01)

    assert result.value == "ran"
    # The process's own declarations never saw it.
    assert job not in declared_tasks()


def test_an_app_selects_a_hasher_registered_in_its_own_declarations() -> None:
    mine = Declarations()
    mine.password_hashers[PlainHasher.name] = PlainHasher()
    settings = test_settings(auth_password_hasher=PlainHasher.name)

    hasher = build_container(settings, declarations=mine).auth.password_hasher()
    assert hasher.hash("pw") == "plain$pw"

    # The process's declarations don't know the name.
    with pytest.raises(ConfigurationError, match=PlainHasher.name):
        build_container(settings).auth.password_hasher()


def test_asyncapi_lists_the_events_of_the_apps_declarations(
    isolated_declarations: Declarations,
) -> None:
    @event("declared.thing", topic="declarations-events")
    async def emit() -> dict[str, int]:
        return {"id": 1}

    with_events = CoreApp(settings=test_settings())
    without = CoreApp(container=build_container(test_settings(), declarations=Declarations()))

    assert "declarations-events" in asyncapi_document(with_events)["channels"]
    assert asyncapi_document(without)["channels"] == {}


def test_task_options_are_checked_once_and_shared(isolated_declarations: Declarations) -> None:
    with pytest.raises(ValueError, match="retry"):
        TaskOptions(retry=-1)
    with pytest.raises(ValueError, match="timeout"):
        TaskOptions(timeout=0)
    with pytest.raises(ValueError, match="queue"):
        task(queue="")  # refused at the decorator line, before any function
    with pytest.raises(TypeError, match="retry_on"):
        TaskOptions(retry_on=(ValueError, "KeyError"))  # type: ignore[arg-type]

    @task(queue="emails", retry=3, timeout=300, retry_on=KeyError)
    async def send() -> None:
        return None

    @periodic_task(interval=60, queue="emails", retry=3, timeout=300, retry_on=KeyError)
    async def tick() -> None:
        return None

    built = Task(_noop, name="declarations.built", queue="emails", retry=3, timeout=300)

    expected = TaskOptions(queue="emails", retry=3, timeout=300, retry_on=(KeyError,))
    assert send.options == expected
    assert tick.options == expected
    assert built.options == TaskOptions(
        name="declarations.built", queue="emails", retry=3, timeout=300
    )
    assert (send.queue, send.retry, send.timeout, send.retry_on) == ("emails", 3, 300, (KeyError,))


AREAS = (DatabaseContainer, AuthContainer, MessagingContainer, TasksContainer)


@pytest.mark.parametrize("area", AREAS, ids=lambda area: area.__name__)
def test_no_area_container_reaches_up_to_the_root(area: type[containers.Container]) -> None:
    for name, provider in area.providers.items():
        assert not isinstance(provider, providers.Self), f"{area.__name__}.{name}"


def test_the_root_wires_what_each_area_declares() -> None:
    mine = Declarations()
    container = build_container(test_settings(), declarations=mine)

    assert container.declarations() is mine
    assert container.auth.declarations() is mine
    assert container.messaging.declarations() is mine
    assert container.tasks.declarations() is mine
    assert container.messaging.database.database() is container.database.database()
    assert container.messaging.context() is container
    assert container.tasks.context() is container


def test_the_messaging_services_are_built_from_the_containers_providers() -> None:
    container = build_container(test_settings())
    runtime = container.messaging.runtime()

    assert runtime.outbox is container.messaging.outbox()
    assert runtime.relay is container.messaging.relay()
    assert runtime.relay.outbox is runtime.outbox
    assert runtime.declarations is container.declarations()
    # The relay resolves the broker per pass, so an override made later still wins.
    other = InMemoryEventBroker()
    with container.messaging.broker.override(other):
        assert runtime.relay.broker() is other
        assert runtime.broker() is other


def test_a_consumer_retry_policy_comes_from_the_container(
    isolated_declarations: Declarations,
) -> None:
    @consumer("declarations-retries", topics=["declarations-retries"], max_retries=1)
    class Counting:
        @on_event("counted")
        async def handle(self, event: Any) -> None:
            return None

    @consumer("declarations-default", topics=["declarations-default"])
    class Default:
        @on_event("counted")
        async def handle(self, event: Any) -> None:
            return None

    container = build_container(test_settings(consumer_max_retries=7))
    container.messaging.retry_policy.override(
        providers.Factory(RetryPolicy, max_retries=7, backoff=0.25, dead_letter_suffix=".dead")
    )
    runtime = container.messaging.runtime()
    dispatchers = runtime.bind(InMemoryEventBroker(), ALL_CONSUMERS)

    policies = {d.group: d.policy for d in dispatchers}
    assert policies["declarations-default"] == RetryPolicy(
        max_retries=7, backoff=0.25, dead_letter_suffix=".dead"
    )
    assert policies["declarations-retries"].max_retries == 1
    assert policies["declarations-retries"].dead_letter_suffix == ".dead"


def test_an_app_without_messaging_starts_no_runtime_and_declares_no_outbox(tmp_path: Path) -> None:
    # A fresh process: nothing imported `core.messaging`, so nothing is declared to relay or
    # consume, and starting the app must not declare the outbox tables by looking.
    code = (
        "import asyncio, sys\n"
        "from core import CoreApp, Model\n"
        "from core.testing import test_settings\n"
        "async def main():\n"
        "    app = CoreApp(settings=test_settings())\n"
        "    async with app.lifespan():\n"
        "        pass\n"
        "    print('core.messaging' in sys.modules, 'core_outbox' in Model.metadata.tables)\n"
        "asyncio.run(main())\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, check=True
    )
    assert result.stdout.split() == ["False", "False"]


async def test_an_app_that_publishes_runs_its_relay() -> None:
    # `publish_event` comes with the outbox table: with no @event or @consumer declared, the
    # relay still runs, so plain `publish_event` calls are delivered.
    application = CoreApp(container=build_container(test_settings(), declarations=Declarations()))
    async with application.lifespan():
        assert application.container.messaging.runtime().relay.running
