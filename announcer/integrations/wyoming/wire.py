"""Reading Wyoming events from a client with limits (wyoming's ``async_read_event`` has none).

An event is a JSON header line, then ``data_length`` bytes of JSON data, then
``payload_length`` bytes of payload. Here the header line is at most ``MAX_HEADER_BYTES``
(the stream reader's limit), the data at most ``MAX_DATA_BYTES`` and the payload at most
``MAX_PAYLOAD_BYTES`` (a TTS server is sent text, never audio); each is checked before
anything is read. A header that breaks a rule raises ``BadEvent`` naming it: the framing
cannot be trusted after that, so the server answers ``error`` and closes the connection.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from wyoming.event import Event

MAX_HEADER_BYTES = 64 * 1024  # a synthesize with its text inline: 2000 characters as \\uXXXX escapes fit
MAX_DATA_BYTES = 64 * 1024
MAX_PAYLOAD_BYTES = 64 * 1024


class BadEvent(ValueError):
    """A malformed or oversized event header; the message says which rule it broke."""


def _length(header: dict[str, Any], key: str, limit: int) -> int:
    value = header.get(key)
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise BadEvent(f"{key} must be a non-negative integer")
    if value > limit:
        raise BadEvent(f"{key} {value} is over the limit of {limit} bytes")
    return value


async def read_event(reader: asyncio.StreamReader) -> Event | None:
    """The next event, None at a clean end of the connection; BadEvent for a broken rule."""
    try:
        line = await reader.readuntil(b"\n")
    except asyncio.IncompleteReadError as exc:
        if not exc.partial.strip():
            return None
        raise BadEvent("the connection ended inside an event header") from None
    except asyncio.LimitOverrunError:
        raise BadEvent(f"event header line over {MAX_HEADER_BYTES} bytes") from None
    try:
        header = json.loads(line)
    except (ValueError, RecursionError):
        raise BadEvent("event header is not JSON") from None
    if not isinstance(header, dict) or not isinstance(header.get("type"), str):
        raise BadEvent('event header must be a JSON object with a "type" string')
    data = header.get("data") or {}
    if not isinstance(data, dict):
        raise BadEvent("event data must be a JSON object")
    data_length = _length(header, "data_length", MAX_DATA_BYTES)
    payload_length = _length(header, "payload_length", MAX_PAYLOAD_BYTES)
    if data_length:
        try:
            more = json.loads(await reader.readexactly(data_length))
        except (ValueError, RecursionError):
            raise BadEvent("event data is not JSON") from None
        if not isinstance(more, dict):
            raise BadEvent("event data must be a JSON object")
        data = {**data, **more}
    payload = await reader.readexactly(payload_length) if payload_length else None
    return Event(type=header["type"], data=data, payload=payload)
