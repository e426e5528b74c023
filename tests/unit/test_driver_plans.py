"""Plans for reads and inserts on the driver: shapes, literals, defaults, other drivers."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.dialects import mysql, postgresql, sqlite

from core.adapters.sqlalchemy import driver
from tests.models import Article


def test_a_plan_binds_by_name_and_keeps_compiled_literals() -> None:
    dialect = sqlite.aiosqlite.dialect()
    statement = select(func.count()).select_from(Article).limit(1)
    plan = driver.shaped_plan(dialect, ("test-literal",), lambda: statement)
    sql, args = plan.bind_values({})
    assert "LIMIT ?" in sql and args[0] == 1  # the compiled LIMIT 1


def test_an_insert_plan_fills_python_defaults_per_call() -> None:
    table = Article.__table__
    plan = driver.insert_plan(
        postgresql.asyncpg.dialect(), table, ("title", "slug", "author_id"), ("id",)
    )
    _, first = plan.bind_values({"title": "a", "slug": "a", "author_id": 1})
    _, second = plan.bind_values({"title": "b", "slug": "b", "author_id": 1})
    names = list(plan.names)
    assert first[names.index("views")] == 0  # a scalar default
    created = names.index("created_at")  # a callable default: called for each row
    assert first[created] is not None and first[created] <= second[created]


def test_other_drivers_leave_execution_to_sqlalchemy() -> None:
    plan = driver.shaped_plan(mysql.aiomysql.dialect(), ("test-mysql",), lambda: select(Article.id))
    assert not plan.on_driver
