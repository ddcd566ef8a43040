"""Stage deadlines on a city's business calendar (SPEC §2 durations, §4 deadlines).

Two clocks exist:

* the **natural** clock (`30s`, `15m`, `4h`, `3d`) is plain elapsed time: nights, weekends and
  holidays all count (urgent limits use it);
* the **working** clock (`4wh`, `1wd`) runs only inside the city's working hours on working
  days. One working day (`wd`) is the length of one day's working hours, so with
  `08:30-12:00, 13:30-17:30` 1wd = 7.5wh.

Parsing a duration string needs no calendar and lives in the leaf module geo.durations (the
city loader checks limits with it); `Duration` and `parse_duration` are re-exported here.

Working-clock conventions (everything below follows from the first two lines):

* Working time is the union, over working days, of the half-open periods
  ``[period_start, period_end)`` in the city's local wall time.
* ``working_seconds_between(a, b)`` is the length of working time inside ``[a, b)``.
* ``add(t, d)`` for a working ``d > 0`` is the **earliest** instant ``x`` with
  ``working_seconds_between(t, x) == d``. Hence:
    - starting outside working time, counting begins at the next period start;
    - a duration that uses up a period exactly ends *at that period's end* (17:30), never
      at the next period's start (08:30 the next working morning);
    - a result is always inside some period with ``start < x <= end`` (it never lands on a
      period start nor outside working time, except exactly at a period end);
    - ``add(add(t, a), b) == add(t, a + b)`` and ``working_seconds_between(t, add(t, d)) == d``.
* ``add(t, 0)`` is ``t`` itself (same instant, expressed in the city timezone) for both clocks.

Which days are working days: city ``workdays``/``holidays`` overrides first, then the
`chinese_calendar` library (public holidays and 调休 make-up workdays); for years that library
does not cover yet, Monday–Friday, with one logged warning per year (never an exception).

All arithmetic is done in whole microseconds on UTC instants so the identities above hold
exactly (datetimes have microsecond resolution, floats would drift), and period boundaries
are converted from local wall time per day so a timezone with DST still measures real time.
"""

from __future__ import annotations

import logging
import math
import re
from datetime import date, datetime, time, timedelta, timezone
from decimal import Decimal
from functools import lru_cache
from typing import Iterable
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import chinese_calendar

from geo.durations import (  # noqa: F401  (re-exported: the deadline API names them)
    DEFAULT_WORKING_DAY_SECONDS,
    MAX_DURATION_SECONDS,
    NATURAL,
    WORKING,
    Duration,
    DurationLike,
    parse_duration,
)
from geo.city import DEFAULT_TIMEZONE, DEFAULT_WORK_HOURS  # the city model's defaults

log = logging.getLogger(__name__)

_PERIOD_RE = re.compile(r"(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})")

# If this many consecutive days contain no working time the calendar is unusable (e.g. every
# day overridden as a holiday); stop instead of searching forever.
_MAX_IDLE_DAYS = 3 * 366

_US = 1_000_000  # microseconds per second
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def _to_us(seconds: float) -> int:
    return round(Decimal(str(seconds)) * _US)


def _instant_us(moment: datetime) -> int:
    """An aware datetime as integer microseconds since the epoch (exact, tz-independent)."""
    if not isinstance(moment, datetime):
        raise ValueError(f"expected a datetime, got {moment!r}")
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"naive datetime {moment.isoformat()} has no timezone; deadlines need aware datetimes")
    delta = moment - _EPOCH  # aware minus aware with different tzinfo => real elapsed time
    return (delta.days * 86400 + delta.seconds) * _US + delta.microseconds


def _parse_day(value, field: str) -> date:
    """city.yaml dates arrive as `date` (unquoted YAML) or 'YYYY-MM-DD' strings."""
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    if isinstance(value, str):
        try:
            return date.fromisoformat(value.strip())
        except ValueError:
            pass
    raise ValueError(f"city.yaml {field}: {value!r} is not a date (expected YYYY-MM-DD)")


