"""Testing helpers: the pytest plugin's fixtures and the in-memory adapters as public fakes."""

from core.adapters.memory.broker import InMemoryEventBroker
from core.adapters.memory.database import InMemoryDatabase
from core.adapters.memory.repository import InMemoryRepository
from core.adapters.memory.tasks import InMemoryTaskQueue, ManualClock
from core.testing.plugin import isolated_declarations, test_settings

__all__ = (
    "InMemoryDatabase",
    "InMemoryEventBroker",
    "InMemoryRepository",
    "InMemoryTaskQueue",
    "ManualClock",
    "isolated_declarations",
    "test_settings",
)
