"""Models: `Model`, `Field`, and the Django-style `QuerySet` over the Repository port."""

from core.models.base import Model
from core.models.fields import Field
from core.models.querysets import Manager, Q, QuerySet
from core.models.relations import RelationNotLoadedError

__all__ = ("Field", "Manager", "Model", "Q", "QuerySet", "RelationNotLoadedError")
