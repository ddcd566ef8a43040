"""Business-calendar deadlines (SPEC §2 durations, §4 deadlines).

Expected instants are worked out by hand from working hours 08:30-12:00 + 13:30-17:30
(3.5h + 4h = 7.5h a day) and the official 2026 arrangement (国务院办公厅关于2026年部分节假日
安排的通知):

    元旦    Jan 1 (Thu) - Jan 3 (Sat) off;  Jan 4 (Sun) work
    春节    Feb 15 (Sun) - Feb 23 (Mon) off;  Feb 14 (Sat), Feb 28 (Sat) work
    清明    Apr 4 (Sat) - Apr 6 (Mon) off
    劳动节  May 1 (Fri) - May 5 (Tue) off;  May 9 (Sat) work
    端午    Jun 19 (Fri) - Jun 21 (Sun) off
    中秋    Sep 25 (Fri) - Sep 27 (Sun) off
    国庆    Oct 1 (Thu) - Oct 7 (Wed) off;  Sep 20 (Sun), Oct 10 (Sat) work
"""

from __future__ import annotations

import logging
import time as timer
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dispatch.workflow.deadlines import (
    NATURAL,
    WORKING,
    BusinessCalendar,
    Duration,
    parse_duration,
    stage_deadline,
)

SH = ZoneInfo("Asia/Shanghai")
WH = 3600.0


def at(y, mo, d, h=0, mi=0, s=0):
    return datetime(y, mo, d, h, mi, s, tzinfo=SH)


@pytest.fixture
def cal():
    return BusinessCalendar("Asia/Shanghai", ["08:30-12:00", "13:30-17:30"], [], [])


# ---- parse_duration -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, unit, seconds",
    [
        ("30s", NATURAL, 30),
        ("15m", NATURAL, 900),
        ("4h", NATURAL, 14400),
        ("3d", NATURAL, 259200),
        ("4wh", WORKING, 14400),
        ("1.5wh", WORKING, 5400),
        ("1wd", WORKING, 27000),
        ("2wd", WORKING, 54000),
        ("0.5d", NATURAL, 43200),
        ("0h", NATURAL, 0),
        (" 2h ", NATURAL, 7200),
    ],
)
def test_parse_duration_valid(text, unit, seconds):
    d = parse_duration(text)
    assert d.unit == unit
    assert d.seconds == seconds
    assert isinstance(d.amount, Decimal)


def test_parse_duration_amount_and_symbol():
    d = parse_duration("1.5wh")
    assert d.amount == Decimal("1.5") and d.symbol == "wh"
    assert str(d) == "1.5wh"
    assert parse_duration(d) is d


@pytest.mark.parametrize(
    "bad", ["", "4", "h", "4x", "4 hours", "-1h", "1.h", "4W", "1wd2h", "1e3s", "4hh", "wd1", "99999999wd"]
)
def test_parse_duration_invalid_names_the_text(bad):
    with pytest.raises(ValueError) as err:
        parse_duration(bad)
    assert repr(bad) in str(err.value)


@pytest.mark.parametrize("bad", [None, 4, 1.5, ["4h"]])
def test_parse_duration_non_string_is_value_error(bad):
    with pytest.raises(ValueError):
        parse_duration(bad)


def test_duration_is_frozen():
    d = parse_duration("4wh")
    with pytest.raises(Exception):
        d.seconds = 1  # type: ignore[misc]


def test_wd_follows_the_city_working_day():
    eight_hours = BusinessCalendar("Asia/Shanghai", ["09:00-12:00", "13:00-18:00"])
    assert eight_hours.working_day_seconds == 8 * WH
    assert eight_hours.parse_duration("1wd").seconds == 8 * WH
    # A `wd` parsed with the default 7.5h day still means one of *this* city's days.
    # 11:00-12:00 1h, 13:00-18:00 5h, next day 09:00 + 2h.
    assert eight_hours.add(at(2026, 3, 10, 11), parse_duration("1wd")) == at(2026, 3, 11, 11)
    # From the opening, 8 working hours end at that day's 18:00 (a period end).
    assert eight_hours.add(at(2026, 3, 10, 9), "1wd") == at(2026, 3, 10, 18)


# ---- working-hour boundaries (Tuesday 2026-03-10, an ordinary week) -------------------------


