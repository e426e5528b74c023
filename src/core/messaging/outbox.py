"""The transactional outbox: events written with the data, relayed to the broker after commit.

`Outbox` (one per container) writes an event's row in the caller's unit of work and tells the
relay when that unit of work commits. `OutboxRelay` publishes pending rows, oldest first, marks
them sent, retries a failed row with backoff and parks it as failed after `max_attempts`, and
deletes old rows.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections import defaultdict
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, cast
from weakref import WeakKeyDictionary

from core.context import use_container
from core.errors import BrokerUnavailableError
from core.messaging._sql import dialect_of, take_turn
from core.messaging.events import Event
from core.messaging.models import FAILED, PENDING, SENT, OutboxMessage, ProcessedEvent
from core.models.querysets import Q
from core.models.session import on_commit, unit_of_work
from core.tracing import TRACE_HEADERS

if TYPE_CHECKING:
    from core.containers.core import CoreContainer
    from core.ports.broker import EventBroker
    from core.tracing import Tracing

logger = logging.getLogger("core.messaging.outbox")

Clock = Callable[[], datetime]


# How many batches a pass reads, at most, looking past rows held behind their key.
_CLAIM_WINDOWS = 10


def _utcnow() -> datetime:
    return datetime.now(UTC)


class Outbox:
    """Writes events into the outbox table and signals the relay when their data commits.

    Args:
        track_in_flight: remember the rows of units of work that have not committed yet, for a
            database without isolation between units of work (the in-memory one), where the
            relay would otherwise see, and send, rows that may still be rolled back.
        tracing: Core's tracer (TRACING_ENABLED): each write is a span, whose context the
            row's headers and its event's headers carry to the relay and the consumers.
    """

    def __init__(self, *, track_in_flight: bool = False, tracing: Tracing | None = None) -> None:
        self.track_in_flight = track_in_flight
        self.tracing = tracing
        self._listeners: list[Callable[[], None]] = []
        # Per session, the ids of its rows not committed yet; weak, so a session dropped
        # without commit or rollback takes its entry along.
        self._in_flight: WeakKeyDictionary[Any, set[int]] = WeakKeyDictionary()

    async def add(
        self,
        session: Any,
        event: Event,
        *,
        topic: str,
        key: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> OutboxMessage:
        """Write `event` for `topic` in `session`'s unit of work; it is relayed after commit."""
        if self.tracing is None:
            row = await self._write(session, event, topic, key, dict(headers or {}))
        else:
            with self.tracing.span(
                f"outbox write {topic}",
                kind="producer",
                attributes=_event_attributes(event, topic),
            ):
                # The row (for the relay) and the event (for consumers) continue this trace.
                row = await self._write(
                    session, event, topic, key, self.tracing.inject(dict(headers or {}))
                )
        if self.track_in_flight:
            ids = self._in_flight.get(session)
            if ids is None:
                ids = self._in_flight[session] = set()
            ids.add(row.id)
            on_commit(functools.partial(self._committed, ids, row.id), session)
        else:
            on_commit(self.notify, session)
        return row

    async def _write(
        self, session: Any, event: Event, topic: str, key: str | None, headers: dict[str, str]
    ) -> OutboxMessage:
        payload = event.to_message()
        if self.tracing is not None:
            payload["headers"] = {**payload.get("headers", {}), **_trace_of(headers)}
        row: OutboxMessage = await OutboxMessage.objects.using(session).create(
            event_id=event.id,
            name=event.name,
            topic=topic,
            key=key,
            headers=headers,
            payload=payload,
        )
        return row

    def in_flight(self) -> set[int]:
        """Ids of rows whose unit of work has not committed (tracked only when asked to)."""
        return {row_id for ids in list(self._in_flight.values()) for row_id in ids}

    def listen(self, listener: Callable[[], None]) -> Callable[[], None]:
        """Call `listener` whenever outbox rows commit; returns a function that stops it."""
        self._listeners.append(listener)
        return functools.partial(self._listeners.remove, listener)

    def notify(self) -> None:
        """Tell the listeners (the relay) that committed rows are waiting."""
        for listener in self._listeners:
            listener()

    def _committed(self, ids: set[int], row_id: int) -> None:
        ids.discard(row_id)
        self.notify()


class RelayError(Exception):
    """A relay pass could not publish every row it claimed (the broker is unreachable).

    Attributes:
        sent: how many rows the pass published all the same (0 when the broker looks down).
    """

    def __init__(self, message: str, *, sent: int = 0) -> None:
        super().__init__(message)
        self.sent = sent


