"""The models the Repository contract runs on (tables `test_authors`, `test_articles`,
`test_comments`, `test_documents`, `test_teams`, `test_memberships`), registered on
`Model.metadata` when this module is imported.

A backend's test creates their tables (`Model.metadata`) before the suite runs.
"""

from __future__ import annotations

import datetime
import decimal
import uuid
from typing import Any

from sqlalchemy.orm import Mapped

from core import Field, Model


class Author(Model):
    __tablename__ = "test_authors"

    id: Mapped[int] = Field.pk()
    email: Mapped[str] = Field.string(max_length=120, unique=True)
    name: Mapped[str] = Field.string(max_length=80)
    is_active: Mapped[bool] = Field.boolean(default=True)

    posts: Mapped[list[Article]] = Field.relationship("Article", back_populates="author")


class Article(Model):
    __tablename__ = "test_articles"

    id: Mapped[int] = Field.pk()
    title: Mapped[str] = Field.string(max_length=200)
    slug: Mapped[str] = Field.string(max_length=200, unique=True)
    content: Mapped[str | None] = Field.text()
    views: Mapped[int] = Field.integer(default=0)
    rating: Mapped[float | None] = Field.float_()
    is_published: Mapped[bool] = Field.boolean(default=False)
    author_id: Mapped[int] = Field.foreign_key("test_authors.id", on_delete="CASCADE")
    created_at: Mapped[datetime.datetime] = Field.datetime(auto_now_add=True)
    updated_at: Mapped[datetime.datetime] = Field.datetime(auto_now=True)

    author: Mapped[Author] = Field.relationship("Author", back_populates="posts")
    comments: Mapped[list[Comment]] = Field.relationship("Comment")


class Comment(Model):
    """Reaches its article through a bare foreign key (no relationship), Django style."""

    __tablename__ = "test_comments"

    id: Mapped[int] = Field.pk()
    article_id: Mapped[int] = Field.foreign_key("test_articles.id", on_delete="CASCADE")
    body: Mapped[str] = Field.text()


class Document(Model):
    __tablename__ = "test_documents"

    uuid: Mapped[uuid.UUID] = Field.pk(default=uuid.uuid4)
    name: Mapped[str] = Field.string(max_length=100)
    meta: Mapped[dict[str, Any] | None] = Field.json()
    price: Mapped[decimal.Decimal | None] = Field.decimal(10, 2)
    due: Mapped[datetime.date | None] = Field.date()


class Team(Model):
    """Led by an author (a nullable to-one), with members through a link model."""

    __tablename__ = "test_teams"

    id: Mapped[int] = Field.pk()
    name: Mapped[str] = Field.string(max_length=80)
    lead_id: Mapped[int | None] = Field.foreign_key("test_authors.id", on_delete="SET NULL")

    lead: Mapped[Author | None] = Field.relationship("Author")
    members: Mapped[list[Membership]] = Field.relationship(
        "Membership", back_populates="team", order_by="Membership.id"
    )


class Membership(Model):
    """An author in a team: a link model (its two to-one relations make a many-to-many)."""

    __tablename__ = "test_memberships"

    id: Mapped[int] = Field.pk()
    team_id: Mapped[int] = Field.foreign_key("test_teams.id", on_delete="CASCADE")
    author_id: Mapped[int] = Field.foreign_key("test_authors.id", on_delete="CASCADE")
    role: Mapped[str] = Field.string(max_length=20, default="member")

    team: Mapped[Team] = Field.relationship("Team", back_populates="members")
    author: Mapped[Author] = Field.relationship("Author")
