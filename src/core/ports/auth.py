"""Authentication-backend port."""

from __future__ import annotations

from abc import abstractmethod
from typing import Any, ClassVar, Protocol, runtime_checkable


@runtime_checkable
class AuthBackend(Protocol):
    """Turns credentials (a Bearer token, an email and password, ...) into a user.

    Backends form a chain: the first to return a user wins; None means "not mine, ask the next".
    """

    name: ClassVar[str]

    @abstractmethod
    async def authenticate(self, request: Any, db: Any, **credentials: Any) -> Any | None: ...

    @abstractmethod
    async def get_user(self, user_id: Any, db: Any) -> Any | None: ...
