"""A schedule as the config declares it (``schedules: {name: {...}}``): when, and what to announce.

Declared here, next to the code that reads it, like engines and speakers declare their
config models; ``announcer.config`` collects it into the root model and checks the names it
refers to (templates, clips, targets, chimes) against the other sections.

When: ``cron`` (five fields, ``announcer.schedule.cron``) or ``at`` (a list of ``"HH:MM"``)
with ``days`` (default: every day), optionally only between ``start_date`` and ``end_date``
(inclusive) and never on a date of ``holidays``. What: exactly one of ``text``, ``template``
(with ``vars``) or ``clip``, and the usual announcement fields (targets, priority, emotion,
chime, repeat ...). ``missed`` says what a firing the daemon could not make on time (down,
host asleep) does: ``skip`` (default), or ``{play_within: <seconds>}``: it still plays when
the daemon gets to it within that many seconds of its time.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from ..core.schema import (
    PRESET_FIELDS,
    SLUG,
    Intensity,
    LangCode,
    Priority,
    Repeat,
    RepeatGap,
    Slug,
    Speed,
    Ttl,
    VarValue,
    Volume,
)
from .cron import Cron, CronError

DAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
DayName = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
MAX_PLAY_WITHIN = 86400.0  # a day: within the spool's duplicate window, so a restart still knows what fired
# the firing id "<name>-YYYY-MM-DDTHHMM" must stay a valid announcement id (at most 64 characters)
ScheduleName = Annotated[str, Field(pattern=SLUG, min_length=1, max_length=48)]
# what a schedule may set of an announcement besides what it says (text, template + vars, clip)
ANNOUNCEMENT_KEYS = (*PRESET_FIELDS, "engine", "voice", "translations")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PlayWithin(_Strict):
    play_within: float = Field(gt=0, le=MAX_PLAY_WITHIN, description="seconds after its time a firing may still play")


@dataclass(frozen=True)
class Weekly:
    """``at`` + ``days``: fixed times on some weekdays."""

    at: tuple[tuple[int, int], ...]
    weekdays: frozenset[int]  # 0 = Monday

    def on(self, day: date) -> bool:
        return day.weekday() in self.weekdays

    def times(self) -> list[tuple[int, int]]:
        return sorted(set(self.at))


@dataclass(frozen=True)
class Timing:
    """A cron or weekly rule restricted to a date range and without the holidays."""

    rule: Cron | Weekly
    start: date | None = None
    end: date | None = None
    holidays: frozenset[date] = frozenset()

    def on(self, day: date) -> bool:
        if (self.start is not None and day < self.start) or (self.end is not None and day > self.end):
            return False
        return day not in self.holidays and self.rule.on(day)

    def times(self) -> list[tuple[int, int]]:
        return self.rule.times()


def _clock_time(text: str) -> tuple[int, int]:
    hh, sep, mm = text.strip().partition(":")
    if not sep or not hh.isdigit() or not mm.isdigit() or len(mm) != 2 or not 0 <= int(hh) <= 23 or int(mm) > 59:
        raise ValueError(f"{text!r} is not a time of day (use HH:MM, 00:00 .. 23:59)")
    return int(hh), int(mm)


class ScheduleConfig(_Strict):
    cron: str | None = Field(None, description="five cron fields, e.g. '0 8,16 * * 1-5'")
    at: tuple[str, ...] = Field((), description='times of day, "HH:MM", in the site timezone')
    days: Annotated[tuple[DayName, ...], Field(min_length=1)] = DAY_NAMES  # type: ignore[assignment]
    start_date: date | None = None  # first date it may fire (inclusive)
    end_date: date | None = None  # last date it may fire (inclusive)
    holidays: tuple[date, ...] = ()  # dates it does not fire
    missed: Literal["skip"] | PlayWithin = "skip"
    # what to announce: exactly one of text, template (+ vars), clip
    text: str | None = Field(None, min_length=1)
    template: Slug | None = None
    vars: dict[str, VarValue] = Field(default_factory=dict)
    clip: Slug | None = None
    targets: tuple[Slug, ...] | None = None
    priority: Priority | None = None
    emotion: str | None = None
    intensity: Intensity | None = None
    speed: Speed | None = None
    volume: Volume | None = None
    chime: bool | str | None = None
    repeat: Repeat | None = None
    repeat_gap: RepeatGap | None = None
    ttl: Ttl | None = None
    engine: str | None = None
    voice: str | None = None
    translations: dict[LangCode, Annotated[str, Field(min_length=1)]] | None = None  # spoken after the text

    @field_validator("targets", mode="before")
    @classmethod
    def _one_target(cls, v: Any) -> Any:
        return [v] if isinstance(v, str) else v

    @field_validator("missed", mode="before")
    @classmethod
    def _missed(cls, v: Any) -> Any:
        """One clear error for the two allowed forms (rather than one per form of the union)."""
        if v == "skip" or isinstance(v, PlayWithin):
            return v
        if isinstance(v, dict) and set(v) == {"play_within"}:
            seconds = v["play_within"]
            if isinstance(seconds, (int, float)) and not isinstance(seconds, bool) and 0 < seconds <= MAX_PLAY_WITHIN:
                return PlayWithin(play_within=seconds)
            raise ValueError(f"play_within: {seconds!r} is not a number of seconds > 0 .. {MAX_PLAY_WITHIN:g}")
        raise ValueError(f"{v!r} is not allowed (allowed: skip, or {{play_within: <seconds>}})")

    @field_validator("cron")
    @classmethod
    def _cron(cls, v: str | None) -> str | None:
        if v is not None:
            try:
                cron = Cron.parse(v)
            except CronError as exc:
                raise ValueError(str(exc)) from None
            if not cron.can_fire():
                raise ValueError(f"{v!r} names a date that never exists")
        return v

    @field_validator("at")
    @classmethod
    def _at(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        for text in v:
            _clock_time(text)
        return v

    @model_validator(mode="after")
    def _consistent(self) -> ScheduleConfig:
        if (self.cron is None) == (not self.at):
            raise ValueError("give either cron (e.g. '0 8 * * 1-5') or at (e.g. ['08:00']), not both or neither")
        if self.cron is not None and "days" in self.model_fields_set:
            raise ValueError("days goes with at; with cron, the day-of-week field says it")
        if self.start_date and self.end_date and self.end_date < self.start_date:
            raise ValueError(f"end_date {self.end_date} is before start_date {self.start_date}")
        said = [k for k in ("text", "template", "clip") if getattr(self, k) is not None]
        if len(said) != 1:
            raise ValueError(
                "give exactly one of text, template or clip (what to announce)"
                + (f"; got {' and '.join(said)}" if said else "")
            )
        if self.vars and self.template is None:
            raise ValueError("vars go with a template")
        return self

    def timing(self) -> Timing:
        if self.cron is not None:
            rule: Cron | Weekly = Cron.parse(self.cron)
        else:
            rule = Weekly(tuple(_clock_time(t) for t in self.at), frozenset(DAY_NAMES.index(d) for d in self.days))
        return Timing(rule, self.start_date, self.end_date, frozenset(self.holidays))

    @property
    def play_within(self) -> float:
        """Seconds a late firing may still play (0: ``missed: skip``)."""
        return self.missed.play_within if isinstance(self.missed, PlayWithin) else 0.0

    def fields(self) -> dict[str, Any]:
        """The announcement payload it fires (without the id): what it says and the fields it sets."""
        out: dict[str, Any] = {}
        for key in ("text", "template", "clip", *ANNOUNCEMENT_KEYS):
            value = getattr(self, key)
            if value is not None:
                out[key] = list(value) if isinstance(value, tuple) else value
        if self.template is not None:
            out["vars"] = dict(self.vars)
        return out
