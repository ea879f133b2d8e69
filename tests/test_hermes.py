"""Rhasspy Hermes TTS against the real daemon and a real mosquitto.

``hermes/tts/say`` with a siteId mapped to a ``file`` speaker (or a zone) is spoken there,
and ``hermes/tts/sayFinished`` comes back with the request's id, siteId and sessionId
once every speaker is done, also when the request is refused (unknown siteId, bad
payload, duplicate), so a Rhasspy dialogue never waits for nothing.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from broker import Broker, Collected, TestClient
from daemon_proc import DaemonProc, Events, _idle_between_tests, module_daemon, new_id  # noqa: F401

from announcer.core.schema import ID_RE
from announcer.integrations.hermes import SAY, SAY_FINISHED, announcement_id

pytestmark = pytest.mark.timeout(120)


def test_hermes_ids_map_to_valid_announcement_ids() -> None:
    assert announcement_id("5f1c-ab_9.x") == "5f1c-ab_9.x"
    odd = announcement_id("id with spaces/and:colons")
    assert ID_RE.match(odd) and odd.startswith("hermes-")
    assert announcement_id("id with spaces/and:colons") == odd  # deterministic: a redelivery is a duplicate
    assert announcement_id("x" * 65) != announcement_id("x" * 66)
    assert ID_RE.match(announcement_id(None)) and announcement_id(None) != announcement_id(None)


@pytest.fixture(scope="module")
def daemon(
    shared_broker: Broker, tmp_path_factory: pytest.TempPathFactory, announcer_cache: Path
) -> Iterator[DaemonProc]:
    yield from module_daemon(
        shared_broker,
        tmp_path_factory.mktemp("daemon-hermes"),
        announcer_cache,
        config={"hermes": {"enabled": True, "sites": {"default": "a", "kitchen": "files"}}},
    )


@pytest.fixture
def finished(client: TestClient) -> Collected:
    return client.collect(SAY_FINISHED)


def say(client: TestClient, **fields: Any) -> dict[str, Any]:
    payload = {
        "text": "请注意，三号病房请安静。",
        "siteId": "default",
        "lang": None,
        "id": str(uuid.uuid4()),
        "sessionId": f"s-{uuid.uuid4().hex[:8]}",
        "volume": 1.0,
        **fields,
    }
    client.publish_json(SAY, payload)
    return payload


def wait_finished(finished: Collected, req: dict[str, Any], timeout: float = 60.0) -> dict[str, Any]:
    m = finished.wait_for(lambda m: m.json().get("sessionId") == req["sessionId"], timeout)
    return m.json()


def test_round_trip_on_a_file_speaker(
    client: TestClient, daemon: DaemonProc, events: Events, finished: Collected
) -> None:
    req = say(client)
    reply = wait_finished(finished, req)
    assert reply == {"id": req["id"], "siteId": "default", "sessionId": req["sessionId"]}
    wav = daemon.wav("a", req["id"])
    assert wav.is_file() and wav.stat().st_size > 10_000  # written before sayFinished went out
    ev = events.wait(req["id"], "finished", "a")
    assert ev["path"] == str(wav)


def test_site_mapped_to_a_zone_finishes_after_every_speaker(
    client: TestClient, daemon: DaemonProc, events: Events, finished: Collected
) -> None:
    req = say(client, siteId="kitchen", volume=0.5)
    reply = wait_finished(finished, req)
    assert reply["siteId"] == "kitchen" and reply["id"] == req["id"]
    assert daemon.wav("a", req["id"]).is_file() and daemon.wav("b", req["id"]).is_file()
    queued = events.wait(req["id"], "queued")
    assert queued["targets"] == ["files"]


def test_odd_hermes_id_is_mapped_and_given_back(
    client: TestClient, daemon: DaemonProc, events: Events, finished: Collected
) -> None:
    req = say(client, id="rhasspy say #1/with spaces")
    reply = wait_finished(finished, req)
    assert reply["id"] == "rhasspy say #1/with spaces"
    mapped = announcement_id(req["id"])
    assert daemon.wav("a", mapped).is_file()
    events.wait(mapped, "finished", "a")


def test_unknown_site_is_rejected_and_still_finished(
    client: TestClient, daemon: DaemonProc, events: Events, finished: Collected
) -> None:
    req = say(client, siteId="garage")
    reply = wait_finished(finished, req, timeout=10)
    assert reply == {"id": req["id"], "siteId": "garage", "sessionId": req["sessionId"]}
    ev = events.wait(req["id"], "rejected", timeout=10)
    assert "garage" in ev["error"] and "default, kitchen" in ev["error"] and ev["error"].startswith("siteId")
    assert not daemon.wav("a", req["id"]).exists()


def test_invalid_request_and_duplicate_still_finish(
    client: TestClient, daemon: DaemonProc, events: Events, finished: Collected
) -> None:
    bad = say(client, text="", volume=3)
    assert wait_finished(finished, bad, timeout=10)["id"] == bad["id"]
    assert events.wait(bad["id"], "rejected", timeout=10)["error"].startswith("text")
    first = say(client)
    wait_finished(finished, first)
    again = say(client, id=first["id"])  # same id within 24 h: played once, answered twice
    assert wait_finished(finished, again, timeout=10)["id"] == first["id"]
    assert events.wait(first["id"], "rejected", timeout=10)["reason"] == "duplicate"


def test_no_site_map_means_default_targets(tmp_path: Path) -> None:
    from announcer.config import parse_config
    from announcer.core.errors import InputError
    from announcer.core.events import Rejected as RejectedEvent
    from announcer.intake.intake import Rejected
    from announcer.integrations.hermes import HermesBridge

    parsed = parse_config("""
