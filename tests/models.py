"""Models shared by the test suite: the Repository contract's own, which core.testing ships,
and the Note of the ownership and hostile-input tests."""

from __future__ import annotations

import datetime

from sqlalchemy.orm import Mapped

from core import Field, Model
from core.testing.contracts.models import Article, Author, Comment, Document

__all__ = ("Article", "Author", "Comment", "Document", "Note")


class Note(Model):
    """Owned by an author: the model of the ownership and hostile-input tests."""

    __tablename__ = "test_notes"

    id: Mapped[int] = Field.pk()
    title: Mapped[str] = Field.string(max_length=50)
    slug: Mapped[str] = Field.string(max_length=50, unique=True)
    status: Mapped[str] = Field.string(max_length=20, default="draft")
    priority: Mapped[int] = Field.integer(default=0)
    score: Mapped[float | None] = Field.float_()
    owner_id: Mapped[int] = Field.foreign_key("test_authors.id", on_delete="CASCADE")
    created_at: Mapped[datetime.datetime] = Field.datetime(auto_now_add=True)
