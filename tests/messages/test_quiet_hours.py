"""Quiet hours in the recipient's zone: over midnight, and on the nights clocks change."""

from __future__ import annotations

from datetime import UTC, datetime, time
from zoneinfo import ZoneInfo

import pytest

from herald.messages.quiet_hours import quiet_until

BERLIN = ZoneInfo("Europe/Berlin")
NIGHT = (time(22), time(7))


def _local(*args: int, zone: ZoneInfo = BERLIN, fold: int = 0) -> datetime:
    return datetime(*args, tzinfo=zone, fold=fold)  # type: ignore[misc]


def test_23_00_local_waits_until_07_00_the_next_morning() -> None:
    until = quiet_until(_local(2026, 1, 14, 23, 0).astimezone(UTC), *NIGHT, BERLIN)
    assert until == _local(2026, 1, 15, 7, 0).astimezone(UTC)
    assert until is not None
    assert until.tzinfo == UTC


def test_after_midnight_waits_until_07_00_the_same_morning() -> None:
    assert quiet_until(_local(2026, 7, 1, 3, 30), *NIGHT, BERLIN) == _local(2026, 7, 1, 7, 0)


@pytest.mark.parametrize(
    "at", [_local(2026, 7, 1, 7, 0), _local(2026, 7, 1, 12, 0), _local(2026, 7, 1, 21, 59)]
)
def test_outside_the_quiet_hours_nothing_waits(at: datetime) -> None:
    assert quiet_until(at, *NIGHT, BERLIN) is None


def test_the_start_is_inside_and_the_end_is_outside() -> None:
    assert quiet_until(_local(2026, 7, 1, 22, 0), *NIGHT, BERLIN) == _local(2026, 7, 2, 7, 0)
    assert quiet_until(_local(2026, 7, 1, 7, 0), *NIGHT, BERLIN) is None


def test_quiet_hours_within_one_day() -> None:
    lunch = (time(12), time(14))
    assert quiet_until(_local(2026, 7, 1, 13, 0), *lunch, BERLIN) == _local(2026, 7, 1, 14, 0)
    assert quiet_until(_local(2026, 7, 1, 23, 0), *lunch, BERLIN) is None


def test_equal_start_and_end_means_no_quiet_hours() -> None:
    assert quiet_until(_local(2026, 7, 1, 9, 0), time(9), time(9), BERLIN) is None


def test_the_zone_decides_not_utc() -> None:
    # 23:00 UTC is 08:00 in Tokyo (outside) and 23:00 in London in winter (inside)
    at = datetime(2026, 1, 14, 23, 0, tzinfo=UTC)
    assert quiet_until(at, *NIGHT, ZoneInfo("Asia/Tokyo")) is None
    london = ZoneInfo("Europe/London")
    assert quiet_until(at, *NIGHT, london) == _local(2026, 1, 15, 7, 0, zone=london)


def test_the_night_clocks_go_forward_ends_at_07_00_summer_time() -> None:
    # Berlin, 29 March 2026: 02:00 CET -> 03:00 CEST; the night is an hour shorter
    until = quiet_until(_local(2026, 3, 28, 23, 0), *NIGHT, BERLIN)
    assert until == datetime(2026, 3, 29, 5, 0, tzinfo=UTC)  # 07:00 CEST


def test_the_night_clocks_go_back_ends_at_07_00_winter_time() -> None:
    # Berlin, 25 October 2026: 03:00 CEST -> 02:00 CET; the night is an hour longer
    until = quiet_until(_local(2026, 10, 24, 23, 0), *NIGHT, BERLIN)
    assert until == datetime(2026, 10, 25, 6, 0, tzinfo=UTC)  # 07:00 CET


def test_an_end_inside_the_spring_gap_is_the_end_of_the_gap() -> None:
    # quiet 01:00-02:30; 02:30 does not exist on 29 March: the clock reads 03:00 CEST next
    until = quiet_until(_local(2026, 3, 29, 1, 30), time(1), time(2, 30), BERLIN)
    assert until == datetime(2026, 3, 29, 1, 0, tzinfo=UTC)  # 03:00 CEST


def test_an_end_that_happens_twice_is_the_next_occurrence() -> None:
    # quiet 22:00-02:30; 02:30 happens at 00:30 UTC (CEST) and at 01:30 UTC (CET)
    quiet = (time(22), time(2, 30))
    first = quiet_until(_local(2026, 10, 25, 1, 0), *quiet, BERLIN)
    assert first == datetime(2026, 10, 25, 0, 30, tzinfo=UTC)
    # 02:15 CET, the second time round: still quiet by the wall clock, until the second 02:30
    second = quiet_until(_local(2026, 10, 25, 2, 15, fold=1), *quiet, BERLIN)
    assert second == datetime(2026, 10, 25, 1, 30, tzinfo=UTC)


def test_a_naive_datetime_is_refused() -> None:
    with pytest.raises(ValueError, match="aware"):
        quiet_until(datetime(2026, 1, 1, 23), *NIGHT, BERLIN)
