"""The daily routine end to end: the real daemon (``announcer run``), a real mosquitto, file speakers.

Templates and clips arrive over MQTT and play with their events; a schedule fires at start
(it was due a moment ago and may play within 5 minutes) exactly once, a restart included;
the history lists all of it with its sources (``announcer history``, JSON and CSV); Home
Assistant gets a next-firing sensor and a switch per schedule whose pause persists; a reload
adds a schedule; ``announcer schedules`` lists the next firings.
"""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
import soundfile as sf
from broker import Broker, TestClient, properties
from daemon_proc import DaemonProc, Events, _idle_between_tests, module_daemon, new_id  # noqa: F401
from routine_stack import BELL

pytestmark = pytest.mark.timeout(240)

DISCOVERY_PREFIX = f"hass-{uuid.uuid4().hex[:6]}"
BELL_SECONDS = sf.info(str(BELL)).duration


class Times:
    """Set when the daemon starts: a schedule whose time just came (it fires as the daemon starts) and one later."""

    now = datetime.now(timezone.utc)

    @classmethod
    def reset(cls) -> None:
        cls.now = datetime.now(timezone.utc)

    @classmethod
    def due(cls) -> str:
        return cls.now.strftime("%H:%M")

    @classmethod
    def due_id(cls) -> str:
        return f"due-{cls.now:%Y-%m-%dT%H%M}"

    @classmethod
    def later(cls) -> str:
        return (cls.now + timedelta(hours=6)).strftime("%H:%M")


def routine_sections() -> str:
    DUE, LATER = Times.due(), Times.later()  # noqa: N806
    return f"""
timezone: UTC
clips: {{bell: {json.dumps(str(BELL))}}}
templates:
  code_blue: {{text: "{{ward}}号病房，蓝色警报", vars: {{ward: str}}, before: bell, after: bell, priority: emergency,
               repeat: 2, chime: false}}
schedules:
  due: {{at: ["{DUE}"], clip: bell, targets: [b], chime: false, missed: {{play_within: 300}}}}
  later: {{at: ["{LATER}"], text: "下午的提醒", targets: [a]}}
"""


@pytest.fixture(scope="module")
def daemon(
    shared_broker: Broker, tmp_path_factory: pytest.TempPathFactory, announcer_cache: Path
) -> Iterator[DaemonProc]:
    Times.reset()
    yield from module_daemon(
        shared_broker,
        tmp_path_factory.mktemp("daemon-routine"),
        announcer_cache,
        sections=routine_sections(),
        config={"homeassistant": {"enabled": True, "discovery_prefix": DISCOVERY_PREFIX, "node_id": "routine"}},
    )


def cli(daemon: DaemonProc, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "announcer", *args, "-c", str(daemon.config_path)],
        capture_output=True,
        text=True,
        timeout=60,
    )


def history(daemon: DaemonProc, *args: str) -> list[dict[str, Any]]:
    r = cli(daemon, "history", "--json", *args)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def recorded(daemon: DaemonProc, ids: list[str], timeout: float = 15.0) -> dict[str, dict[str, Any]]:
    """The history records of ``ids`` once each has its final state (the history writes a moment later)."""
    deadline = time.monotonic() + timeout
    while True:
        found = {r["id"]: r for r in history(daemon) if r["id"] in ids}
        if len(found) == len(ids) and all(r["state"] not in ("queued", "started") for r in found.values()):
            return found
        assert time.monotonic() < deadline, f"not recorded in time: {ids}; have {found}"
        time.sleep(0.2)


def test_a_due_schedule_fires_at_start_once_even_across_a_restart(daemon: DaemonProc, events: Events) -> None:
    due_id = Times.due_id()
    daemon.wait_log("schedule due: announced " + due_id)
    deadline = time.monotonic() + 30
    while due_id not in daemon.wav_files("b"):
        assert time.monotonic() < deadline, daemon.log_tail()
        time.sleep(0.05)
    assert daemon.stop() == 0
    daemon.start()
    daemon.wait_log("ready: subscribed")
    assert "schedule due: announced" not in daemon.this_run_log()
    assert [r["id"] for r in history(daemon, "--source", "schedule")] == [due_id]
    assert list(daemon.wav_files("b")).count(due_id) == 1
    record = history(daemon, "--source", "schedule")[0]
    assert record["via"] == {"schedule": "due"} and record["clips"] == ["bell"] and record["state"] == "finished"


