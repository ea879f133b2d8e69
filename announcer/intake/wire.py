"""From wire bytes to raw fields: a payload's text, JSON objects, stop payloads.

Plain UTF-8 text or a JSON object (a payload whose first non-blank character is ``{``
is JSON; if it does not parse it is rejected, never spoken). Every problem raises
``InputError`` naming the field and what is allowed. What the fields mean is checked by
``announcer.intake.parse``.
"""

from __future__ import annotations

import json
from typing import Any

from ..config import Config
from ..core.errors import InputError, shown
from ..core.schema import ID_RE, ID_RULE, PRIORITIES


def decode_payload(payload: bytes | str, cfg: Config) -> dict[str, Any]:
    """Bytes from the wire to a dict of raw fields (plain text becomes ``{"text": ...}``)."""
    text = payload_text(payload, cfg)
    if text.lstrip().startswith("{"):
        return json_object(
            text,
            "a payload starting with '{' must be a JSON object",
            'a JSON payload must be an object with at least "text"',
        )
    return {"text": text}


def payload_text(payload: bytes | str, cfg: Config) -> str:
    """A wire payload as text: at most ``limits.max_payload_bytes``, valid UTF-8."""
    if isinstance(payload, bytes):
        if len(payload) > cfg.limits.max_payload_bytes:
            raise InputError(
                "payload", f"{len(payload)} bytes is over the limit of {cfg.limits.max_payload_bytes} bytes", "oversize"
            )
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
        raise InputError(
            "payload", f"not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno}); {hint}"
        ) from None
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
            raise InputError(
                name, "contains an unpaired UTF-16 surrogate (a \\ud800-\\udfff escape); send valid Unicode"
            ) from None
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
_STOP_SHAPE = (
    'a stop is an empty payload or a JSON object {"priority_below": "<priority>"} '
    f"(allowed fields: {', '.join(STOP_FIELDS)}; priorities: {', '.join(PRIORITIES)})"
)


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
        raise InputError("id", ID_RULE)
    below = fields.get("priority_below")
    if below is not None and below not in PRIORITIES:
        raise InputError("priority_below", f"{shown(below)} is not allowed (allowed: {', '.join(PRIORITIES)})")
    return below
