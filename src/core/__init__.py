"""Core Framework: Django-REST-style APIs on FastAPI."""

from core.app import CoreApp
from core.context import setup, shutdown
from core.models import Field, Model
from core.routing import AutoRouter
from core.views import APIView, ModelViewSet, action

__all__ = (
    "APIView",
    "AutoRouter",
    "CoreApp",
    "Field",
    "Model",
    "ModelViewSet",
    "action",
    "setup",
    "shutdown",
)
