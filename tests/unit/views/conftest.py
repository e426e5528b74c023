"""An app serving the test models through ViewSets, on the in-memory backends."""

from __future__ import annotations

import datetime
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from pydantic import BaseModel, ConfigDict
from starlette.requests import Request

from core import APIView, AutoRouter, CoreApp, ModelViewSet, action
from core.permissions import AllowAny, HasPermission, IsAuthenticated, IsInGroup, IsOwner
from core.testing import test_settings
from core.views import LimitOffsetPagination, ReadOnlyModelViewSet
from tests.models import Article, Author, Document


class ArticleInput(BaseModel):
    title: str
    slug: str
    content: str | None = None
    views: int = 0
    is_published: bool = False
    author_id: int


class ArticleOutput(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    title: str
    slug: str
    views: int
    is_published: bool
    author_id: int
    created_at: datetime.datetime


class ArticleViewSet(ModelViewSet):
    model = Article
    input_schema = ArticleInput
    output_schema = ArticleOutput
    tags = ["Articles"]
    permission_classes = [IsAuthenticated]
    permission_classes_by_action = {
        "list": [AllowAny],
        "retrieve": [AllowAny],
        "update": [IsAuthenticated, IsOwner],
        "partial_update": [IsOwner | HasPermission("articles.edit_any")],
        "destroy": [HasPermission("articles.delete")],
    }
    unique_fields = ["slug"]
    page_size = 2
    max_page_size = 3
    filterset_fields = ["is_published", "author_id", "views"]
    search_fields = ["title", "content"]
    ordering_fields = ["views", "title", "id"]

    @action(methods=["POST"], detail=True, permission_classes=[IsAuthenticated])
    async def publish(self, request: Request, db: Any, **kwargs: Any) -> Any:
        article = await self.get_object(db, **kwargs)
        article.is_published = True
        await article.save(db)
        return {"published": True}

    @action(methods=["GET"], detail=False, permission_classes=[AllowAny])
    async def featured(self, request: Request, db: Any, **kwargs: Any) -> Any:
        articles = (
            await Article.objects.using(db).filter(is_published=True, views__gt=100).limit(5).all()
        )
        return [ArticleOutput.model_validate(a).model_dump(mode="json") for a in articles]

    @action(
        methods=["POST"],
        detail=False,
        permission_classes=[IsInGroup("editors")],
        url_path="bulk-hide",
    )
    async def bulk_hide(self, request: Request, db: Any, **kwargs: Any) -> Any:
        body = await request.json()
        hidden = (
            await Article.objects.using(db).filter(id__in=body["ids"]).update(is_published=False)
        )
        return {"hidden": hidden}

    @action(methods=["GET"], detail=True)
    async def raw(self, request: Request, db: Any, **kwargs: Any) -> Any:
        return await self.get_object(db, **kwargs)  # a model instance: rendered with output_schema


class AuthorViewSet(ModelViewSet):
    """No schemas declared: both are derived from the model."""

    model = Author
    pagination_class = LimitOffsetPagination
    page_size = 2


class DocumentViewSet(ReadOnlyModelViewSet):
    model = Document
    lookup_field = "uuid"


class HealthView(APIView):
    permission_classes = [AllowAny]
    tags = ["System"]

    async def get(self, request: Request, **kwargs: Any) -> Any:
        return {"status": "healthy"}

    async def post(self, request: Request, **kwargs: Any) -> Any:
        return {"echo": await request.json()}


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


def build_app() -> CoreApp:
    articles = AutoRouter(prefix="/articles", tags=["Articles"])
    articles.register("", ArticleViewSet, basename="article")
    api = AutoRouter(prefix="/api/v1")
    api.include_router(articles)
    api.register("/authors", AuthorViewSet)
    api.register("/documents", DocumentViewSet)
    api.register("/health", HealthView)
    return CoreApp(settings=test_settings(), routers=[api], title="Test API")


@pytest.fixture
def users() -> HeaderAuthenticator:
    return HeaderAuthenticator()


@pytest.fixture
async def app(users: HeaderAuthenticator) -> AsyncIterator[CoreApp]:
    application = build_app()
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
