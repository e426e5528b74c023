"""Cron and interval schedules: the next tick, in a timezone, across daylight-saving changes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from core.tasks import Cron, Interval, Schedule

SAO_PAULO = ZoneInfo("America/Sao_Paulo")
NEW_YORK = ZoneInfo("America/New_York")
RIGA = ZoneInfo("Europe/Riga")


def ticks(schedule: Schedule, start: datetime, count: int, tz: ZoneInfo) -> list[datetime]:
    moments, moment = [], start
    for _ in range(count):
        moment = schedule.next_after(moment, tz)
        moments.append(moment)
    return moments


def test_cron_midnight_is_read_in_the_given_timezone() -> None:
    noon_utc = datetime(2030, 1, 1, 12, tzinfo=UTC)

    assert Cron("0 0 * * *").next_after(noon_utc, UTC) == datetime(2030, 1, 2, tzinfo=UTC)
    # Midnight in Sao Paulo (UTC-3) is 03:00 UTC.
    assert Cron("0 0 * * *").next_after(noon_utc, SAO_PAULO) == datetime(2030, 1, 2, 3, tzinfo=UTC)


def test_cron_next_run_is_strictly_after_the_moment() -> None:
    midnight = datetime(2030, 1, 1, tzinfo=UTC)

    assert Cron("0 0 * * *").next_after(midnight, UTC) == midnight + timedelta(days=1)
    assert Cron("*/15 * * * *").next_after(midnight + timedelta(seconds=1), UTC) == (
        midnight + timedelta(minutes=15)
    )


def test_cron_fields_ranges_lists_steps_and_names() -> None:
    start = datetime(2030, 1, 1, tzinfo=UTC)  # a Tuesday

    assert ticks(Cron("30 9 * * MON-FRI"), start, 4, UTC) == [
        datetime(2030, 1, d, 9, 30, tzinfo=UTC) for d in (1, 2, 3, 4)
    ]
    assert ticks(Cron("0 8,20 1 * *"), start, 3, UTC) == [
        datetime(2030, 1, 1, 8, tzinfo=UTC),
        datetime(2030, 1, 1, 20, tzinfo=UTC),
        datetime(2030, 2, 1, 8, tzinfo=UTC),
    ]


def test_cron_in_a_timezone_keeps_local_time_across_dst() -> None:
    # New York: clocks go forward on 2030-03-10 and back on 2030-11-03.
    spring = ticks(Cron("0 9 * * *"), datetime(2030, 3, 9, 12, tzinfo=UTC), 2, NEW_YORK)
    assert [t.astimezone(NEW_YORK).hour for t in spring] == [9, 9]
    assert [t.hour for t in spring] == [14, 13]  # 09:00 EST is 14:00 UTC, 09:00 EDT 13:00
    autumn = ticks(Cron("0 9 * * *"), datetime(2030, 11, 2, 12, tzinfo=UTC), 2, NEW_YORK)
    assert [t.astimezone(NEW_YORK).hour for t in autumn] == [9, 9]
    assert [t.hour for t in autumn] == [13, 14]


def test_a_cron_time_skipped_by_spring_forward_runs_right_after_the_jump() -> None:
    # Riga jumps from 03:00 to 04:00 local time on 2030-03-31.
    start = datetime(2030, 3, 30, 12, tzinfo=UTC)

    first, second = ticks(Cron("30 3 * * *"), start, 2, RIGA)

    assert first.astimezone(RIGA) == datetime(2030, 3, 31, 4, 0, tzinfo=RIGA)
    assert second.astimezone(RIGA) == datetime(2030, 4, 1, 3, 30, tzinfo=RIGA)


def test_a_cron_time_repeated_by_fall_back_runs_once() -> None:
    # Riga repeats 03:00-04:00 local time on 2030-10-27.
    start = datetime(2030, 10, 26, 12, tzinfo=UTC)

    first, second = ticks(Cron("30 3 * * *"), start, 2, RIGA)

    assert second - first == timedelta(hours=25)  # once on the long day, then the next day


def test_an_hourly_cron_keeps_firing_through_the_repeated_hour() -> None:
    start = datetime(2030, 10, 26, 23, tzinfo=UTC)  # 02:00 in Riga, before the change

    hourly = ticks(Cron("0 * * * *"), start, 4, RIGA)

    assert [b - a for a, b in zip(hourly, hourly[1:], strict=False)] == [timedelta(hours=1)] * 3


def test_invalid_cron_expressions_are_refused() -> None:
    for expression in ("61 * * * *", "0 0 30 2 *", "* * * *", "0 0 * * * *", "@daily", "nope"):
        with pytest.raises(ValueError, match="Invalid cron expression"):
            Cron(expression)


def test_interval_ticks_are_aligned_to_the_epoch() -> None:
    moment = datetime(2030, 1, 1, 12, 7, 30, tzinfo=UTC)

    assert Interval(300).next_after(moment, UTC) == datetime(2030, 1, 1, 12, 10, tzinfo=UTC)
    assert Interval(1).next_after(moment, UTC) == moment + timedelta(seconds=1)
    assert Interval(1.5).next_after(datetime.fromtimestamp(3, UTC), UTC) == (
        datetime.fromtimestamp(4.5, UTC)
    )
    # The same ticks whichever timezone is asked: they are instants, not wall-clock times.
    assert Interval(300).next_after(moment, SAO_PAULO) == Interval(300).next_after(moment, UTC)


def test_interval_next_run_is_strictly_after_a_tick() -> None:
    tick = datetime(2030, 1, 1, 12, 10, tzinfo=UTC)

    assert Interval(300).next_after(tick, UTC) == tick + timedelta(minutes=5)


def test_invalid_intervals_are_refused() -> None:
    for seconds in (0, -5, float("inf"), float("nan")):
        with pytest.raises(ValueError, match="interval"):
            Interval(seconds)


def test_schedules_describe_themselves() -> None:
    assert Cron("0 0 * * *").describe() == "cron 0 0 * * *"
    assert Interval(300).describe() == "every 300s"
    assert isinstance(Interval(5), Schedule)
