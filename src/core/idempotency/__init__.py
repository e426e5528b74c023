"""Idempotency keys: a client sends `Idempotency-Key` on a POST or PATCH (or an `@action` that
opts in with `idempotent=True`), and a retry with the same key gets the first response back
instead of running the request again.

`IdempotencyKeys` is what a route's endpoint asks (the container builds one per app, around
the IdempotencyStore adapter IDEMPOTENCY_STORE selects): `begin` reads and checks the header,
fingerprints the request and claims its key; the `Claim` it returns saves the response in the
request's unit of work (or just after it commits, for a store that cannot join it) or releases
the key when the request fails. See docs/idempotency.md.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from dataclasses import dataclass, field
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from core.errors import InvalidIdempotencyKeyError
from core.ports.idempotency import IdempotencyStore, StoredResponse

__all__ = (
    "HEADER",
    "MAX_KEY_LENGTH",
    "REPLAYED_HEADER",
    "Claim",
    "IdempotencyKeys",
    "parse_key",
)

logger = logging.getLogger("core.idempotency")

#: The request header carrying the client's key.
HEADER = "Idempotency-Key"
#: The header set on a replayed response.
REPLAYED_HEADER = "Idempotent-Replayed"
#: The longest key accepted.
MAX_KEY_LENGTH = 255
#: Visible ASCII but `"` and `\`: UUIDs, ULIDs, base64 and the like.
KEY_PATTERN = r"^[!#-\[\]-~]{1,255}$"
_KEY = re.compile(KEY_PATTERN)
# Headers a replay must not repeat: computed per response or per connection, or a cookie.
_NOT_STORED = frozenset(
    {"content-length", "date", "server", "set-cookie", "transfer-encoding", "connection"}
)


def parse_key(request: Request) -> str | None:
    """The request's `Idempotency-Key`, or None when it sent none.

    A key may be sent as a structured-field string (`"abc"`, quotes included), as the IETF
    draft writes it, or bare.

    Raises:
        InvalidIdempotencyKeyError: empty, sent twice, longer than 255 characters, or with a
            character outside visible ASCII (or a quote or backslash inside).
    """
    values = request.headers.getlist(HEADER)
    if not values:
        return None
    if len(values) > 1:
        raise InvalidIdempotencyKeyError("Send one Idempotency-Key header, not several.")
    value = values[0].strip()
    if len(value) >= 2 and value[0] == value[-1] == '"':
        value = value[1:-1]
    if not value:
        raise InvalidIdempotencyKeyError("The Idempotency-Key header is empty.")
    if len(value) > MAX_KEY_LENGTH:
        raise InvalidIdempotencyKeyError(
            f"The Idempotency-Key is longer than {MAX_KEY_LENGTH} characters."
        )
    if not _KEY.match(value):
        raise InvalidIdempotencyKeyError(
            "The Idempotency-Key may hold only visible ASCII characters (no spaces, quotes or "
            "backslashes); a UUID is a good key."
        )
    return value


def identity_of(request: Request) -> str:
    """Who sent the request, as keys are scoped: the user's id, or `anonymous`."""
    user = getattr(request.state, "user", None)
    user_id = getattr(user, "id", None)
    return "anonymous" if user_id is None else f"user:{user_id}"


def _digest(*parts: str | bytes) -> str:
    hasher = hashlib.sha256()
    for part in parts:
        data = part.encode() if isinstance(part, str) else part
        # Length-prefixed, so no two different lists of parts hash the same bytes.
        hasher.update(len(data).to_bytes(8, "big"))
        hasher.update(data)
    return hasher.hexdigest()


def _canonical(body: bytes) -> bytes:
    """The body as the fingerprint sees it: a JSON document with its keys sorted and no
    insignificant whitespace, so a client that serialises the same data again (another key
    order, other spacing) is the same request; any other body as sent."""
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):
        return body
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def to_stored(response: Response) -> StoredResponse | None:
    """What a replay of `response` answers; None for a response without a body in hand
    (streamed), which cannot be replayed."""
    body = getattr(response, "body", None)
    if not isinstance(body, bytes | bytearray | memoryview):
        return None
    headers = tuple(
        (name, value) for name, value in response.headers.items() if name not in _NOT_STORED
    )
    return StoredResponse(response.status_code, headers, bytes(body))


