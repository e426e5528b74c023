"""InMemoryDatabase: rows in dicts, with units of work that commit or roll back.

Selected by `DATABASE_URL=memory://`; also what the test fixtures use. It enforces primary-key,
unique, not-null and foreign-key constraints (with ON DELETE CASCADE / SET NULL) so code that
passes here behaves the same on SQLite and PostgreSQL. Not for concurrent writers: there is no
isolation between units of work, only atomicity.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


class InMemoryDatabase:
    def __init__(self) -> None:
        self.url = "memory://"
        self.tables: dict[Any, dict[Any, dict[str, Any]]] = {}
        self.sequences: dict[Any, int] = {}

    def session(self) -> InMemorySession:
        return InMemorySession(self)

    def table(self, model: type[Any]) -> dict[Any, dict[str, Any]]:
        return self.tables.setdefault(model.__table__, {})

    def next_id(self, model: type[Any]) -> int:
        table = model.__table__
        self.sequences[table] = self.sequences.get(table, 0) + 1
        return self.sequences[table]

    async def create_all(self, metadata: Any) -> None:
        for table in metadata.sorted_tables:
            self.tables.setdefault(table, {})

    async def drop_all(self, metadata: Any) -> None:
        for table in metadata.sorted_tables:
            self.tables.pop(table, None)
            self.sequences.pop(table, None)

    async def ping(self) -> None:
        return None

    async def check(self) -> None:
        """Readiness (GET /health/ready, `core status`): always ready, nothing to reach."""
        return None

    async def dispose(self) -> None:
        return None


class InMemorySession:
    """A unit of work: changes apply at once and are undone on rollback (or close without
    commit)."""

    def __init__(self, database: InMemoryDatabase) -> None:
        self.database = database
        self.identity: dict[tuple[Any, Any], Any] = {}
        self._undo: list[Callable[[], None]] = []

    def record(self, undo: Callable[[], None]) -> None:
        self._undo.append(undo)

    async def commit(self) -> None:
        self._undo.clear()

    async def rollback(self) -> None:
        while self._undo:
            self._undo.pop()()
        self.identity.clear()

    async def close(self) -> None:
        await self.rollback()

    async def __aenter__(self) -> InMemorySession:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()