def _parse_work_hours(work_hours: Iterable[str]) -> tuple[tuple[time, int], ...]:
    """'08:30-12:00' strings -> sorted (local start time, length in seconds); '24:00' may end a day."""
    if isinstance(work_hours, str):
        work_hours = [work_hours]
    periods: list[tuple[int, int]] = []
    for text in work_hours:
        match = _PERIOD_RE.fullmatch(str(text).strip())
        if not match:
            raise ValueError(f"city.yaml work_hours: {text!r} is not a period like '08:30-12:00'")
        sh, sm, eh, em = (int(g) for g in match.groups())
        start, end = sh * 60 + sm, eh * 60 + em
        if sh > 23 or sm > 59 or em > 59 or end > 24 * 60 or end <= start:
            # Overnight periods (22:00-06:00) are not supported: split them at midnight.
            raise ValueError(f"city.yaml work_hours: {text!r} must be HH:MM-HH:MM with start < end within one day")
        periods.append((start, end))
    if not periods:
        raise ValueError("city.yaml work_hours: at least one working period is required")
    periods.sort()
    for (_, prev_end), (start, _) in zip(periods, periods[1:]):
        if start < prev_end:
            raise ValueError(f"city.yaml work_hours: periods {list(work_hours)!r} overlap")
    return tuple((time(s // 60, s % 60), (e - s) * 60) for s, e in periods)


class BusinessCalendar:
    """A city's working clock: timezone, daily working periods and day-level overrides."""

    def __init__(
        self,
        timezone: str = DEFAULT_TIMEZONE,
        work_hours: Iterable[str] = DEFAULT_WORK_HOURS,
        holidays: Iterable[date | str] = (),
        workdays: Iterable[date | str] = (),
    ):
        try:
            self.tz = ZoneInfo(timezone)
        except (ZoneInfoNotFoundError, ValueError, TypeError):
            raise ValueError(f"city.yaml timezone: unknown timezone {timezone!r}") from None
        self.timezone = timezone
        self.work_hours = tuple(str(p) for p in ([work_hours] if isinstance(work_hours, str) else work_hours))
        self._periods = _parse_work_hours(self.work_hours)
        self.holidays = frozenset(_parse_day(d, "holidays") for d in holidays or ())
        self.workdays = frozenset(_parse_day(d, "workdays") for d in workdays or ())
        both = self.holidays & self.workdays
        if both:
            raise ValueError(f"city.yaml: {sorted(d.isoformat() for d in both)} listed as both holiday and workday")
        # Nominal length of one day's working hours: the size of `1wd`.
        self.working_day_seconds = float(sum(length for _, length in self._periods))
        self._warned_years: set[int] = set()
        # Per-instance caches (bounded: a few years of dates) so days are classified and their
        # periods converted to UTC once, which keeps long spans like 400wd fast.
        self._workday = lru_cache(maxsize=8192)(self._compute_is_workday)
        self._day_periods = lru_cache(maxsize=8192)(self._compute_day_periods)

    @classmethod
    def from_city_config(cls, config: dict) -> "BusinessCalendar":
        """Build from a loaded city.yaml mapping; missing or empty keys take the defaults."""
        config = config or {}
        return cls(
            timezone=config.get("timezone") or DEFAULT_TIMEZONE,
            work_hours=config.get("work_hours") or DEFAULT_WORK_HOURS,
            holidays=config.get("holidays") or (),
            workdays=config.get("workdays") or (),
        )

    def __repr__(self) -> str:
        return f"BusinessCalendar({self.timezone!r}, {list(self.work_hours)!r})"

    # ---- days ---------------------------------------------------------------------------

    def parse_duration(self, text: DurationLike) -> Duration:
        """Like `parse_duration`, with `wd` measured by this city's working day."""
        return self._resolve(parse_duration(text, self.working_day_seconds))

    def is_workday(self, day: date) -> bool:
        if isinstance(day, datetime):
            day = day.astimezone(self.tz).date() if day.tzinfo else day.date()
        return self._workday(day)

    def _compute_is_workday(self, day: date) -> bool:
        if day in self.workdays:
            return True
        if day in self.holidays:
            return False
        try:
            return chinese_calendar.is_workday(day)
        except NotImplementedError:
            # The library ships one year of data at a time; a deployment must keep working
            # until it is upgraded, so fall back to Mon–Fri and say so once per year.
            if day.year not in self._warned_years:
                self._warned_years.add(day.year)
                log.warning(
                    "chinese_calendar has no holiday data for %d; treating Monday-Friday as "
                    "working days (plus city.yaml overrides). Upgrade chinese-calendar or list "
                    "the year's holidays/workdays in city.yaml.",
                    day.year,
                )
            return day.weekday() < 5

    def _compute_day_periods(self, day: date) -> tuple[tuple[int, int], ...]:
        """The day's working periods as (start_us, end_us) epoch microseconds; () if a day off."""
        if not self._workday(day):
            return ()
        result = []
        for start, length in self._periods:
            local_start = datetime.combine(day, start, tzinfo=self.tz)
            # End from local wall time too ('24:00' = next midnight); on a DST day the real
            # length differs from the nominal one and the real one is what elapses.
            local_end = datetime.combine(day, time(), tzinfo=self.tz) + timedelta(
                seconds=start.hour * 3600 + start.minute * 60 + length
            )
            result.append((_instant_us(local_start), _instant_us(local_end)))
        return tuple(result)

    def _local_date(self, us: int) -> date:
        return self._from_us(us).date()

    def _from_us(self, us: int) -> datetime:
        return (_EPOCH + timedelta(microseconds=us)).astimezone(self.tz)

    # ---- clocks -------------------------------------------------------------------------

    def _resolve(self, duration: DurationLike) -> Duration:
        duration = parse_duration(duration, self.working_day_seconds)
        if duration.symbol == "wd":
            # A `wd` parsed elsewhere (maybe with the default day length) means *this* city's day.
            duration = Duration(
                duration.amount, WORKING, float(duration.amount * Decimal(str(self.working_day_seconds))), "wd"
            )
        if duration.seconds < 0:
            raise ValueError(f"negative duration {duration}")
        return duration

    def add(self, start: datetime, duration: DurationLike) -> datetime:
        """`start` plus `duration` on the duration's clock; the result is in the city timezone."""
        duration = self._resolve(duration)
        t = _instant_us(start)
        amount = _to_us(duration.seconds)
        if duration.unit == NATURAL or amount == 0:
            return self._from_us(t + amount)
        return self._from_us(self._add_working(t, amount))

    def _add_working(self, t: int, remaining: int) -> int:
        """Earliest instant x >= t with `remaining` µs of working time in [t, x); remaining > 0."""
        day = self._local_date(t)
        idle = 0
        while True:
            periods = self._day_periods(day)
            for p_start, p_end in periods:
                if p_end <= t:
                    continue
                begin = max(p_start, t)
                available = p_end - begin
                # `<=` makes a duration that fills the period end at its end (17:30), which is
                # the earliest instant with the required working time.
                if remaining <= available:
                    return begin + remaining
                remaining -= available
            idle = 0 if periods else idle + 1
            if idle > _MAX_IDLE_DAYS:
                raise ValueError(f"{self!r}: no working time within {_MAX_IDLE_DAYS} days after {day}")
            day += timedelta(days=1)

    def working_seconds_between(self, a: datetime, b: datetime) -> float:
        """Working time elapsed in [a, b); 0 if b <= a."""
        return self._working_us_between(_instant_us(a), _instant_us(b)) / _US

    def _working_us_between(self, a: int, b: int) -> int:
        if b <= a:
            return 0
        total = 0
        day, last = self._local_date(a), self._local_date(b)
        while day <= last:
            for p_start, p_end in self._day_periods(day):
                overlap = min(p_end, b) - max(p_start, a)
                if overlap > 0:
                    total += overlap
            day += timedelta(days=1)
        return total

    def elapsed_fraction(self, start: datetime, deadline: datetime, now: datetime, unit: DurationLike) -> float:
        """Share of the stage limit [start, deadline] used up at `now`, on the `unit` clock.

        `unit` is 'natural' / 'working' or a Duration/limit string (its clock is used).
        0 before start; may exceed 1 once overdue (1.5 = half the limit again). A zero-length
        limit counts as fully used (1.0) from the deadline on.
        """
        clock = _clock_of(unit)
        s, d, n = _instant_us(start), _instant_us(deadline), _instant_us(now)
        if clock == NATURAL:
            total, used = d - s, n - s
        else:
            total = self._working_us_between(s, d)
            used = self._working_us_between(s, n) if n >= s else n - s
        if total <= 0:
            return 1.0 if n >= d else 0.0
        return max(0.0, used / total)

    def fraction_instant(self, start: datetime, deadline: datetime, fraction: float, unit: DurationLike) -> datetime:
        """The first instant at which `elapsed_fraction(...)` reaches `fraction`.

        Lets the sweep store a `warn_at` next to the deadline instead of recomputing fractions
        for every open case on every run. Rounded up to the microsecond so that at the returned
        instant the fraction is already >= `fraction`.
        """
        clock = _clock_of(unit)
        s, d = _instant_us(start), _instant_us(deadline)
        total = (d - s) if clock == NATURAL else self._working_us_between(s, d)
        if total <= 0:
            return self._from_us(max(s, d))
        target = math.ceil(Decimal(str(fraction)) * total)
        if clock == NATURAL or target <= 0:
            return self._from_us(s + max(target, 0))
        return self._from_us(self._add_working(s, target))

    def is_working_time(self, moment: datetime) -> bool:
        """True inside a working period [start, end) on a working day."""
        return self.working_period_end(moment) is not None

    def working_period_end(self, moment: datetime) -> datetime | None:
        """The end of the working period `moment` lies in, or None outside working time."""
        t = _instant_us(moment)
        for p_start, p_end in self._day_periods(self._local_date(t)):
            if p_start <= t < p_end:
                return self._from_us(p_end)
        return None


def _clock_of(unit: DurationLike) -> str:
    if unit in (NATURAL, WORKING):
        return unit
    return parse_duration(unit).unit


def stage_deadline(calendar: BusinessCalendar, start: datetime, limit: DurationLike) -> datetime:
    """Deadline of a stage that starts at `start` with a category limit such as '2wd' or '4h'."""
    return calendar.add(start, limit)
