"""Home Assistant: discovery payloads (pure), runtime settings, and the real daemon end to end.

The end-to-end part runs ``announcer run`` (``daemon_proc.DaemonProc``) with Home
Assistant enabled under a discovery prefix of its own, zones with Chinese display names,
against a real mosquitto, and checks what Home Assistant would see and do: configs after
``<prefix>/status`` = ``online``, the select and number entities' commands taking effect
(and surviving a restart), a removed zone's entity deleted.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from broker import Broker, TestClient
from daemon_proc import DaemonProc, Events, _idle_between_tests, module_daemon, new_id  # noqa: F401

from announcer import __version__
from announcer.audio.wav import read_wav
from announcer.config import parse_config
from announcer.core.emotions import EMOTIONS
from announcer.integrations.homeassistant import discovery as ha
from announcer.spool.settings import RuntimeSettings, settings_path

pytestmark = pytest.mark.timeout(180)

ASCII_ID = re.compile(r"^[a-zA-Z0-9_-]+$")
TEXT = "各位旅客请注意，开往北京的列车即将进站。"

# What Home Assistant's MQTT platforms require in a discovery config (homeassistant/components/mqtt/*.py
# PLATFORM_SCHEMA: the keys marked vol.Required) plus what we promise on every entity.
REQUIRED = {
    "notify": {"command_topic"},
    "select": {"command_topic", "options"},
    "number": {"command_topic"},
    "sensor": {"state_topic"},
    "binary_sensor": {"state_topic"},
    "button": {"command_topic"},
    "switch": {"command_topic"},
}
TOPIC_KEYS = ("command_topic", "state_topic", "json_attributes_topic")


def check_discovery(topic: str, payload: dict[str, Any], discovery_prefix: str, node_id: str) -> str:
    """Assert one config is what Home Assistant accepts; return its component."""
    parts = topic.split("/")
    assert len(parts) == 5 and "/".join(parts[:-4]) == discovery_prefix and parts[-1] == "config", topic
    component, node, object_id = parts[1], parts[2], parts[3]
    assert component in REQUIRED, topic
    assert node == node_id and ASCII_ID.match(node) and ASCII_ID.match(object_id), topic
    missing = REQUIRED[component] - set(payload)
    assert not missing, f"{topic}: missing {missing}"
    assert isinstance(payload.get("unique_id"), str) and payload["unique_id"], topic
    dev = payload.get("device")
    assert isinstance(dev, dict) and dev.get("identifiers") and dev.get("name"), topic
    assert {"manufacturer", "model", "sw_version"} <= set(dev), topic
    assert payload.get("o", {}).get("name") == "announcer" and payload["o"].get("sw") == __version__
    avail = payload.get("availability")
    assert isinstance(avail, list) and avail and avail[0]["topic"].endswith("/availability"), topic
    assert avail[0]["payload_available"] == "online" and avail[0]["payload_not_available"] == "offline"
    for key in TOPIC_KEYS:
        if key in payload:
            assert isinstance(payload[key], str) and "#" not in payload[key] and "+" not in payload[key]
    if component == "select":
        assert payload["options"] and all(isinstance(o, str) for o in payload["options"])
    if component == "number":
        assert payload["min"] < payload["max"] and payload["step"] > 0
    if component in ("notify", "select", "number", "button"):
        assert payload.get("qos") == 1, f"{topic}: commands must be QoS 1"
    assert payload["default_entity_id"].startswith(f"{component}.")
    assert re.match(r"^[a-z0-9_]+$", payload["default_entity_id"].split(".", 1)[1])
    return component


# ---------------------------------------------------------------------------- pure functions
def config_text(zones: str = "ward-3: {speakers: [a, b], name: 三号病房}\n  lobby-all: [a]") -> str:
    return f"""
mqtt: {{topic_prefix: hosp}}
speakers:
  a: {{type: file, directory: /tmp/a, name: 大厅}}
  b: {{type: file, directory: /tmp/b}}
zones:
  {zones}
