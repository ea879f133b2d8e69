"""The one parser: wire payloads (plain text, JSON, stop payloads) to validated ``Announcement``s.

Plain UTF-8 text or a JSON object (a payload whose first non-blank character is ``{``
is JSON; if it does not parse it is rejected, never spoken). Every problem raises
``InputError`` naming the field and what is allowed.
"""

from __future__ import annotations

import json
import math
import re
import time
from typing import Any

from ..audio.chimes import BUILTIN_CHIMES
from ..config import Config
from ..core.announcement import FIELDS, Announcement, new_id
from ..core.emotions import resolve_emotion
from ..core.errors import InputError, shown
from ..core.schema import ID_RE, PRIORITIES

_MARKUP = re.compile(r"<[^<>]{0,200}>")  # SSML/HTML-like tags: never spoken, never passed to an engine
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2066-\u2069]")


_CJK_GAP = re.compile(r"(?<=[\u3000-\u9fff\uff00-\uffef]) (?=[\u3000-\u9fff\uff00-\uffef])")


def clean_text(text: str) -> str:
    """Strip markup and control characters (bidi overrides, zero-width) and collapse whitespace."""
    text = _CONTROL.sub("", _MARKUP.sub(" ", text))
    text = " ".join(text.split())
    return _CJK_GAP.sub("", text)


def decode_payload(payload: bytes | str, cfg: Config) -> dict[str, Any]:
    """Bytes from the wire to a dict of raw fields (plain text becomes ``{"text": ...}``)."""
    text = payload_text(payload, cfg)
    if text.lstrip().startswith("{"):
        return json_object(text, "a payload starting with '{' must be a JSON object",
                           "a JSON payload must be an object with at least \"text\"")
    return {"text": text}


def payload_text(payload: bytes | str, cfg: Config) -> str:
    """A wire payload as text: at most ``limits.max_payload_bytes``, valid UTF-8."""
    if isinstance(payload, bytes):
        if len(payload) > cfg.limits.max_payload_bytes:
            raise InputError("payload", f"{len(payload)} bytes is over the limit of "
                                        f"{cfg.limits.max_payload_bytes} bytes", "oversize")
        try:
            return payload.decode("utf-8")
        except UnicodeDecodeError:
            raise InputError("payload", "not valid UTF-8 (send UTF-8 text or a JSON object)") from None
    return payload


