"""Issue 15, finding 13: the example broker config set no ``max_packet_size``, so a 50 MB publish
reached the daemon (120 MB of RSS, briefly) before the payload limit refused it. Now the example
sets one that matches ``limits.max_payload_bytes`` (plus room for the topic and properties).

A real mosquitto with the example's own ``max_packet_size`` line; the daemon as a process. A
payload of exactly ``max_payload_bytes`` still gets through (and is spoken); a bigger one never
reaches the daemon; an ``mqtt`` speaker whose WAV the broker would not take fails that
announcement with a clear error instead of getting the daemon disconnected over and over.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from broker import Broker
from daemon_proc import DaemonProc, Events, new_id

from announcer.config.sections import LimitsConfig

pytestmark = pytest.mark.timeout(180)

EXAMPLE = Path(__file__).resolve().parent.parent / "config" / "mosquitto.conf.example"


def example_max_packet_size() -> int:
    m = re.search(r"^max_packet_size\s+(\d+)\s*$", EXAMPLE.read_text(encoding="utf-8"), flags=re.M)
    assert m, "config/mosquitto.conf.example sets no max_packet_size"
    return int(m.group(1))


def test_the_example_matches_the_payload_limit() -> None:
    limit = LimitsConfig().max_payload_bytes
    size = example_max_packet_size()
    assert limit < size <= limit + 4096, (limit, size)  # the payload limit plus a topic and properties


@pytest.fixture
def broker(broker_factory: Callable[..., Broker]) -> Broker:
    return broker_factory(extra_conf=f"max_packet_size {example_max_packet_size()}\n")


@pytest.fixture
def daemon(broker: Broker, tmp_path: Path, announcer_cache: Path) -> Iterator[DaemonProc]:
    limit = LimitsConfig().max_payload_bytes
    d = DaemonProc(broker, tmp_path / "d", announcer_cache, limits={"max_payload_bytes": limit})
    d.start()
    yield d
    d.close()


def test_oversize_publishes_stop_at_the_broker(broker: Broker, daemon: DaemonProc) -> None:
    watcher = broker.client()
    events = Events(watcher.collect(daemon.topic("events")))
    limit = LimitsConfig().max_payload_bytes
    ok_id = new_id("fits")
    body = json.dumps({"id": ok_id, "text": "三号病房请注意。", "targets": "a"}).encode()
    exact = body[:-1] + b" " * (limit - len(body)) + b"}"
    assert len(exact) == limit
    sender = broker.client()
    sender.publish(daemon.topic("say"), exact)
    events.wait(ok_id, "finished", "a", timeout=60)

    big_id = new_id("big")
    big = json.dumps({"id": big_id, "text": "好" * 10}).encode() + b" " * (1024 * 1024)
    rogue = broker.client()
    rogue.publish_nowait(daemon.topic("say"), big)
    after = new_id("after")
    sender.publish_json(daemon.topic("say", "a"), {"id": after, "text": "请安静。"})
    events.wait(after, "finished", "a", timeout=60)
    assert not events.all(big_id), "the 1 MiB publish reached the daemon"
    assert not events.all(state="rejected"), events.dump()


def test_an_mqtt_speaker_wav_over_the_brokers_limit_fails_cleanly(broker: Broker, daemon: DaemonProc) -> None:
    watcher = broker.client()
    events = Events(watcher.collect(daemon.topic("events")))
    ann = new_id("wav")
    watcher.publish_json(daemon.topic("say", "m"), {"id": ann, "text": "各位旅客请注意，开往北京的列车即将进站。"})
    failed = events.wait(ann, "failed", "m", timeout=60)
    assert "maximum packet size" in failed["error"], failed
    short = new_id("next")  # still connected: the next one goes through
    watcher.publish_json(daemon.topic("say", "a"), {"id": short, "text": "请安静。"})
    events.wait(short, "finished", "a", timeout=60)
    assert "Traceback" not in daemon.this_run_log()
