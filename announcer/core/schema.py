"""The announcement's schema: every field of an announcement payload, declared once.

``AnnouncementFields`` is the one definition. What derives from it:

* ``announcer.intake.parse`` validates every payload with it (MQTT, Hermes, HTTP, CLI,
  Home Assistant): strict types (no ``"2"`` for 2, no ``true`` for 1), and each error
  worded from the field's own bounds (``speed: 3 is out of range (allowed: 0.5 .. 2.0)``);
* ``announcer.http.models`` builds the request bodies and their OpenAPI document from it;
* ``announcer.config.sections.DefaultsConfig`` types ``defaults.*`` with the same types;
* the Wyoming server clamps a request's intensity and speed to ``bounds(...)``, and the
  prosody presets clamp to the same bounds.

A field whose explicit ``null`` means "the default" is typed ``X | None``; ``priority``,
``chime`` and ``repeat`` are not nullable (``"priority": null`` is an error), although
leaving them out is fine.

What is said is one of ``text``, ``template`` (with ``vars``) or ``clip``: ``text`` is
required unless one of the other two replaces it (the parser checks that exactly one is
given; the config's templates and clips are looked up there).
"""

from __future__ import annotations

import re
import typing
from typing import Annotated, Any, Literal

import annotated_types
from pydantic import BaseModel, ConfigDict, Field

PRIORITIES: tuple[str, ...] = ("low", "normal", "high", "emergency")
Priority = Literal["low", "normal", "high", "emergency"]
PRIORITY_RANK = {p: i for i, p in enumerate(PRIORITIES)}

ID_PATTERN = r"^[A-Za-z0-9._-]{1,64}$"
ID_RE = re.compile(ID_PATTERN)  # use fullmatch: "$" also matches before a final newline
ID_RULE = "must match [A-Za-z0-9._-]{1,64}"

SLUG = r"^[a-z0-9_-]+$"
Slug = Annotated[str, Field(pattern=SLUG, min_length=1, max_length=64)]

# The bounds are written as they appear in error messages and the contract ("0 .. 2", "0.5 .. 2.0").
Intensity = Annotated[float, Field(ge=0, le=2, description="how strongly the emotion is expressed")]
Speed = Annotated[float, Field(ge=0.5, le=2.0, description="speaking rate, 2.0 = twice as fast")]
Volume = Annotated[float, Field(ge=0, le=1, description="0 .. 1, multiplied into the speaker's volume")]
Repeat = Annotated[int, Field(ge=1, le=10, description="times to say it")]
RepeatGap = Annotated[float, Field(ge=0, le=60, description="seconds of silence between repeats")]
Ttl = Annotated[float, Field(gt=0, description="seconds; not started by then: expired, never played")]
SentAt = Annotated[
    float,
    Field(gt=0, description="when the publisher sent it, seconds since 1970-01-01 UTC; ttl then counts from here"),
]
AnnouncementId = Annotated[str, Field(pattern=ID_PATTERN, description="correlation id (played once)")]
Targets = str | Annotated[list[str], Field(min_length=1)]
VarValue = str | int | float  # a template variable's value as sent (the template's type decides)
LANG_PATTERN = r"^[A-Za-z]{2,3}(?:[-_][A-Za-z0-9]{2,8})*$"
LangCode = Annotated[str, Field(pattern=LANG_PATTERN, description="a language code: en, zh, zh-CN")]
MAX_TRANSLATIONS = 8
Translations = Annotated[
    dict[LangCode, Annotated[str, Field(min_length=1)]],
    Field(
        min_length=1,
        max_length=MAX_TRANSLATIONS,
        description="the same announcement in other languages, spoken in this order after the text, "
        'each by the engine of its language (config languages): {"en": "Attention please ..."}',
    ),
]


