"""The posts resource the framework serves in every benchmark: Model, schemas and ModelViewSet."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict
from pydantic import Field as PydanticField
from sqlalchemy.orm import Mapped

from core import Field, Model, ModelViewSet


class Post(Model):
    __tablename__ = "bench_posts"

    id: Mapped[int] = Field.pk()
    title: Mapped[str] = Field.string(max_length=200)
    content: Mapped[str] = Field.text()
    is_published: Mapped[bool] = Field.boolean(default=False)
    views: Mapped[int] = Field.integer(default=0)


class PostIn(BaseModel):
    title: str = PydanticField(max_length=200)
    content: str
    is_published: bool = False
    views: int = 0


class PostOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    title: str
    content: str
    is_published: bool
    views: int


class PostViewSet(ModelViewSet):
    model = Post
    input_schema = PostIn
    output_schema = PostOut
    max_page_size = 100
