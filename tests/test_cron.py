"""The five-field cron parser: what it accepts, what it refuses (naming the field), which days and times match."""

from __future__ import annotations

from datetime import date

import pytest

from announcer.schedule.cron import Cron, CronError

pytestmark = pytest.mark.unit


def days_in(cron: Cron, year: int, month: int) -> list[int]:
    out = []
    for d in range(1, 32):
        try:
            day = date(year, month, d)
        except ValueError:
            break
        if cron.on(day):
            out.append(d)
    return out


def test_the_issue_s_shift_bell() -> None:
    c = Cron.parse("0 8,16 * * 1-5")
    assert c.times() == [(8, 0), (16, 0)]
    # June 2025: the 2nd is a Monday
    assert days_in(c, 2025, 6)[:7] == [2, 3, 4, 5, 6, 9, 10]


@pytest.mark.parametrize(
    ("expr", "times"),
    [
        ("*/20 9 * * *", [(9, 0), (9, 20), (9, 40)]),
        ("5/20 9 * * *", [(9, 5), (9, 25), (9, 45)]),
        ("10-40/15 9 * * *", [(9, 10), (9, 25), (9, 40)]),
        ("0 22-23,0 * * *", [(0, 0), (22, 0), (23, 0)]),
        ("@hourly", [(h, 0) for h in range(24)]),
        ("@daily", [(0, 0)]),
    ],
)
def test_minutes_and_hours(expr: str, times: list[tuple[int, int]]) -> None:
    assert Cron.parse(expr).times() == times


def test_names_sunday_twice_and_shorthands() -> None:
    assert Cron.parse("0 8 * * SUN").weekdays == Cron.parse("0 8 * * 0").weekdays == Cron.parse("0 8 * * 7").weekdays
    assert Cron.parse("0 8 * * mon-fri").weekdays == frozenset(range(5))
    assert Cron.parse("0 8 1 jan,Jul *").months == frozenset({1, 7})
    assert days_in(Cron.parse("@monthly"), 2025, 2) == [1]
    assert days_in(Cron.parse("@weekly"), 2025, 6) == [1, 8, 15, 22, 29]  # Sundays
    assert Cron.parse("  0   8  *  * 1-5 ").text == "0 8 * * 1-5"


def test_day_of_month_and_weekday_match_either_when_both_are_given() -> None:
    # Vixie cron: "the 1st and every Monday", not "a Monday that is the 1st"
    assert days_in(Cron.parse("0 8 1 * mon"), 2025, 9) == [1, 8, 15, 22, 29]
    assert days_in(Cron.parse("0 8 13 * fri"), 2025, 6) == [6, 13, 20, 27]
    # one of them "*": both must match
    assert days_in(Cron.parse("0 8 */10 * *"), 2025, 6) == [1, 11, 21]
    assert days_in(Cron.parse("0 8 * * fri"), 2025, 6) == [6, 13, 20, 27]
    assert days_in(Cron.parse("0 8 29 2 *"), 2024, 2) == [29] and days_in(Cron.parse("0 8 29 2 *"), 2025, 2) == []


@pytest.mark.parametrize(
    ("expr", "error"),
    [
        ("0 8 * *", "'0 8 * *' has 4 field(s); cron needs 5: minute hour day-of-month month day-of-week"),
        ("", "has 0 field(s)"),
        ("60 8 * * *", "minute: 60 is out of range (allowed: 0-59)"),
        ("0 24 * * *", "hour: 24 is out of range (allowed: 0-23)"),
        ("0 8 0 * *", "day-of-month: 0 is out of range (allowed: 1-31)"),
        ("0 8 * 13 *", "month: 13 is out of range (allowed: 1-12)"),
        ("0 8 * * 8", "day-of-week: 8 is out of range (allowed: 0-7)"),
        ("0 8 * * funday", "day-of-week: 'funday' is not a number or sun .. sat"),
        ("0 8 * * 5-1", "day-of-week: range '5-1' runs backwards"),
        ("*/0 8 * * *", "minute: step '0' must be a whole number ≥ 1"),
        ("0 8,,9 * * *", "hour: empty item in '8,,9'"),
        ("@reboot", "unknown shorthand '@reboot'"),
    ],
)
def test_errors_name_the_field(expr: str, error: str) -> None:
    with pytest.raises(CronError) as exc:
        Cron.parse(expr)
    assert error in str(exc.value)


def test_dates_that_never_exist_are_found() -> None:
    assert not Cron.parse("0 0 30 2 *").can_fire()
    assert not Cron.parse("0 0 31 4,6,9,11 *").can_fire()
    assert Cron.parse("0 0 29 2 *").can_fire() and Cron.parse("0 0 31 2 mon").can_fire()
