"""dependency-injector containers: one per area, composed by `CoreContainer`."""

from core.containers.core import CoreContainer, build_container

__all__ = ("CoreContainer", "build_container")
