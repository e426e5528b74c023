"""ViewSets over the test models, shared by the view tests and the schemathesis run."""

from __future__ import annotations

import datetime
import enum
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator
from starlette.requests import Request

from core import APIView, AutoRouter, CoreApp, ModelViewSet, action
from core.permissions import AllowAny, HasPermission, IsAuthenticated, IsInGroup, IsOwner
from core.settings import Settings
from core.views import LimitOffsetPagination, ReadOnlyModelViewSet
from tests.filtering import ArticleFilter
from tests.models import Article, Author, Document, Note


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


class BulkHide(BaseModel):
    """The articles to hide."""

    model_config = ConfigDict(extra="forbid")

    ids: list[Annotated[int, Field(ge=-(2**31), le=2**31 - 1)]] = Field(max_length=100)


class Echo(BaseModel):
    """Any JSON object."""

    model_config = ConfigDict(extra="allow")


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
        request_model=BulkHide,
    )
    async def bulk_hide(self, request: Request, db: Any, **kwargs: Any) -> Any:
        # Strict, as the framework validates bodies: JSON's own types, as documented.
        body = BulkHide.model_validate(await request.json(), strict=True).model_dump()
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
        Echo.model_validate(await request.json(), strict=True)  # an object, as documented
        return {"echo": await request.json()}

    @classmethod
    def request_model_for(cls, handler: str) -> type[BaseModel] | None:
        return Echo if handler == "post" else None


class NoteViewSet(ModelViewSet):
    """Derived schemas; IsOwner guards writes, so `owner_id` is server-owned."""

    model = Note
    permission_classes = [IsAuthenticated]
    permission_classes_by_action = {
        "update": [IsAuthenticated, IsOwner],
        "destroy": [IsOwner],
    }
    unique_fields = ["slug"]

    @action(methods=["POST"], detail=True, permission_classes=[IsOwner])
    async def archive(self, request: Request, db: Any, **kwargs: Any) -> Any:
        note = await self.get_object(db, **kwargs)
        note.status = "archived"
        await note.save(db)
        return {"archived": True}


class Status(enum.Enum):
    DRAFT = "draft"
    PUBLISHED = "published"


class NoteInput(BaseModel):
    """An explicit schema with every kind of constraint PATCH must keep."""

    model_config = ConfigDict(extra="forbid")

    title: Annotated[str, Field(min_length=1, max_length=20)]
    slug: Annotated[str, Field(pattern=r"^[a-z0-9-]+$", max_length=50)]
    status: Status = Status.DRAFT
    priority: Annotated[int, Field(ge=0, le=5)] = 0
    score: float | None = None
    secret_code: SecretStr | None = None

    @field_validator("title")
    @classmethod
    def _no_shouting(cls, value: str) -> str:
        if value.isupper():
            raise ValueError("Do not shout.")
        return value

    @model_validator(mode="after")
    def _published_needs_priority(self) -> NoteInput:
        if self.status is Status.PUBLISHED and self.priority == 0:
            raise ValueError("A published note needs a priority.")
        return self


class CheckedNoteViewSet(ModelViewSet):
    """The explicit schema; the owner comes from the user (IsOwner's field, filled on create)."""

    model = Note
    input_schema = NoteInput
    permission_classes = [IsOwner(scope=True)]
    permission_classes_by_action = {"create": [IsAuthenticated]}
    max_body_size = 4096

    async def perform_create(self, db: Any, data: dict[str, Any]) -> Any:
        data.pop("secret_code", None)
        data["status"] = data["status"].value if "status" in data else "draft"
        return await super().perform_create(db, data)

    async def perform_update(self, db: Any, instance: Any, data: dict[str, Any]) -> Any:
        data.pop("secret_code", None)
        if "status" in data:
            data["status"] = data["status"].value
        return await super().perform_update(db, instance, data)


class OpenNoteViewSet(ReadOnlyModelViewSet):
    model = Note
    permission_classes = [AllowAny]


def build_notes_app(settings: Settings, **options: Any) -> CoreApp:
    api = AutoRouter(prefix="/api/v1")
    api.register("/notes", NoteViewSet, basename="note")
    api.register("/checked-notes", CheckedNoteViewSet, basename="checked-note")
    api.register("/open-notes", OpenNoteViewSet, basename="open-note")
    api.register("/authors", AuthorViewSet)
    api.register("/health", HealthView)
    return CoreApp(settings=settings, routers=[api], title="Notes API", **options)


class FilteredArticles(ReadOnlyModelViewSet):
    """Articles through a FilterSet of every kind of filter (see tests/filtering.py)."""

    model = Article
    filterset_class = ArticleFilter
    output_schema = ArticleOutput


def build_app(settings: Settings, **options: Any) -> CoreApp:
    articles = AutoRouter(prefix="/articles", tags=["Articles"])
    articles.register("", ArticleViewSet, basename="article")
    api = AutoRouter(prefix="/api/v1")
    api.include_router(articles)
    api.register("/authors", AuthorViewSet)
    api.register("/documents", DocumentViewSet)
    api.register("/filtered-articles", FilteredArticles, basename="filtered-article")
    api.register("/health", HealthView)
    return CoreApp(settings=settings, routers=[api], title="Test API", **options)
