"""Taskiq pieces the TaskiqTaskQueue runs on: a stream broker, a result shaper, a receiver."""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import AsyncGenerator, Awaitable, Callable, Mapping, Sequence
from contextvars import ContextVar
from typing import Any

from pydantic_core import PydanticSerializationError
from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError
from taskiq import AckableMessage, BrokerMessage, TaskiqMiddleware, TaskiqResult
from taskiq.abc.formatter import TaskiqFormatter
from taskiq.acks import parse_acknowledge_type
from taskiq.decor import AsyncTaskiqDecoratedTask
from taskiq.exceptions import NoResultError
from taskiq.message import TaskiqMessage
from taskiq.receiver import Receiver
from taskiq_redis import RedisAsyncResultBackend, RedisStreamBroker
from taskiq_redis.exceptions import ResultIsMissingError

from core.cancellation import cancel_requested, raise_if_cancelled
from core.ports.tasks import (
    UnknownTaskError,
    check_json_result,
    describe_error,
    running_task_id,
)

logger = logging.getLogger("core.tasks.taskiq")

UNREACHABLE = (RedisConnectionError, RedisTimeoutError, OSError)
GROUP = "core-workers"
ERROR_LABEL = "core_error"
DELAYED_BATCH = 100
# Dead letters kept (approximately: Redis trims whole nodes), newest last.
DEAD_LETTERS_MAXLEN = 10_000
# Of a malformed message, what the dead letter keeps for a human to look at.
RAW_LIMIT = 4_096

# Moves the due members of a queue's delayed ZSET into its stream, atomically: with several
# workers polling, a task is moved exactly once and never lost between the XADD and the ZREM.
# Due-ness is judged on the Redis server's clock so that every worker agrees. Returns how many
# were moved and the milliseconds until the next one is due (-1 when none is waiting).
MOVE_DUE = """
local now = redis.call('TIME')
local now_ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now_ms, 'LIMIT', 0, tonumber(ARGV[1]))
for _, data in ipairs(due) do
  redis.call('XADD', KEYS[2], '*', 'data', data)
end
if #due > 0 then
  redis.call('ZREM', KEYS[1], unpack(due))
end
local next = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
if next[2] then
  return {#due, tonumber(next[2]) - now_ms}
end
return {#due, -1}
"""


# Acknowledges and deletes one stream entry in one round trip: entries stay in a stream after
# XACK, and with one consumer group nobody reads them again, so deleting keeps streams small.
ACK_AND_DELETE = """
redis.call('XACK', KEYS[1], ARGV[1], ARGV[2])
return redis.call('XDEL', KEYS[1], ARGV[2])
"""

# Stores a run's result, then acknowledges and deletes its entry: one round trip where Taskiq
# makes two (each costs the worker about as much CPU as a no-op task's own code). A failing
# SET (out of memory, say) aborts the script before the XACK, so an entry is never
# acknowledged without its result. Then, when asked (ARGV[6] = 1), it reads the next entry
# for the slot the run frees, from the first of KEYS[3..] that has one, so a busy worker needs
# no read of its own per task. KEYS: result key, stream, streams to read; ARGV: result, TTL in
# ms (0: none), group, entry id, consumer, 1 to read the next entry. Returns the entry read,
# as {stream, id, {field, value, ...}}, or false.
STORE_AND_ACK = """
if tonumber(ARGV[2]) > 0 then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
else
  redis.call('SET', KEYS[1], ARGV[1])
end
redis.call('XACK', KEYS[2], ARGV[3], ARGV[4])
redis.call('XDEL', KEYS[2], ARGV[4])
if ARGV[6] ~= '1' then
  return false
end
for i = 3, #KEYS do
  local read = redis.pcall('XREADGROUP', 'GROUP', ARGV[3], ARGV[5], 'COUNT', 1,
                           'STREAMS', KEYS[i], '>')
  if type(read) == 'table' and read[1] then
    local entry = read[1][2][1]
    return {KEYS[i], entry[1], entry[2]}
  end
end
return false
"""


