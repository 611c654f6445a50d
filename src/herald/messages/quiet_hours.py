"""Quiet hours: when a non-critical message waits, in the recipient's own time zone.

Pure functions over `zoneinfo`, so they can be tested for every edge: quiet hours that run
over midnight (22:00 to 07:00), and the days clocks change. Quiet hours are wall-clock times
in the recipient's zone: 22:00 to 07:00 means the clock on their wall, whatever the offset
that night. An end that does not exist that day (inside a spring-forward gap) is the instant
the gap ends; an end that happens twice (fall back) is its first occurrence still ahead. A
start equal to its end means no quiet hours at all.
"""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo


def quiet_until(at: datetime, start: time, end: time, timezone: ZoneInfo) -> datetime | None:
    """If `at` (an aware datetime) falls inside the quiet hours `start`..`end` (local to
    `timezone`; `end` before `start` runs over midnight), the instant they end, in UTC;
    None when `at` is outside them."""
    if at.tzinfo is None:
        raise ValueError("quiet_until needs an aware datetime")
    if start == end:
        return None
    local = at.astimezone(timezone)
    wall = local.time().replace(tzinfo=None)
    if start < end:
        inside = start <= wall < end
        end_day = local.date()
    else:  # over midnight: from start to midnight, and from midnight to end
        inside = wall >= start or wall < end
        end_day = local.date() + timedelta(days=1) if wall >= start else local.date()
    if not inside:
        return None
    return _first_at_or_after(datetime.combine(end_day, end), timezone, after=at)


def _first_at_or_after(wall: datetime, timezone: ZoneInfo, *, after: datetime) -> datetime | None:
    """The first instant later than `after` at which the clock in `timezone` reads `wall`
    (naive) or later: its first occurrence when it happens twice, the end of the gap when the
    clocks skip it. None if it is not later than `after`."""
    for fold in (0, 1):
        instant = wall.replace(tzinfo=timezone, fold=fold).astimezone(UTC)
        if instant.astimezone(timezone).replace(tzinfo=None) != wall:
            return _end_of_gap(wall, timezone)
        if instant > after:
            return instant
    return None


def _end_of_gap(wall: datetime, timezone: ZoneInfo) -> datetime:
    """`wall` falls in a gap (the clocks jumped over it): the instant the gap ends, found by
    bisecting between the readings with the offsets after and before it (whole seconds)."""
    low = int(wall.replace(tzinfo=timezone, fold=1).timestamp())  # before the jump
    high = int(wall.replace(tzinfo=timezone, fold=0).timestamp())  # after it
    while high - low > 1:
        middle = (low + high) // 2
        if datetime.fromtimestamp(middle, timezone).replace(tzinfo=None) >= wall:
            high = middle
        else:
            low = middle
    return datetime.fromtimestamp(high, UTC)
