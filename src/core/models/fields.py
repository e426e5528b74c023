"""Field: Django-flavoured shortcuts for SQLAlchemy's `mapped_column`.

The column type follows the `Mapped[...]` annotation; a `Field` call only adds what the
annotation cannot say (length, uniqueness, defaults, foreign keys).
"""

from __future__ import annotations

import uuid as _uuid
from collections.abc import Callable
from datetime import UTC
from datetime import datetime as _datetime
from typing import Any, Literal

from sqlalchemy import (
    JSON,
    Boolean,
    Date,
    Float,
    ForeignKey,
    Integer,
    Numeric,
    String,
    Text,
    Uuid,
    false,
    func,
    true,
)
from sqlalchemy import (
    text as sql_text,
)
from sqlalchemy.orm import MappedColumn, mapped_column, relationship

from core.models.relations import EXPLICIT
from core.models.types import UTCDateTime

OnDelete = Literal["CASCADE", "SET NULL", "RESTRICT", "NO ACTION", "SET DEFAULT"]
_MISSING: Any = object()


def _now() -> _datetime:
    return _datetime.now(UTC)


def _server_default(value: Any) -> Any:
    # A literal default also goes into the DDL, so adding a NOT NULL column to a table that
    # already has rows migrates without hand edits.
    if isinstance(value, bool):
        return true() if value else false()
    if isinstance(value, int | float):
        return sql_text(repr(value))
    if isinstance(value, str):
        return value
    return None


def _documented(kw: dict[str, Any]) -> dict[str, Any]:
    # `examples=[...]` is kept in the column's info: the schemas derived from the model show
    # them in OpenAPI (as they show `doc=` as the field's description).
    examples = kw.pop("examples", None)
    if examples is not None:
        kw["info"] = {**kw.get("info", {}), "examples": list(examples)}
    return kw


def _column(type_: Any, *args: Any, default: Any = _MISSING, **kw: Any) -> MappedColumn[Any]:
    kw = _documented(kw)
    if default is not _MISSING:
        kw["default"] = default
        if not callable(default) and default is not None and "server_default" not in kw:
            server_default = _server_default(default)
            if server_default is not None:
                kw["server_default"] = server_default
    if type_ is None:
        return mapped_column(*args, **kw)
    return mapped_column(type_, *args, **kw)


