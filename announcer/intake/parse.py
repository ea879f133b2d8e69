"""The one parser: raw fields to a validated ``Announcement``, for every front door.

The fields' types and bounds come from the schema (``announcer.core.schema.AnnouncementFields``,
validated strictly); this module words each error the way the contract does (the field
named, the allowed values listed) and adds what only the config knows: the text limit,
known targets, chimes and engines, and the defaults. Fields are checked in the schema's
order and the first problem is reported. Wire decoding (bytes, JSON, stop payloads) is in
``announcer.intake.wire``.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from typing import Any

from pydantic import ValidationError

from ..audio.chimes import BUILTIN_CHIMES
from ..config import Config
from ..core.announcement import Announcement, Translation, new_id
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
from .wire import decode_payload

_MARKUP = re.compile(r"<[^<>]{0,200}>")  # SSML/HTML-like tags: never spoken, never passed to an engine
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2066-\u2069]")
_CJK_GAP = re.compile(r"(?<=[\u3000-\u9fff\uff00-\uffef]) (?=[\u3000-\u9fff\uff00-\uffef])")

# how a schema error reads, per field, when the value has the wrong type (numbers: below)
_TYPE_RULES = {
    "text": "must be a string",
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


def clean_text(text: str) -> str:
    """Strip markup and control characters (bidi overrides, zero-width) and collapse whitespace."""
    text = _CONTROL.sub("", _MARKUP.sub(" ", text))
    text = " ".join(text.split())
    return _CJK_GAP.sub("", text)


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


def _text(value: str, cfg: Config) -> str:
    text = clean_text(value)
    if not text:
        raise InputError("text", "must not be empty (after removing markup and control characters)")
    if len(text) > cfg.limits.max_text_chars:
        raise InputError("text", f"{len(text)} characters is over the limit of {cfg.limits.max_text_chars}", "oversize")
    return text


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


def _translations(value: dict[str, str] | None, cfg: Config) -> tuple[Translation, ...]:
    """Each translation cleaned like the text and given its language's engine (``languages`` in the config)."""
    if value is None:
        return ()
    out = []
    for lang, text in value.items():
        engine = cfg.languages.get(lang)
        if engine is None:
            have = ", ".join(cfg.languages) or "none"
            raise InputError(
                "translations", f"no engine for language {lang[:20]!r} (configured: {have}; map it in languages)"
            )
        cleaned = clean_text(text)
        if not cleaned:
            raise InputError(
                "translations", f"{lang}: must not be empty (after removing markup and control characters)"
            )
        if len(cleaned) > cfg.limits.max_text_chars:
            raise InputError(
                "translations",
                f"{lang}: {len(cleaned)} characters is over the limit of {cfg.limits.max_text_chars}",
                "oversize",
            )
        out.append(Translation(lang, cleaned, engine))
    return tuple(out)


def _unicode(name: str, value: Any) -> None:
    """A lone surrogate (a ``\\ud800`` escape) can be neither stored nor published."""
    if isinstance(value, (str, list)):
        try:
            json.dumps(value, ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError:
            raise InputError(
                name, "contains an unpaired UTF-16 surrogate (a \\ud800-\\udfff escape); send valid Unicode"
            ) from None


def checked_fields(raw: dict[str, Any], cfg: Config, forced_targets: tuple[str, ...] | None = None) -> dict[str, Any]:
    """Every announcement field of ``raw`` validated and resolved against ``cfg`` (defaults filled
    in), in the schema's order; the first problem raises its InputError."""
    errors = _schema_errors(raw)
    config_checks: dict[str, Callable[[Any], Any]] = {
        "text": lambda v: _text(v, cfg),
        "targets": lambda v: forced_targets if forced_targets is not None else _targets(v, cfg),
        "chime": lambda v: _chime(cfg.defaults.chime if v is None else v, cfg),
        "engine": lambda v: _engine(v, cfg),
        "translations": lambda v: _translations(v, cfg),
    }
    out: dict[str, Any] = {}
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
    f = checked_fields(raw, cfg, forced_targets)
    emotion, warn = resolve_emotion(f["emotion"], cfg.defaults.emotion)
    if warn:
        warnings.append(warn)
    d = cfg.defaults
    ttl = d.ttl if f["ttl"] is None else float(f["ttl"])
    expires = now + ttl if message_expiry is None else min(now + ttl, now + message_expiry)
    engine = f["engine"]
    if raw.get("engine") is None and f["lang"] in cfg.languages:
        engine = cfg.languages[f["lang"]]  # the text's language names its engine
    return Announcement(
        id=new_id() if f["id"] is None else f["id"],
        text=f["text"],
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
    )


def parse(payload: bytes | str, cfg: Config, **kwargs: Any) -> Announcement:
    """Wire payload (plain text or JSON) to an Announcement; raises InputError."""
    return build(decode_payload(payload, cfg), cfg, **kwargs)