def test_4wh_from_tuesday_1100_ends_1630(cal):
    # 11:00-12:00 = 1h, then 13:30 + 3h
    assert cal.add(at(2026, 3, 10, 11), "4wh") == at(2026, 3, 10, 16, 30)


def test_start_in_lunch_break_counts_from_1330(cal):
    assert cal.add(at(2026, 3, 10, 12, 30), "2wh") == at(2026, 3, 10, 15, 30)


def test_duration_ending_exactly_at_1730_stays_at_1730(cal):
    # From 12:30 (lunch) the clock starts at 13:30; 4h later is exactly the period end.
    assert cal.add(at(2026, 3, 10, 12, 30), "4wh") == at(2026, 3, 10, 17, 30)
    # Same at the morning period's end: 1wh from 11:00 is 12:00, not 13:30.
    assert cal.add(at(2026, 3, 10, 11), "1wh") == at(2026, 3, 10, 12)
    # 15 working days from Monday 08:30 fill three whole weeks: Friday 17:30, not Monday 08:30.
    assert cal.add(at(2026, 3, 2, 8, 30), "15wd") == at(2026, 3, 20, 17, 30)


def test_friday_1700_runs_into_monday(cal):
    # Fri 2026-03-13: 17:00-17:30 = 0.5h; Mon 03-16: 08:30 + 3.5h = 12:00 (a period end).
    assert cal.add(at(2026, 3, 13, 17), "4wh") == at(2026, 3, 16, 12)
    assert cal.add(at(2026, 3, 13, 17), "1wh") == at(2026, 3, 16, 9)


def test_start_before_opening_and_after_closing(cal):
    assert cal.add(at(2026, 3, 10, 7), "1wh") == at(2026, 3, 10, 9, 30)
    assert cal.add(at(2026, 3, 10, 20), "1wh") == at(2026, 3, 11, 9, 30)
    # Exactly at 17:30 (not working time: periods are [start, end)) -> next morning.
    assert cal.add(at(2026, 3, 10, 17, 30), "30m") == at(2026, 3, 10, 18)  # natural: just +30m
    assert cal.add(at(2026, 3, 10, 17, 30), "0.5wh") == at(2026, 3, 11, 9)


def test_weekend_start(cal):
    # Saturday 2026-03-14 -> Monday 08:30 + 1.5h
    assert cal.add(at(2026, 3, 14, 10), "1.5wh") == at(2026, 3, 16, 10)


def test_one_working_day_is_the_same_time_next_working_day(cal):
    assert cal.add(at(2026, 3, 10, 11), "1wd") == at(2026, 3, 11, 11)
    assert cal.add(at(2026, 3, 10, 8, 30), "1wd") == at(2026, 3, 10, 17, 30)


def test_adding_zero_returns_start(cal):
    for start in (at(2026, 3, 10, 11), at(2026, 3, 14, 3), at(2026, 10, 3, 12, 45)):
        assert cal.add(start, "0wh") == start
        assert cal.add(start, "0h") == start
        assert cal.add(start, Duration.working(0)) == start


def test_any_timezone_in_city_timezone_out(cal):
    utc_start = datetime(2026, 3, 10, 3, 0, tzinfo=timezone.utc)  # 11:00 in Shanghai
    result = cal.add(utc_start, "4wh")
    assert result == at(2026, 3, 10, 16, 30)
    assert result.tzinfo == SH and result.hour == 16 and result.minute == 30


def test_naive_datetime_is_rejected(cal):
    with pytest.raises(ValueError, match="naive"):
        cal.add(datetime(2026, 3, 10, 11), "4wh")


def test_stage_deadline(cal):
    assert stage_deadline(cal, at(2026, 3, 10, 11), "4wh") == at(2026, 3, 10, 16, 30)
    assert stage_deadline(cal, at(2026, 3, 10, 11), "2h") == at(2026, 3, 10, 13)


# ---- 2026 holidays and make-up workdays ----------------------------------------------------


