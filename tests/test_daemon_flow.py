"""End to end: ``announcer run`` as a subprocess, a real mosquitto, the real embedded-zh voice.

One daemon serves this module (``daemon``: file speakers ``a``, ``b``, an ``mqtt``
speaker ``m``; zones ``files`` = a+b, ``all``). Each test uses fresh ids and waits for
its announcements to end, and the daemon is idle (``P/status``) before the next test.

These tests cover the way in and out: payloads to WAV files, the event sequence and its
fields, ``P/status``, the mqtt speaker, MQTT 5 response topics, ``announcer send``.
"""

from __future__ import annotations

import io
import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile as sf
from broker import Broker, TestClient, properties
from daemon_proc import DaemonProc, Events, _idle_between_tests, module_daemon, new_id, unique_text  # noqa: F401

from announcer import __version__

pytestmark = pytest.mark.timeout(120)

SHORT = "请注意，三号病房请安静。"


@pytest.fixture(scope="module")
def daemon(
    shared_broker: Broker, tmp_path_factory: pytest.TempPathFactory, announcer_cache: Path
) -> Iterator[DaemonProc]:
    yield from module_daemon(shared_broker, tmp_path_factory.mktemp("daemon-flow"), announcer_cache)


def read_wav(path: Path) -> tuple[np.ndarray, int, Any]:
    info = sf.info(str(path))
    data, rate = sf.read(str(path), dtype="float32")
    return data, rate, info


def assert_speech_wav(path: Path, min_s: float, max_s: float) -> float:
    """24 kHz mono PCM-16, not silent, duration in range; returns the duration."""
    assert path.is_file(), f"{path} missing"
    data, rate, info = read_wav(path)
    assert (info.samplerate, info.channels, info.subtype, info.format) == (24000, 1, "PCM_16", "WAV")
    assert data.ndim == 1
    duration = len(data) / rate
    assert min_s <= duration <= max_s, f"{path.name}: {duration:.2f} s not in {min_s}..{max_s}"
    rms = float(np.sqrt(np.mean(data**2)))
    assert rms > 0.01 and float(np.max(np.abs(data))) > 0.1, f"{path.name} is (nearly) silent: rms {rms:.4f}"
    return duration


# ---------------------------------------------------------------------------- the way through
def test_plain_text_to_wav_with_event_sequence(client: TestClient, daemon: DaemonProc, events: Events) -> None:
    text = unique_text(1)  # uncached: latency and duration are those of a real synthesis
    t0 = time.time()
    client.publish(daemon.topic("say"), text.encode("utf-8"))
    queued = events.wait(None, "queued", timeout=10)
    ann_id = queued["id"]
    assert queued["targets"] == ["a"] and queued["priority"] == "normal" and queued["warnings"] == []
    started = events.wait(ann_id, "started", "a")
    finished = events.wait(ann_id, "finished", "a")
    t1 = time.time()
    assert [e["state"] for e in events.all(ann_id)] == ["queued", "started", "finished"], events.dump()
    for e in (queued, started, finished):
        assert e["ts"].endswith("Z") and "T" in e["ts"]
    assert isinstance(started["latency_ms"], int)
    assert 0 <= started["latency_ms"] <= (t1 - t0) * 1000 + 50
    assert started["latency_ms"] < 5000, "first audio of an uncached one-sentence text took over 5 s"
    # the WAV: chime + ~4.5 s of speech for one unit
    duration = assert_speech_wav(daemon.wav("a", ann_id), 3.0, 12.0)
    assert finished["duration_s"] == pytest.approx(duration, abs=0.01)
    assert finished["path"] == str(daemon.wav("a", ann_id))


def test_json_payload_to_wav_on_a_zone(client: TestClient, daemon: DaemonProc, events: Events) -> None:
    ann_id = new_id("json")
    client.publish_json(
        daemon.topic("say"),
        {
            "id": ann_id,
            "text": SHORT,
            "targets": "files",
            "chime": False,
            "emotion": "开心",
            "speed": 1.5,
            "volume": 0.5,
            "priority": "high",
        },
    )
    done = events.wait_done([ann_id], ("a", "b"))
    assert {k: v["state"] for k, v in done.items()} == {(ann_id, "a"): "finished", (ann_id, "b"): "finished"}
    queued = events.all(ann_id, "queued")[0]
    assert queued["targets"] == ["files"] and queued["priority"] == "high"
    da = assert_speech_wav(daemon.wav("a", ann_id), 0.8, 5.0)
    db = assert_speech_wav(daemon.wav("b", ann_id), 0.8, 5.0)
    assert da == db  # one render for both speakers
    assert not daemon.wav("a", ann_id).with_suffix(".tmp").exists()


def test_speed_and_repeat_change_the_duration(client: TestClient, daemon: DaemonProc, events: Events) -> None:
    ids = {k: new_id(k) for k in ("plain", "fast", "twice")}
    base = {"text": SHORT, "chime": False, "targets": "a"}
    client.publish_json(daemon.topic("say"), {**base, "id": ids["plain"]})
    client.publish_json(daemon.topic("say"), {**base, "id": ids["fast"], "speed": 2.0})
    client.publish_json(daemon.topic("say"), {**base, "id": ids["twice"], "repeat": 2, "repeat_gap": 2.0})
    done = events.wait_done(list(ids.values()), ("a",))
    d = {k: done[(i, "a")]["duration_s"] for k, i in ids.items()}
    assert d["fast"] < 0.75 * d["plain"], d
    assert d["twice"] == pytest.approx(2 * d["plain"] + 2.0, abs=0.3), d


