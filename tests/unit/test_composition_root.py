"""The composition root: settings, containers, CoreApp, and what `import core` must not do."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import core
from core import CoreApp
from core.adapters.memory.repository import InMemoryRepository
from core.containers.core import build_container
from core.context import use_container
from core.errors import ConfigurationError
from core.settings import DEFAULT_SECRET_KEY, Settings
from core.testing import test_settings
from tests.models import Author


def _run(code: str, cwd: Path, **env: str) -> str:
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        cwd=cwd,
        env={"PATH": "/usr/bin:/bin", **env},
    )
    return result.stdout


def test_import_core_loads_no_driver_or_broker_client(tmp_path: Path) -> None:
    code = "import core, sys; print(*{m.split('.')[0] for m in sys.modules})"
    loaded = set(_run(code, tmp_path).split())
    assert (
        not {
            "asyncpg",
            "aiosqlite",
            "aiokafka",
            "aio_pika",
            "redis",
            "taskiq_redis",
            "jwt",
            "passlib",
        }
        & loaded
    )


def test_import_core_reads_no_env_file_and_creates_nothing(tmp_path: Path) -> None:
    # A broken .env would make Settings() fail: importing must not even read it.
    (tmp_path / ".env").write_text("DATABASE_POOL_SIZE=not-a-number\n")
    code = "import core, os; print(sorted(os.listdir('.')))"
    assert _run(code, tmp_path).strip() == "['.env']"


def test_public_names_are_exactly_the_specs() -> None:
    # Exactly these: a name missing from `core` fails here as much as an extra one.
    assert sorted(core.__all__) == [
        "APIView",
        "AutoRouter",
        "CoreApp",
        "Field",
        "Model",
        "ModelViewSet",
        "action",
        "setup",
        "shutdown",
    ]
    assert all(hasattr(core, name) for name in core.__all__)
    public = {
        n for n, v in vars(core).items() if not n.startswith("_") and not isinstance(v, type(core))
    }
    assert public == set(core.__all__)


def test_settings_come_from_env_file_when_the_root_reads_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / ".env").write_text(
        "APP_NAME=From Env File\nMESSAGE_BROKER=memory\nAPI_PREFIX=/api/v2\n"
    )
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("API_PREFIX", "/api/v3")  # the environment wins over .env
    settings = build_container().settings()
    assert (settings.app_name, settings.api_prefix) == ("From Env File", "/api/v3")


@pytest.mark.parametrize("secret", [DEFAULT_SECRET_KEY, ""])
def test_production_refuses_the_default_secret_key(secret: str) -> None:
    with pytest.raises(ConfigurationError, match="SECRET_KEY") as caught:
        CoreApp(settings=Settings(_env_file=None, environment="production", secret_key=secret))  # type: ignore[call-arg]
    assert "\n" not in str(caught.value)


def test_production_refuses_an_hmac_key_shorter_than_32_bytes() -> None:
    with pytest.raises(ConfigurationError, match="at least 32 bytes for HS256"):
        CoreApp(settings=test_settings(environment="production", secret_key="your-secret-key"))
    # Anywhere else the spec's short example key still runs, and RS keys are not HMAC secrets.
    assert CoreApp(settings=test_settings(secret_key="your-secret-key"))


def test_production_starts_with_a_real_secret_key() -> None:
    app = CoreApp(settings=test_settings(environment="production", secret_key="s3cr3t-" * 6))
    assert app.settings.environment == "production"


def test_selectors_follow_settings() -> None:
    memory = build_container(test_settings())
    sqlite = build_container(test_settings(database_url="sqlite+aiosqlite:///:memory:"))
    assert type(memory.database.database()).__name__ == "InMemoryDatabase"
    assert type(sqlite.database.database()).__name__ == "SqlAlchemyDatabase"
    assert type(memory.messaging.broker()).__name__ == "InMemoryEventBroker"
    assert type(memory.tasks.queue()).__name__ == "InMemoryTaskQueue"


async def test_two_apps_in_one_process_share_no_state(tmp_path: Path) -> None:
    first = CoreApp(settings=test_settings(app_name="first"))
    second = CoreApp(
        settings=test_settings(
            app_name="second", database_url=f"sqlite+aiosqlite:///{tmp_path}/second.db"
        )
    )
    assert first.container is not second.container
    assert first.container.database.database() is not second.container.database.database()
    for app in (first, second):
        async with app.lifespan():
            await app.create_all()
            async with app.session() as db:
                await Author.objects.create(email=f"{app.settings.app_name}@x.io", name="A", db=db)
    for app in (first, second):
        async with app.lifespan(), app.session() as db:
            emails = [a.email for a in await Author.objects.using(db).all()]
        assert emails == [f"{app.settings.app_name}@x.io"]
    assert first.fastapi.title == "first" and second.fastapi.title == "second"


async def test_overriding_the_repository_changes_what_querysets_use() -> None:
    app = CoreApp(settings=test_settings(database_url="sqlite+aiosqlite:///:memory:"))
    fake = InMemoryRepository(Author, [Author(email="fake@x.io", name="Fake")])
    with app.container.database.repository.override(fake):
        async with app.lifespan(), app.session() as db:
            # The same QuerySet code, unchanged, now reads the fake (no table exists in SQLite).
            assert [a.email for a in await Author.objects.using(db).all()] == ["fake@x.io"]
            await Author.objects.create(email="new@x.io", name="New")
    assert await fake.count(Author.objects.query) == 2


async def test_lifespan_starts_and_stops_resources() -> None:
    app = CoreApp(settings=test_settings(database_url="sqlite+aiosqlite:///:memory:"))
    events: list[str] = []
    database: Any = app.container.database.database()
    original = database.dispose

    async def dispose() -> None:
        events.append("disposed")
        await original()

    database.dispose = dispose
    async with app.lifespan():
        events.append("running")
    assert events == ["running", "disposed"]


async def test_use_container_is_scoped() -> None:
    app = CoreApp(settings=test_settings())
    with use_container(app.container):
        assert core.context.current_container() is app.container
    assert core.context.ambient_container() is None
    assert core.context.current_container() is not app.container
