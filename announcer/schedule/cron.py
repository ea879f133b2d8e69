"""Five-field cron expressions (``minute hour day-of-month month day-of-week``), parsed and matched.

Written here rather than taken from a library: the grammar is small, the semantics we need
are exactly Vixie cron's, and the time-zone handling (the hard part) is ours anyway
(``announcer.schedule.calendar``). A parsed ``Cron`` only answers "does it fire on this
date" and "at which wall-clock times of such a day".

Grammar, per field: ``*``, a number, a range ``a-b``, a step ``*/n``, ``a-b/n`` or ``a/n``
(from ``a`` to the field's end), and comma-separated lists of these. Months may be named
``jan`` .. ``dec``, weekdays ``sun`` .. ``sat`` (any case); weekday 0 and 7 are both Sunday.
Shorthands: ``@yearly`` (``@annually``), ``@monthly``, ``@weekly``, ``@daily`` (``@midnight``),
``@hourly``.

Day matching is Vixie cron's: when both day-of-month and day-of-week are restricted (neither
starts with ``*``), a day matches if *either* does (``0 8 1 * mon``: the 1st and every
Monday); otherwise both must.

Errors raise ``CronError`` naming the field and what it allows, e.g.
``hour: 24 is out of range (allowed: 0-23)``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

FIELDS: tuple[tuple[str, int, int], ...] = (
    ("minute", 0, 59),
    ("hour", 0, 23),
    ("day-of-month", 1, 31),
    ("month", 1, 12),
    ("day-of-week", 0, 7),
)
MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
WEEKDAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")
SHORTHANDS = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}


class CronError(ValueError):
    """An expression that is not valid cron; the message names the field."""


@dataclass(frozen=True)
class Cron:
    text: str
    minutes: frozenset[int]
    hours: frozenset[int]
    days: frozenset[int]  # of the month, 1 .. 31
    months: frozenset[int]  # 1 .. 12
    weekdays: frozenset[int]  # 0 = Monday .. 6 = Sunday, as ``date.weekday()``
    days_restricted: bool  # the day-of-month field did not start with "*"
    weekdays_restricted: bool

    @classmethod
    def parse(cls, text: str) -> Cron:
        expr = " ".join(str(text).split())
        expanded = SHORTHANDS.get(expr.lower(), expr)
        if expanded.startswith("@"):
            raise CronError(f"unknown shorthand {expr!r} (allowed: {', '.join(SHORTHANDS)})")
        parts = expanded.split(" ")
        if len(parts) != 5 or not expanded:
            raise CronError(
                f"{expr!r} has {len(parts) if expanded else 0} field(s); "
                "cron needs 5: minute hour day-of-month month day-of-week (e.g. '0 8 * * 1-5')"
            )
        values = [_field(part, name, lo, hi) for part, (name, lo, hi) in zip(parts, FIELDS)]
        weekdays = frozenset((d - 1) % 7 for d in values[4])  # cron: 0/7 = Sunday; Python: 6 = Sunday
        return cls(
            text=expr,
            minutes=values[0],
            hours=values[1],
            days=values[2],
            months=values[3],
            weekdays=weekdays,
            days_restricted=not parts[2].startswith("*"),
            weekdays_restricted=not parts[4].startswith("*"),
        )

    def on(self, day: date) -> bool:
        """Whether it fires on ``day`` (at one or more of ``times()``)."""
        if day.month not in self.months:
            return False
        by_day = day.day in self.days
        by_weekday = day.weekday() in self.weekdays
        if self.days_restricted and self.weekdays_restricted:
            return by_day or by_weekday
        return by_day and by_weekday

    def times(self) -> list[tuple[int, int]]:
        """The wall-clock times ``(hour, minute)`` of a day it fires on, in order."""
        return [(h, m) for h in sorted(self.hours) for m in sorted(self.minutes)]

    def can_fire(self) -> bool:
        """False for a date that never exists (``0 0 31 2 *``, ``0 0 30 2 *``)."""
        if self.days_restricted and self.weekdays_restricted:
            return True
        longest = {1: 31, 2: 29, 3: 31, 4: 30, 5: 31, 6: 30, 7: 31, 8: 31, 9: 30, 10: 31, 11: 30, 12: 31}
        return any(d <= longest[m] for m in self.months for d in self.days)


def _number(token: str, name: str, lo: int, hi: int) -> int:
    low = token.lower()
    if name == "month" and low in MONTHS:
        return MONTHS.index(low) + 1
    if name == "day-of-week" and low in WEEKDAYS:
        return WEEKDAYS.index(low)
    if not token.isdigit():
        names = {"month": " or jan .. dec", "day-of-week": " or sun .. sat"}.get(name, "")
        raise CronError(f"{name}: {token!r} is not a number{names}")
    value = int(token)
    if not lo <= value <= hi:
        raise CronError(f"{name}: {value} is out of range (allowed: {lo}-{hi})")
    return value


def _field(text: str, name: str, lo: int, hi: int) -> frozenset[int]:
    out: set[int] = set()
    for item in text.split(","):
        if not item:
            raise CronError(f"{name}: empty item in {text!r}")
        base, slash, step_text = item.partition("/")
        step = 1
        if slash:
            if not step_text.isdigit() or int(step_text) == 0:
                raise CronError(f"{name}: step {step_text!r} must be a whole number ≥ 1")
            step = int(step_text)
        if base == "*":
            start, end = lo, hi
        elif "-" in base:
            a, _, b = base.partition("-")
            start, end = _number(a, name, lo, hi), _number(b, name, lo, hi)
            if start > end:
                raise CronError(f"{name}: range {base!r} runs backwards")
        else:
            start = _number(base, name, lo, hi)
            end = hi if slash else start  # "5/15" is 5, 20, 35, 50
        out.update(range(start, end + 1, step))
    return frozenset(out)
