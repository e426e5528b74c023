"""Pagination classes: DRF's page-number and limit/offset envelopes `{count, next, previous,
results}`, and the cursor (keyset) envelope `{next, previous, results}`.

A page-number or limit/offset page counts its rows as its class's `count` says: `"exact"` (the
page and the count in one statement where the database allows, the count a scalar subquery),
`"estimated"` (PostgreSQL's planner statistics for a big unfiltered table, exact below
`estimate_threshold`) or `"none"` (no count; `count` is null and `next` comes from reading one
row past the page).
"""

from __future__ import annotations

import base64
import binascii
import json
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Literal, cast

from pydantic_core import to_json
from sqlalchemy import UniqueConstraint
from starlette.datastructures import URL

from core.errors import ConfigurationError, CoreError
from core.models import Q, lookups
from core.ports.repository import Ordering

if TYPE_CHECKING:
    from sqlalchemy import Table

CountStrategy = Literal["exact", "estimated", "none"]


class InvalidPage(CoreError):
    status_code = 404
    code = "invalid_page"
    default_detail = "Invalid page."


class BadPaginationParameter(CoreError):
    status_code = 400
    code = "invalid_pagination"


@dataclass(frozen=True, slots=True)
class Window:
    offset: int
    limit: int
    page: int


# Past these, offsets stop fitting the database's integers; no real client pages that far.
MAX_PAGE = 2**31 - 1
# The database binds OFFSET as a 32-bit integer (PostgreSQL's int4 through asyncpg).
MAX_OFFSET = 2**31 - 1


def _int_param(params: Any, name: str, default: int, minimum: int, maximum: int = MAX_PAGE) -> int:
    raw = params.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise BadPaginationParameter(f"'{name}' must be an integer, got {raw!r}.") from None
    if not minimum <= value <= maximum:
        raise BadPaginationParameter(
            f"'{name}' must be between {minimum} and {maximum}, got {value}."
        )
    return value


def _with_param(url: URL, name: str, value: int) -> str:
    """`url` with `?name=value` set: what `URL.include_query_params` writes, without parsing
    and re-encoding a query when there is none (a list's first page, most often)."""
    text = str(url)
    if "?" not in text and "#" not in text:
        return f"{text}?{name}={value}"
    return str(url.include_query_params(**{name: value}))


class Pagination(ABC):
    """Base class: turns query parameters into a window and builds the envelope's links.

    `count` says how a page counts the rows (see the module's docstring); `estimate_threshold`
    is the table size (planner's estimate) under which `"estimated"` counts exactly.
    """

    query_params: ClassVar[tuple[str, ...]] = ()
    count: ClassVar[CountStrategy] = "exact"
    estimate_threshold: ClassVar[int] = 100_000

    def __init__(self, page_size: int, max_page_size: int) -> None:
        self.page_size = page_size
        self.max_page_size = max_page_size

    @classmethod
    def configure(cls, view: Any) -> None:
        """Check the ViewSet `view` can be paginated this way; raised at route build
        (ConfigurationError)."""
        if cls.count not in ("exact", "estimated", "none"):
            raise ConfigurationError(
                f"{cls.__name__}.count must be 'exact', 'estimated' or 'none', got {cls.count!r}."
            )

    @abstractmethod
    def window(self, params: Any) -> Window: ...

    @abstractmethod
    def links(self, url: URL, window: Window, has_next: bool) -> tuple[str | None, str | None]:
        """The `next` and `previous` links of the page `window`; `has_next` says whether any
        row follows it."""

    # A hook, not abstract: a pagination with nothing to refuse keeps this no-op.
    def check(self, window: Window, count: int) -> None:  # noqa: B027
        """Refuse a page past the last, as DRF does (the first page always exists)."""