def json_object(text: str, hint: str, not_object: str) -> dict[str, Any]:
    """``text`` parsed as a JSON object whose every string is valid Unicode; InputError otherwise.

    ``hint`` follows a syntax error, ``not_object`` is the message for JSON of another type.
    """
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError("payload", f"not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno}); "
                                    f"{hint}") from None
    except RecursionError:
        raise InputError("payload", "JSON nested too deeply") from None
    except ValueError:  # an integer of more than 4300 digits (sys.get_int_max_str_digits)
        raise InputError("payload", "a number in the JSON has too many digits") from None
    if not isinstance(obj, dict):
        raise InputError("payload", not_object)
    for key, value in obj.items():
        # "\ud800" escapes decode to lone surrogates, which cannot be stored, logged as UTF-8 or published
        try:
            json.dumps([key, value], ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError:
            name = key if _encodable(key) else "payload"
            raise InputError(name, "contains an unpaired UTF-16 surrogate (a \\ud800-\\udfff escape); "
                                   "send valid Unicode") from None
        except RecursionError:
            raise InputError("payload", "JSON nested too deeply") from None
    return obj


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
        return True
    except UnicodeEncodeError:
        return False


STOP_FIELDS = ("priority_below", "id")
_STOP_SHAPE = ('a stop is an empty payload or a JSON object {"priority_below": "<priority>"} '
               f"(allowed fields: {', '.join(STOP_FIELDS)}; priorities: {', '.join(PRIORITIES)})")


def decode_stop(payload: bytes | str, cfg: Config) -> dict[str, Any]:
    """A ``P/stop`` payload to its fields: empty (or blank) is ``{}``, anything else a JSON object."""
    text = payload_text(payload, cfg)
    if not text.strip():
        return {}
    if not text.lstrip().startswith("{"):
        raise InputError("payload", _STOP_SHAPE)
    return json_object(text, _STOP_SHAPE, _STOP_SHAPE)


def stop_priority(fields: dict[str, Any]) -> str | None:
    """Validate decoded stop fields; returns ``priority_below`` (None: stop every priority)."""
    unknown = [k for k in fields if k not in STOP_FIELDS]
    if unknown:
        names = ", ".join(shown(k) for k in unknown[:5]) + (", ..." if len(unknown) > 5 else "")
        raise InputError("payload", f"unknown field(s) {names} in a stop; {_STOP_SHAPE}")
    ann_id = fields.get("id")
    if ann_id is not None and (not isinstance(ann_id, str) or not ID_RE.fullmatch(ann_id)):
        raise InputError("id", "must match [A-Za-z0-9._-]{1,64}")
    below = fields.get("priority_below")
    if below is not None and below not in PRIORITIES:
        raise InputError("priority_below", f"{shown(below)} is not allowed (allowed: {', '.join(PRIORITIES)})")
    return below


def _number(raw: dict[str, Any], name: str, lo: float, hi: float | None, default: float,
            lo_open: bool = False) -> float:
    v = raw.get(name)
    if v is None:
        return default
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise InputError(name, f"must be a number, got {shown(v)}")
    hi_s = "" if hi is None else f" {hi}"
    rng = f"{'>' if lo_open else ''}{lo}{' ..' + hi_s if hi is not None else ''}"
    try:
        f = float(v)
    except OverflowError:  # an integer beyond any float
        raise InputError(name, f"{shown(v)} is out of range (allowed: {rng})") from None
    if not math.isfinite(f):
        raise InputError(name, f"must be a number, got {shown(v)}")
    if (f <= lo if lo_open else f < lo) or (hi is not None and f > hi):
        raise InputError(name, f"{shown(v)} is out of range (allowed: {rng})")
    return f


def build(raw: dict[str, Any], cfg: Config, *, now: float | None = None, source: str = "mqtt",
          forced_targets: tuple[str, ...] | None = None, message_expiry: float | None = None,
          response_topic: str | None = None, correlation_data: bytes | None = None,
          ignore_unknown: bool = False) -> Announcement:
    """Validate raw fields against the config and build an Announcement."""
    now = time.time() if now is None else now
    warnings: list[str] = []
    unknown = sorted(set(raw) - set(FIELDS))
    if unknown and not ignore_unknown:
        warnings.append(f"ignored unknown field(s): {', '.join(unknown)}")

    text = raw.get("text")
    if text is None:
        raise InputError("text", "required (a non-empty string)")
    if not isinstance(text, str):
        raise InputError("text", "must be a string")
    text = clean_text(text)
    if not text:
        raise InputError("text", "must not be empty (after removing markup and control characters)")
    if len(text) > cfg.limits.max_text_chars:
        raise InputError("text", f"{len(text)} characters is over the limit of {cfg.limits.max_text_chars}",
                         "oversize")

    ann_id = raw.get("id")
    if ann_id is None:
        ann_id = new_id()
    elif not isinstance(ann_id, str) or not ID_RE.fullmatch(ann_id):
        raise InputError("id", "must match [A-Za-z0-9._-]{1,64}")

    emo_raw = raw.get("emotion")
    if emo_raw is not None and not isinstance(emo_raw, str):
        raise InputError("emotion", "must be a string")
    emotion, warn = resolve_emotion(emo_raw, cfg.defaults.emotion)
    if warn:
        warnings.append(warn)

    priority = raw.get("priority", cfg.defaults.priority)
    if priority not in PRIORITIES:
        raise InputError("priority", f"{shown(priority)} is not allowed "
                                     f"(allowed: {', '.join(PRIORITIES)})")

    if forced_targets is not None:
        targets = forced_targets
    else:
        t = raw.get("targets")
        if t is None:
            targets = cfg.default_targets
        elif isinstance(t, str):
            targets = (t,)
        elif isinstance(t, list) and t and all(isinstance(x, str) for x in t):
            targets = tuple(t)
        else:
            raise InputError("targets", "must be a speaker/zone name or a non-empty list of names")
    known = list(cfg.speakers) + list(cfg.zones)
    for name in targets:
        if name not in known:
            raise InputError("targets", f"unknown target {name[:60]!r} (allowed: {', '.join(known)})")

    chime = raw.get("chime", cfg.defaults.chime)
    if not isinstance(chime, (bool, str)):
        raise InputError("chime", "must be true, false or a chime name")
    if isinstance(chime, str) and chime not in BUILTIN_CHIMES and chime not in cfg.chimes:
        names = ", ".join(sorted({*BUILTIN_CHIMES, *cfg.chimes}))
        raise InputError("chime", f"unknown chime {shown(chime)} (allowed: true, false, {names})")

    repeat = raw.get("repeat", 1)
    if isinstance(repeat, bool) or not isinstance(repeat, int) or not 1 <= repeat <= 10:
        raise InputError("repeat", "must be an integer 1 .. 10")

    engine = raw.get("engine")
    if engine is None:
        engine = cfg.default_engine
    elif not isinstance(engine, str) or engine not in cfg.engines:
        shown_engine = repr(engine[:60]) if isinstance(engine, str) else shown(engine)
        raise InputError("engine", f"unknown engine {shown_engine} (allowed: {', '.join(cfg.engines)})")
    for name in ("voice", "lang"):
        if raw.get(name) is not None and not isinstance(raw[name], str):
            raise InputError(name, "must be a string")

    ttl = _number(raw, "ttl", 0, None, cfg.defaults.ttl, lo_open=True)
    expires = now + ttl
    if message_expiry is not None:
        expires = min(expires, now + message_expiry)

    return Announcement(
        id=ann_id,
        text=text,
        targets=tuple(targets),
        speakers=cfg.expand_targets(targets),
        emotion=emotion,
        intensity=_number(raw, "intensity", 0, 2, cfg.defaults.intensity),
        speed=_number(raw, "speed", 0.5, 2.0, cfg.defaults.speed),
        volume=None if raw.get("volume") is None else _number(raw, "volume", 0, 1, 1.0),
        priority=priority,
        chime=chime,
        repeat=repeat,
        repeat_gap=_number(raw, "repeat_gap", 0, 60, cfg.defaults.repeat_gap),
        ttl=ttl,
        engine=engine,
        voice=raw.get("voice") or (cfg.defaults.voice if engine == cfg.default_engine else None),
        lang=raw.get("lang"),
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
