"""ViewSets over the test models, shared by the view tests and the schemathesis run."""

from __future__ import annotations

import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict
from starlette.requests import Request

from core import APIView, AutoRouter, CoreApp, ModelViewSet, action
from core.permissions import AllowAny, HasPermission, IsAuthenticated, IsInGroup, IsOwner
from core.settings import Settings
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


def build_app(settings: Settings, **options: Any) -> CoreApp:
    articles = AutoRouter(prefix="/articles", tags=["Articles"])
    articles.register("", ArticleViewSet, basename="article")
    api = AutoRouter(prefix="/api/v1")
    api.include_router(articles)
    api.register("/authors", AuthorViewSet)
    api.register("/documents", DocumentViewSet)
    api.register("/health", HealthView)
    return CoreApp(settings=settings, routers=[api], title="Test API", **options)