def test_library_agrees_with_the_2026_notice(cal):
    off = [date(2026, 1, 1), date(2026, 1, 2), date(2026, 2, 16), date(2026, 2, 23), date(2026, 4, 6),
           date(2026, 5, 4), date(2026, 5, 5), date(2026, 6, 19), date(2026, 9, 25), date(2026, 10, 1),
           date(2026, 10, 5), date(2026, 10, 6), date(2026, 10, 7)]
    make_up = [date(2026, 1, 4), date(2026, 2, 14), date(2026, 2, 28), date(2026, 5, 9), date(2026, 9, 20),
               date(2026, 10, 10)]
    assert not any(cal.is_workday(d) for d in off)
    assert all(cal.is_workday(d) for d in make_up)
    assert cal.is_workday(date(2026, 9, 30)) and cal.is_workday(date(2026, 10, 8))
    assert not cal.is_workday(date(2026, 10, 11))  # ordinary Sunday after the make-up Saturday


def test_national_day_one_working_day_from_sep_30_afternoon(cal):
    # Sep 30 15:00-17:30 = 2.5h; Oct 1-7 off; Oct 8 08:30-12:00 = 3.5h; 13:30 + 1.5h.
    assert cal.add(at(2026, 9, 30, 15), "1wd") == at(2026, 10, 8, 15)


def test_national_day_make_up_saturday_counts(cal):
    # 3wd = 22.5h: Sep 30 2.5, Oct 8 7.5, Oct 9 7.5 (17.5 used), Sat Oct 10 3.5 + 1.5 -> 15:00.
    assert cal.add(at(2026, 9, 30, 15), "3wd") == at(2026, 10, 10, 15)
    # One more day skips Sunday Oct 11.
    assert cal.add(at(2026, 9, 30, 15), "4wd") == at(2026, 10, 12, 15)


def test_make_up_sunday_before_mid_autumn_counts(cal):
    # Sat Sep 19 is off, Sun Sep 20 is a make-up workday.
    assert cal.add(at(2026, 9, 19, 10), "1wh") == at(2026, 9, 20, 9, 30)
    # Mid-Autumn Sep 25-27 off: Thursday 17:00 + 1wh -> Monday Sep 28 09:00.
    assert cal.add(at(2026, 9, 24, 17), "1wh") == at(2026, 9, 28, 9)


def test_spring_festival_2026(cal):
    # Fri Feb 13 17:00: 0.5h, then make-up Saturday Feb 14 08:30 + 0.5h.
    assert cal.add(at(2026, 2, 13, 17), "1wh") == at(2026, 2, 14, 9)
    # Sat Feb 14 16:00: 1.5h, then Feb 15-23 off -> Tue Feb 24 08:30 + 0.5h.
    assert cal.add(at(2026, 2, 14, 16), "2wh") == at(2026, 2, 24, 9)
    # Make-up Saturday Feb 28 after the holiday.
    assert cal.add(at(2026, 2, 27, 17), "1wh") == at(2026, 2, 28, 9)
    # 1wd from the last afternoon before the holiday: Feb 14 15:00 2.5h, Feb 24 3.5h + 1.5h.
    assert cal.add(at(2026, 2, 14, 15), "1wd") == at(2026, 2, 24, 15)


def test_new_year_2026(cal):
    # Wed Dec 31 2025 17:00 + 1wh: Jan 1-3 off, Sunday Jan 4 is a make-up workday.
    assert cal.add(at(2025, 12, 31, 17), "1wh") == at(2026, 1, 4, 9)


def test_urgent_natural_limits_run_through_nights_and_holidays(cal):
    assert cal.add(at(2026, 10, 1, 23), "2h") == at(2026, 10, 2, 1)
    assert cal.add(at(2026, 9, 30, 17), "3d") == at(2026, 10, 3, 17)
    assert cal.add(at(2026, 2, 15, 23, 59), "30s") == at(2026, 2, 15, 23, 59, 30)
    assert cal.add(at(2026, 3, 13, 17), "15m") == at(2026, 3, 13, 17, 15)
    assert cal.add(at(2026, 1, 1, 0), "30d") == at(2026, 1, 31, 0)


# ---- years the library does not cover, overrides -------------------------------------------