class RunLinesFilter(logging.Filter):
    """Drops the line Taskiq's receiver logs as each task starts ("Executing task ... with
    ID: ..."): `core worker` logs one line per run already, with its outcome and duration,
    and formatting a second one costs as much CPU per task as the task layer's own work."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (isinstance(record.msg, str) and record.msg.startswith("Executing task"))


RECEIVER_LOGGER = "taskiq.receiver.receiver"


class _Completion:
    """One message's run, between the receiver storing its result and acknowledging it.

    Taskiq's receiver stores the result, then acknowledges the message, in the asyncio task
    that runs the message (`CoreReceiver.callback` opens one of these there). `ResultStore`
    leaves the result here instead of sending it, and the acknowledgement sends both in one
    script; whatever is still here when the run ends (no acknowledgement: a hard stop, a
    message acknowledged before it ran) is stored on its own.
    """

    __slots__ = ("acknowledged", "result")

    def __init__(self) -> None:
        self.result: tuple[str, bytes, int] | None = None  # key, JSON, TTL in ms (0: none)
        self.acknowledged = False


_completion: ContextVar[_Completion | None] = ContextVar("core_taskiq_completion", default=None)


class StreamBroker(RedisStreamBroker):
    """taskiq-redis's stream broker with the delivery rules the TaskQueue port promises.

    It keeps taskiq-redis's message format, consumer-group setup and `kick`, and replaces
    `listen` and the acknowledgement. taskiq-redis 1.2's `listen` only reclaims abandoned
    entries after a read that returned something, so on an idle queue a task left by a killed
    worker waits for the next new task; and it reads up to `xread_count` entries at once,
    which sit in this worker's pending list out of the others' reach (taskiq-redis PR #129
    reworks both). Here every worker claims, at most every `claim_interval` seconds, one
    entry idle longer than `idle_timeout` per stream, then reads at most as many new entries
    as it has free slots (`concurrency` minus the entries it fetched and has not acknowledged
    yet; at least one per stream), so whatever it fetches starts at once.

    Args:
        streams: the stream of every queue this broker reads; the first also gets `kick`s
            without a `queue_name` label.
        claim_interval: how often to look for abandoned entries, in seconds.
        concurrency: how many tasks the worker reading through this broker runs at once.
        (the rest as `RedisStreamBroker`)
    """

    def __init__(
        self,
        url: str,
        *,
        streams: Sequence[str],
        idle_timeout: int,
        claim_interval: float,
        dead_letters: str,
        concurrency: int = 1,
        **options: Any,
    ) -> None:
        super().__init__(
            url,
            queue_name=streams[0],
            consumer_group_name=GROUP,
            # "0", not taskiq's "$": a group created by the first worker must also see the
            # tasks enqueued before any worker ever ran.
            consumer_id="0",
            idle_timeout=idle_timeout,
            xread_block=max(100, int(claim_interval * 1000)),
            additional_streams={stream: ">" for stream in streams[1:]},
            **options,
        )
        self.streams = list(streams)
        self.dead_letters = dead_letters
        self.formatter = _ParsedOnce(self.formatter)
        self.claim_interval = claim_interval
        self.concurrency = concurrency
        # Fetched and not yet acknowledged. Counting a message the receiver dropped without
        # acknowledging it only makes reads smaller, never larger than the free slots.
        self.in_flight = 0
        # Entries the acknowledgement script read for the slots their runs freed, waiting for
        # the receiver to ask (it does as soon as the acknowledged run's task ends).
        self._ready: deque[tuple[Any, Any, Any]] = deque()
        self._reading = False  # the listen loop is waiting in XREADGROUP
        self._next_stream = 0  # the stream an acknowledgement reads first (round robin)
        self._client: Redis | None = None
        self._scripts: dict[str, Any] = {}

    def client(self) -> Redis:
        """One redis-py client over this broker's pool, for every command it sends.

        taskiq-redis builds a client per command, which costs about as much CPU as the round
        trip itself; the client holds no connection of its own, so sharing it is safe.
        """
        if self._client is None:
            self._client = Redis(connection_pool=self.connection_pool)
        return self._client

    def script(self, body: str) -> Any:
        """`body` registered on the shared client: sent by its SHA1, loaded again if Redis
        lost it (a restart, SCRIPT FLUSH)."""
        script = self._scripts.get(body)
        if script is None:
            script = self._scripts[body] = self.client().register_script(body)
        return script

    async def kick(self, message: BrokerMessage) -> None:
        # taskiq-redis's kick, on the shared client.
        stream = message.labels.get("queue_name") or self.queue_name
        await self.client().xadd(
            stream, {b"data": message.message}, maxlen=self.maxlen, approximate=self.approximate
        )

    async def listen(self) -> AsyncGenerator[AckableMessage, None]:
        loop = asyncio.get_running_loop()
        next_claim = loop.time()
        # One connection held for the loop's reads: no pool checkout and release per read.
        async with Redis(
            connection_pool=self.connection_pool, single_connection_client=True
        ) as redis:
            while True:
                raise_if_cancelled()
                try:
                    if loop.time() >= next_claim:
                        next_claim = loop.time() + self.claim_interval
                        for stream in self.streams:
                            # XAUTOCLAIM is atomic and resets the idle time of what it claims,
                            # so two workers never claim the same entry at once.
                            _, claimed, *_ = await redis.xautoclaim(
                                stream, GROUP, self.consumer_name, self.idle_timeout, count=1
                            )
                            for entry_id, fields in claimed:
                                # Claimed one: look again next turn, so a dead worker's whole
                                # backlog comes back at the pace this worker can take it.
                                next_claim = loop.time()
                                if fields is None:  # deleted entry (Redis 6.2 still lists it)
                                    await redis.xack(stream, GROUP, entry_id)
                                    continue
                                if b"data" not in fields:
                                    await self._reject_entry(stream, entry_id, fields)
                                    continue
                                logger.warning("Running abandoned task message %s again", entry_id)
                                yield self._message(stream, entry_id, fields)
                    if self._ready:
                        # Read by an acknowledgement, for the slot this request fills.
                        stream, entry_id, fields = self._ready.popleft()
                        if b"data" not in fields:
                            self.in_flight -= 1
                            await self._reject_entry(stream, entry_id, fields)
                            continue
                        yield self._message(stream, entry_id, fields, counted=True)
                        continue
                    # The receiver asks for a message only once it holds a free slot, so at
                    # least one is free; reading more than are free would leave entries
                    # waiting in this worker while another could run them. COUNT is per
                    # stream, hence the division.
                    free = self.concurrency - self.in_flight
                    self._reading = True
                    try:
                        fetched: Any = await redis.xreadgroup(
                            GROUP,
                            self.consumer_name,
                            dict.fromkeys(self.streams, ">"),
                            count=max(1, free // len(self.streams)),
                            block=self.block,
                        )
                    finally:
                        self._reading = False
                except ResponseError as exc:
                    # The stream or group vanished (a FLUSHDB, a deleted key): a blocked read
                    # says UNBLOCKED, the next one NOGROUP. Declare them again and read on.
                    if not str(exc).startswith(("NOGROUP", "UNBLOCKED")):
                        raise
                    logger.warning("Task stream or consumer group vanished; declaring it again")
                    await self._declare_consumer_group()
                    continue
                except UNREACHABLE:
                    # A worker outlives a Redis restart: wait and read again.
                    logger.warning("Redis unreachable; retrying in 1s", exc_info=True)
                    await asyncio.sleep(1)
                    continue
                for stream, entries in fetched or []:
                    for entry_id, fields in entries:
                        if b"data" not in fields:
                            await self._reject_entry(stream, entry_id, fields)
                            continue
                        yield self._message(stream, entry_id, fields)

    async def dead_letter(self, fields: Mapping[str, str | bytes]) -> None:
        """Append one entry to the dead-letter stream (reason, error, the message...)."""
        entry: dict[Any, Any] = {"failed_at": str(int(time.time() * 1000)), **fields}
        await self.client().xadd(
            self.dead_letters, entry, maxlen=DEAD_LETTERS_MAXLEN, approximate=True
        )

    async def _reject_entry(self, stream: Any, entry_id: Any, fields: Any) -> None:
        # Not a task message (written by something else, or damaged): taskiq-redis read its
        # `data` field blindly and the KeyError ended the worker, again at each redelivery.
        stream_name = stream.decode() if isinstance(stream, bytes) else str(stream)
        raw = repr({_text(k): _text(v) for k, v in (fields or {}).items()})[:RAW_LIMIT]
        logger.error("Task message %s in %s has no data field; dead-lettered", entry_id, stream)
        try:
            await self.dead_letter(
                {
                    "reason": "malformed",
                    "error": "KeyError: the stream entry has no 'data' field",
                    "stream": stream_name,
                    "entry_id": _text(entry_id),
                    "raw": raw,
                }
            )
            await self.client().eval(ACK_AND_DELETE, 1, stream_name, GROUP, entry_id)
        except (*UNREACHABLE, ResponseError):
            # Still pending: claimed and rejected again later.
            logger.warning("Could not dead-letter task message %s", entry_id, exc_info=True)

    def _message(
        self, stream: Any, entry_id: Any, fields: Any, *, counted: bool = False
    ) -> AckableMessage:
        if not counted:
            self.in_flight += 1
        return AckableMessage(data=fields[b"data"], ack=self._ack_generator(entry_id, stream))

    def _ack_generator(self, id: str, queue_name: str) -> Callable[[], Awaitable[None]]:
        async def ack() -> None:
            self.in_flight -= 1
            if cancel_requested():
                # Taskiq's receiver acknowledges even a task it cancelled; leaving the entry
                # pending is what makes a task abandoned by a hard stop run again elsewhere.
                logger.warning("Task message %s abandoned unacknowledged; it will run again", id)
                return
            completion = _completion.get()
            if completion is None:
                await self.script(ACK_AND_DELETE)(keys=[queue_name], args=[GROUP, id])
                return
            completion.acknowledged = True
            stored, completion.result = completion.result, None
            if stored is None:
                await self.script(ACK_AND_DELETE)(keys=[queue_name], args=[GROUP, id])
                return
            key, value, ttl_ms = stored
            # The run is over and its slot free. Read the next entry for it here, unless the
            # listen loop is reading already (it gets what arrives) or no slot is free; the
            # slot is reserved while the script runs, so the loop never reads for it too.
            read_next = not self._reading and self.in_flight < self.concurrency
            streams: list[Any] = []
            if read_next:
                self.in_flight += 1
                start = self._next_stream = (self._next_stream + 1) % len(self.streams)
                streams = self.streams[start:] + self.streams[:start]
            try:
                entry: Any = await self.script(STORE_AND_ACK)(
                    keys=[key, queue_name, *streams],
                    args=[value, ttl_ms, GROUP, id, self.consumer_name, int(read_next)],
                )
            except BaseException:
                if read_next:
                    self.in_flight -= 1
                raise
            if not entry:
                if read_next:
                    self.in_flight -= 1
                return
            stream, entry_id, flat = entry
            self._ready.append((stream, entry_id, dict(zip(flat[::2], flat[1::2], strict=True))))

        return ack

    def find_task(self, task_name: str) -> AsyncTaskiqDecoratedTask[Any, Any] | None:
        task = super().find_task(task_name)
        if task is None and self.is_worker_process:
            # Taskiq acknowledges and drops a message naming a task the worker doesn't know,
            # leaving its result pending forever; failing it makes the mistake visible.
            return AsyncTaskiqDecoratedTask(
                broker=self,
                task_name=task_name,
                original_func=_unknown_task(task_name),
                labels={},
            )
        return task

    async def release_unstarted(self, idle: int) -> None:
        """Hand back the entries this consumer fetched but never acknowledged.

        XCLAIM with IDLE makes them look abandoned for `idle` ms, so the next worker's claim
        takes them at once instead of after the whole redelivery timeout.
        """
        try:
            async with Redis(connection_pool=self.connection_pool) as redis:
                for stream in self.streams:
                    pending = await redis.xpending_range(
                        stream, GROUP, "-", "+", 1000, consumername=self.consumer_name
                    )
                    ids: list[Any] = [entry["message_id"] for entry in pending]
                    if ids:
                        await redis.xclaim(
                            stream, GROUP, self.consumer_name, 0, ids, idle=idle, justid=True
                        )
        except (*UNREACHABLE, ResponseError):
            # Best effort: what is not handed back is claimed after the redelivery timeout.
            logger.warning("Could not hand back unstarted tasks", exc_info=True)


def _unknown_task(name: str) -> Callable[..., Awaitable[None]]:
    async def unknown(*args: Any, **kwargs: Any) -> None:
        raise UnknownTaskError(
            f"This worker has no task registered as {name!r}; register it in the worker too."
        )

    return unknown


def plain(function: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
    """`function` behind a bare signature, for registering with Taskiq.

    Taskiq reads the registered function's signature and type hints; a bare wrapper keeps it
    from tripping over unresolvable annotations or mistaking parameters for dependencies.
    """

    async def call(*args: Any, **kwargs: Any) -> Any:
        return await function(*args, **kwargs)

    return call


class ResultStore(RedisAsyncResultBackend[Any]):
    """taskiq-redis's result backend on one shared redis-py client (see `StreamBroker.client`)."""

    def __init__(self, url: str, **options: Any) -> None:
        super().__init__(url, **options)
        self.client = Redis(connection_pool=self.redis_pool)

    async def set_result(self, task_id: str, result: TaskiqResult[Any]) -> None:
        try:
            # JSON straight from pydantic-core: what the serializer gives, without its spaces,
            # at a third of the cost. The return value went through `check_json_result`, so
            # both encode the same values...
            value = result.__pydantic_serializer__.to_json(result)
        except PydanticSerializationError:
            # ...except strings UTF-8 cannot carry (lone surrogates), which json escapes.
            value = self.serializer.dumpb(result.model_dump(mode="json"))
        completion = _completion.get()
        if completion is not None and not completion.acknowledged:
            # A worker's run: stored together with the acknowledgement that follows.
            completion.result = (self._task_name(task_id), value, self.ttl_ms)
            return
        await self.write(self._task_name(task_id), value)

    @property
    def ttl_ms(self) -> int:
        """How long results are kept, in milliseconds; 0 for ever."""
        if self.result_px_time:
            return int(self.result_px_time)
        return int(self.result_ex_time or 0) * 1000

    async def write(self, key: str, value: bytes) -> None:
        """SET one encoded result under `key`, with the results' TTL."""
        await self.client.set(key, value, ex=self.result_ex_time, px=self.result_px_time)

    async def get_result(self, task_id: str, with_logs: bool = False) -> TaskiqResult[Any]:
        name = self._task_name(task_id)
        stored = await (self.client.get(name) if self.keep_results else self.client.getdel(name))
        if stored is None:
            raise ResultIsMissingError
        raw = stored.encode() if isinstance(stored, str) else stored  # decode_responses=True
        result = TaskiqResult[Any].model_validate(self.serializer.loadb(raw))
        if not with_logs:
            result.log = None
        return result