def replay(stored: StoredResponse) -> Response:
    """The stored response again, marked `Idempotent-Replayed: true`."""
    response = Response(content=stored.body, status_code=stored.status_code)
    for name, value in stored.headers:
        response.headers.append(name, value)
    response.headers[REPLAYED_HEADER] = "true"
    return response


@dataclass
class Claim:
    """A request's hold on its key: `replayed` when the key's first request already answered
    (send it, run nothing), else the request runs and its response is `save`d."""

    keys: IdempotencyKeys
    key: str
    replayed: Response | None = None
    _stored: StoredResponse | None = field(default=None, repr=False)

    async def before_commit(self, session: Any, response: Response) -> None:
        """Save `response` in the unit of work, when the store writes there (or, for a
        response that cannot be replayed, take the claim back out of it)."""
        store = self.keys.store
        self._stored = to_stored(response)
        if not store.transactional:
            return
        if self._stored is None:
            logger.warning(
                "A streamed response cannot be replayed: its Idempotency-Key is released."
            )
            await store.release(session, self.key)
        else:
            await store.save(session, self.key, self._stored, ttl=self.keys.ttl)

    async def after_commit(self, session: Any) -> None:
        """Save the response once the data committed, when the store could not join the unit
        of work; release the key when the response cannot be replayed."""
        store = self.keys.store
        if store.transactional:
            return
        try:
            if self._stored is None:
                logger.warning(
                    "A streamed response cannot be replayed: its Idempotency-Key is released."
                )
                await store.release(session, self.key)
            else:
                await store.save(session, self.key, self._stored, ttl=self.keys.ttl)
        except Exception:
            # The data is committed whatever the store does: answer, and let the key lapse.
            logger.warning("Saving the response of an idempotent request failed", exc_info=True)

    async def failed(self, session: Any) -> None:
        """The request failed and its work was rolled back: free the key for a retry (a
        transactional store's claim went with the rollback)."""
        if self.keys.store.transactional:
            return
        try:
            await self.keys.store.release(session, self.key)
        except Exception:
            logger.warning("Releasing an Idempotency-Key failed", exc_info=True)


class IdempotencyKeys:
    """The idempotency rules of one app, around its IdempotencyStore.

    Args:
        store: the adapter IDEMPOTENCY_STORE selected.
        ttl: seconds a key and its response are kept (IDEMPOTENCY_KEY_TTL_SECONDS).
        wait: seconds a duplicate waits for the request holding its key before a 409
            (IDEMPOTENCY_WAIT_SECONDS).
    """

    def __init__(self, store: IdempotencyStore, *, ttl: float, wait: float) -> None:
        self.store = store
        self.ttl = ttl
        self.wait = wait

    def __repr__(self) -> str:
        return f"{type(self).__name__}(store={self.store!r}, ttl={self.ttl}, wait={self.wait})"

    async def begin(self, request: Request, session: Any) -> Claim | None:
        """Claim the key of `request` (None when it sent none).

        Call it once the user is known and allowed, before the handler runs.

        Raises:
            InvalidIdempotencyKeyError: a malformed header (400).
            IdempotencyKeyMismatchError: the key came with another request before (422).
            IdempotencyKeyInUseError: the key's first request is still running (409).
        """
        key = parse_key(request)
        if key is None:
            return None
        identity = identity_of(request)
        body = await request.body()
        fingerprint = _digest(
            request.method,
            request.url.path,
            request.url.query,
            identity,
            hashlib.sha256(_canonical(body)).digest(),
        )
        storage_key = _digest(identity, key)
        stored = await self.store.claim(
            session, storage_key, fingerprint, ttl=self.ttl, wait=self.wait
        )
        claim = Claim(self, storage_key)
        if stored is not None:
            claim.replayed = replay(stored)
        return claim