def test_uncovered_year_falls_back_to_weekdays_and_warns_once(cal, caplog):
    caplog.set_level(logging.WARNING, logger="dispatch.workflow.deadlines")
    # 2027-01-01 is a Friday: without data it is an ordinary weekday.
    assert cal.is_workday(date(2027, 1, 1))
    assert not cal.is_workday(date(2027, 1, 2))  # Saturday
    assert not cal.is_workday(date(2027, 1, 3))  # Sunday
    assert cal.is_workday(date(2027, 1, 4))  # Monday
    # Thu Dec 31 2026 17:00 + 1wh -> Fri Jan 1 2027 09:00; 10wd later spans many 2027 days.
    assert cal.add(at(2026, 12, 31, 17), "1wh") == at(2027, 1, 1, 9)
    # Fri Jan 1 08:30 + 10wd = two full weeks of Mon-Fri -> Thu Jan 14 17:30.
    assert cal.add(at(2027, 1, 1, 8, 30), "10wd") == at(2027, 1, 14, 17, 30)
    warnings_2027 = [r for r in caplog.records if "2027" in r.getMessage()]
    assert len(warnings_2027) == 1
    assert warnings_2027[0].levelno == logging.WARNING


def test_years_before_the_library_also_fall_back(caplog):
    caplog.set_level(logging.WARNING, logger="dispatch.workflow.deadlines")
    cal = BusinessCalendar()
    assert cal.is_workday(date(2003, 1, 1))  # Wednesday
    assert not cal.is_workday(date(2003, 1, 4))  # Saturday
    assert len([r for r in caplog.records if "2003" in r.getMessage()]) == 1


def test_city_overrides_take_precedence():
    cal = BusinessCalendar.from_city_config(
        {
            "timezone": "Asia/Shanghai",
            "work_hours": ["08:30-12:00", "13:30-17:30"],
            "holidays": [date(2027, 1, 1), "2026-03-10"],
            "workdays": ["2027-01-02", date(2026, 10, 5)],
        }
    )
    assert not cal.is_workday(date(2027, 1, 1))  # uncovered-year weekday forced off
    assert cal.is_workday(date(2027, 1, 2))  # uncovered-year Saturday forced on
    assert not cal.is_workday(date(2026, 3, 10))  # ordinary Tuesday forced off
    assert cal.is_workday(date(2026, 10, 5))  # National Day forced on
    # Thu Dec 31 2026 17:00 + 1wh: Jan 1 off, Sat Jan 2 on.
    assert cal.add(at(2026, 12, 31, 17), "1wh") == at(2027, 1, 2, 9)
    # Mon Mar 9 17:00 + 1wh skips the overridden Tuesday.
    assert cal.add(at(2026, 3, 9, 17), "1wh") == at(2026, 3, 11, 9)


def test_override_only_does_not_warn(caplog):
    caplog.set_level(logging.WARNING, logger="dispatch.workflow.deadlines")
    cal = BusinessCalendar(holidays=["2028-06-01"])
    assert not cal.is_workday(date(2028, 6, 1))
    assert not caplog.records


def test_from_city_config_defaults_and_empty_lists():
    cal = BusinessCalendar.from_city_config({"id": "330100", "name": "杭州", "holidays": None, "workdays": None})
    assert cal.timezone == "Asia/Shanghai"
    assert cal.working_day_seconds == 7.5 * WH


@pytest.mark.parametrize(
    "kwargs",
    [
        {"timezone": "Mars/Olympus"},
        {"work_hours": []},
        {"work_hours": ["8-12"]},
        {"work_hours": ["12:00-08:30"]},
        {"work_hours": ["22:00-06:00"]},
        {"work_hours": ["08:30-12:00", "11:00-14:00"]},
        {"work_hours": ["08:30-25:00"]},
        {"holidays": ["2026-13-01"]},
        {"holidays": ["2026-03-10"], "workdays": ["2026-03-10"]},
    ],
)
def test_bad_city_config_is_a_clear_value_error(kwargs):
    with pytest.raises(ValueError):
        BusinessCalendar(**kwargs)


def test_unsorted_work_hours_and_midnight_end():
    cal = BusinessCalendar(work_hours=["13:30-17:30", "08:30-12:00"])
    assert cal.add(at(2026, 3, 10, 11), "4wh") == at(2026, 3, 10, 16, 30)
    round_the_clock = BusinessCalendar(work_hours=["00:00-24:00"])
    assert round_the_clock.working_day_seconds == 86400
    # Friday 20:00 + 4wh: 4h left on Friday -> exactly midnight (period end), then the weekend.
    assert round_the_clock.add(at(2026, 3, 13, 20), "4wh") == at(2026, 3, 14, 0)
    assert round_the_clock.add(at(2026, 3, 13, 20), "5wh") == at(2026, 3, 16, 1)


# ---- working_seconds_between, elapsed_fraction ---------------------------------------------


