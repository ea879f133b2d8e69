"""``announcer send`` against a real broker.

The daemon is not wired in these tests: ``FakeDaemonResponder`` is a protocol peer on
the broker that plays the daemon's part of the contract (reads ``P/say[/<target>]``,
publishes events on ``P/events`` and the terminal one on the response topic).
"""

from __future__ import annotations

import io
import json
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from broker import Broker, Received, properties

from announcer.config import Config
from announcer.mqtt.send import send

Script = Callable[[dict[str, Any], list[str]], list[tuple[float, dict[str, Any]]]]


def finished_everywhere(ann: dict[str, Any], speakers: list[str]) -> list[tuple[float, dict[str, Any]]]:
    out: list[tuple[float, dict[str, Any]]] = [(0, {"state": "queued", "targets": speakers, "speakers": speakers})]
    for i, s in enumerate(speakers):
        out.append((0.05, {"state": "started", "speaker": s, "latency_ms": 10}))
        out.append((0.1 * (i + 1), {"state": "finished", "speaker": s, "duration_s": 1.0}))
    return out


class FakeDaemonResponder:
    """Stands in for the daemon on the broker: answers each announcement with a scripted event sequence."""

    def __init__(
        self, broker: Broker, cfg: Config, script: Script = finished_everywhere, reply_summary: bool = True
    ) -> None:
        self.cfg = cfg
        self.script = script
        self.reply_summary = reply_summary
        self.received: list[Received] = []
        self.threads: list[threading.Thread] = []
        self.client = broker.client()
        self.client.on("announcer/say/#", self._on_say)

    def _on_say(self, msg: Received) -> None:
        self.received.append(msg)
        ann = json.loads(msg.payload)
        parts = msg.topic.split("/")
        targets = [parts[2]] if len(parts) > 2 else ann.get("targets") or list(self.cfg.default_targets)
        speakers = list(self.cfg.expand_targets(targets))
        t = threading.Thread(target=self._play, args=(ann, speakers, msg.properties), daemon=True)
        self.threads.append(t)
        t.start()

    def join(self) -> None:
        """Let the scripts finish before the broker goes away (send() may return before the last reply)."""
        for t in self.threads:
            t.join(10)

    def _play(self, ann: dict[str, Any], speakers: list[str], props: Any) -> None:
        last: dict[str, Any] | None = None
        for delay, fields in self.script(ann, speakers):
            time.sleep(delay)
            last = {"id": ann["id"], "ts": "2026-01-01T00:00:00.000Z", **fields}
            self.client.publish_json("announcer/events", last)
        response_topic = getattr(props, "ResponseTopic", None)
        if self.reply_summary and last is not None and response_topic:
            self.client.publish_json(response_topic, last, properties=properties(CorrelationData=props.CorrelationData))


@pytest.fixture
def responder(broker: Broker, cfg: Config) -> Iterator[Callable[..., FakeDaemonResponder]]:
    """``responder(script=..., reply_summary=..., config=...)`` starts a FakeDaemonResponder."""
    made: list[FakeDaemonResponder] = []

    def start(
        script: Script = finished_everywhere, reply_summary: bool = True, config: Config | None = None
    ) -> FakeDaemonResponder:
        made.append(FakeDaemonResponder(broker, config or cfg, script, reply_summary))
        return made[-1]

    yield start
    for r in made:
        r.join()


@pytest.fixture
def cfg(broker: Broker, tmp_path: Path) -> Config:
    return Config.model_validate(
        {
            "mqtt": broker.mqtt_config(),
            "speakers": {
                "lobby": {"type": "file", "directory": str(tmp_path / "a")},
                "archive": {"type": "file", "directory": str(tmp_path / "b")},
            },
            "zones": {"ward-3": ["lobby", "archive"]},
            "defaults": {"targets": ["lobby"]},
        }
    )


def test_send_without_wait_publishes_to_target_topic(broker: Broker, cfg: Config) -> None:
    says = broker.client().collect("announcer/say/#")
    code, event = send(cfg, {"text": "请注意", "priority": "high"}, ["lobby"], wait=False, timeout=5)
    assert (code, event) == (0, None)
    m = says.wait_for()
    assert m.topic == "announcer/say/lobby" and m.qos == 1
    body = m.json()
    assert body["text"] == "请注意" and body["priority"] == "high" and "targets" not in body
    assert len(body["id"]) >= 8  # generated client-side
    assert m.properties.ResponseTopic.startswith("announcer/reply/")
    assert len(m.properties.CorrelationData) == 16


def test_send_several_targets_puts_them_in_the_payload(broker: Broker, cfg: Config) -> None:
    says = broker.client().collect("announcer/say/#")
    payload = {"text": "hi", "id": "fixed-id"}
    assert send(cfg, payload, ["lobby", "archive"], wait=False, timeout=5) == (0, None)
    m = says.wait_for()
    assert m.topic == "announcer/say" and m.json() == {"text": "hi", "id": "fixed-id", "targets": ["lobby", "archive"]}
    assert payload == {"text": "hi", "id": "fixed-id"}  # not modified


