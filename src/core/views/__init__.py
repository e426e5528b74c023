"""Views: ViewSets, APIView, @action, pagination."""

from core.views.actions import action
from core.views.base import APIView, ViewSet
from core.views.pagination import (
    CursorPagination,
    LimitOffsetPagination,
    PageNumberPagination,
    Pagination,
)
from core.views.viewsets import GenericViewSet, ModelViewSet, ReadOnlyModelViewSet

__all__ = (
    "APIView",
    "CursorPagination",
    "GenericViewSet",
    "LimitOffsetPagination",
    "ModelViewSet",
    "PageNumberPagination",
    "Pagination",
    "ReadOnlyModelViewSet",
    "ViewSet",
    "action",
)
