"""When schedules fire: wall-clock times in the site's time zone turned into instants, DST-safe.

A schedule names wall-clock times ("08:00 on weekdays", ``0 8,16 * * 1-5``); a ``Firing`` is
one of them on one date: its *nominal* local time (what the config says, which also makes
its id ``<schedule>-<YYYY-MM-DD>T<HHMM>``) and the instant it fires.

Rules (the decisions, in one place):

* Wall times become instants through zoneinfo. A time that exists once is that instant.
* Autumn (the clocks go back, 02:00-03:00 happens twice): a time in the repeated hour fires
  once, at its first occurrence (PEP 495 ``fold=0``). Both occurrences have the same nominal
  time, hence the same id: the second one is never generated, and could not be accepted.
* Spring (the clocks skip forward, 02:00-03:00 does not exist): a time in the skipped hour
  fires once, at the instant the clocks skip (03:00 new time), the way cron does.
* One instant fires a schedule once: when several of its times map to the same instant (a
  ``*/15`` schedule's skipped 02:00 .. 02:45, and its 03:00), the one that exists wins,
  else the earliest; the others do not fire.
* ``site_zone(None)`` is the system's local zone (``$TZ``, else ``/etc/localtime``, else UTC).
"""

from __future__ import annotations

import os
import zoneinfo
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta, tzinfo
from typing import Protocol

HORIZON_DAYS = 8 * 366 + 2  # far enough for 29 February (and a century's skipped leap year)


class Timing(Protocol):
    """What a schedule says about days and times (``Cron``, or ``at`` + ``days``, plus dates and holidays)."""

    def on(self, day: date) -> bool: ...

    def times(self) -> list[tuple[int, int]]: ...


@dataclass(frozen=True, order=True)
class Firing:
    at: float  # epoch seconds: when it fires
    schedule: str
    local: datetime  # the nominal wall-clock time (naive), as the config names it

    @property
    def id(self) -> str:
        """The announcement id: ``<schedule>-<date>T<HHMM>`` (a restart can never fire it twice)."""
        return f"{self.schedule}-{self.local:%Y-%m-%dT%H%M}"

    def describe(self, tz: tzinfo) -> str:
        """``2025-06-03 08:00 CEST``: when it fires, in the site's zone."""
        when = datetime.fromtimestamp(self.at, tz)
        return f"{when:%Y-%m-%d %H:%M} {when.tzname() or ''}".rstrip()


def site_zone(name: str | None) -> tzinfo:
    """The zone of the ``timezone`` setting (an IANA name), or the system's when None."""
    if name:
        return zoneinfo.ZoneInfo(name)
    env = os.environ.get("TZ", "").lstrip(":")
    if env:
        try:
            return zoneinfo.ZoneInfo(env)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            pass
    try:
        with open("/etc/localtime", "rb") as f:
            return zoneinfo.ZoneInfo.from_file(f, key="localtime")
    except (OSError, ValueError):
        return zoneinfo.ZoneInfo("UTC")


def instant(local: datetime, tz: tzinfo) -> tuple[float, bool]:
    """``(epoch, exists)`` of the naive wall time ``local``: its first occurrence, or, when the
    clocks skipped over it, the instant they skipped (``exists`` is then False)."""
    first = local.replace(tzinfo=tz, fold=0).timestamp()
    if datetime.fromtimestamp(first, tz).replace(tzinfo=None) == local:
        return first, True
    # a gap: fold=1 reads the time with the offset after the change (an instant before the gap),
    # fold=0 with the offset before it (an instant after it); the change lies between them
    lo = int(local.replace(tzinfo=tz, fold=1).timestamp())
    hi = int(first)
    offset = datetime.fromtimestamp(lo, tz).utcoffset()
    while hi - lo > 1:  # the first second whose offset is the new one
        mid = (lo + hi) // 2
        if datetime.fromtimestamp(mid, tz).utcoffset() == offset:
            lo = mid
        else:
            hi = mid
    return float(hi), False


def day_firings(name: str, timing: Timing, day: date, tz: tzinfo) -> list[Firing]:
    """The firings of one date, in order, one per instant (see the rules)."""
    if not timing.on(day):
        return []
    found: list[tuple[float, bool, datetime]] = []
    for hour, minute in timing.times():
        local = datetime(day.year, day.month, day.day, hour, minute)
        at, exists = instant(local, tz)
        found.append((at, not exists, local))  # at one instant: the existing time first, then the earliest
    out: list[Firing] = []
    for at, _skipped, local in sorted(found):
        if out and out[-1].at == at:
            continue
        out.append(Firing(at, name, local))
    return out


def firings(name: str, timing: Timing, tz: tzinfo, after: float, until: float | None = None) -> Iterator[Firing]:
    """Firings with ``after < at`` (and ``at <= until``), in order; endless without ``until``
    (stops after ``HORIZON_DAYS`` without one, e.g. 30 February)."""
    day = datetime.fromtimestamp(after, tz).date() - timedelta(days=1)  # a skipped time fires after its date
    idle = 0
    while idle <= HORIZON_DAYS:
        todays = [f for f in day_firings(name, timing, day, tz) if f.at > after]
        if until is not None and datetime.fromtimestamp(until, tz).date() < day - timedelta(days=1):
            return
        idle = 0 if todays else idle + 1
        for f in todays:
            if until is not None and f.at > until:
                return
            yield f
        day += timedelta(days=1)


def next_firing(name: str, timing: Timing, tz: tzinfo, after: float) -> Firing | None:
    """The first firing after ``after``, or None when there is none within ``HORIZON_DAYS``."""
    return next(firings(name, timing, tz, after), None)