speakers: {a: {type: file, directory: /tmp/a}, b: {type: file, directory: /tmp/b}}
defaults: {targets: [b]}
hermes: {enabled: true}
""")
    calls: list[tuple[str | None, dict[str, Any]]] = []

    class FakeIntake:
        cfg = parsed

        def accept(self, fields: dict[str, Any], origin: Any = None, target: str | None = None) -> Rejected:
            calls.append((target, dict(fields)))
            error = InputError("text", "not this time")
            return Rejected(RejectedEvent.of("x1", error), error)

    from announcer.core.events import EventBus
    from announcer.mqtt.paho_adapter import IncomingMessage

    sent: list[tuple[str, bytes]] = []
    bridge = HermesBridge(FakeIntake(), EventBus(), lambda t, p, q, r: sent.append((t, p)))  # type: ignore[arg-type]
    body = json.dumps({"text": "hi", "siteId": "anything", "id": "x1", "sessionId": "s"}).encode()
    assert bridge.handle(IncomingMessage(SAY, body, 1, False, 1))
    assert calls == [(None, {"text": "hi", "id": "x1"})]  # None: the default targets
    assert sent == [(SAY_FINISHED, b'{"id":"x1","siteId":"anything","sessionId":"s"}')]  # FakeIntake rejected


def test_garbage_requests_are_rejected_through_intake() -> None:
    """Each bad request becomes one ``rejected`` event (Intake's code path), never an exception.

    A siteId that is a list or an object raised TypeError (``site not in sites``) from the
    MQTT handler: no event, no sayFinished, the message never acknowledged.
    """
    from announcer.config import parse_config
    from announcer.core.errors import InputError
    from announcer.core.events import EventBus
    from announcer.integrations.hermes import HermesBridge
    from announcer.mqtt.paho_adapter import IncomingMessage

    parsed = parse_config("""
speakers: {a: {type: file, directory: /tmp/a}}
hermes: {enabled: true, sites: {default: a}}
limits: {max_payload_bytes: 1024}
""")
    rejected: list[tuple[str, str | None]] = []

    class FakeIntake:
        cfg = parsed

        def accept(self, *args: Any, **kwargs: Any) -> None:
            raise AssertionError("nothing here is valid")

        def reject(self, exc: InputError, fields: dict[str, Any] | None, origin: Any = None) -> None:
            rejected.append((str(exc), (fields or {}).get("id")))

    sent: list[bytes] = []
    bridge = HermesBridge(FakeIntake(), EventBus(), lambda t, p, q, r: sent.append(p))  # type: ignore[arg-type]
    bodies = [
        b"\xff",
        b"[1]",
        b"not json",
        b'{"text": "\\ud800"}',
        b"{" + b" " * 1100 + b"}",
        b'{"text": "hi", "siteId": ["a"], "id": "h1"}',
        b'{"text": "hi", "siteId": {"x": 1}, "id": "h2"}',
        b'{"text": "hi", "siteId": "garage", "id": "h3"}',
    ]
    for body in bodies:
        assert bridge.handle(IncomingMessage(SAY, body, 1, False, 1))
    fields = [e.split(":")[0] for e, _ in rejected]
    assert fields == ["payload", "payload", "payload", "text", "payload", "siteId", "siteId", "siteId"], rejected
    assert [i for _, i in rejected[-3:]] == ["h1", "h2", "h3"]
    assert "must be a string" in rejected[5][0] and "allowed: default" in rejected[7][0]
    assert len(sent) == 3  # a sayFinished for each request with an id/siteId to answer
