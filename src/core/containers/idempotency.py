"""IdempotencyContainer: where `Idempotency-Key`s live, chosen by IDEMPOTENCY_STORE, and the
rules the routes apply with it.

`database` (the default) keeps them in the app's database, in each request's transaction;
`redis` in Redis, shared by every replica but saved after the commit; `memory` in this process.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from dependency_injector import containers, providers

from core.adapters.memory.idempotency import InMemoryIdempotencyStore
from core.errors import MissingDependencyError
from core.idempotency import IdempotencyKeys
from core.ports.idempotency import IdempotencyStore


def _database_store(database: Any) -> IdempotencyStore:
    engine = getattr(database, "engine", None)
    if engine is None:
        # DATABASE_URL=memory://: the keys live in memory beside the data, as the data does.
        return InMemoryIdempotencyStore()
    from core.adapters.sqlalchemy.idempotency import SqlAlchemyIdempotencyStore

    return SqlAlchemyIdempotencyStore(engine)


def _redis_store(url: str | None, fallback_url: str, prefix: str) -> IdempotencyStore:
    # Imported here so `import core` works without the redis extra until someone selects it.
    try:
        from core.adapters.redis.idempotency import RedisIdempotencyStore
    except ModuleNotFoundError as exc:
        if exc.name and exc.name.split(".")[0] == "redis":
            raise MissingDependencyError("redis", "redis") from exc
        raise
    return RedisIdempotencyStore(url or fallback_url, prefix=prefix)


async def _store_lifecycle(store: IdempotencyStore) -> AsyncIterator[IdempotencyStore]:
    yield store
    await store.close()


class IdempotencyContainer(containers.DeclarativeContainer):
    """The idempotency store of one app and the rules around it.

    - `store`: the IdempotencyStore adapter (a Selector on IDEMPOTENCY_STORE).
    - `keys`: `IdempotencyKeys`, what the routes call (TTL and wait from the settings).

    Override the store before first use:
    `app.container.idempotency.store.override(InMemoryIdempotencyStore())`.
    """

    config = providers.Configuration(strict=True)
    # The app's database, for IDEMPOTENCY_STORE=database (given by the root).
    database: providers.Dependency[Any] = providers.Dependency()

    store = providers.Selector(
        config.idempotency_store,
        database=providers.Singleton(_database_store, database),
        redis=providers.Singleton(
            _redis_store,
            url=config.idempotency_store_url,
            fallback_url=config.redis_url,
            prefix=config.idempotency_key_prefix,
        ),
        memory=providers.Singleton(InMemoryIdempotencyStore),
    )

    lifecycle = providers.Resource(_store_lifecycle, store)

    keys = providers.Singleton(
        IdempotencyKeys,
        store=store,
        ttl=config.idempotency_key_ttl_seconds,
        wait=config.idempotency_wait_seconds,
    )