def test_wait_finished(broker: Broker, cfg: Config, responder: Any) -> None:
    responder()
    code, event = send(cfg, {"text": "hello"}, ["lobby"], wait=True, timeout=10)
    assert code == 0 and event is not None
    assert event["state"] == "finished" and event["speaker"] == "lobby"


def test_wait_for_every_speaker_of_a_zone(broker: Broker, cfg: Config, responder: Any) -> None:
    responder(reply_summary=False)  # only P/events: the slower speaker must be awaited
    t0 = time.monotonic()
    code, event = send(cfg, {"text": "ward", "id": "zone-1"}, ["ward-3"], wait=True, timeout=10)
    assert code == 0 and event is not None and event["id"] == "zone-1"
    assert event["results"] == {"lobby": "finished", "archive": "finished"}
    assert time.monotonic() - t0 >= 0.25  # archive finishes 0.2 s after lobby


def test_one_speaker_failing_means_exit_1(broker: Broker, cfg: Config, responder: Any) -> None:
    def script(ann: dict[str, Any], speakers: list[str]) -> list[tuple[float, dict[str, Any]]]:
        return [
            (0, {"state": "queued", "targets": ["ward-3"]}),  # no "speakers": expanded from the zone
            (0.05, {"state": "finished", "speaker": "lobby", "duration_s": 1}),
            (0.05, {"state": "failed", "speaker": "archive", "error": "disk full"}),
        ]

    responder(script, reply_summary=False)
    code, event = send(cfg, {"text": "x"}, ["ward-3"], wait=True, timeout=10)
    assert code == 1 and event is not None
    assert event["state"] == "failed" and event["speaker"] == "archive"
    assert event["results"] == {"lobby": "finished", "archive": "failed"}


def test_rejected(broker: Broker, cfg: Config, responder: Any) -> None:
    def script(ann: dict[str, Any], speakers: list[str]) -> list[tuple[float, dict[str, Any]]]:
        return [(0, {"state": "rejected", "reason": "invalid", "error": "speed: 9 is out of range"})]

    responder(script)
    code, event = send(cfg, {"text": "x", "speed": 9}, None, wait=True, timeout=10)
    assert code == 1 and event is not None and event["state"] == "rejected"


def test_summary_on_response_topic_ends_the_wait(broker: Broker, cfg: Config) -> None:
    # the responder publishes nothing on P/events: only the reply with our correlation data counts
    peer = broker.client()

    def on_say(msg: Received) -> None:
        ann = msg.json()
        peer.publish_nowait(
            msg.properties.ResponseTopic,
            json.dumps({"id": ann["id"], "state": "finished"}),
            properties=properties(CorrelationData=b"someone else's"),
        )
        peer.publish_nowait(
            msg.properties.ResponseTopic,
            json.dumps({"id": ann["id"], "state": "expired"}),
            properties=properties(CorrelationData=msg.properties.CorrelationData),
        )

    peer.on("announcer/say/#", on_say)
    code, event = send(cfg, {"text": "x"}, ["lobby"], wait=True, timeout=10)
    assert code == 1 and event is not None and event["state"] == "expired"


def test_events_of_other_announcements_are_ignored(broker: Broker, cfg: Config, responder: Any) -> None:
    def script(ann: dict[str, Any], speakers: list[str]) -> list[tuple[float, dict[str, Any]]]:
        return finished_everywhere(ann, speakers)

    other = broker.client()

    def on_say(msg: Received) -> None:
        other.publish_nowait(
            "announcer/events", json.dumps({"id": "someone-else", "state": "failed", "speaker": "lobby"})
        )

    other.on("announcer/say/#", on_say)
    responder(script)
    assert send(cfg, {"text": "x"}, ["lobby"], wait=True, timeout=10)[0] == 0


def test_timeout_without_daemon(broker: Broker, cfg: Config) -> None:
    err = io.StringIO()
    t0 = time.monotonic()
    code, event = send(cfg, {"text": "x", "id": "lonely"}, None, wait=True, timeout=1.0, err=err)
    assert (code, event) == (1, None)
    assert time.monotonic() - t0 < 3
    assert "no terminal event for lonely within 1s" in err.getvalue()


def test_broker_unreachable_exit_2(broker: Broker, cfg: Config) -> None:
    broker.stop()
    err = io.StringIO()
    t0 = time.monotonic()
    code, event = send(cfg, {"text": "x"}, None, wait=True, timeout=30, err=err)
    assert (code, event) == (2, None)
    assert time.monotonic() - t0 < 5  # fails on the first refused attempt, not after the timeout
    msg = err.getvalue()
    assert f"cannot connect to mqtt://127.0.0.1:{broker.port}" in msg and "refused" in msg.lower()


def test_mqtt311_waits_on_events(broker: Broker, cfg: Config, responder: Any) -> None:
    cfg311 = cfg.model_copy(update={"mqtt": cfg.mqtt.model_copy(update={"protocol": "3.1.1"})})
    peer = responder(config=cfg311)
    code, event = send(cfg311, {"text": "v3"}, ["lobby"], wait=True, timeout=10)
    assert code == 0 and event is not None and event["state"] == "finished"
    assert not getattr(peer.received[0].properties, "ResponseTopic", None)