# Return values the JSON round trip of `check_json_result` gives back unchanged (not float: NaN
# and infinities are refused), so the common `None` or id skips it.
_JSON_SCALARS = frozenset({type(None), bool, int, str})


class CoreResults(TaskiqMiddleware):
    """Shapes results the way the port reports them, before the receiver stores them, and
    dead-letters the runs that failed for good (before their message is acknowledged)."""

    async def on_error(
        self, message: TaskiqMessage, result: TaskiqResult[Any], exception: BaseException
    ) -> None:
        if isinstance(exception, NoResultError) or (
            isinstance(exception, asyncio.CancelledError) and cancel_requested()
        ):
            return
        broker = self.broker
        if not isinstance(broker, StreamBroker) or not broker.is_worker_process:
            return
        # The `@task` layer turns a failure with retries left into a result naming the next
        # attempt, so an error here is the task's last word.
        try:
            await broker.dead_letter(
                {
                    "reason": "failed",
                    "error": describe_error(exception),
                    "task_id": message.task_id,
                    "task_name": message.task_name,
                    "stream": str(message.labels.get("queue_name") or broker.queue_name),
                    "data": message.model_dump_json(),
                }
            )
        except UNREACHABLE:
            logger.warning("Could not dead-letter failed task %s", message.task_id, exc_info=True)

    def pre_execute(self, message: TaskiqMessage) -> TaskiqMessage:
        # The receiver runs each message in an asyncio task of its own, which this sets the
        # id in before calling the function.
        running_task_id.set(message.task_id)
        return message

    def post_execute(self, message: TaskiqMessage, result: TaskiqResult[Any]) -> None:
        hard_stopped = isinstance(result.error, asyncio.CancelledError) and cancel_requested()
        if result.is_err and hard_stopped:
            # Abandoned by a hard stop: store nothing, so the redelivered run has the say.
            result.error = NoResultError()
            return
        if not result.is_err and type(result.return_value) not in _JSON_SCALARS:
            try:
                result.return_value = check_json_result(result.return_value)
            except TypeError as exc:
                result.is_err, result.return_value, result.error = True, None, exc
        if result.is_err:
            # Exceptions are kept as text: Taskiq rebuilds them by importing their class,
            # which a reader without the worker's code cannot, and pickle would be unsafe.
            error = result.error if result.error is not None else RuntimeError("failed")
            result.labels = {**result.labels, ERROR_LABEL: describe_error(error)}
            result.error = None


