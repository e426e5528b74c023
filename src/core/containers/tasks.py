"""TasksContainer: which task queue serves, chosen by TASK_BROKER, and its start/stop resource."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from dependency_injector import containers, providers

from core.adapters.memory.tasks import InMemoryTaskQueue
from core.errors import MissingDependencyError
from core.ports.tasks import TaskQueue


def _redis(url: str, key_prefix: str, redelivery_timeout: float) -> TaskQueue:
    # Imported here so `import core` works without the redis extra until someone selects it.
    try:
        from core.adapters.taskiq.queue import TaskiqTaskQueue
    except ModuleNotFoundError as exc:
        if exc.name and exc.name.split(".")[0] in ("taskiq_redis", "redis"):
            raise MissingDependencyError("taskiq-redis", "redis") from exc
        raise
    return TaskiqTaskQueue(url, key_prefix=key_prefix, redelivery_timeout=redelivery_timeout)


async def _queue_lifecycle(queue: TaskQueue, container: Any) -> AsyncIterator[TaskQueue]:
    # Imported here so `import core` does not import the user-facing tasks package.
    from core.tasks.binding import bind_declared_tasks

    # Every `@task` declared so far (process-wide) becomes runnable on this container's queue,
    # running with this container; tasks declared later are bound on their first `.delay()`.
    bind_declared_tasks(queue, _root(container))
    await queue.start()
    yield queue
    await queue.stop()


def _root(container: Any) -> Any:
    # A nested container's parent is the `providers.Container` holding it, whose parent is the
    # enclosing container: the top of that chain is the app's root, which tasks run with (its
    # database for their unit of work, its queue for their retries).
    while getattr(container, "parent", None) is not None:
        container = container.parent
    return container


class TasksContainer(containers.DeclarativeContainer):
    """The task queue: `memory` runs tasks inside the process, `redis` uses Taskiq workers.

    `lifecycle` binds the declared tasks to the queue and starts it; CoreApp's lifespan and
    `core worker` / `core scheduler` initialise it.
    """

    __self__ = providers.Self()
    config = providers.Configuration(strict=True)

    queue = providers.Selector(
        config.task_broker,
        memory=providers.Singleton(InMemoryTaskQueue),
        redis=providers.Singleton(
            _redis,
            url=config.redis_url,
            key_prefix=config.task_key_prefix,
            redelivery_timeout=config.task_redelivery_timeout,
        ),
    )

    lifecycle = providers.Resource(_queue_lifecycle, queue, container=__self__)
