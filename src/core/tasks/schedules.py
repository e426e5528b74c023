"""When periodic tasks run: `Cron` (5-field cron in a timezone) and `Interval` (every N seconds).

Both answer one question, `next_after(moment, timezone)`: the first tick strictly after
`moment`, as a UTC datetime. Ticks are the same in every process that asks, which is what
lets several schedulers agree on "this tick" and fire it once.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from typing import Protocol, runtime_checkable

from cronsim import CronSim, CronSimError

__all__ = ("Cron", "Interval", "Schedule")


@runtime_checkable
class Schedule(Protocol):
    """A sequence of ticks."""

    def next_after(self, moment: datetime, timezone: tzinfo) -> datetime:
        """The first tick strictly after the aware `moment`, in UTC.

        `timezone` is where wall-clock schedules (cron) are read; intervals ignore it.
        """
        ...

    def describe(self) -> str:
        """The schedule as a user wrote it, for `core tasks`."""
        ...


@dataclass(frozen=True, slots=True)
class Cron:
    """A standard 5-field cron expression (minute hour day-of-month month day-of-week), read
    on the wall clock of the scheduler's timezone (`TIMEZONE`).

    Daylight-saving changes are handled as Debian's cron does (through `cronsim`): a time
    skipped when clocks go forward runs right after the jump; a fixed time repeated when
    clocks go back runs once; `*`-hour jobs keep running every hour, both times through.

    Example:
        >>> from datetime import datetime, UTC
        >>> from zoneinfo import ZoneInfo
        >>> Cron("0 0 * * *").next_after(
        ...     datetime(2030, 1, 1, 12, tzinfo=UTC), ZoneInfo("America/Sao_Paulo")
        ... )
        datetime.datetime(2030, 1, 2, 3, 0, tzinfo=datetime.timezone.utc)
    """

    expression: str

    def __post_init__(self) -> None:
        # cronsim also reads a 6th (seconds) field; the spec's schedules are 5-field.
        if len(self.expression.split()) != 5:
            raise ValueError(
                f"Invalid cron expression {self.expression!r}: expected 5 fields "
                "(minute hour day-of-month month day-of-week)."
            )
        try:
            CronSim(self.expression, datetime(2000, 1, 1))
        except CronSimError as exc:
            raise ValueError(f"Invalid cron expression {self.expression!r}: {exc}.") from None

    def next_after(self, moment: datetime, timezone: tzinfo) -> datetime:
        local = moment.astimezone(timezone)
        try:
            tick = next(CronSim(self.expression, local))
        except StopIteration:
            # e.g. "0 0 30 2 *": a day that never comes.
            raise ValueError(f"Cron expression {self.expression!r} never matches.") from None
        return tick.astimezone(UTC)

    def describe(self) -> str:
        return f"cron {self.expression}"


@dataclass(frozen=True, slots=True)
class Interval:
    """Every `seconds` seconds, on ticks aligned to the Unix epoch (UTC).

    Alignment makes every scheduler compute the same ticks whenever it started:
    `Interval(300)` ticks at :00, :05, :10... of every hour, `Interval(86400)` at midnight UTC.
    For a wall-clock time in your timezone, use `Cron`.

    Example:
        >>> from datetime import datetime, UTC
        >>> Interval(300).next_after(datetime(2030, 1, 1, 12, 7, tzinfo=UTC), UTC)
        datetime.datetime(2030, 1, 1, 12, 10, tzinfo=datetime.timezone.utc)
    """

    seconds: float

    def __post_init__(self) -> None:
        if isinstance(self.seconds, bool) or not self.seconds > 0 or math.isinf(self.seconds):
            raise ValueError(f"interval must be positive seconds, got {self.seconds!r}.")

    def next_after(self, moment: datetime, timezone: tzinfo) -> datetime:
        tick = (math.floor(moment.timestamp() / self.seconds) + 1) * self.seconds
        return datetime.fromtimestamp(tick, UTC)

    def describe(self) -> str:
        return f"every {self.seconds:g}s"