class CoreReceiver(Receiver):
    """Taskiq's Receiver, keeping hold of the running tasks so a hard stop can cancel them."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.running: set[asyncio.Task[Any]] = set()

    async def callback(self, message: Any, raise_err: bool = False) -> None:
        task = asyncio.current_task()
        if task is not None:
            self.running.add(task)
        # Each message runs in an asyncio task of its own, so this is this message's alone.
        completion = _Completion()
        token = _completion.set(completion)
        try:
            if isinstance(message, AckableMessage) and await self._rejected(message):
                return
            await super().callback(message, raise_err)
        finally:
            _completion.reset(token)
            if task is not None:
                self.running.discard(task)
            if completion.result is not None:
                await self._store_unacknowledged(*completion.result[:2])

    async def _store_unacknowledged(self, key: str, value: bytes) -> None:
        # The result of a run whose message was not acknowledged after it (left pending by a
        # hard stop, or acknowledged before it ran): stored on its own, as Taskiq would.
        backend = self.broker.result_backend
        try:
            if isinstance(backend, ResultStore):
                await backend.write(key, value)
        except Exception:
            logger.exception("Can't set result in result backend.")

    async def _rejected(self, message: AckableMessage) -> bool:
        """Dead-letter and acknowledge a message taskiq cannot run; True if it was one.

        Taskiq's receiver skips a message it cannot parse without a trace, and one with a bad
        `ack_type` label raises before acknowledging, so it came back for ever.
        """
        try:
            parsed = self.broker.formatter.loads(message.data)
            parsed.parse_labels()
            if (ack_type := parsed.labels.get("ack_type")) is not None:
                parse_acknowledge_type(ack_type)
            return False
        except Exception as exc:
            error = describe_error(exc).splitlines()[0][:RAW_LIMIT]
            logger.error("Malformed task message dead-lettered: %s", error)
            fields: dict[str, str | bytes] = {
                "reason": "malformed",
                "error": error,
                "raw": _text(message.data)[:RAW_LIMIT],
            }
            try:
                # What can still be read of it: enough to send it again without the bad part.
                known = TaskiqMessage.model_validate_json(message.data)
                known.labels.pop("ack_type", None)
                fields.update(
                    task_id=known.task_id,
                    task_name=known.task_name,
                    stream=str(known.labels.get("queue_name") or ""),
                    data=known.model_dump_json(),
                )
            except Exception:  # noqa: S110 (nothing more to learn from it)
                pass
            broker = self.broker
            if isinstance(broker, StreamBroker):
                try:
                    await broker.dead_letter(fields)
                except UNREACHABLE:
                    # Unacknowledged, it comes back later and is rejected again then.
                    logger.warning("Could not dead-letter a malformed task", exc_info=True)
                    return True
            await message.ack()  # type: ignore[misc]
            return True

    async def cancel_running(self) -> None:
        """Cancel the running tasks and wait for them; none is acknowledged."""
        for task in self.running:
            task.cancel()
        await asyncio.gather(*self.running, return_exceptions=True)


class _ParsedOnce(TaskiqFormatter):
    """A formatter that remembers its last message, so the receiver's own parse of a message
    `CoreReceiver` just checked costs nothing (nothing awaits between the two)."""

    def __init__(self, inner: TaskiqFormatter) -> None:
        self.inner = inner
        self._last: tuple[Any, TaskiqMessage] | None = None

    def dumps(self, message: TaskiqMessage) -> BrokerMessage:
        return self.inner.dumps(message)

    def loads(self, message: bytes) -> TaskiqMessage:
        last = self._last
        if last is not None and last[0] is message:
            return last[1]
        parsed = self.inner.loads(message)
        self._last = (message, parsed)
        return parsed


def _text(value: Any) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