class OutboxRelay:
    """Publishes committed outbox rows to the broker, marks them sent, and cleans old ones.

    - Oldest first, in batches of `batch_size`, each batch in one unit of work. Rows with the
      same topic and key are published one after the other, so their order holds; different
      keys are published concurrently (up to `concurrency` at a time).
    - A failed publish leaves the row pending, counts the attempt, records the error and sets
      the row's `next_attempt_at` (exponential backoff from `backoff_base` up to `backoff_max`
      seconds). Passes take only rows that are due, so a row that keeps failing delays only
      the later rows of its own key. After `max_attempts` failed publishes the row is parked as
      `failed` (`core outbox failed` lists them, `core outbox requeue` sends them again) and
      its key moves on; while the broker is unreachable altogether (no publish succeeds), rows
      are not parked: an outage delays events, it does not fail them.
    - When two passes in a row publish nothing and fail, the broker looks down: the relay
      itself waits (the same backoff) before its next pass.
    - It wakes when a unit of work that wrote outbox rows commits, and polls every
      `poll_interval` seconds for rows other processes left (a crash between commit and relay).
    - On PostgreSQL, relays take turns: a pass holds a transaction-scoped advisory lock, so
      one relay publishes at a time across every process, and a key's rows keep their order
      however many replicas run a relay. The others wait for their turn; when the active one
      dies, the server drops its lock with its connection and the next takes over at once.
      Elsewhere (SQLite, the in-memory database) run a single relay per database.
    - Sent rows are deleted `retention` seconds after sending, and idempotency records
      `processed_retention` seconds after processing.

    Args:
        container: the app container a pass runs in: its database holds the outbox, and it is
            made ambient for the pass.
        outbox: the container's Outbox, whose commits wake the relay.
        broker: gives the broker to publish to; called per pass, so giving the provider
            (`container.messaging.broker`) lets an override take effect.
        clock: the current UTC time (tests pass a fake).

    Example:
        >>> relay = app.container.messaging.runtime().relay  # doctest: +SKIP
        >>> await relay.flush()  # publish everything pending now  # doctest: +SKIP
        3
    """

    def __init__(
        self,
        container: CoreContainer,
        outbox: Outbox,
        *,
        broker: Callable[[], EventBroker],
        batch_size: int = 100,
        poll_interval: float = 1.0,
        backoff_base: float = 0.5,
        backoff_max: float = 30.0,
        max_attempts: int = 10,
        retention: float = 86_400.0,
        processed_retention: float = 7 * 86_400.0,
        concurrency: int = 16,
        clock: Clock = _utcnow,
        tracing: Tracing | None = None,
    ) -> None:
        self.container = container
        self.tracing = tracing
        self.outbox = outbox
        self.broker = broker
        self.batch_size = batch_size
        self.poll_interval = poll_interval
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self.max_attempts = max_attempts
        self.retention = retention
        self.processed_retention = processed_retention
        self.concurrency = concurrency
        self.clock = clock
        # Cleaning is cheap but pointless every poll; twice per retention period, at most hourly.
        self.cleanup_interval = min(retention, processed_retention, 7_200.0) / 2
        self._lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None
        self._wakeup = asyncio.Event()
        self._stopping = asyncio.Event()
        self._unlisten: Callable[[], None] | None = None
        # When a publish last succeeded: a row failing while the broker answers others is the
        # row's fault, and counts towards parking it; during an outage nothing does.
        self._published_at: datetime | None = None
        # The earliest `next_attempt_at` the last pass saw: the loop wakes for it.
        self._next_due: datetime | None = None

    @property
    def running(self) -> bool:
        """True between `start` and `stop`."""
        return self._task is not None

    # -- one pass ------------------------------------------------------------------------------
    async def relay_once(self, *, due_only: bool = True) -> int:
        """Publish up to `batch_size` pending rows; return how many were sent.

        Args:
            due_only: leave out rows waiting out their backoff (what the background loop
                does); False takes every pending row now, as `flush` does.

        Raises:
            RelayError: some row could not be published (it stays pending, or is parked as
                failed, its error recorded).
        """
        async with self._lock:
            broker = self.broker()
            failures: list[tuple[OutboxMessage, BaseException]] = []
            with use_container(self.container), self._quiet():
                sent = await self._pass(broker, failures, due_only=due_only)
        if failures:
            row, error = failures[0]
            raise RelayError(
                f"{len(failures)} outbox row(s) not published, e.g. {row.name!r} to "
                f"{row.topic!r}: {_describe(error)}",
                sent=sent,
            ) from error
        return sent

    async def _pass(
        self,
        broker: Any,
        failures: list[tuple[OutboxMessage, BaseException]],
        *,
        due_only: bool,
    ) -> int:
        async with unit_of_work(self.container) as db:
            if dialect_of(db) == "postgresql":
                await take_turn(db)
            now = self.clock()
            rows = await self._claim(db, now if due_only else None)
            if not rows:
                return 0
            sent = await self._publish(broker, rows, failures)
            now = self.clock()
            if sent:
                self._published_at = now
                await (
                    OutboxMessage.objects.using(db)
                    .filter(id__in=sent)
                    .update(status=SENT, sent_at=now)
                )
            for row, error in failures:
                await self._failed(db, row, error, now)
        return len(sent)

    async def _failed(self, db: Any, row: OutboxMessage, error: BaseException, now: Any) -> None:
        attempts = row.attempts + 1
        changes: dict[str, Any] = {"attempts": attempts, "last_error": _describe(error)}
        if attempts >= self.max_attempts and not self._broker_down(error, now):
            changes["status"] = FAILED
            changes["next_attempt_at"] = None
            logger.error(
                "Outbox row %d (%r to %r) failed %d times; parked as failed (see `core outbox "
                "failed`): %s",
                row.id,
                row.name,
                row.topic,
                attempts,
                changes["last_error"],
            )
        else:
            changes["next_attempt_at"] = now + timedelta(seconds=self.backoff(attempts))
            self._due_soon(changes["next_attempt_at"])
        await OutboxMessage.objects.using(db).filter(id=row.id).update(**changes)

    def _due_soon(self, moment: datetime | None) -> None:
        if moment is not None and (self._next_due is None or moment < self._next_due):
            self._next_due = moment

    def backoff(self, attempts: int) -> float:
        """Seconds a row waits after its `attempts`-th failed publish (and the relay after as
        many failed passes in a row)."""
        return float(min(self.backoff_base * 2.0 ** (attempts - 1), self.backoff_max))

    def _broker_down(self, error: BaseException, now: datetime) -> bool:
        # Unreachable, and nothing published lately (within two of the longest backoffs): an
        # outage, which must not use up the rows' attempts.
        if not isinstance(error, BrokerUnavailableError):
            return False
        recent = now - timedelta(seconds=2 * self.backoff_max + self.poll_interval)
        return self._published_at is None or self._published_at < recent

    async def _waiting_keys(self, db: Any, now: datetime) -> dict[tuple[str, str], int]:
        """Per (topic, key), the oldest row waiting out a backoff: the key's later rows wait."""
        waiting = await (
            OutboxMessage.objects.using(db)
            .filter(status=PENDING, next_attempt_at__gt=now)
            .order_by("id")
            .values_list("id", "topic", "key", "next_attempt_at")
        )
        first: dict[tuple[str, str], int] = {}
        for id_, topic, key, next_attempt_at in waiting:
            self._due_soon(next_attempt_at)
            if key is not None:
                first.setdefault((topic, key), id_)
        return first

    async def flush(self) -> int:
        """Relay until no committed row is pending; return how many were sent.

        Rows waiting out a backoff are tried at once too; parked (`failed`) rows are not.

        Raises:
            RelayError: the broker refused a row (what was sent before stays sent).
        """
        total = 0
        while True:
            sent = await self.relay_once(due_only=False)
            total += sent
            if sent < self.batch_size:
                return total

    async def requeue(self, ids: list[int] | None = None) -> int:
        """Put parked (`failed`) rows back to `pending`, due now with a fresh attempt count;
        all of them when `ids` is None. Return how many.

        Example:
            >>> await app.container.messaging.runtime().relay.requeue([42])  # doctest: +SKIP
            1
        """
        with use_container(self.container):
            async with unit_of_work(self.container) as db:
                count = await requeue_failed(db, ids)
        if count:
            self.outbox.notify()
        return count

    async def cleanup(self, now: datetime | None = None) -> tuple[int, int]:
        """Delete sent rows older than `retention` and idempotency records older than
        `processed_retention`; return how many of each."""
        now = now if now is not None else self.clock()
        with use_container(self.container), self._quiet():
            return await self._cleanup(now)

    async def _cleanup(self, now: datetime) -> tuple[int, int]:
        async with unit_of_work(self.container) as db:
            sent = await (
                OutboxMessage.objects.using(db)
                .filter(status=SENT, sent_at__lt=now - timedelta(seconds=self.retention))
                .delete()
            )
            processed = await (
                ProcessedEvent.objects.using(db)
                .filter(processed_at__lt=now - timedelta(seconds=self.processed_retention))
                .delete()
            )
        return sent, processed

    async def _claim(self, db: Any, due_by: datetime | None) -> list[OutboxMessage]:
        # Relays take turns (`take_turn` on PostgreSQL, one relay per database elsewhere), so
        # what a pass reads is its own until it commits.
        pending = OutboxMessage.objects.using(db).filter(status=PENDING)
        if self.outbox.track_in_flight and (in_flight := self.outbox.in_flight()):
            pending = pending.exclude(id__in=sorted(in_flight))
        if due_by is None:
            return await pending.order_by("id")[: self.batch_size].all()
        pending = pending.filter(Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=due_by))
        # A key's later rows wait behind its row that is backing off, to keep their order; a
        # batch full of such rows must not hide the rows of other keys behind it, so read on
        # (a few batches at most: the rest waits for the next pass).
        waiting = await self._waiting_keys(db, due_by)
        rows: list[OutboxMessage] = []
        window = pending
        for _ in range(_CLAIM_WINDOWS):
            batch = await window.order_by("id")[: self.batch_size].all()
            rows += [
                row
                for row in batch
                if row.key is None or row.id < waiting.get((row.topic, row.key), row.id + 1)
            ]
            if len(batch) < self.batch_size or len(rows) >= self.batch_size:
                break
            window = pending.filter(id__gt=batch[-1].id)
        return rows[: self.batch_size]

    async def _publish(
        self,
        broker: Any,
        rows: list[OutboxMessage],
        failures: list[tuple[OutboxMessage, BaseException]],
    ) -> list[int]:
        lanes: defaultdict[tuple[str, str], list[OutboxMessage]] = defaultdict(list)
        for row in rows:
            # Keyless rows promise no order (the port orders by key only): each its own lane.
            lane_key = row.key if row.key is not None else f"#{row.id}"
            lanes[(row.topic, lane_key)].append(row)
        sent: list[int] = []
        # Bounded: a broker client has a connection pool to share with its consumers.
        slots = asyncio.Semaphore(self.concurrency)

        async def lane(members: list[OutboxMessage]) -> None:
            async with slots:
                await run(members)

        async def run(members: list[OutboxMessage]) -> None:
            for row in members:
                try:
                    if self.tracing is None:
                        await broker.publish(
                            row.payload, topic=row.topic, key=row.key, headers=row.headers
                        )
                    else:
                        await self._traced_publish(broker, row)
                except Exception as exc:
                    # The rest of this key's rows wait behind it, to keep their order.
                    failures.append((row, exc))
                    return
                sent.append(row.id)

        await asyncio.gather(*(lane(members) for members in lanes.values()))
        return sent

    def _quiet(self) -> contextlib.AbstractContextManager[None]:
        # A pass's own statements (claiming rows, marking them sent) are not traced: polling
        # every second, each idle pass would be a trace of its own. Each row's publish is.
        return self.tracing.quiet() if self.tracing is not None else contextlib.nullcontext()

    async def _traced_publish(self, broker: Any, row: OutboxMessage) -> None:
        # A span in the trace of the request (or handler) that wrote the row, whose context
        # replaces the write's in the headers and the event: consumers follow from the publish.
        tracing = cast("Tracing", self.tracing)
        with tracing.span(
            f"outbox relay {row.topic}",
            kind="producer",
            parent=row.headers,
            attributes={
                "messaging.destination.name": row.topic,
                "core.event.name": row.name,
                "core.event.id": str(row.event_id),
                "core.outbox.attempt": row.attempts + 1,
            },
        ):
            headers = tracing.inject(
                {k: v for k, v in row.headers.items() if k not in TRACE_HEADERS}
            )
            payload = dict(row.payload)
            envelope = payload.get("headers")
            payload["headers"] = {
                **{
                    k: v
                    for k, v in (envelope if isinstance(envelope, dict) else {}).items()
                    if k not in TRACE_HEADERS
                },
                **_trace_of(headers),
            }
            await broker.publish(payload, topic=row.topic, key=row.key, headers=headers)

    # -- the background loop -------------------------------------------------------------------
    def start(self) -> None:
        """Run the relay in the background until `stop`."""
        if self._task is not None:
            return
        # Fresh primitives: they bind to the event loop that first waits on them.
        self._wakeup = asyncio.Event()
        self._stopping = asyncio.Event()
        self._lock = asyncio.Lock()
        self._unlisten = self.outbox.listen(self._wakeup.set)
        self._task = asyncio.create_task(self._run(), name="core-outbox-relay")

    async def stop(self, grace: float = 10.0) -> None:
        """Finish the pass in progress (for at most `grace` seconds), then stop.

        A pass cut short rolls back: its rows stay pending for the next relay, and any it had
        already published are published again then (delivery is at-least-once).
        """
        task, self._task = self._task, None
        if task is None:
            return
        if self._unlisten is not None:
            self._unlisten()
            self._unlisten = None
        self._stopping.set()
        try:
            # A broker that stopped answering can hold a publish for its whole request timeout.
            await asyncio.wait_for(asyncio.shield(task), grace)
        except TimeoutError:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _run(self) -> None:
        failures = 0
        next_cleanup = self.clock()
        while not self._stopping.is_set():
            self._wakeup.clear()
            self._next_due = None
            try:
                sent = await self.relay_once()
            except Exception as exc:
                failures += 1
                if isinstance(exc, RelayError) and (exc.sent or failures == 1):
                    # The rows it tried now wait out their own backoff, so the next pass takes
                    # other rows: a bad row delays nobody, and a second pass that sends
                    # nothing either means the broker itself is down.
                    logger.warning("Outbox relay: %s", str(exc).splitlines()[0])
                    if exc.sent:
                        failures = 0
                    continue
                delay = self.backoff(failures)
                logger.warning(
                    "Outbox relay failed (attempt %d), retrying in %.1fs: %s",
                    failures,
                    delay,
                    # The first line: a database error goes on with its whole SQL statement.
                    (str(exc) or type(exc).__name__).splitlines()[0],
                    exc_info=logger.isEnabledFor(logging.DEBUG),
                )
                # Commits do not cut the wait short: the broker (or database) is what is down.
                await self._wait(self._stopping, delay)
                continue
            if failures and sent:
                logger.info("Outbox relay recovered after %d failed attempt(s)", failures)
            # A pass without failures (if only because every row waits out its backoff) ends
            # the streak: the rows' own backoff paces them from here.
            failures = 0
            if self.clock() >= next_cleanup:
                next_cleanup = self.clock() + timedelta(seconds=self.cleanup_interval)
                try:
                    await self.cleanup()
                except Exception:
                    logger.warning("Outbox cleanup failed; retrying later", exc_info=True)
            if sent < self.batch_size:
                wait = self.poll_interval
                if self._next_due is not None:
                    until_due = (self._next_due - self.clock()).total_seconds()
                    wait = max(0.0, min(wait, until_due))
                await self._wait(self._wakeup, wait)

    async def _wait(self, event: asyncio.Event, seconds: float) -> None:
        waiters = {
            asyncio.ensure_future(event.wait()),
            asyncio.ensure_future(self._stopping.wait()),
        }
        try:
            await asyncio.wait(waiters, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in waiters:
                waiter.cancel()


async def requeue_failed(db: Any, ids: list[int] | None = None) -> int:
    """Put parked (`failed`) outbox rows back to `pending` in `db`'s unit of work, due at once
    with a fresh attempt count (their last error stays until they are sent); all of them when
    `ids` is None. Return how many."""
    failed = OutboxMessage.objects.using(db).filter(status=FAILED)
    if ids is not None:
        failed = failed.filter(id__in=sorted(ids))
    return await failed.update(status=PENDING, attempts=0, next_attempt_at=None)


def _trace_of(headers: Mapping[str, str]) -> dict[str, str]:
    return {k: v for k, v in headers.items() if k in TRACE_HEADERS}


def _event_attributes(event: Event, topic: str) -> dict[str, str]:
    return {
        "messaging.destination.name": topic,
        "core.event.name": event.name,
        "core.event.id": str(event.id),
    }


def _describe(error: BaseException) -> str:
    text = str(error) or type(error).__name__
    return f"{type(error).__name__}: {text}"[:2_000]


async def outbox_stats(db: Any, now: datetime | None = None) -> tuple[int, int, float]:
    """What the outbox holds, in `db`'s unit of work: pending rows, rows parked as failed,
    and the age in seconds of the oldest pending row (0 with none pending).

    Each is one indexed query (`status`, `id`), so a metrics scrape costs three small reads.
    """
    rows = OutboxMessage.objects.using(db)
    pending = await rows.filter(status=PENDING).count()
    failed = await rows.filter(status=FAILED).count()
    age = 0.0
    if pending:
        oldest = await rows.filter(status=PENDING).order_by("id")[:1].values_list("created_at")
        if oldest and oldest[0][0] is not None:
            created: datetime = oldest[0][0]
            if created.tzinfo is None:  # SQLite keeps no zone: Core writes UTC
                created = created.replace(tzinfo=UTC)
            age = max(((now or _utcnow()) - created).total_seconds(), 0.0)
    return pending, failed, age
