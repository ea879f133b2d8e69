"""The one parser: raw fields to a validated ``Announcement``, for every front door.

The fields' types and bounds come from the schema (``announcer.core.schema.AnnouncementFields``,
validated strictly); this module words each error the way the contract does (the field
named, the allowed values listed) and adds what only the config knows: the text limit,
known targets, chimes and engines, and the defaults. Fields are checked in the schema's
order and the first problem is reported. What is said (text, a template with its variables,
a clip) is checked in ``announcer.intake.content``. Wire decoding (bytes, JSON, stop
payloads) is in ``announcer.intake.wire``.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from typing import Any

from pydantic import ValidationError

from ..audio.chimes import BUILTIN_CHIMES
from ..audio.clips import ClipError, load_clip
from ..config import Config
from ..core.announcement import Announcement, new_id
from ..core.emotions import resolve_emotion
from ..core.errors import InputError, shown
from ..core.schema import (
    FIELDS,
    ID_RULE,
    MAX_TRANSLATIONS,
    NUMBER_FIELDS,
    PRIORITIES,
    AnnouncementFields,
    allowed_range,
)
from .content import (
    check_clip,
    check_template,
    check_text,
    check_translations,
    check_vars,
    clean_text,
    said,
    with_template_defaults,
)
from .wire import decode_payload

_WIDE = re.compile(r"[\u2e80-\u9fff\uac00-\ud7af\uf900-\ufaff\uff00-\uffef]")  # CJK, kana, hangul, full width

# The render budget (limits.max_audio_seconds): speech is estimated from the text before any
# synthesis, on the slow side of what the engines speak at speed 1 (the embedded voice: about
# 5 Chinese characters a second, pauses included; English voices: about 15 letters a second;
# a digit is read as one or more syllables, "123" as 一百二十三).
WIDE_CHARS_PER_SECOND = 4.0
OTHER_CHARS_PER_SECOND = 12.0
SECONDS_PER_DIGIT = 0.4
CHIME_SECONDS = 5.0  # a start and an end chime, at most (configured chimes are checked to be short)

__all__ = [
    "build",
    "check_budget",
    "check_target",
    "checked_fields",
    "clean_text",
    "estimated_seconds",
    "known_targets",
    "parse",
]

# how a schema error reads, per field, when the value has the wrong type (numbers: below)
_TYPE_RULES = {
    "text": "must be a string",
    "template": "must be a template name (a string)",
    "vars": "must be an object of variable name -> string or number",
    "clip": "must be a clip name (a string)",
    "id": ID_RULE,
    "emotion": "must be a string",
    "targets": "must be a speaker/zone name or a non-empty list of names",
    "chime": "must be true, false or a chime name",
    "repeat": f"must be an integer {allowed_range('repeat')}",
    "voice": "must be a string",
    "lang": "must be a string",
    "translations": 'must be an object of language code -> non-empty text, e.g. {"en": "Attention please"} '
    f"(at most {MAX_TRANSLATIONS} languages)",
}


def known_targets(cfg: Config) -> list[str]:
    return list(cfg.speakers) + list(cfg.zones)


def check_target(cfg: Config, name: str, field: str = "targets", where: str = "") -> None:
    """InputError unless ``name`` is a speaker or zone (``where``: e.g. " in the topic")."""
    if name not in cfg.speakers and name not in cfg.zones:
        raise InputError(field, f"unknown target {name[:60]!r}{where} (allowed: {', '.join(known_targets(cfg))})")


def _schema_errors(raw: dict[str, Any]) -> dict[str, str]:
    """The schema's complaints about ``raw``, one per field: the pydantic error type."""
    try:
        AnnouncementFields.model_validate({k: v for k, v in raw.items() if k in FIELDS})
    except ValidationError as exc:
        out: dict[str, str] = {}
        for err in exc.errors():
            out.setdefault(str(err["loc"][0]), str(err["type"]))
        return out
    except RecursionError:  # a value nested past Python's limit
        raise InputError("payload", "JSON nested too deeply") from None
    return {}


def _worded(name: str, kind: str, value: Any) -> InputError:
    """The contract's wording of a schema error on field ``name``."""
    if name == "text" and value is None:
        return InputError("text", "required (a non-empty string)")
    if name == "text" and kind == "string_too_short":
        return InputError("text", "must not be empty (after removing markup and control characters)")
    if name == "priority":
        return InputError("priority", f"{shown(value)} is not allowed (allowed: {', '.join(PRIORITIES)})")
    if name in NUMBER_FIELDS:
        rng = allowed_range(name)
        if isinstance(value, int) and not isinstance(value, bool):  # an integer beyond any float
            return InputError(name, f"{shown(value)} is out of range (allowed: {rng})")
        if isinstance(value, bool) or not isinstance(value, float) or kind == "finite_number":
            return InputError(name, f"must be a number, got {shown(value)}")
        return InputError(name, f"{shown(value)} is out of range (allowed: {rng})")
    if name == "engine":
        return InputError("engine", f"unknown engine {shown(value)}")  # completed with the engines by the caller
    return InputError(name, _TYPE_RULES.get(name, "invalid value"))


