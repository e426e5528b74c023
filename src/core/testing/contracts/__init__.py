"""Contract suites: one pytest suite per port, the same the built-in adapters pass.

Subclass a suite in a test module of yours and provide its fixture; pytest collects the
inherited tests (name the class `Test...`). A new adapter is done when its suite passes.

Example:
    >>> from core.testing import PasswordHasherContract
    >>> class TestMyHasher(PasswordHasherContract):  # doctest: +SKIP
    ...     @pytest.fixture
    ...     def hasher(self):
    ...         return MyHasher()

These modules import pytest: import them from tests only. Each suite loads on first use; the
Repository suite's models (`core.testing.contracts.models`) join `Model.metadata` only then.
"""

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from core.testing.contracts.broker import BrokerContract, Inbox
    from core.testing.contracts.hashing import PasswordHasherContract
    from core.testing.contracts.idempotency import IdempotencyStoreContract
    from core.testing.contracts.ratelimit import RateLimiterContract
    from core.testing.contracts.repository import RepositoryContract
    from core.testing.contracts.tasks import TaskQueueContract, TaskQueueHarness
    from core.testing.contracts.token_backend import TokenBackendContract
    from core.testing.contracts.token_store import TokenStoreContract

_MODULES = {
    "BrokerContract": "broker",
    "Inbox": "broker",
    "IdempotencyStoreContract": "idempotency",
    "PasswordHasherContract": "hashing",
    "RateLimiterContract": "ratelimit",
    "RepositoryContract": "repository",
    "TaskQueueContract": "tasks",
    "TaskQueueHarness": "tasks",
    "TokenBackendContract": "token_backend",
    "TokenStoreContract": "token_store",
}

__all__ = (
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
)


def __getattr__(name: str) -> Any:
    module = _MODULES.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{module}"), name)
