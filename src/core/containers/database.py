"""DatabaseContainer: which database and repository adapter serve, chosen by DATABASE_URL."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from dependency_injector import containers, providers

from core.adapters.memory.database import InMemoryDatabase
from core.adapters.memory.repository import InMemoryRepository
from core.ports.repository import Database


def _sqlalchemy_database(tracing: Any, **options: Any) -> Database:
    from core.adapters.sqlalchemy.database import SqlAlchemyDatabase

    database = SqlAlchemyDatabase(**options)
    if tracing is not None:
        database.trace(tracing)
    return database


def _sqlalchemy_repository(model: type[Any], session: Any) -> Any:
    from core.adapters.sqlalchemy.repository import SqlAlchemyRepository

    return SqlAlchemyRepository(model, session)


async def _database_lifecycle(database: Database) -> AsyncIterator[Database]:
    # Connections open lazily on the first query; shutdown closes the pool.
    yield database
    await database.dispose()


class DatabaseContainer(containers.DeclarativeContainer):
    config = providers.Configuration(strict=True)
    # Given by the root: Core's tracer (None when TRACING_ENABLED is off).
    tracing: providers.Dependency[Any] = providers.Dependency()

    database = providers.Selector(
        config.database_backend,
        sqlalchemy=providers.Singleton(
            _sqlalchemy_database,
            tracing=tracing,
            url=config.database_url,
            echo=config.database_echo,
            pool_size=config.database_pool_size,
            max_overflow=config.database_max_overflow,
            pool_timeout=config.database_pool_timeout,
            pool_recycle=config.database_pool_recycle,
            pool_pre_ping=config.database_pool_pre_ping,
        ),
        memory=providers.Singleton(InMemoryDatabase),
    )

    repository = providers.Selector(
        config.database_backend,
        sqlalchemy=providers.Factory(_sqlalchemy_repository),
        memory=providers.Factory(InMemoryRepository.for_session),
    )

    lifecycle = providers.Resource(_database_lifecycle, database)
