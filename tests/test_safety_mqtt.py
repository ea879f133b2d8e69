"""Issue 15 over MQTT, with ``announcer run``, a real mosquitto and the embedded voice:

* finding 1: an emergency is never silent. A master volume of 0 (Home Assistant's number), a
  quiet-hours cap or an announcement's ``volume: 0`` cannot take it below the speaker's
  ``emergency_volume`` floor; a *retained* ``P/set/volume 0`` (which used to come back at every
  restart) is ignored with a warning, and the kept setting is published again on connect;
* finding 6: MQTT 5 response topics only under ``P/reply/`` (``mqtt.reply_prefixes``): a sender
  allowed to publish ``say`` cannot make the daemon publish on ``P/status``,
  ``P/availability`` or a discovery config topic.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from broker import Broker, TestClient, properties
from daemon_proc import DaemonProc, Events, _idle_between_tests, module_daemon, new_id  # noqa: F401

from announcer.audio.chimes import ChimeLibrary
from announcer.mqtt.publisher import EventPublisher
from announcer.mqtt.topics import Topics
from announcer.playback.speaker_chain import SpeakerChain
from announcer.sinks.file_sink import Config as FileConfig

pytestmark = pytest.mark.timeout(180)

TEXT = "请注意，三号病房请安静。"
DISCOVERY_PREFIX = f"hass-{uuid.uuid4().hex[:6]}"


@pytest.fixture(scope="module")
def daemon(
    shared_broker: Broker, tmp_path_factory: pytest.TempPathFactory, announcer_cache: Path
) -> Iterator[DaemonProc]:
    yield from module_daemon(
        shared_broker,
        tmp_path_factory.mktemp("daemon-safety-mqtt"),
        announcer_cache,
        config={"homeassistant": {"enabled": True, "discovery_prefix": DISCOVERY_PREFIX, "node_id": "safety"}},
    )


def level(path: Path) -> float:
    """RMS of the WAV (the peaks of loud speech meet the limiter, the RMS follows the gain)."""
    data, _rate = sf.read(str(path), dtype="float64")
    return float(np.sqrt(np.mean(data**2))) if len(data) else 0.0


def say(client: TestClient, daemon: DaemonProc, events: Events, **fields: object) -> float:
    ann_id = new_id("v")
    client.publish_json(daemon.topic("say", "a"), {"id": ann_id, "text": TEXT, **fields})
    ev = events.wait(ann_id, "finished", "a", timeout=60)
    assert ev["state"] == "finished"
    return level(daemon.wav("a", ann_id))


def set_volume(client: TestClient, daemon: DaemonProc, percent: str, retain: bool = False) -> None:
    state = client.collect(daemon.topic("state", "volume"))
    client.publish(daemon.topic("set", "volume"), percent, retain=retain)
    state.wait_for(lambda m: m.text() == percent and not m.retain, timeout=10)


# ------------------------------------------------------------------------------ emergency floor
def test_master_volume_zero_does_not_silence_an_emergency(
    client: TestClient, daemon: DaemonProc, events: Events
) -> None:
    set_volume(client, daemon, "100")
    normal = say(client, daemon, events, chime=False)
    set_volume(client, daemon, "0")
    try:
        assert say(client, daemon, events, chime=False) == 0.0  # master 0 silences everything else
        loud = say(client, daemon, events, chime=False, priority="emergency")
        own_zero = say(client, daemon, events, chime=False, priority="emergency", volume=0)
    finally:
        set_volume(client, daemon, "100")
    # the floor: 0.8 of the speaker's volume (1.0 here)
    assert loud == pytest.approx(0.8 * normal, rel=0.1), (loud, normal)
    assert own_zero == pytest.approx(loud, rel=0.01)


def test_a_retained_volume_command_is_ignored_and_the_kept_setting_wins(
    shared_broker: Broker, client: TestClient, daemon: DaemonProc, events: Events
) -> None:
    topic = daemon.topic("set", "volume")
    try:
        # a retained 0 is delivered live (without the retain flag) and obeyed, as any command
        set_volume(client, daemon, "0", retain=True)
        set_volume(client, daemon, "100")
        assert daemon.stop() == 0
        daemon.start()
        # after the restart the broker hands the stale retained 0 over again: ignored, said so
        daemon.wait_log("ignoring the retained command on " + topic, timeout=15)
        state = client.collect(daemon.topic("state", "volume"))
        assert state.wait_for(timeout=10).text() == "100"
        settings = json.loads((daemon.spool_path.parent / "settings.json").read_text(encoding="utf-8"))
        assert settings["volume"] == 1.0
        assert say(client, daemon, events, chime=False) > 0.03
    finally:
        shared_broker.client().publish(topic, b"", retain=True)  # clear it for whoever comes next


def test_emergency_floor_beats_quiet_hours_and_announcement_volume() -> None:
    chain = SpeakerChain(FileConfig(type="file", directory="/tmp", volume=0.5), ChimeLibrary())
    assert chain.gain(0.0, cap=0.1, master=0.0, priority="emergency") == pytest.approx(0.4)
    assert chain.gain(1.0, cap=None, master=1.0, priority="emergency") == pytest.approx(0.5)  # a floor, not a boost
    assert chain.gain(0.0, cap=0.1, master=0.0, priority="high") == 0.0
    quiet = SpeakerChain(FileConfig(type="file", directory="/tmp", volume=1.0, emergency_volume=0.3), ChimeLibrary())
    assert quiet.gain(1.0, cap=0.1, master=1.0, priority="emergency") == pytest.approx(0.3)


# ------------------------------------------------------------------------------ response topics
@pytest.mark.parametrize("where", ["availability", "status", "set/volume", "say", "homeassistant", "reply"])
def test_response_topics_outside_the_reply_prefix_are_refused(
    shared_broker: Broker, client: TestClient, daemon: DaemonProc, events: Events, where: str
) -> None:
    if where == "reply":
        topic = daemon.topic("reply", new_id("ok"))
    elif where == "homeassistant":
        topic = f"{DISCOVERY_PREFIX}/switch/evil/config"
    else:
        topic = daemon.topic(*where.split("/"))
    watch = shared_broker.client().collect(topic)
    time.sleep(0.3)
    watch.clear()  # what is retained there (status, availability) is not ours to judge
    ann_id = new_id("rt")
    client.publish_json(
        daemon.topic("say", "a"),
        {"id": ann_id, "text": TEXT, "chime": False},
        properties=properties(ResponseTopic=topic, CorrelationData=b"c"),
    )
    events.wait(ann_id, "finished", "a", timeout=60)  # the event still goes to P/events
    mine = lambda m: m.payload.startswith(b"{") and json.loads(m.payload).get("id") == ann_id  # noqa: E731
    if where == "reply":
        assert watch.wait_for(mine, timeout=10).json()["state"] == "finished"
        return
    watch.assert_none(mine, within=1.0)
    daemon.wait_log("not replying to ", timeout=10)  # (one line a minute however many are refused)


def test_reply_prefixes_are_configurable() -> None:
    topics = Topics.under("announcer")
    default = EventPublisher(None, topics)  # type: ignore[arg-type]  # (no link needed to judge a topic)
    assert default.reply_allowed("announcer/reply/abc")
    for bad in ("announcer/reply/", "announcer/replyx", "announcer/status", "announcer/reply/#", "other/reply/x"):
        assert not default.reply_allowed(bad), bad
    custom = EventPublisher(None, topics, ("plant/answers/", "announcer/reply/"))  # type: ignore[arg-type]
    assert custom.reply_allowed("plant/answers/7") and not custom.reply_allowed("plant/other")
