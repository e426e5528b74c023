"""Model: the declarative base every user model subclasses (SQLAlchemy 2 typed mappings)."""

from __future__ import annotations

import datetime
import decimal
import uuid
from typing import TYPE_CHECKING, Any, ClassVar, cast

from sqlalchemy import JSON, MetaData, Numeric, String, Uuid, inspect
from sqlalchemy.ext.asyncio import AsyncAttrs
from sqlalchemy.orm import DeclarativeBase

from core import errors
from core.models.querysets import Manager
from core.models.types import UTCDateTime

if TYPE_CHECKING:
    from core.models.querysets import QuerySet

# Named constraints let Alembic (and SQLite's batch mode) alter and drop them later.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Model(AsyncAttrs, DeclarativeBase):
    """Base class of the project's models, with a Django-like `objects` manager.

    Example:
        >>> from sqlalchemy.orm import Mapped
        >>> from core import Field, Model
        >>> class Tag(Model):
        ...     __tablename__ = "doc_tags"
        ...     id: Mapped[int] = Field.pk()
        ...     name: Mapped[str] = Field.string(max_length=50, unique=True)
        >>> Tag.objects.filter(name__icontains="py").model is Tag
        True
    """

    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map: ClassVar[dict[Any, Any]] = {
        str: String(255),
        datetime.datetime: UTCDateTime(),
        decimal.Decimal: Numeric(12, 2),
        uuid.UUID: Uuid(),
        dict[str, Any]: JSON(),
        list[Any]: JSON(),
    }

    objects: ClassVar[Manager[Any]] = Manager()

    DoesNotExist: ClassVar[type[errors.NotFoundError]] = errors.NotFoundError
    MultipleObjectsReturned: ClassVar[type[errors.MultipleObjectsReturned]] = (
        errors.MultipleObjectsReturned
    )

    def __init_subclass__(cls, **kw: Any) -> None:
        # Each model gets its own DoesNotExist, as in Django, so `except Post.DoesNotExist`
        # does not swallow a missing User; both still subclass the shared NotFoundError.
        cls.DoesNotExist = type(
            "DoesNotExist",
            (cls.DoesNotExist,),
            {"__module__": cls.__module__, "__qualname__": f"{cls.__qualname__}.DoesNotExist"},
        )
        cls.MultipleObjectsReturned = type(
            "MultipleObjectsReturned",
            (cls.MultipleObjectsReturned,),
            {
                "__module__": cls.__module__,
                "__qualname__": f"{cls.__qualname__}.MultipleObjectsReturned",
            },
        )
        super().__init_subclass__(**kw)

    @classmethod
    def query(cls) -> QuerySet[Any]:
        """A fresh QuerySet of this model (the same as `Model.objects`)."""
        return cls.objects

    @property
    def pk(self) -> Any:
        """The primary-key value (a tuple for a composite key)."""
        identity = inspect(self).identity
        if identity is not None:
            return identity[0] if len(identity) == 1 else identity
        # A mapped column always has a key; `ColumnElement.key` is typed optional.
        keys = [getattr(self, cast(str, c.key)) for c in inspect(type(self)).primary_key]
        return keys[0] if len(keys) == 1 else tuple(keys)

    async def save(self, db: Any = None) -> Any:
        """Insert this object, or write its changes; the caller's unit of work commits."""
        return await type(self).objects.using(db)._repository().save(self)

    async def delete(self, db: Any = None) -> None:
        """Delete this object's row."""
        await type(self).objects.using(db)._repository().delete(self)

    async def refresh(self, db: Any = None) -> Any:
        """Reload this object's columns from the database."""
        return await type(self).objects.using(db)._repository().refresh(self)

    def to_dict(self) -> dict[str, Any]:
        """Column values by attribute name."""
        return {attr.key: getattr(self, attr.key) for attr in inspect(type(self)).column_attrs}

    def __repr__(self) -> str:
        try:
            pk = self.pk
        except Exception:  # an unmapped abstract model has no primary key to show
            pk = None
        return f"<{type(self).__name__} pk={pk!r}>"