def test_a_template_and_a_clip_play_through_mqtt(client: TestClient, daemon: DaemonProc, events: Events) -> None:
    code, bell, bad = new_id("code"), new_id("bell"), new_id("bad")
    nurse = properties(UserProperty=[("client", "nurse-station-2")])
    client.publish_json(
        daemon.topic("say", "a"), {"template": "code_blue", "vars": {"ward": "3"}, "id": code}, properties=nurse
    )
    client.publish_json(daemon.topic("say", "b"), {"clip": "bell", "id": bell, "chime": False})
    client.publish_json(daemon.topic("say"), {"template": "code_blue", "id": bad})
    queued = events.wait(code, "queued")
    assert queued["priority"] == "emergency" and queued["targets"] == ["a"]  # the template's default
    assert events.wait(code, "finished", "a", timeout=90)["speaker"] == "a"
    assert events.wait(bell, "finished", "b", timeout=30)["speaker"] == "b"
    rejected = events.wait(bad, "rejected")
    assert rejected["error"] == "vars.ward: required by template code_blue" and rejected["reason"] == "invalid"
    clip = sf.info(str(daemon.wav("b", bell)))
    assert clip.duration == pytest.approx(BELL_SECONDS + 0.25, abs=0.05)  # the bell and its gap, nothing else
    two_bells_twice = 2 * 2 * (BELL_SECONDS + 0.25)
    assert sf.info(str(daemon.wav("a", code))).duration > two_bells_twice + 2 * 1.5  # bell, speech, bell; twice

    recorded(daemon, [code, bell, bad])
    records = {r["id"]: r for r in history(daemon, "--since", Times.now.strftime("%Y-%m-%d"))}
    c = records[code]
    assert (c["source"], c["via"], c["template"], c["vars"], c["text"]) == (
        "mqtt",
        {"topic": daemon.topic("say", "a"), "client": "nurse-station-2"},
        "code_blue",
        {"ward": "3"},
        "3号病房，蓝色警报",
    )
    assert c["speaker_results"]["a"]["state"] == "finished" and c["clips"] == ["bell", "bell"]
    assert records[bell]["via"] == {"topic": daemon.topic("say", "b")} and records[bell]["clips"] == ["bell"]
    assert records[bad]["state"] == "rejected" and records[bad]["error"] == rejected["error"]
    assert [r["id"] for r in history(daemon, "--target", "b", "--source", "mqtt")] == [bell]
    r = cli(daemon, "history", "--csv", "--oldest-first", "--since", Times.now.strftime("%Y-%m-%dT%H:%M"))
    rows = list(csv.DictReader(io.StringIO(r.stdout)))
    assert [(x["id"], x["speaker"], x["speaker_state"]) for x in rows if x["id"] in (code, bell, bad)] == [
        (code, "a", "finished"),
        (bell, "b", "finished"),
        (bad, "", ""),
    ]


def test_announcer_send_names_itself_in_the_history(daemon: DaemonProc) -> None:
    r = cli(daemon, "send", "--template", "code_blue", "--var", "ward=5", "--to", "b", "--repeat", "1", "--wait")
    assert r.returncode == 0, r.stderr + daemon.log_tail()
    sent = json.loads(r.stdout)
    record = recorded(daemon, [sent["id"]])[sent["id"]]
    assert record["via"]["topic"] == daemon.topic("say", "b")
    assert record["via"]["client"].startswith("announcer send (") and record["vars"] == {"ward": "5"}
    assert record["text"] == "5号病房，蓝色警报" and record["speaker_results"]["b"]["state"] == "finished"


def test_home_assistant_sees_the_next_firing_and_pauses_a_schedule(
    shared_broker: Broker, client: TestClient, daemon: DaemonProc
) -> None:
    configs = shared_broker.client().collect(f"{DISCOVERY_PREFIX}/+/routine/+/config")
    by_id = {m.topic.split("/")[3]: m.json() for m in configs.wait_count(12, timeout=10)}
    assert {"next_schedule", "schedule_due", "schedule_later"} <= set(by_id)
    sensor, switch = by_id["next_schedule"], by_id["schedule_later"]
    assert sensor["device_class"] == "timestamp" and sensor["state_topic"] == daemon.topic("state", "schedules")
    assert switch["command_topic"] == daemon.topic("set", "schedule", "later")
    assert switch["state_topic"] == daemon.topic("state", "schedule", "later")

    state = client.collect(daemon.topic("state", "schedules"))
    later_at = datetime.fromisoformat(state.wait_for(timeout=10).json()["schedules"]["later"]["next"])
    assert later_at.strftime("%H:%M") == Times.later() and later_at > Times.now

    switch_state = client.collect(daemon.topic("state", "schedule", "later"))
    assert switch_state.wait_for(timeout=10).text() == "ON"
    client.publish(daemon.topic("set", "schedule", "later"), "OFF")
    switch_state.wait_for(lambda m: m.text() == "OFF" and not m.retain, timeout=10)
    now = state.wait_for(lambda m: m.json()["schedules"]["later"]["paused"], timeout=10).json()
    assert now["next_schedule"] != "later" or now["next"] is None
    settings = json.loads((daemon.spool_path.parent / "settings.json").read_text(encoding="utf-8"))
    assert settings["paused_schedules"] == ["later"]
    listing = cli(daemon, "schedules")
    assert listing.returncode == 0, listing.stderr
    line = next(x for x in listing.stdout.splitlines() if x.startswith("later"))
    assert f"later-{later_at:%Y-%m-%dT%H%M}" in line and "[paused]" in line
    client.publish(daemon.topic("set", "schedule", "later"), "ON")
    switch_state.wait_for(lambda m: m.text() == "ON" and not m.retain, timeout=10)


def test_a_reload_adds_a_schedule_and_its_switch(shared_broker: Broker, client: TestClient, daemon: DaemonProc) -> None:
    watch = client.collect(f"{DISCOVERY_PREFIX}/switch/routine/schedule_extra/config")
    daemon.sections = routine_sections() + '  extra: {cron: "30 4 * * 1-5", text: "早班提醒"}\n'
    daemon.rewrite()
    daemon.patch_config(
        {"homeassistant": {"enabled": True, "discovery_prefix": DISCOVERY_PREFIX, "node_id": "routine"}}
    )
    daemon.hup()
    daemon.wait_log("reload: applied")
    assert watch.wait_for(timeout=10).json()["command_topic"] == daemon.topic("set", "schedule", "extra")
    state = client.collect(daemon.topic("state", "schedules"))
    assert "extra" in state.wait_for(lambda m: "extra" in m.json()["schedules"], timeout=10).json()["schedules"]
    listing = cli(daemon, "schedules", "--count", "2").stdout
    assert sum(1 for x in listing.splitlines() if "extra-" in x) == 2 and "(cron 30 4 * * 1-5)" in listing