def estimated_seconds(text: str, speed: float, repeat: int, repeat_gap: float) -> float:
    """The audio an announcement makes, estimated from its text: speech x repeat, the gaps, chimes."""
    wide = len(_WIDE.findall(text))
    digits = sum(c.isdigit() for c in text) - sum(c.isdigit() for c in _WIDE.findall(text))
    other = len(text) - wide - digits
    speech = (wide / WIDE_CHARS_PER_SECOND + other / OTHER_CHARS_PER_SECOND + digits * SECONDS_PER_DIGIT) / max(
        speed, 0.01
    )
    return float(speech * repeat + repeat_gap * (repeat - 1) + CHIME_SECONDS)


def _clip_seconds(ann: Announcement, cfg: Config) -> float:
    """The clips' length (decoded at config load, so normally a cache hit); one that cannot be read
    counts 0 here and fails where it plays."""
    total = 0.0
    for name in ann.clips:
        try:
            total += load_clip(cfg.clips[name]).duration
        except (ClipError, KeyError):
            continue
    return total


def check_budget(ann: Announcement, cfg: Config) -> None:
    """InputError (reason ``oversize``) when ``ann`` would render more than ``limits.max_audio_seconds``
    (its speech estimated from the text, its clips at their length, times ``repeat``)."""
    limit = cfg.limits.max_audio_seconds
    clips = _clip_seconds(ann, cfg)
    seconds = estimated_seconds(ann.text, ann.speed, ann.repeat, ann.repeat_gap) + clips * ann.repeat
    if seconds > limit:
        what = f"{len(ann.text)} characters at speed {ann.speed:g}" + (f", {clips:.0f} s of clips" if clips else "")
        raise InputError(
            "repeat" if ann.repeat > 1 else ("clip" if clips and not ann.text else "text"),
            f"would make about {seconds:.0f} s of audio ({what}, "
            f"repeat {ann.repeat}, repeat_gap {ann.repeat_gap:g} s), over limits.max_audio_seconds ({limit:g} s); "
            "shorten the text or lower repeat or repeat_gap",
            "oversize",
        )


def _targets(value: str | list[str] | None, cfg: Config) -> tuple[str, ...]:
    targets = cfg.default_targets if value is None else (value,) if isinstance(value, str) else tuple(value)
    for name in targets:
        check_target(cfg, name)
    return tuple(targets)


def _chime(value: bool | str, cfg: Config) -> bool | str:
    if isinstance(value, str) and value not in BUILTIN_CHIMES and value not in cfg.chimes:
        names = ", ".join(sorted({*BUILTIN_CHIMES, *cfg.chimes}))
        raise InputError("chime", f"unknown chime {shown(value)} (allowed: true, false, {names})")
    return value


def _engine(value: Any, cfg: Config) -> str:
    if value is None:
        return cfg.default_engine
    if not isinstance(value, str) or value not in cfg.engines:
        label = repr(value[:60]) if isinstance(value, str) else shown(value)
        raise InputError("engine", f"unknown engine {label} (allowed: {', '.join(cfg.engines)})")
    return value