homeassistant: {{discovery_prefix: hass, node_id: floor-2}}
"""


def test_discovery_payloads_have_what_home_assistant_requires() -> None:
    cfg = parse_config(config_text())
    ents = ha.entities(cfg, __version__, "https://example.org/announcer")
    components = [check_discovery(e.topic, e.payload, "hass", "floor-2") for e in ents]
    assert sorted(components) == sorted(
        ["notify", "notify", "notify", "select", "number", "sensor", "sensor", "binary_sensor", "button"]
    )
    assert len({e.payload["unique_id"] for e in ents}) == len(ents)
    assert len({e.topic for e in ents}) == len(ents)
    assert len({json.dumps(e.payload["device"], sort_keys=True) for e in ents}) == 1  # one device
    by_id = {e.object_id: e.payload for e in ents}
    # the notify entities: default targets and one per zone; Chinese names are names, ids stay ASCII
    assert by_id["say"]["command_topic"] == "hosp/say"
    assert by_id["zone_ward-3"]["command_topic"] == "hosp/say/ward-3"
    assert by_id["zone_ward-3"]["name"] == "三号病房"
    assert by_id["zone_lobby-all"]["name"] == "lobby-all"
    assert by_id["zone_ward-3"]["default_entity_id"] == "notify.floor_2_zone_ward_3"
    assert by_id["emotion"]["options"] == list(EMOTIONS)
    assert (by_id["emotion"]["command_topic"], by_id["emotion"]["state_topic"]) == (
        "hosp/set/emotion",
        "hosp/state/emotion",
    )
    assert (by_id["volume"]["min"], by_id["volume"]["max"], by_id["volume"]["step"]) == (0, 100, 5)
    assert by_id["queue"]["state_topic"] == "hosp/status"
    assert by_id["queue"]["value_template"] == "{{ value_json.queue }}"
    assert by_id["speaking"]["value_template"] == "{{ 'ON' if value_json.speaking else 'OFF' }}"
    assert by_id["last"]["state_topic"] == "hosp/state/last"
    assert by_id["stop"]["command_topic"] == "hosp/stop"
    assert json.loads(by_id["stop"]["payload_press"]) == {}  # a payload P/stop accepts
    assert by_id["say"]["o"]["url"] == "https://example.org/announcer"
    assert "url" not in ha.entities(cfg, __version__)[0].payload["o"]


def test_schedules_get_a_next_firing_sensor_and_a_pause_switch_each() -> None:
    from announcer.schedule.calendar import Firing
    from announcer.schedule.runner import Upcoming

    cfg = parse_config(
        config_text() + "schedules:\n  shift-bell: {cron: '0 8 * * 1-5', text: x}\n  noon: {at: ['12:00'], text: y}\n"
    )
    ents = {e.object_id: e for e in ha.entities(cfg, __version__)}
    for e in ents.values():
        check_discovery(e.topic, e.payload, "hass", "floor-2")
    sensor = ents["next_schedule"].payload
    assert (sensor["state_topic"], sensor["device_class"]) == ("hosp/state/schedules", "timestamp")
    switch = ents["schedule_shift-bell"].payload
    assert ents["schedule_shift-bell"].topic == "hass/switch/floor-2/schedule_shift-bell/config"
    assert (switch["command_topic"], switch["state_topic"]) == (
        "hosp/set/schedule/shift-bell",
        "hosp/state/schedule/shift-bell",
    )
    assert (switch["payload_on"], switch["payload_off"], switch["name"]) == ("ON", "OFF", "Schedule shift-bell")
    assert "next_schedule" not in {e.object_id for e in ha.entities(parse_config(config_text()), __version__)}
    bell = Firing(1_750_000_000.0, "shift-bell", datetime(2025, 6, 15, 8, 0))
    noon = Firing(1_749_990_000.0, "noon", datetime(2025, 6, 15, 12, 0))
    state = ha.schedules_state([Upcoming("shift-bell", bell, False), Upcoming("noon", noon, True)])
    assert state["next"] == "2025-06-15T15:06:40+00:00" and state["next_schedule"] == "shift-bell"  # noon is paused
    assert state["schedules"]["noon"] == {"next": "2025-06-15T12:20:00+00:00", "next_id": "noon-2025-06-15T1200",
                                          "paused": True}  # fmt: skip
    assert ha.parse_switch_command(b" on\n") is True and ha.parse_switch_command(b"OFF") is False
    with pytest.raises(ValueError, match="is not ON or OFF"):
        ha.parse_switch_command(b"pause")


def test_a_site_is_one_device_and_a_pair_shows_its_leader() -> None:
    """A site's daemon is the site's device; its commands go to the fleet's topics for that site
    (which reach it on its own broker and, through the bridge, from the centre)."""
    text = config_text().replace("homeassistant: {discovery_prefix: hass, node_id: floor-2}", "")
    cfg = parse_config(text + "site: {name: b3, display: 三号楼}\nhomeassistant: {discovery_prefix: hass}\n")
    ents = ha.entities(cfg, __version__)
    for e in ents:
        check_discovery(e.topic, e.payload, "hass", "b3")  # the node id is the site's
    by_id = {e.object_id: e.payload for e in ents}
    assert by_id["say"]["device"]["name"] == "三号楼" and by_id["say"]["unique_id"] == "announcer_b3_say"
    assert by_id["say"]["command_topic"] == "announcer-fleet/say/b3"
    assert by_id["zone_ward-3"]["command_topic"] == "announcer-fleet/say/b3/ward-3"
    assert by_id["stop"]["command_topic"] == "announcer-fleet/stop/b3"
    assert by_id["queue"]["state_topic"] == "hosp/status" and "leader" not in by_id
    assert by_id["say"]["availability"][0]["topic"] == "hosp/availability"
    # an explicit node id wins over the site's name
    own = parse_config(text + "site: {name: b3}\nhomeassistant: {discovery_prefix: hass, node_id: floor-2}\n")
    assert ha.entities(own, __version__)[0].topic == "hass/notify/floor-2/say/config"
    # the two members of a pair publish the same device: available while either is; who leads
    pair = "site: {name: b3}\nhomeassistant: {discovery_prefix: hass}\npair: {peer: b3-b}\n"
    members = [
        ha.entities(
            parse_config(
                text.replace("{topic_prefix: hosp}", f"{{topic_prefix: hosp, client_id: {me}}}")
                + pair.replace("b3-b", peer)
            ),
            __version__,
        )  # fmt: skip
        for me, peer in (("b3-a", "b3-b"), ("b3-b", "b3-a"))
    ]
    assert [e.payload for e in members[0]] == [e.payload for e in members[1]]
    leader = {e.object_id: e.payload for e in members[0]}["leader"]
    assert leader["state_topic"] == "hosp/status" and "value_json.pair.leader" in leader["value_template"]
    assert leader["availability_mode"] == "any"
    assert [a["topic"] for a in leader["availability"]] == [
        "hosp/pair/b3-a/availability",
        "hosp/pair/b3-b/availability",
    ]


def test_non_ascii_ids_become_ascii() -> None:
    assert ha.ascii_id("病房 3/b") == "___3_b"
    assert ha.entity_slug("Floor-2_x") == "floor_2_x"


def test_removed_zone_topics() -> None:
    before = [e.topic for e in ha.entities(parse_config(config_text()), "1")]
    after = [e.topic for e in ha.entities(parse_config(config_text("lobby-all: [a]")), "1")]
    assert ha.removed_topics(before, after) == ["hass/notify/floor-2/zone_ward-3/config"]
    assert ha.removed_topics(after, before) == []


def test_volume_command() -> None:
    assert ha.parse_volume_command(b"55") == pytest.approx(0.55)
    assert ha.parse_volume_command(b" 100.0 ") == 1.0
    for bad in (b"loud", b"-5", b"101", b""):
        with pytest.raises(ValueError, match="volume"):
            ha.parse_volume_command(bad)
    assert ha.volume_percent(0.55) == 55 and ha.volume_percent(0.125) == 12.5


def test_zone_display_name_errors() -> None:
    with pytest.raises(Exception, match="zone_names.nope: not a zone"):
        parse_config(config_text() + "zone_names: {nope: x}\n")


def test_settings_persist_atomically(tmp_path: Path) -> None:
    path = settings_path(tmp_path / "spool.sqlite3")
    s = RuntimeSettings(path)
    assert (s.emotion, s.volume, s.ha_config_topics, s.field_defaults()) == (None, 1.0, [], {})
    assert s.set_emotion("难过") == "sad"
    s.set_volume(0.35)
    s.set_ha_config_topics(["b", "a", "a"])
    again = RuntimeSettings(path)
    assert (again.emotion, again.volume, again.ha_config_topics) == ("sad", 0.35, ["a", "b"])
    assert again.field_defaults() == {"emotion": "sad"}
    assert [p.name for p in tmp_path.iterdir()] == ["settings.json"]  # no temp file left behind
    with pytest.raises(ValueError, match="allowed: neutral"):
        s.set_emotion("bored")
    with pytest.raises(ValueError, match="out of range"):
        s.set_volume(1.5)
    assert RuntimeSettings(path).emotion == "sad"


def test_settings_survive_a_broken_file(tmp_path: Path) -> None:
    path = tmp_path / "settings.json"
    path.write_text("{not json", encoding="utf-8")
    s = RuntimeSettings(path)
    assert (s.emotion, s.volume) == (None, 1.0)
    s.set_volume(0.5)
    assert json.loads(path.read_text(encoding="utf-8"))["volume"] == 0.5
    path.write_text(json.dumps({"emotion": "bored", "volume": 7, "ha_config_topics": "x"}), encoding="utf-8")
    assert (RuntimeSettings(path).emotion, RuntimeSettings(path).volume) == (None, 1.0)


# ---------------------------------------------------------------------------- the daemon, end to end
ZONES = {"files": {"speakers": ["a", "b"], "name": "文件区"}, "all": ["a", "b", "m"]}


DISCOVERY_PREFIX = f"hass-{uuid.uuid4().hex[:6]}"  # of this module's daemon


@pytest.fixture(scope="module")
def daemon(
    shared_broker: Broker, tmp_path_factory: pytest.TempPathFactory, announcer_cache: Path
) -> Iterator[DaemonProc]:
    yield from module_daemon(
        shared_broker,
        tmp_path_factory.mktemp("daemon-ha"),
        announcer_cache,
        config={
            "zones": ZONES,
            "homeassistant": {"enabled": True, "discovery_prefix": DISCOVERY_PREFIX, "node_id": "test-node"},
        },
    )


def say_and_wait(
    client: TestClient, daemon: DaemonProc, events: Events, payload: dict[str, Any], topic: str = "say"
) -> np.ndarray:
    client.publish_json(daemon.topic(topic), payload)
    ev = events.wait(payload["id"], "finished", "a", timeout=60)
    assert ev["speaker"] == "a"
    return read_wav(daemon.wav("a", payload["id"])).samples


def set_and_confirm(client: TestClient, daemon: DaemonProc, what: str, value: str) -> None:
    state = client.collect(daemon.topic("state", what))
    client.publish(daemon.topic("set", what), value)
    state.wait_for(lambda m: m.text() == value and not m.retain, timeout=10)


def test_discovery_after_home_assistant_comes_online(shared_broker: Broker, daemon: DaemonProc) -> None:
    everything = shared_broker.client().collect("#")
    everything.clear()
    shared_broker.client().publish(f"{DISCOVERY_PREFIX}/status", "online")
    config_topic = re.compile(rf"^{re.escape(DISCOVERY_PREFIX)}/[a-z_]+/test-node/[^/]+/config$")
    everything.wait_for(lambda m: m.topic == daemon.topic("status") and not m.retain, timeout=10)
    msgs = [
        m
        for m in everything.snapshot()
        if not m.retain and (config_topic.match(m.topic) or m.topic.startswith(daemon.prefix + "/"))
    ]
    configs = [m for m in msgs if config_topic.match(m.topic)]
    components = [check_discovery(m.topic, json.loads(m.payload), DISCOVERY_PREFIX, "test-node") for m in configs]
    assert sorted(components) == sorted(
        ["notify"] * 3 + ["select", "number", "sensor", "sensor", "binary_sensor", "button"]
    )
    assert all(m.qos == 1 for m in configs)
    by_topic = {m.topic: json.loads(m.payload) for m in configs}
    zone = by_topic[f"{DISCOVERY_PREFIX}/notify/test-node/zone_files/config"]
    assert zone["name"] == "文件区" and zone["command_topic"] == daemon.topic("say", "files")
    # configs first, then the states
    order = [m.topic for m in msgs]
    last_config = max(i for i, t in enumerate(order) if config_topic.match(t))
    for state in ("state/emotion", "state/volume", "status"):
        assert order.index(daemon.topic(*state.split("/"))) > last_config, order
    # and a late subscriber (Home Assistant restarting) finds every config retained
    late = shared_broker.client().collect(f"{DISCOVERY_PREFIX}/#")
    assert len(late.wait_count(9, timeout=5)) == 9 and all(m.retain for m in late)


def test_notify_entity_plain_text_is_spoken_on_its_zone(client: TestClient, daemon: DaemonProc, events: Events) -> None:
    # what HA's notify.send_message publishes: the bare message text at QoS 1
    last = client.collect(daemon.topic("state", "last"))
    client.publish(daemon.topic("say", "files"), "前门有人按门铃。")
    queued = events.wait(None, "queued")
    assert queued["targets"] == ["files"]
    events.wait(queued["id"], "finished", "a", timeout=60)
    events.wait(queued["id"], "finished", "b", timeout=60)
    m = last.wait_for(lambda m: m.json()["id"] == queued["id"] and m.json()["state"] == "finished", timeout=10)
    assert m.json()["text"] == "前门有人按门铃。" and m.json()["targets"] == ["files"]


def test_stop_button_payload_is_accepted(client: TestClient, daemon: DaemonProc, events: Events) -> None:
    ann = new_id("long")
    client.publish_json(daemon.topic("say"), {"id": ann, "text": TEXT * 4, "chime": False})
    events.wait(ann, "queued")
    client.publish(daemon.topic("stop"), "{}")  # the button's payload_press
    ev = events.messages.wait_for(
        lambda m: m.json().get("id") == ann and m.json()["state"] in ("cancelled", "finished"), timeout=60
    ).json()
    assert ev["state"] == "cancelled", events.dump()


def test_emotion_select_changes_the_default_and_survives_a_restart(
    client: TestClient, daemon: DaemonProc, events: Events
) -> None:
    set_and_confirm(client, daemon, "emotion", "neutral")
    neutral = say_and_wait(client, daemon, events, {"id": new_id("neu"), "text": TEXT, "chime": False})
    set_and_confirm(client, daemon, "emotion", "sad")
    sad = say_and_wait(client, daemon, events, {"id": new_id("sad"), "text": TEXT, "chime": False})
    assert len(sad) > 1.12 * len(neutral), (len(sad), len(neutral))  # sad speaks ~1.25x slower
    explicit = say_and_wait(
        client, daemon, events, {"id": new_id("exp"), "text": TEXT, "chime": False, "emotion": "neutral"}
    )
    assert abs(len(explicit) - len(neutral)) < 0.02 * len(neutral)  # an explicit emotion still wins
    settings = json.loads((daemon.spool_path.parent / "settings.json").read_text(encoding="utf-8"))
    assert settings["emotion"] == "sad"

    assert daemon.stop() == 0
    daemon.start()
    state = client.collect(daemon.topic("state", "emotion"))
    assert state.wait_for(timeout=10).text() == "sad"
    after = say_and_wait(client, daemon, events, {"id": new_id("sad2"), "text": TEXT, "chime": False})
    assert abs(len(after) - len(sad)) < 0.02 * len(sad)
    set_and_confirm(client, daemon, "emotion", "neutral")


def test_unknown_emotion_command_is_ignored(client: TestClient, daemon: DaemonProc) -> None:
    set_and_confirm(client, daemon, "emotion", "happy")
    state = client.collect(daemon.topic("state", "emotion"))
    client.publish(daemon.topic("set", "emotion"), "bored")
    assert state.wait_for(lambda m: not m.retain, timeout=10).text() == "happy"  # the select snaps back
    deadline = time.monotonic() + 5
    while "unknown emotion 'bored'" not in daemon.log():
        assert time.monotonic() < deadline, daemon.log_tail()
        time.sleep(0.05)
    set_and_confirm(client, daemon, "emotion", "neutral")


def rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.asarray(x, np.float64) ** 2)))


def test_master_volume_scales_the_wav(client: TestClient, daemon: DaemonProc, events: Events) -> None:
    set_and_confirm(client, daemon, "volume", "100")
    full = say_and_wait(client, daemon, events, {"id": new_id("v100"), "text": TEXT})
    set_and_confirm(client, daemon, "volume", "50")
    half = say_and_wait(client, daemon, events, {"id": new_id("v50"), "text": TEXT})
    quarter = say_and_wait(client, daemon, events, {"id": new_id("v50q"), "text": TEXT, "volume": 0.5})
    assert 0.45 < rms(half) / rms(full) < 0.56, rms(half) / rms(full)
    assert 0.22 < rms(quarter) / rms(full) < 0.28  # multiplies the announcement's own volume
    assert json.loads((daemon.spool_path.parent / "settings.json").read_text(encoding="utf-8"))["volume"] == 0.5
    set_and_confirm(client, daemon, "volume", "100")


def test_removing_a_zone_removes_its_entity(shared_broker: Broker, client: TestClient, daemon: DaemonProc) -> None:
    gone = f"{DISCOVERY_PREFIX}/notify/test-node/zone_files/config"
    watch = client.collect(gone)
    assert watch.wait_for(timeout=5).payload != b""  # retained config today
    watch.clear()
    assert daemon.stop() == 0
    daemon.patch_config({"zones": {"all": ["a", "b", "m"]}})
    daemon.start()
    m = watch.wait_for(timeout=10)
    assert m.payload == b""  # the empty retained payload that deletes the entity
    late = shared_broker.client().collect(f"{DISCOVERY_PREFIX}/#")
    topics = {x.topic for x in late.wait_count(8, timeout=5)}
    late.assert_none(lambda x: x.topic == gone, within=0.5)
    assert gone not in topics and f"{DISCOVERY_PREFIX}/notify/test-node/zone_all/config" in topics
    recorded = json.loads((daemon.spool_path.parent / "settings.json").read_text(encoding="utf-8"))
    assert gone not in recorded["ha_config_topics"]
    # restore for any later test
    assert daemon.stop() == 0
    daemon.patch_config({"zones": ZONES})
    daemon.start()
