"""TasksContainer: which task queue serves, chosen by TASK_BROKER, what runs each declared task
on it, and the start/stop resource that binds them."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, Any

from dependency_injector import containers, providers

from core.adapters.memory.tasks import InMemoryTaskQueue
from core.declarations import Declarations
from core.errors import MissingDependencyError
from core.ports.metrics import Metrics
from core.ports.tasks import TaskQueue

if TYPE_CHECKING:
    from core.tasks.binding import TaskBinder, TaskRunner

# The builders import `core.tasks` when called, so `import core` does not import the
# user-facing tasks package.


def _redis(url: str, key_prefix: str, redelivery_timeout: float) -> TaskQueue:
    # Imported here so `import core` works without the redis extra until someone selects it.
    try:
        from core.adapters.taskiq.queue import TaskiqTaskQueue
    except ModuleNotFoundError as exc:
        if exc.name and exc.name.split(".")[0] in ("taskiq_redis", "redis"):
            raise MissingDependencyError("taskiq-redis", "redis") from exc
        raise
    return TaskiqTaskQueue(url, key_prefix=key_prefix, redelivery_timeout=redelivery_timeout)


def _runner(**collaborators: Any) -> TaskRunner:
    from core.tasks.binding import TaskRunner

    return TaskRunner(**collaborators)


def _binder(
    queue: Callable[[], TaskQueue],
    runner: Callable[..., TaskRunner],
    default_queue: str,
    declarations: Declarations,
    metrics: Metrics,
    tracing: Any,
) -> TaskBinder:
    from core.tasks.binding import TaskBinder

    return TaskBinder(
        queue=queue,
        runner=runner,
        default_queue=default_queue,
        declarations=declarations,
        metrics=metrics,
        tracing=tracing,
    )


async def _queue_lifecycle(queue: TaskQueue, binder: TaskBinder) -> AsyncIterator[TaskQueue]:
    # Every task declared so far becomes runnable on this container's queue; tasks declared
    # later are bound on their first `.delay()`.
    binder.bind_declared(queue)
    await queue.start()
    yield queue
    await queue.stop()


class TasksContainer(containers.DeclarativeContainer):
    """The task queue: `memory` runs tasks inside the process, `redis` uses Taskiq workers.

    - `queue`: the TaskQueue adapter (a Selector on TASK_BROKER).
    - `runner`: what the queue runs for one task (`TaskRunner`: retries, timeout, unit of
      work), built per task by `binder`.
    - `binder`: registers the declared tasks on the queue and sends runs to it.
    - `lifecycle`: binds the declared tasks and starts the queue; CoreApp's lifespan and
      `core worker` / `core scheduler` initialise it.

    Given by the root: `declarations` (which tasks exist), `context`, the app container a
    run makes ambient for the task's own code and passes to its `container` parameter, and
    `metrics`, the recorder of enqueued and run tasks (a no-op unless METRICS_ENABLED).
    """

    config = providers.Configuration(strict=True)
    declarations = providers.Dependency(instance_of=Declarations)
    context = providers.Dependency(instance_of=containers.Container)
    metrics: providers.Dependency[Metrics] = providers.Dependency()
    # Core's tracer, or None when TRACING_ENABLED is off.
    tracing: providers.Dependency[Any] = providers.Dependency()

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

    runner = providers.Factory(_runner, container=context, metrics=metrics, tracing=tracing)

    # The queue and runner *providers*: a send resolves the queue per call, so an override of
    # `tasks.queue` made after the binder was built still wins.
    binder = providers.Singleton(
        _binder,
        queue=queue.provider,
        runner=runner.provider,
        default_queue=config.task_default_queue,
        declarations=declarations,
        metrics=metrics,
        tracing=tracing,
    )

    lifecycle = providers.Resource(_queue_lifecycle, queue, binder=binder)
