"""Intake (through the MQTT router) without a broker: ``P/stop`` payloads, and every message ending
in an event or an action.

A stop is an empty payload or a JSON object ``{"priority_below": "<priority>"}`` (``{}``,
what Home Assistant's stop button sends, stops everything). Anything else is *rejected*
(an event naming the field and what is allowed) and stops nothing: before, ``[1]``, ``5``
or ``{"foo": 1}`` stopped everything and the other invalid stops were only logged.
"""

from __future__ import annotations

from typing import Any

import pytest

from announcer.config import parse_config
from announcer.core.announcement import Announcement
from announcer.core.events import EventBus
from announcer.intake.intake import Intake
from announcer.mqtt.paho_adapter import IncomingMessage
from announcer.mqtt.router import MqttRouter
from announcer.mqtt.topics import Topics

pytestmark = pytest.mark.unit  # the fast lane (make check)

CFG = parse_config("""
speakers: {a: {type: file, directory: /tmp/a}, b: {type: file, directory: /tmp/b}}
zones: {files: [a, b]}
defaults: {targets: [a]}
limits: {max_payload_bytes: 1024}
""")


class FakeScheduler:
    def __init__(self) -> None:
        self.stops: list[tuple[str | None, str | None]] = []
        self.submitted: list[Announcement] = []

    def submit(self, ann: Announcement) -> None:
        self.submitted.append(ann)

    def stop(self, target: str | None, priority_below: str | None = None) -> int:
        self.stops.append((target, priority_below))
        return 0


class FakeSpool:
    def add(self, ann: Announcement) -> bool:
        return True


@pytest.fixture
def parts() -> tuple[MqttRouter, FakeScheduler, list[dict[str, Any]]]:
    """The MQTT router on an intake with fake spool and scheduler; events as published."""
    events = EventBus()
    seen: list[dict[str, Any]] = []
    events.subscribe(lambda event, _ann: seen.append(event.to_wire()))
    sched = FakeScheduler()
    intake = Intake(lambda: CFG, FakeSpool(), sched, events)  # type: ignore[arg-type]
    return MqttRouter(intake, Topics.under("announcer")), sched, seen


def message(topic: str, payload: bytes) -> IncomingMessage:
    return IncomingMessage(topic, payload, 1, False, 1)


@pytest.mark.parametrize(
    "topic, payload, stop",
    [
        ("announcer/stop", b"", (None, None)),
        ("announcer/stop", b"{}", (None, None)),  # Home Assistant's stop button
        ("announcer/stop", b" \n", (None, None)),
        ("announcer/stop", b'{"priority_below": "emergency"}', (None, "emergency")),
        ("announcer/stop/b", b"", ("b", None)),
        ("announcer/stop/files", b'{"priority_below": "high", "id": "s-1"}', ("files", "high")),
    ],
)
def test_valid_stop_stops(parts: Any, topic: str, payload: bytes, stop: tuple[str | None, str | None]) -> None:
    intake, sched, seen = parts
    assert intake.handle(message(topic, payload)) is True
    assert sched.stops == [stop] and seen == []


@pytest.mark.parametrize(
    "topic, payload, field, allowed",
    [
        ("announcer/stop", b"please stop", "payload", "priority_below"),
        ("announcer/stop", b"[1]", "payload", "priority_below"),
        ("announcer/stop", b"5", "payload", "priority_below"),
        ("announcer/stop", b'{"foo": 1}', "payload", "priority_below"),
        ("announcer/stop", b'{"priority_below": ', "payload", "priority_below"),
        ("announcer/stop", b"\xff", "payload", "UTF-8"),
        ("announcer/stop", b"{" + b" " * 1100 + b"}", "payload", "1024"),
        ("announcer/stop", b'{"priority_below": "urgent"}', "priority_below", "low, normal, high, emergency"),
        ("announcer/stop/nope", b"", "targets", "a, b, files"),
        ("announcer/stop/nope", b'{"priority_below": "low"}', "targets", "a, b, files"),
    ],
)
def test_invalid_stop_is_rejected_and_stops_nothing(
    parts: Any, topic: str, payload: bytes, field: str, allowed: str
) -> None:
    intake, sched, seen = parts
    assert intake.handle(message(topic, payload)) is True  # acknowledged: redelivering cannot help
    assert sched.stops == []
    assert len(seen) == 1 and seen[0]["state"] == "rejected", seen
    event = seen[0]
    assert event["error"].startswith(f"{field}: ") and allowed in event["error"], event
    assert event["reason"] == ("oversize" if b" " * 1100 in payload else "invalid")
    assert event["id"]


def test_rejected_stop_carries_its_id(parts: Any) -> None:
    intake, sched, seen = parts
    intake.handle(message("announcer/stop", b'{"id": "stop-7", "priority_below": "urgent"}'))
    intake.handle(message("announcer/stop", b'{"id": "stop-8", "nope": true}'))
    intake.handle(message("announcer/stop", b'{"id": "bad id", "priority_below": "low"}'))
    assert [e["id"] for e in seen[:2]] == ["stop-7", "stop-8"]
    assert seen[2]["id"] not in ("bad id", "stop-7", "stop-8") and seen[2]["error"].startswith("id: ")
    assert sched.stops == []


def test_say_with_json_python_cannot_hold_is_rejected(parts: Any) -> None:
    """These raised from the MQTT handler: no event, and the message was never acknowledged."""
    intake, sched, seen = parts
    payloads = [
        b'{"text": "a", "speed": ' + b"9" * 400 + b"}",
        b'{"text": "\\ud800"}',
        b'{"id": "x1\\n", "text": "a"}',
        b'{"text": "a", "chime": "bell"}',
    ]
    for p in payloads:
        assert intake.handle(message("announcer/say", p)) is True
    assert [e["state"] for e in seen] == ["rejected"] * len(payloads) and sched.submitted == []