class PageNumberPagination(Pagination):
    """`?page=2&page_size=50`; `page_size` is capped at the view's `max_page_size`."""

    page_query_param = "page"
    page_size_query_param = "page_size"
    query_params = ("page", "page_size")

    def window(self, params: Any) -> Window:
        page = _int_param(params, self.page_query_param, 1, 1)
        size = min(
            _int_param(params, self.page_size_query_param, self.page_size, 1), self.max_page_size
        )
        if (page - 1) * size > MAX_OFFSET:
            raise InvalidPage()  # past any table this database can page through
        return Window(offset=(page - 1) * size, limit=size, page=page)

    def check(self, window: Window, count: int) -> None:
        if window.page > 1 and window.offset >= count:
            raise InvalidPage()

    def links(self, url: URL, window: Window, has_next: bool) -> tuple[str | None, str | None]:
        next_ = None
        if has_next:
            next_ = _with_param(url, self.page_query_param, window.page + 1)
        previous = None
        if window.page > 1:
            previous = (
                str(url.remove_query_params(self.page_query_param))
                if window.page == 2
                else str(url.include_query_params(**{self.page_query_param: window.page - 1}))
            )
        return next_, previous


class LimitOffsetPagination(Pagination):
    """`?limit=50&offset=100`; `limit` is capped at the view's `max_page_size`."""

    query_params = ("limit", "offset")

    def window(self, params: Any) -> Window:
        limit = min(_int_param(params, "limit", self.page_size, 1), self.max_page_size)
        offset = _int_param(params, "offset", 0, 0, MAX_OFFSET)
        return Window(offset=offset, limit=limit, page=offset // limit + 1)

    def links(self, url: URL, window: Window, has_next: bool) -> tuple[str | None, str | None]:
        next_ = None
        if has_next:
            next_ = str(
                url.include_query_params(limit=window.limit, offset=window.offset + window.limit)
            )
        previous = None
        if window.offset > 0:
            previous = str(
                url.include_query_params(
                    limit=window.limit, offset=max(window.offset - window.limit, 0)
                )
            )
        return next_, previous


def _unique_columns(model: type[Any]) -> frozenset[str]:
    """Columns whose value names one row: a single-column primary key, `unique=True`, or the
    only column of a unique constraint or index."""
    mapper = lookups.mapper_of(model)
    table = cast("Table", mapper.local_table)
    found: set[Any] = set()
    if len(mapper.primary_key) == 1:
        found.add(mapper.primary_key[0])
    found.update(column for column in table.columns if column.unique)
    for constraint in table.constraints:
        if isinstance(constraint, UniqueConstraint) and len(constraint.columns) == 1:
            found.update(constraint.columns)
    for index in table.indexes:
        if index.unique and len(index.columns) == 1:
            found.update(index.columns)
    return frozenset(mapper.get_property_by_column(c).key for c in found)


def cursor_ordering_error(model: type[Any], ordering: Sequence[Ordering]) -> str | None:
    """Why `ordering` cannot carry a cursor, or None: the last column must be unique (so a
    position names one row) and every column NOT NULL (so `>` and `<` order every row)."""
    spelled = ",".join(("-" if o.descending else "") + o.column for o in ordering) or "none"
    if not ordering or ordering[-1].column not in _unique_columns(model):
        return (
            f"Cursor pagination needs an ordering that ends in a unique field of "
            f"{model.__name__} (its primary key, say); {spelled!r} does not."
        )
    table = lookups.mapper_of(model).columns
    for o in ordering:
        if table[o.column].nullable:
            return (
                f"Cursor pagination cannot order {model.__name__} by {o.column!r}: the column "
                f"may be NULL."
            )
    return None


@dataclass(frozen=True, slots=True)
class Cursor:
    """A position in an ordering: the values of the ordering's columns in one row, whether the
    page runs backwards from it (`reverse`), and whether it includes that row."""

    position: tuple[Any, ...] | None = None
    reverse: bool = False
    inclusive: bool = False

    def encode(self) -> str:
        data = {"p": list(self.position or ()), "r": int(self.reverse), "i": int(self.inclusive)}
        return base64.urlsafe_b64encode(to_json(data)).decode().rstrip("=")

    @classmethod
    def decode(cls, token: str, width: int) -> Cursor:
        try:
            raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
            data = json.loads(raw)
            position = data["p"]
            if not isinstance(position, list) or len(position) != width:
                raise ValueError("width")
            return cls(tuple(position), bool(data["r"]), bool(data["i"]))
        except (binascii.Error, ValueError, TypeError, KeyError):
            raise BadPaginationParameter("Invalid cursor.") from None


class CursorPagination(Pagination):
    """`?cursor=<opaque>&page_size=50`: DRF's keyset pagination. No count, no OFFSET: each page
    reads the rows after (or before) the last one seen, so a page costs the same however deep it
    is and rows inserted meanwhile never shift or repeat what a client pages through.

    The list's ordering (the ViewSet's `ordering`, a client's `?ordering=`, or the primary key)
    must end in a unique column, and none of its columns may be NULL; otherwise route build
    raises ConfigurationError, and a client's `?ordering=` answers 400.
    """

    cursor_query_param = "cursor"
    page_size_query_param = "page_size"
    query_params = ("cursor", "page_size")
    count = "none"

    @classmethod
    def configure(cls, view: Any) -> None:
        ordering = lookups.resolve_ordering(
            view.model, view.ordering or (lookups.primary_key(view.model),)
        )
        if (error := cursor_ordering_error(view.model, ordering)) is not None:
            raise ConfigurationError(f"{view.__name__}: {error}")

    def window(self, params: Any) -> Window:
        size = min(
            _int_param(params, self.page_size_query_param, self.page_size, 1), self.max_page_size
        )
        return Window(offset=0, limit=size, page=1)

    def cursor(self, params: Any, width: int) -> Cursor:
        token = params.get(self.cursor_query_param)
        return Cursor() if not token else Cursor.decode(token, width)

    @staticmethod
    def keyset(
        ordering: Sequence[Ordering], cursor: Cursor
    ) -> tuple[tuple[Ordering, ...], Q | None]:
        """The ordering to read in, and the condition on the rows past the cursor's position."""
        read = tuple(
            Ordering(o.column, not o.descending) if cursor.reverse else o for o in ordering
        )
        if cursor.position is None:
            return read, None
        alternatives = []
        for k, o in enumerate(read):
            op = "lt" if o.descending else "gt"
            if cursor.inclusive and k == len(read) - 1:
                op += "e"
            equal = {read[i].column: cursor.position[i] for i in range(k)}
            alternatives.append(Q(**equal, **{f"{o.column}__{op}": cursor.position[k]}))
        condition = alternatives[0]
        for alternative in alternatives[1:]:
            condition = condition | alternative
        return read, condition

    def cursor_links(
        self,
        url: URL,
        cursor: Cursor,
        first: tuple[Any, ...] | None,
        last: tuple[Any, ...] | None,
        more: bool,
    ) -> tuple[str | None, str | None]:
        """`next` and `previous` for a page whose first and last rows are at `first` and
        `last` (None when it is empty); `more` says rows lie beyond it in its reading direction."""
        has_next = more if not cursor.reverse else cursor.position is not None
        has_previous = more if cursor.reverse else cursor.position is not None
        param = self.cursor_query_param
        next_ = previous = None
        if has_next:
            if last is not None:
                next_ = Cursor(last).encode()
            elif cursor.position is not None:  # an empty page read backwards: from its position
                next_ = Cursor(cursor.position, inclusive=True).encode()
        if has_previous:
            if first is not None:
                previous = Cursor(first, reverse=True).encode()
            elif cursor.position is not None:  # an empty page: back from where it started
                previous = Cursor(cursor.position, reverse=True, inclusive=True).encode()
        return (
            None if next_ is None else str(url.include_query_params(**{param: next_})),
            None if previous is None else str(url.include_query_params(**{param: previous})),
        )

    def links(self, url: URL, window: Window, has_next: bool) -> tuple[str | None, str | None]:
        raise NotImplementedError("CursorPagination builds its links with cursor_links().")
