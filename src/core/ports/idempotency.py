"""Idempotency-store port: remembers the response of each request sent with an
`Idempotency-Key`, so a retry gets that response instead of doing the work again."""

from __future__ import annotations

import base64
import json
from abc import abstractmethod
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable


@dataclass(frozen=True, slots=True)
class StoredResponse:
    """What a replay answers: the first response's status, the headers that matter and the
    body, byte for byte."""

    status_code: int
    headers: tuple[tuple[str, str], ...]
    body: bytes

    def to_json(self) -> str:
        """One JSON text (the body base64-encoded), for stores that keep strings."""
        return json.dumps(
            {
                "status": self.status_code,
                "headers": [list(pair) for pair in self.headers],
                "body": base64.b64encode(self.body).decode("ascii"),
            }
        )

    @classmethod
    def from_json(cls, text: str | bytes) -> StoredResponse:
        data: dict[str, Any] = json.loads(text)
        return cls(
            int(data["status"]),
            tuple((str(name), str(value)) for name, value in data["headers"]),
            base64.b64decode(data["body"]),
        )


@runtime_checkable
class IdempotencyStore(Protocol):
    """Holds, per storage key, the fingerprint of the request that first used it and, once
    that request finished, its response, for `ttl` seconds.

    The framework calls, per request carrying an `Idempotency-Key`: `claim` before the
    handler runs; then, if the claim is its own, `save` with the response (before the unit of
    work commits when `transactional`, after it commits otherwise) or `release` when the
    request failed and its work was rolled back.

    Guarantees every implementation gives:

    - Of concurrent `claim`s of one key, exactly one returns None (it owns the key), even
      across processes when the store is shared (a database, Redis).
    - A `claim` of a key whose request finished returns its `StoredResponse` when the
      fingerprint is the same, and raises `IdempotencyKeyMismatchError` when not.
    - A `claim` of a key whose request is still running waits for it up to `wait` seconds:
      it then returns that request's response, or None once the key was released (the
      caller owns it now), or raises `IdempotencyKeyInUseError`.
    - An entry counts for `ttl` seconds after it was claimed; after that the key is free
      again (expired entries are ignored before `purge` deletes them).
    - An unreachable store raises `IdempotencyStoreUnavailableError` or, for the database
      store, the database's own `DatabaseUnavailableError`; a driver's error never leaks.

    `transactional` stores (the database one) write in the caller's unit of work (`session`):
    the claim, the data, the outbox rows and the saved response commit together or not at
    all, and a rollback releases the claim by itself. Other stores ignore `session`.
    """

    #: Whether `claim` and `save` write in the caller's unit of work.
    transactional: bool

    @abstractmethod
    async def claim(
        self, session: Any, key: str, fingerprint: str, *, ttl: float, wait: float
    ) -> StoredResponse | None:
        """Take `key` for the request `fingerprint` describes, or find what it answered.

        Returns:
            None when the caller owns the key now (run the request); the stored response of
            the request that used it first (replay it).

        Raises:
            IdempotencyKeyMismatchError: the key was used with another fingerprint.
            IdempotencyKeyInUseError: the request holding the key did not finish within
                `wait` seconds.
        """

    @abstractmethod
    async def save(self, session: Any, key: str, response: StoredResponse, *, ttl: float) -> None:
        """Record the response of the request that claimed `key`; kept `ttl` seconds from
        the claim (at least until `ttl` seconds from now for non-transactional stores)."""

    @abstractmethod
    async def release(self, session: Any, key: str) -> None:
        """Forget the claim of `key`: the next claim owns it. The framework calls it when the
        request failed (non-transactional stores; a transactional one's claim went with the
        rollback) and, in the unit of work, when its response cannot be replayed (streamed)."""

    @abstractmethod
    async def purge(self) -> int:
        """Delete expired entries now; return how many (0 where the storage expires them
        itself)."""

    async def check(self) -> None:
        """Readiness: return when the store answers, raise when not (GET /health/ready,
        `core status`). Cheap and side-effect free."""
        ...

    @abstractmethod
    async def close(self) -> None:
        """Release connections; called once when the app stops."""