def test_working_seconds_between(cal):
    assert cal.working_seconds_between(at(2026, 3, 10, 11), at(2026, 3, 10, 16, 30)) == 4 * WH
    assert cal.working_seconds_between(at(2026, 9, 30, 15), at(2026, 10, 8, 15)) == 7.5 * WH
    assert cal.working_seconds_between(at(2026, 3, 13, 17), at(2026, 3, 16, 12)) == 4 * WH
    assert cal.working_seconds_between(at(2026, 3, 14, 0), at(2026, 3, 15, 23)) == 0  # weekend
    assert cal.working_seconds_between(at(2026, 3, 10, 16), at(2026, 3, 10, 11)) == 0  # b < a
    assert cal.working_seconds_between(at(2026, 3, 10, 11), at(2026, 3, 10, 11)) == 0
    # Week of Mar 2-6 plus Monday Mar 9 morning: 5 * 7.5 + 3.5.
    assert cal.working_seconds_between(at(2026, 3, 1), at(2026, 3, 9, 13)) == 41 * WH


def test_elapsed_fraction(cal):
    start = at(2026, 3, 10, 8, 30)
    deadline = cal.add(start, "4wh")
    assert deadline == at(2026, 3, 10, 14)  # 3.5h morning + 30 min afternoon
    # Lunch does not count: at 13:00 3.5 of 4 working hours are used.
    assert cal.elapsed_fraction(start, deadline, at(2026, 3, 10, 13), WORKING) == pytest.approx(0.875)
    assert cal.elapsed_fraction(start, deadline, at(2026, 3, 10, 13), "4wh") == pytest.approx(0.875)
    assert cal.elapsed_fraction(start, deadline, deadline, WORKING) == 1.0
    # Overdue: by 17:30 another 3.5h are used (7.5 / 4); the night adds nothing; 09:00 is 8 / 4.
    assert cal.elapsed_fraction(start, deadline, at(2026, 3, 10, 17, 30), WORKING) == pytest.approx(1.875)
    assert cal.elapsed_fraction(start, deadline, at(2026, 3, 11, 8, 30), WORKING) == pytest.approx(1.875)
    assert cal.elapsed_fraction(start, deadline, at(2026, 3, 11, 9), WORKING) == pytest.approx(2.0)
    assert cal.elapsed_fraction(start, deadline, at(2026, 3, 10, 7), WORKING) == 0.0
    # Natural clock: 2h limit, 1h36m in -> 0.8.
    nstart = at(2026, 10, 1, 23)
    ndeadline = cal.add(nstart, "2h")
    assert cal.elapsed_fraction(nstart, ndeadline, at(2026, 10, 2, 0, 36), NATURAL) == pytest.approx(0.8)
    # Zero-length limit: used up from the deadline on.
    assert cal.elapsed_fraction(start, start, start, WORKING) == 1.0
    assert cal.elapsed_fraction(start, start, at(2026, 3, 10, 8), WORKING) == 0.0


def test_fraction_instant_is_where_the_warning_starts(cal):
    start = at(2026, 3, 10, 8, 30)
    deadline = cal.add(start, "4wh")
    warn_at = cal.fraction_instant(start, deadline, 0.8, WORKING)
    assert warn_at == at(2026, 3, 10, 11, 42)  # 0.8 * 4h = 3h12m after 08:30
    nstart = at(2026, 10, 1, 23)
    assert cal.fraction_instant(nstart, cal.add(nstart, "2h"), 0.8, NATURAL) == at(2026, 10, 2, 0, 36)


def test_is_working_time(cal):
    assert cal.is_working_time(at(2026, 3, 10, 8, 30))
    assert not cal.is_working_time(at(2026, 3, 10, 12))
    assert not cal.is_working_time(at(2026, 3, 10, 17, 30))
    assert not cal.is_working_time(at(2026, 10, 2, 10))


# ---- efficiency -----------------------------------------------------------------------------


def test_long_spans_are_fast(cal):
    began = timer.perf_counter()
    far = cal.add(at(2026, 3, 2, 8, 30), "400wd")
    assert cal.working_seconds_between(at(2026, 3, 2, 8, 30), far) == 400 * 7.5 * WH
    assert cal.add(at(2026, 3, 2, 8, 30), "30d") == at(2026, 4, 1, 8, 30)
    assert cal.add(at(2026, 3, 2, 8, 30), "15wd") == at(2026, 3, 20, 17, 30)
    assert far.year == 2027
    assert timer.perf_counter() - began < 2.0


