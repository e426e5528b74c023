"""Pagination classes: DRF's page-number and limit/offset envelopes `{count, next, previous,
results}`."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, ClassVar

from starlette.datastructures import URL

from core.errors import CoreError


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
MAX_OFFSET = 2**53


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


class Pagination(ABC):
    """Base class: turns query parameters into a window and builds the envelope's links."""

    query_params: ClassVar[tuple[str, ...]] = ()

    def __init__(self, page_size: int, max_page_size: int) -> None:
        self.page_size = page_size
        self.max_page_size = max_page_size

    @abstractmethod
    def window(self, params: Any) -> Window: ...

    @abstractmethod
    def links(self, url: URL, window: Window, count: int) -> tuple[str | None, str | None]: ...

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
        return Window(offset=(page - 1) * size, limit=size, page=page)

    def check(self, window: Window, count: int) -> None:
        if window.page > 1 and window.offset >= count:
            raise InvalidPage()

    def links(self, url: URL, window: Window, count: int) -> tuple[str | None, str | None]:
        next_ = None
        if window.offset + window.limit < count:
            next_ = str(url.include_query_params(**{self.page_query_param: window.page + 1}))
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

    def links(self, url: URL, window: Window, count: int) -> tuple[str | None, str | None]:
        next_ = None
        if window.offset + window.limit < count:
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
