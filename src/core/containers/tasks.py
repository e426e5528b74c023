"""TasksContainer: which task queue serves, chosen by TASK_BROKER."""

from __future__ import annotations

from collections.abc import AsyncIterator

from dependency_injector import containers, providers

from core.adapters.memory.tasks import InMemoryTaskQueue
from core.errors import MissingDependencyError
from core.ports.tasks import TaskQueue


def _redis(url: str) -> TaskQueue:
    # Imported here so `import core` works without the redis extra until someone selects it.
    try:
        from core.adapters.taskiq.queue import TaskiqTaskQueue
    except ModuleNotFoundError as exc:
        if exc.name and exc.name.split(".")[0] in ("taskiq_redis", "redis"):
            raise MissingDependencyError("taskiq-redis", "redis") from exc
        raise
    return TaskiqTaskQueue(url)


async def _queue_lifecycle(queue: TaskQueue) -> AsyncIterator[TaskQueue]:
    await queue.start()
    yield queue
    await queue.stop()


class TasksContainer(containers.DeclarativeContainer):
    """The task queue: `memory` runs tasks inside the process, `redis` uses Taskiq workers."""

    config = providers.Configuration(strict=True)

    queue = providers.Selector(
        config.task_broker,
        memory=providers.Singleton(InMemoryTaskQueue),
        redis=providers.Singleton(_redis, url=config.redis_url),
    )

    lifecycle = providers.Resource(_queue_lifecycle, queue)