def test_status_is_retained_with_version_and_returns_to_idle(
    client: TestClient, daemon: DaemonProc, events: Events, shared_broker: Broker
) -> None:
    status = client.collect(daemon.topic("status"))
    first = status.wait_for(timeout=5)
    assert first.retain, "P/status must be retained"
    ann_id = new_id("status")
    client.publish_json(daemon.topic("say"), {"id": ann_id, "text": unique_text(2)})
    events.wait(ann_id, "finished", "a")
    busy = [m.json() for m in status if m.json()["speaking"] == ["a"]]
    assert busy, f"no status with a speaking: {[m.json() for m in status]}"
    idle = status.wait_for(lambda m: m.json()["queue"] == 0 and m.json()["speaking"] == [] and not m.retain, 10)
    assert idle.json() == {"state": "online", "version": __version__, "queue": 0, "speaking": []}
    late = shared_broker.client().collect(daemon.topic("status"))  # a newcomer gets the retained idle status
    m = late.wait_for(timeout=5)
    assert m.retain and m.json()["queue"] == 0 and m.json()["speaking"] == []


def test_mqtt_speaker_publishes_the_wav(client: TestClient, daemon: DaemonProc, events: Events) -> None:
    audio = client.collect(daemon.audio_topic + "/#")
    client.publish(daemon.topic("say", "m"), SHORT.encode("utf-8"))
    queued = events.wait(None, "queued")
    ann_id = queued["id"]
    assert queued["targets"] == ["m"]
    finished = events.wait(ann_id, "finished", "m")
    msg = audio.wait_for(lambda m: m.topic == f"{daemon.audio_topic}/{ann_id}", 10)
    assert msg.qos == 1 and not msg.retain
    assert msg.payload[:4] == b"RIFF" and msg.payload[8:12] == b"WAVE"
    data, rate = sf.read(io.BytesIO(msg.payload), dtype="float32")
    info = sf.info(io.BytesIO(msg.payload))
    assert (rate, info.channels, info.subtype) == (24000, 1, "PCM_16")
    assert float(np.sqrt(np.mean(data**2))) > 0.01
    assert finished["duration_s"] == pytest.approx(len(data) / rate, abs=0.01)
    assert finished["topic"] == msg.topic and finished["bytes"] == len(msg.payload)
    assert not daemon.wav("a", ann_id).exists()


def test_response_topic_gets_the_terminal_event_with_correlation(
    client: TestClient, daemon: DaemonProc, events: Events
) -> None:
    reply_topic = daemon.topic("reply", new_id("r"))
    replies = client.collect(reply_topic)
    ok_id, bad_id = new_id("ok"), new_id("bad")
    client.publish_json(
        daemon.topic("say", "a"),
        {"id": ok_id, "text": SHORT},
        properties=properties(ResponseTopic=reply_topic, CorrelationData=b"corr-ok"),
    )
    client.publish_json(
        daemon.topic("say"),
        {"id": bad_id, "text": SHORT, "speed": 9},
        properties=properties(ResponseTopic=reply_topic, CorrelationData=b"corr-bad"),
    )
    ok = replies.wait_for(lambda m: m.json()["id"] == ok_id, 30)
    bad = replies.wait_for(lambda m: m.json()["id"] == bad_id, 10)
    assert ok.json()["state"] == "finished" and ok.json()["speaker"] == "a"
    assert ok.properties.CorrelationData == b"corr-ok"
    assert bad.json()["state"] == "rejected" and bad.json()["error"].startswith("speed:")
    assert bad.properties.CorrelationData == b"corr-bad"
    replies.assert_none(lambda m: m.json()["state"] in ("queued", "started"), within=0.3)


# ---------------------------------------------------------------------------- announcer send
def run_send(daemon: DaemonProc, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "announcer", "send", "-c", str(daemon.config_path), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_cli_send_wait_finished_then_rejected_duplicate(daemon: DaemonProc, events: Events) -> None:
    ann_id = new_id("cli")
    ok = run_send(daemon, SHORT, "--id", ann_id, "--to", "files", "--wait", "--timeout", "40")
    assert ok.returncode == 0, f"stdout={ok.stdout!r} stderr={ok.stderr[-2000:]!r}"
    event = json.loads(ok.stdout.strip().splitlines()[-1])
    assert event["id"] == ann_id and event["state"] == "finished"
    assert event.get("results") == {"a": "finished", "b": "finished"}
    assert daemon.wav("a", ann_id).is_file() and daemon.wav("b", ann_id).is_file()

    again = run_send(daemon, SHORT, "--id", ann_id, "--wait", "--timeout", "20")
    assert again.returncode == 1, f"stdout={again.stdout!r} stderr={again.stderr[-2000:]!r}"
    event = json.loads(again.stdout.strip().splitlines()[-1])
    assert event["state"] == "rejected" and event["reason"] == "duplicate", event
    assert len(events.all(ann_id, "finished")) == 2  # a and b, once each