def _unicode(name: str, value: Any) -> None:
    """A lone surrogate (a ``\\ud800`` escape) can be neither stored nor published."""
    if isinstance(value, (str, list, dict)):
        try:
            json.dumps(value, ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError:
            raise InputError(
                name, "contains an unpaired UTF-16 surrogate (a \\ud800-\\udfff escape); send valid Unicode"
            ) from None


def check_schema(raw: dict[str, Any]) -> None:
    """What can be checked without the receiving daemon's config (types, bounds, the id, a text that
    is not empty): ``announcer send --site`` validates with this; each site checks its own targets,
    engines and chimes, and rejects what it does not have."""
    errors = _schema_errors(raw)
    for name in FIELDS:
        value = raw.get(name)
        _unicode(name, value)
        if name in errors:
            raise _worded(name, errors[name], value)
        if name == "text" and isinstance(value, str) and not clean_text(value):
            raise InputError("text", "must not be empty (after removing markup and control characters)")


def checked_fields(raw: dict[str, Any], cfg: Config, forced_targets: tuple[str, ...] | None = None) -> dict[str, Any]:
    """Every announcement field of ``raw`` validated and resolved against ``cfg`` (defaults filled
    in), in the schema's order; the first problem raises its InputError."""
    errors = _schema_errors(raw)
    out: dict[str, Any] = {}
    config_checks: dict[str, Callable[[Any], Any]] = {
        "text": lambda v: check_text(v, raw, cfg),
        "template": lambda v: check_template(v, raw, cfg),
        "vars": lambda v: check_vars(v, out["template"], cfg),
        "clip": lambda v: check_clip(v, raw, cfg),
        "targets": lambda v: forced_targets if forced_targets is not None else _targets(v, cfg),
        "chime": lambda v: _chime(cfg.defaults.chime if v is None else v, cfg),
        "engine": lambda v: _engine(v, cfg),
        "translations": lambda v: check_translations(v, out, cfg),
    }
    for name in FIELDS:
        value = raw.get(name)
        if name == "targets" and forced_targets is not None:
            out[name] = forced_targets
            continue
        _unicode(name, value)
        if name in errors:
            err = _worded(name, errors[name], value)
            if name == "engine":
                err = InputError("engine", f"{err.message} (allowed: {', '.join(cfg.engines)})")
            raise err
        check = config_checks.get(name)
        out[name] = check(value) if check is not None else value
    return out


def build(
    raw: dict[str, Any],
    cfg: Config,
    *,
    now: float | None = None,
    source: str = "mqtt",
    via: tuple[tuple[str, str], ...] = (),
    forced_targets: tuple[str, ...] | None = None,
    message_expiry: float | None = None,
    response_topic: str | None = None,
    correlation_data: bytes | None = None,
    ignore_unknown: bool = False,
) -> Announcement:
    """Validate raw fields against the config and build an Announcement."""
    now = time.time() if now is None else now
    warnings: list[str] = []
    unknown = sorted(set(raw) - set(FIELDS))
    if unknown and not ignore_unknown:
        warnings.append(f"ignored unknown field(s): {', '.join(unknown)}")
    f = checked_fields(with_template_defaults(raw, cfg), cfg, forced_targets)
    text, parts = said(f, cfg)
    emotion, warn = resolve_emotion(f["emotion"], cfg.defaults.emotion)
    if warn:
        warnings.append(warn)
    d = cfg.defaults
    ttl = d.ttl if f["ttl"] is None else float(f["ttl"])
    sent_at = None if f["sent_at"] is None else float(f["sent_at"])
    # ttl counts from receipt, and from when it was sent when the payload says so (a fleet announcement
    # queued at the centre while a site's link was down: MQTT 3.1.1 bridges drop the message expiry)
    expires = min(
        now + ttl,
        now + ttl if sent_at is None else sent_at + ttl,
        now + ttl if message_expiry is None else now + message_expiry,
    )
    engine = f["engine"]
    if raw.get("engine") is None and f["lang"] in cfg.languages:
        engine = cfg.languages[f["lang"]]  # the text's language names its engine
    ann = Announcement(
        id=new_id() if f["id"] is None else f["id"],
        text=text,
        targets=tuple(f["targets"]),
        speakers=cfg.expand_targets(f["targets"]),
        emotion=emotion,
        intensity=d.intensity if f["intensity"] is None else float(f["intensity"]),
        speed=d.speed if f["speed"] is None else float(f["speed"]),
        volume=None if f["volume"] is None else float(f["volume"]),
        priority=d.priority if f["priority"] is None else f["priority"],
        chime=f["chime"],
        repeat=1 if f["repeat"] is None else f["repeat"],
        repeat_gap=d.repeat_gap if f["repeat_gap"] is None else float(f["repeat_gap"]),
        ttl=ttl,
        sent_at=sent_at,
        engine=engine,
        voice=f["voice"] or (d.voice if engine == cfg.default_engine else None),
        lang=f["lang"],
        translations=f["translations"],
        received=now,
        expires=expires,
        warnings=tuple(warnings),
        source=source,
        response_topic=response_topic,
        correlation_data=correlation_data,
        parts=parts,
        template=f["template"],
        vars=tuple(f["vars"].items()),
        via=via,
    )
    check_budget(ann, cfg)
    return ann


def parse(payload: bytes | str, cfg: Config, **kwargs: Any) -> Announcement:
    """Wire payload (plain text or JSON) to an Announcement; raises InputError."""
    return build(decode_payload(payload, cfg), cfg, **kwargs)