class Field:
    """Column shortcuts. Every keyword SQLAlchemy's `mapped_column` takes passes through.

    Each also takes `examples=[...]` and SQLAlchemy's `doc="..."`: the schemas derived from
    the model carry them, so OpenAPI shows them as the field's examples and description.

    Example:
        >>> from sqlalchemy.orm import Mapped
        >>> from core import Field, Model
        >>> class Post(Model):
        ...     __tablename__ = "doc_posts"
        ...     id: Mapped[int] = Field.pk()
        ...     title: Mapped[str] = Field.string(max_length=200, examples=["Hello"])
    """

    @staticmethod
    def pk(*, autoincrement: bool | Literal["auto"] = "auto", **kw: Any) -> MappedColumn[Any]:
        """Primary key; integer autoincrement for `Mapped[int]`, a uuid4 for `Mapped[uuid.UUID]`
        when given `default=uuid.uuid4`."""
        return mapped_column(primary_key=True, autoincrement=autoincrement, **_documented(kw))

    @staticmethod
    def string(
        max_length: int = 255,
        *,
        unique: bool = False,
        index: bool = False,
        nullable: bool | None = None,
        default: Any = _MISSING,
        **kw: Any,
    ) -> MappedColumn[Any]:
        return _column(
            String(max_length), unique=unique, index=index, nullable=nullable, default=default, **kw
        )

    @staticmethod
    def text(
        *, nullable: bool | None = None, default: Any = _MISSING, **kw: Any
    ) -> MappedColumn[Any]:
        return _column(Text(), nullable=nullable, default=default, **kw)

    @staticmethod
    def integer(
        *,
        unique: bool = False,
        index: bool = False,
        nullable: bool | None = None,
        default: Any = _MISSING,
        **kw: Any,
    ) -> MappedColumn[Any]:
        return _column(
            Integer(), unique=unique, index=index, nullable=nullable, default=default, **kw
        )

    @staticmethod
    def float_(
        *, index: bool = False, nullable: bool | None = None, default: Any = _MISSING, **kw: Any
    ) -> MappedColumn[Any]:
        return _column(Float(), index=index, nullable=nullable, default=default, **kw)

    @staticmethod
    def boolean(
        *, index: bool = False, nullable: bool | None = None, default: Any = _MISSING, **kw: Any
    ) -> MappedColumn[Any]:
        return _column(Boolean(), index=index, nullable=nullable, default=default, **kw)

    @staticmethod
    def datetime(
        *,
        auto_now_add: bool = False,
        auto_now: bool = False,
        index: bool = False,
        nullable: bool | None = None,
        default: Any = _MISSING,
        **kw: Any,
    ) -> MappedColumn[Any]:
        """A timezone-aware timestamp. `auto_now_add` stamps inserts; `auto_now` also stamps
        updates."""
        if auto_now_add or auto_now:
            default = _now
            # Also in the DDL: rows inserted by hand, or already there when a migration adds
            # the column, get a timestamp too.
            kw.setdefault("server_default", func.now())
        if auto_now:
            kw.setdefault("onupdate", _now)
        return _column(UTCDateTime(), index=index, nullable=nullable, default=default, **kw)

    @staticmethod
    def date(
        *, index: bool = False, nullable: bool | None = None, default: Any = _MISSING, **kw: Any
    ) -> MappedColumn[Any]:
        return _column(Date(), index=index, nullable=nullable, default=default, **kw)

    @staticmethod
    def uuid(
        *,
        unique: bool = False,
        index: bool = False,
        nullable: bool | None = None,
        default: Any = _uuid.uuid4,
        **kw: Any,
    ) -> MappedColumn[Any]:
        """A UUID column, a fresh uuid4 by default."""
        return _column(Uuid(), unique=unique, index=index, nullable=nullable, default=default, **kw)

    @staticmethod
    def json(
        *, nullable: bool | None = None, default: Any = _MISSING, **kw: Any
    ) -> MappedColumn[Any]:
        return _column(JSON(), nullable=nullable, default=default, **kw)

    @staticmethod
    def decimal(
        max_digits: int = 12,
        decimal_places: int = 2,
        *,
        nullable: bool | None = None,
        default: Any = _MISSING,
        **kw: Any,
    ) -> MappedColumn[Any]:
        return _column(
            Numeric(max_digits, decimal_places, asdecimal=True),
            nullable=nullable,
            default=default,
            **kw,
        )

    @staticmethod
    def foreign_key(
        target: str,
        *,
        on_delete: OnDelete | None = None,
        index: bool = True,
        nullable: bool | None = None,
        default: Any = _MISSING,
        **kw: Any,
    ) -> MappedColumn[Any]:
        """A column referencing `"table.column"`; its type follows the annotation."""
        return _column(
            None,
            ForeignKey(target, ondelete=on_delete),
            index=index,
            nullable=nullable,
            default=default,
            **kw,
        )

    @staticmethod
    def relationship(target: str | type[Any] | Callable[[], Any], **kw: Any) -> Any:
        """A relationship, loaded only when a query asks for it: `select_related` (a JOIN) or
        `prefetch_related` (one more statement), or a ViewSet whose output schema shows it.

        Reading it unloaded raises `RelationNotLoadedError` naming those methods (`lazy=
        "explicit"`, see `core.models.relations`); `await obj.awaitable_attrs.<name>` loads it for
        one object. Pass SQLAlchemy's own `lazy=` ("selectin", "joined", ...) to load it always.

        Deleting a row leaves its dependants to the foreign key's `on_delete` in the database
        (`passive_deletes`), as Django users expect, instead of the ORM nulling them first.
        """
        kw.setdefault("lazy", EXPLICIT)
        kw.setdefault("passive_deletes", True)
        return relationship(target, **kw)


__all__ = ("Field",)