class AnnouncementFields(BaseModel):
    """The fields of an announcement payload, in the order they are checked (and errors reported)."""

    model_config = ConfigDict(strict=True, allow_inf_nan=False, extra="allow", frozen=True)

    text: str = Field(  # type: ignore[assignment]  # None: template or clip replaces it (checked by the parser)
        None,
        min_length=1,
        description="what to say (markup and control characters are removed); "
        "required unless template or clip is given",
    )
    template: str | None = Field(None, description="a configured template (templates:), instead of text")
    vars: dict[str, VarValue] | None = Field(None, description="the template's variables: name -> string or number")
    clip: str | None = Field(None, description="a configured recorded clip (clips:), played instead of speech")
    id: AnnouncementId | None = None
    emotion: str | None = Field(
        None,
        description="neutral happy sad angry fearful surprised, or an alias "
        "(中性 开心 悲伤 生气 害怕 惊讶 ...); unknown plays as neutral",
    )
    priority: Priority = Field(None, description="higher goes first; emergency interrupts")  # type: ignore[arg-type]
    targets: Targets | None = Field(None, description="speaker or zone name(s); default: defaults.targets")
    chime: bool | str = Field(None, description="true/false or a chime name")  # type: ignore[assignment]
    repeat: Repeat = None  # type: ignore[assignment]
    engine: str | None = Field(None, description="a configured engine (GET /api/info)")
    voice: str | None = Field(None, description="a voice of that engine")
    lang: str | None = None
    ttl: Ttl | None = None
    sent_at: SentAt | None = None
    intensity: Intensity | None = None
    speed: Speed | None = None
    volume: Volume | None = None
    repeat_gap: RepeatGap | None = None
    translations: Translations | None = None


FIELDS: tuple[str, ...] = tuple(AnnouncementFields.model_fields)
# the announcement fields a template's or a schedule's config may preset (besides what it says)
PRESET_FIELDS: tuple[str, ...] = (
    "targets",
    "priority",
    "emotion",
    "intensity",
    "speed",
    "volume",
    "chime",
    "repeat",
    "repeat_gap",
    "ttl",
)
NUMBER_FIELDS: tuple[str, ...] = ("intensity", "speed", "volume", "repeat_gap", "ttl", "sent_at")


def _constraints(name: str) -> list[Any]:
    """The ``annotated_types`` constraints of a field, looked for through ``X | None``."""
    field = AnnouncementFields.model_fields[name]
    found = list(field.metadata)
    stack = [field.annotation]
    while stack:
        tp = stack.pop()
        args = typing.get_args(tp)
        if typing.get_origin(tp) is Annotated:
            found += [m for info in args[1:] for m in getattr(info, "metadata", [info])]
        else:
            stack.extend(args)
    return found


def bounds(name: str) -> tuple[float | None, float | None]:
    """``(low, high)`` of a numeric announcement field (None: unbounded on that side)."""
    lo: float | None = None
    hi: float | None = None
    for meta in _constraints(name):
        if isinstance(meta, annotated_types.Ge):
            lo = meta.ge  # type: ignore[assignment]
        elif isinstance(meta, annotated_types.Gt):
            lo = meta.gt  # type: ignore[assignment]
        elif isinstance(meta, annotated_types.Le):
            hi = meta.le  # type: ignore[assignment]
        elif isinstance(meta, annotated_types.Lt):
            hi = meta.lt  # type: ignore[assignment]
    return lo, hi


def allowed_range(name: str) -> str:
    """The allowed values of a numeric field as the contract writes them: ``0.5 .. 2.0``, ``>0``."""
    lo, hi = bounds(name)
    exclusive = any(isinstance(m, annotated_types.Gt) for m in _constraints(name))
    text = f"{'>' if exclusive else ''}{lo}"
    return f"{text} .. {hi}" if hi is not None else text


def clamp(name: str, value: Any, default: float) -> float:
    """``value`` as a float within the field's bounds (``default`` when it is not a number)."""
    try:
        x = float(value)
    except (TypeError, ValueError):
        return default
    if x != x:  # NaN
        return default
    lo, hi = bounds(name)
    if lo is not None:
        x = max(float(lo), x)
    if hi is not None:
        x = min(float(hi), x)
    return x