# ---- properties -----------------------------------------------------------------------------

PROPERTY_CAL = BusinessCalendar("Asia/Shanghai", ["08:30-12:00", "13:30-17:30"], ["2027-01-01"], ["2027-01-02"])
_BASE = datetime(2025, 12, 20, tzinfo=SH)
# Starts over Dec 2025 - Jan 2027 (New Year, Spring Festival, National Day, the uncovered
# 2027 start) at one-second resolution, in the city timezone or in UTC.
starts = st.builds(
    lambda sec, in_utc: (_BASE + timedelta(seconds=sec)).astimezone(timezone.utc if in_utc else SH),
    st.integers(0, 400 * 86400),
    st.booleans(),
)
# Working durations up to 20 working days, in seconds; small values and exact multiples of
# the periods (3.5h, 4h, 7.5h) are where the boundary conventions bite.
work_seconds = st.one_of(
    st.integers(0, 20 * 27000),
    st.integers(0, 40).map(lambda n: n * 1800),
    st.sampled_from([1, 12600, 14400, 27000, 54000]),
)
PROPS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _in_period_end_inclusive(cal, moment):
    """True if start < moment <= end for some working period of a working day."""
    local = moment.astimezone(cal.tz)
    if not cal.is_workday(local.date()):
        return False
    for spec in cal.work_hours:
        begin, end = spec.split("-")
        b = local.replace(hour=int(begin[:2]), minute=int(begin[3:]), second=0, microsecond=0)
        e = local.replace(hour=int(end[:2]), minute=int(end[3:]), second=0, microsecond=0)
        if b < local <= e:
            return True
    return False


@PROPS
@given(starts, work_seconds, work_seconds)
def test_prop_add_is_monotonic_in_duration(start, a, b):
    lo, hi = sorted((a, b))
    assert PROPERTY_CAL.add(start, Duration.working(lo)) <= PROPERTY_CAL.add(start, Duration.working(hi))


@PROPS
@given(starts, st.integers(0, 5 * 86400), work_seconds)
def test_prop_add_is_monotonic_in_start(start, shift, d):
    later = start + timedelta(seconds=shift)
    assert PROPERTY_CAL.add(start, Duration.working(d)) <= PROPERTY_CAL.add(later, Duration.working(d))
    assert PROPERTY_CAL.add(start, Duration.natural(d)) <= PROPERTY_CAL.add(later, Duration.natural(d))


@PROPS
@given(starts, work_seconds.filter(lambda d: d > 0))
def test_prop_result_is_inside_a_period_or_at_its_end(start, d):
    result = PROPERTY_CAL.add(start, Duration.working(d))
    assert result > start
    assert _in_period_end_inclusive(PROPERTY_CAL, result)


@PROPS
@given(starts)
def test_prop_adding_no_working_time_is_the_start_itself(start):
    assert PROPERTY_CAL.add(start, Duration.working(0)) == start


@PROPS
@given(starts, work_seconds, work_seconds)
def test_prop_add_composes(start, a, b):
    cal = PROPERTY_CAL
    two_steps = cal.add(cal.add(start, Duration.working(a)), Duration.working(b))
    assert two_steps == cal.add(start, Duration.working(a + b))


@PROPS
@given(starts, work_seconds)
def test_prop_working_seconds_between_inverts_add(start, d):
    duration = Duration.working(d)
    assert PROPERTY_CAL.working_seconds_between(start, PROPERTY_CAL.add(start, duration)) == duration.seconds


@PROPS
@given(starts, st.integers(0, 30 * 86400))
def test_prop_working_seconds_between_is_additive(start, span):
    cal = PROPERTY_CAL
    end = start + timedelta(seconds=span)
    middle = start + timedelta(seconds=span // 3)
    assert cal.working_seconds_between(start, end) == (
        cal.working_seconds_between(start, middle) + cal.working_seconds_between(middle, end)
    )
    assert 0 <= cal.working_seconds_between(start, end) <= span


@PROPS
@given(starts, work_seconds)
def test_prop_natural_add_is_plain_elapsed_time(start, d):
    assert PROPERTY_CAL.add(start, Duration.natural(d)) == start + timedelta(seconds=d)
