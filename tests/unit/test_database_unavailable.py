"""An unusable database answers 503 in the error envelope with Retry-After, never a 500, and the
driver's reason stays in the log (SQLite here; tests/integration/test_database_outage.py stops a
real PostgreSQL under a running app)."""

from __future__ import annotations

import logging
from pathlib import Path

import httpx
import pytest
from sqlalchemy.orm import Mapped

from core import AutoRouter, CoreApp, Field, Model, ModelViewSet
from core.adapters.sqlalchemy.errors import is_unavailable
from core.errors import DatabaseUnavailableError
from core.permissions import AllowAny
from core.testing import test_settings


class Lamp(Model):
    __tablename__ = "unavailable_lamps"

    id: Mapped[int] = Field.pk()
    name: Mapped[str] = Field.string(max_length=50)


class LampViewSet(ModelViewSet):
    model = Lamp
    permission_classes = [AllowAny]


async def test_a_database_that_cannot_be_opened_answers_503(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    # `core createsuperuser`, run in-process by other tests, turns the outage log off.
    monkeypatch.setattr(logging.getLogger("core.database"), "disabled", False)
    missing = tmp_path / "no-such-directory" / "app.db"
    router = AutoRouter(prefix="/api")
    router.register("/lamps", LampViewSet)
    app = CoreApp(
        settings=test_settings(database_url=f"sqlite+aiosqlite:///{missing}"), routers=[router]
    )
    async with app.lifespan():
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
            with caplog.at_level(logging.ERROR):
                answers = [await http.get("/api/lamps/") for _ in range(3)]
                created = await http.post("/api/lamps/", json={"name": "desk"})

    for answer in [*answers, created]:
        assert answer.status_code == 503, answer.text
        assert answer.headers["Retry-After"] == "5"
        assert answer.json() == {
            "detail": DatabaseUnavailableError.default_detail,
            "code": "database_unavailable",
        }
        assert "no-such-directory" not in answer.text
    # One outage, one log line, with the cause.
    logged = [r.getMessage() for r in caplog.records if "is unavailable" in r.getMessage()]
    assert len(logged) == 1 and "unable to open database file" in logged[0]


def test_refused_statements_are_not_mistaken_for_an_outage() -> None:
    import sqlite3

    assert is_unavailable(ConnectionRefusedError(111, "Connection refused"))
    assert is_unavailable(sqlite3.OperationalError("database is locked"))
    assert not is_unavailable(sqlite3.OperationalError("no such table: lamps"))
    assert not is_unavailable(ValueError("not a database error"))
