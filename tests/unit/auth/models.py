"""Models of the auth tests (tables register once on Model.metadata, so one definition each)."""

from __future__ import annotations

from sqlalchemy.orm import Mapped

from core import Field, Model
from core.auth import AbstractUser


class User(AbstractUser):
    __tablename__ = "auth_test_users"

    name: Mapped[str] = Field.string(max_length=100, default="")


class Post(Model):
    __tablename__ = "auth_test_posts"

    id: Mapped[int] = Field.pk()
    title: Mapped[str] = Field.string(max_length=200)
    author_id: Mapped[int] = Field.foreign_key("auth_test_users.id", on_delete="CASCADE")
