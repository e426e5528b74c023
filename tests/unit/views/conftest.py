"""An app serving the test models through ViewSets, on the in-memory backends."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.requests import Request

from core import CoreApp
from core.testing import test_settings
from tests.apps import build_app
from tests.models import Article, Author


@dataclass
class User:
    id: int
    is_active: bool = True
    is_staff: bool = False
    is_superuser: bool = False
    permissions: list[str] = field(default_factory=list)
    groups: list[str] = field(default_factory=list)


class HeaderAuthenticator:
    """Users by `X-User` header id, so tests choose who is calling."""

    def __init__(self) -> None:
        self.users: dict[str, User] = {}

    async def authenticate(self, request: Request, db: Any) -> User | None:
        return self.users.get(request.headers.get("x-user", ""))


@pytest.fixture
def users() -> HeaderAuthenticator:
    return HeaderAuthenticator()


@pytest.fixture(params=["memory", "sqlite"])
async def app(
    request: pytest.FixtureRequest, users: HeaderAuthenticator, tmp_path: Path
) -> AsyncIterator[CoreApp]:
    # Every view test on the in-memory adapter and on a SQLite file, where reads and creates
    # run on the driver (rows straight to JSON, INSERT ... RETURNING).
    database_url = (
        "memory://" if request.param == "memory" else f"sqlite+aiosqlite:///{tmp_path}/views.db"
    )
    application = build_app(test_settings(database_url=database_url))
    with application.container.auth.authenticator.override(users):
        async with application.lifespan():
            await application.create_all()
            yield application


@pytest.fixture
async def client(app: CoreApp) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://testserver"
    ) as http:
        yield http


@pytest.fixture
async def seeded(app: CoreApp, users: HeaderAuthenticator) -> dict[str, Any]:
    async with app.session() as db:
        ann = await Author.objects.create(email="ann@x.io", name="Ann", db=db)
        bob = await Author.objects.create(email="bob@x.io", name="Bob", db=db)
        rows = [
            ("Hello", "hello", 10, True, ann, "greetings"),
            ("Python tips", "python-tips", 150, True, ann, "indentation"),
            ("Draft", "draft", 0, False, bob, None),
            ("Again", "again", 200, True, bob, "hello once more"),
        ]
        articles = [
            await Article.objects.create(
                title=t, slug=s, views=v, is_published=p, author_id=a.id, content=c, db=db
            )
            for t, s, v, p, a, c in rows
        ]
    users.users.update(
        {
            "ann": User(id=ann.id),
            "bob": User(id=bob.id),
            "mod": User(id=99, permissions=["articles.delete", "articles.edit_any"]),
            "editor": User(id=98, groups=["editors"]),
            "root": User(id=97, is_superuser=True),
            "inactive": User(id=ann.id, is_active=False),
        }
    )
    return {"ann": ann, "bob": bob, "articles": {a.slug: a for a in articles}}
