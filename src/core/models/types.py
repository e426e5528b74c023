"""Column types the framework adds to SQLAlchemy's."""

from __future__ import annotations

import datetime
from typing import Any

from sqlalchemy import DateTime
from sqlalchemy.types import TypeDecorator


class UTCDateTime(TypeDecorator[datetime.datetime]):
    """A timezone-aware timestamp on every database, stored in UTC.

    PostgreSQL keeps the offset (`timestamptz`); SQLite keeps none, so without this a value
    written aware would come back naive and compare or serialize differently per backend.
    Naive values are taken to be UTC.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Any) -> Any:
        if isinstance(value, datetime.datetime):
            if value.tzinfo is None:
                return value.replace(tzinfo=datetime.UTC)
            return value.astimezone(datetime.UTC)
        return value

    def process_result_value(self, value: Any, dialect: Any) -> Any:
        if isinstance(value, datetime.datetime) and value.tzinfo is None:
            return value.replace(tzinfo=datetime.UTC)
        return value

    @property
    def python_type(self) -> type[datetime.datetime]:
        return datetime.datetime
