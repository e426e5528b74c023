"""Core Framework: Django-REST-style APIs on FastAPI."""

from core.app import CoreApp
from core.models import Field, Model

__all__ = ("CoreApp", "Field", "Model")
