"""Testing helpers: the pytest plugin's fixtures, the in-memory adapters as public fakes, and
one contract suite per port (`core.testing.contracts`, loaded on first use)."""

import importlib
from typing import TYPE_CHECKING, Any

from core.adapters.memory.broker import InMemoryEventBroker
from core.adapters.memory.database import InMemoryDatabase
from core.adapters.memory.idempotency import InMemoryIdempotencyStore
from core.adapters.memory.ratelimit import InMemoryRateLimiter
from core.adapters.memory.repository import InMemoryRepository
from core.adapters.memory.tasks import InMemoryTaskQueue, ManualClock
from core.adapters.memory.tokens import InMemoryTokenStore
from core.testing.plugin import isolated_declarations, test_settings

if TYPE_CHECKING:
    from core.testing.contracts import (
        BrokerContract,
        IdempotencyStoreContract,
        Inbox,
        PasswordHasherContract,
        RateLimiterContract,
        RepositoryContract,
        TaskQueueContract,
        TaskQueueHarness,
        TokenBackendContract,
        TokenStoreContract,
    )


_CONTRACTS = frozenset(
    {
        "BrokerContract",
        "IdempotencyStoreContract",
        "Inbox",
        "PasswordHasherContract",
        "RateLimiterContract",
        "RepositoryContract",
        "TaskQueueContract",
        "TaskQueueHarness",
        "TokenBackendContract",
        "TokenStoreContract",
    }
)

__all__ = (
    "BrokerContract",
    "IdempotencyStoreContract",
    "InMemoryDatabase",
    "InMemoryEventBroker",
    "InMemoryIdempotencyStore",
    "InMemoryRateLimiter",
    "InMemoryRepository",
    "InMemoryTaskQueue",
    "InMemoryTokenStore",
    "Inbox",
    "ManualClock",
    "PasswordHasherContract",
    "RateLimiterContract",
    "RepositoryContract",
    "TaskQueueContract",
    "TaskQueueHarness",
    "TokenBackendContract",
    "TokenStoreContract",
    "isolated_declarations",
    "test_settings",
)


def __getattr__(name: str) -> Any:
    # The suites import pytest, and the Repository suite its models (tables on
    # Model.metadata): each loads when a test asks for it, never with `import core.testing`.
    if name in _CONTRACTS:
        contracts = importlib.import_module("core.testing.contracts")
        return getattr(contracts, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
