"""End to end: the daemon's life: availability, clean and hard stops, broker restarts, rate limit.

Each test has its own broker (``broker``: free to restart) and its own daemon(s) on a
spool in ``tmp_path``. Events are read through ``EventLog`` (a persistent session), so
nothing the daemon publishes while the test's subscriber is cut off is missed, and a
duplicate in the log is one the daemon really sent.

Counting rule after a crash (the contract: nothing accepted is lost, nothing played
twice except the one cut off, replayed from its start): an announcement counts as
played on a speaker by its ``finished`` event, or, when that event died with the
process (paho had it queued, not yet sent), by its WAV written before the kill; the
spool must close every announcement as ``finished``.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from broker import Broker
from daemon_proc import DaemonProc, EventLog, Events, new_id, unique_text  # noqa: F401

from announcer import __version__
from announcer.spool.store import Spool

pytestmark = pytest.mark.timeout(150)

SHORT = "请注意。"


@pytest.fixture
def event_logs() -> Iterator[list[EventLog]]:
    made: list[EventLog] = []
    yield made
    for log in made:
        log.close()


def event_log(broker: Broker, daemon: DaemonProc, made: list[EventLog]) -> Events:
    log = EventLog(broker, daemon.topic("events"))
    made.append(log)
    return Events(log.messages)


def availability_log(broker: Broker, daemon: DaemonProc, made: list[EventLog]) -> EventLog:
    """``P/availability`` on a persistent session: the daemon's live ``online`` after a broker restart."""
    log = EventLog(broker, daemon.topic("availability"), dedupe=False)
    made.append(log)
    return log


def assert_clean_log(daemon: DaemonProc) -> None:
    text = daemon.log()
    assert "Traceback" not in text, daemon.log_tail(80)


def test_availability_status_and_clean_stop(
    broker: Broker, tmp_path: Path, announcer_cache: Path, event_logs: list[EventLog]
) -> None:
    d = DaemonProc(broker, tmp_path / "d", announcer_cache)
    events = event_log(broker, d, event_logs)
    d.start()
    avail = broker.client().collect(d.topic("availability")).wait_for(timeout=5)
    assert (avail.payload, avail.retain) == (b"online", True)
    status = broker.client().collect(d.topic("status")).wait_for(timeout=5)
    assert status.retain and status.json() == {"state": "online", "version": __version__, "queue": 0, "speaking": []}

    # SIGTERM: exit 0, offline (retained), status says offline
    assert d.stop() == 0, d.log_tail()
    avail = broker.client().collect(d.topic("availability")).wait_for(timeout=5)
    assert (avail.payload, avail.retain) == (b"offline", True)
    status = broker.client().collect(d.topic("status")).wait_for(timeout=5)
    assert status.json()["state"] == "offline" and status.json()["version"] == __version__

    # published while it is down (QoS 1, persistent session): played after the restart
    pub = broker.client()
    waiting = [new_id("while-down") for _ in range(2)]
    for ann_id in waiting:
        pub.publish_json(d.topic("say"), {"id": ann_id, "text": SHORT, "chime": False})
    d.start()
    done = events.wait_done(waiting, ("a",), timeout=30)
    assert all(done[(i, "a")]["state"] == "finished" for i in waiting), events.dump()
    assert all(d.wav("a", i).is_file() for i in waiting)

    # SIGKILL: the broker publishes the last will
    live = broker.client().collect(d.topic("availability"))
    assert d.kill() == -9
    will = live.wait_for(lambda m: m.payload == b"offline", 10)
    assert will.payload == b"offline"
    late = broker.client().collect(d.topic("availability")).wait_for(timeout=5)
    assert (late.payload, late.retain) == (b"offline", True)
    assert_clean_log(d)


def test_broker_restart_during_a_queue(
    broker: Broker, tmp_path: Path, announcer_cache: Path, event_logs: list[EventLog]
) -> None:
    d = DaemonProc(broker, tmp_path / "d", announcer_cache)
    events = event_log(broker, d, event_logs)
    d.start()
    pub = broker.client()
    before = [new_id("before") for _ in range(4)]
    pub.publish_json(d.topic("say"), {"id": before[0], "text": unique_text(6), "chime": False})
    for ann_id in before[1:]:
        pub.publish_json(d.topic("say"), {"id": ann_id, "text": unique_text(1), "chime": False})
    events.wait(before[-1], "queued", timeout=10)
    avail = availability_log(broker, d, event_logs)
    n = len(avail.messages)
    broker.restart()
    avail.wait_live(b"online", after=n)  # the daemon is back and subscribed
    pub = broker.client()
    after = [new_id("after") for _ in range(3)]
    for ann_id in after:
        pub.publish_json(d.topic("say"), {"id": ann_id, "text": unique_text(1), "chime": False})
    ids = before + after
    done = events.wait_done(ids, ("a",), timeout=60)
    time.sleep(1.0)  # let any duplicate arrive
    assert all(done[(i, "a")]["state"] == "finished" for i in ids), events.dump()
    for ann_id in ids:
        assert len(events.all(ann_id, "finished")) == 1, events.dump()
        assert len(events.all(ann_id, "queued")) == 1, events.dump()
        assert d.wav("a", ann_id).is_file()
    assert events.all(state="rejected") == [], events.dump()
    assert d.stop() == 0
    assert_clean_log(d)


def test_sigkill_mid_queue_then_restart_loses_nothing_and_replays_at_most_the_cut_one(
    broker: Broker, tmp_path: Path, announcer_cache: Path, event_logs: list[EventLog]
) -> None:
    d = DaemonProc(broker, tmp_path / "d", announcer_cache)
    events = event_log(broker, d, event_logs)
    d.start()
    pub = broker.client()
    batch = [new_id(f"k{i}") for i in range(8)]
    for ann_id in batch:
        pub.publish_json(d.topic("say"), {"id": ann_id, "text": unique_text(2), "targets": "files", "chime": False})
    # kill -9 once two are done everywhere: the rest are queued or being synthesized
    deadline = time.monotonic() + 30
    while len({e["id"] for e in events.all(state="finished", speaker="b")}) < 2:
        assert time.monotonic() < deadline, events.dump()
        time.sleep(0.01)
    assert d.kill() == -9
    killed_at = time.time()
    run1 = {(e["id"], e["speaker"]) for e in events.all(state="finished")}
    assert len({i for i, _ in run1}) < len(batch), "everything finished before the kill: nothing tested"

    # published while the daemon is dead: kept by the broker in its persistent session
    down = [new_id("down") for _ in range(2)]
    for ann_id in down:
        pub.publish_json(d.topic("say"), {"id": ann_id, "text": SHORT, "targets": "files", "chime": False})
    time.sleep(0.5)  # let run-1 events still in flight arrive before counting the second run
    n_run1_msgs = len(events.messages)
    d.start()
    ids = batch + down
    done = events.wait_done(ids, ("a", "b"), timeout=90)
    time.sleep(0.5)
    assert d.stop() == 0, d.log_tail()

    run2_events = [m.json() for m in events.messages.snapshot()[n_run1_msgs:]]
    resumed = {e["id"] for e in run2_events if e["state"] == "queued" and e.get("resumed")}
    replayed = set()
    for ann_id in ids:
        for spk in ("a", "b"):
            assert done[(ann_id, spk)]["state"] == "finished", events.dump()
            finished = events.all(ann_id, "finished", spk)
            if not finished:  # the event died with the process: the WAV proves it played before the kill
                wav = d.wav(spk, ann_id)
                assert wav.is_file() and wav.stat().st_mtime < killed_at, (ann_id, spk, events.dump())
            if len(finished) > 1:
                replayed.add(ann_id)
            assert len(finished) <= 2, events.dump()
    assert len(replayed) <= 1, f"played twice: {replayed}\n{events.dump()}"
    # what was reported finished in run 1 was not played again (but the one cut off)
    again = {
        (i, s)
        for i, s in run1
        if any(e["id"] == i and e.get("speaker") == s and e["state"] == "started" for e in run2_events)
    }
    assert len({i for i, _ in again}) <= 1, f"{again}\n{events.dump()}"
    assert resumed, "the second run resumed nothing from the spool"
    # a speaker that reported an announcement finished before the kill is not owed it again (one
    # finished on b only still owes a, so it is resumed for a alone)
    resumed_for = {
        (e["id"], s) for e in run2_events if e["state"] == "queued" and e.get("resumed") for s in e["speakers"]
    }
    assert not resumed_for & (run1 - again), (sorted(resumed_for), sorted(run1))
    # the spool closed every announcement
    spool = Spool(d.spool_path)
    try:
        for ann_id in ids:
            assert spool.state(ann_id) == ("finished", {"a": "finished", "b": "finished"}), ann_id
    finally:
        spool.close()
    assert not [p for s in ("a", "b") for p in d.wav_dirs[s].glob(".*.tmp") if p.stat().st_mtime > killed_at]
    assert_clean_log(d)


def test_rate_limit_refuses_the_fourth_but_never_an_emergency(
    shared_broker: Broker, tmp_path: Path, announcer_cache: Path, event_logs: list[EventLog]
) -> None:
    d = DaemonProc(shared_broker, tmp_path / "d", announcer_cache, limits={"per_minute": 3})
    events = event_log(shared_broker, d, event_logs)
    d.start()
    try:
        pub = shared_broker.client()
        ids = [new_id(f"n{i}") for i in range(4)]
        for ann_id in ids:
            pub.publish_json(d.topic("say"), {"id": ann_id, "text": SHORT, "chime": False})
        alarm = new_id("alarm")
        pub.publish_json(d.topic("say"), {"id": alarm, "text": SHORT, "priority": "emergency", "chime": False})
        done = events.wait_done(ids + [alarm], ("a",), timeout=30)
        rejected = events.all(ids[3], "rejected")
        assert len(rejected) == 1 and rejected[0]["reason"] == "rate_limited", events.dump()
        assert rejected[0]["error"].startswith("limits.per_minute:")
        assert not d.wav("a", ids[3]).exists()
        assert all(done[(i, "a")]["state"] == "finished" for i in ids[:3] + [alarm]), events.dump()
        # an invalid payload is not counted (nor refused as rate limited)
        pub.publish(d.topic("say"), b'{"text": ""}')
        bad = events.messages.wait_for(
            lambda m: m.json()["state"] == "rejected" and m.json()["error"].startswith("text:"), 10
        ).json()
        assert bad["reason"] == "invalid"
    finally:
        assert d.stop() == 0, d.log_tail()


def test_retained_say_and_stop_are_not_replayed_on_every_reconnect(
    broker: Broker, tmp_path: Path, announcer_cache: Path, event_logs: list[EventLog]
) -> None:
    """A retained ``P/say`` (a common automation mistake) is delivered again on every subscribe.

    Played at each reconnect it would repeat forever; a retained ``P/stop`` would cancel
    the resumed queue at every broker restart. Only a live delivery counts.
    """
    d = DaemonProc(broker, tmp_path / "d", announcer_cache)
    events = event_log(broker, d, event_logs)
    d.start()
    pub = broker.client()
    pub.publish(d.topic("say"), "保留的广播。".encode(), retain=True)
    first = events.wait(None, "finished", "a", timeout=20)
    pub.publish(d.topic("stop"), b"", retain=True)
    time.sleep(0.3)
    # a restart of the daemon (session resumed, subscriptions renewed) and of the broker
    assert d.stop() == 0
    d.start()
    avail = availability_log(broker, d, event_logs)
    n = len(avail.messages)
    broker.restart()
    avail.wait_live(b"online", after=n)
    pub = broker.client()
    ok = new_id("after")
    pub.publish_json(d.topic("say"), {"id": ok, "text": unique_text(3), "chime": False})
    done = events.wait_done([ok], ("a",), timeout=30)
    assert done[(ok, "a")]["state"] == "finished", events.dump()
    queued = [e for e in events.all(state="queued")]
    assert [e["id"] for e in queued] == [first["id"], ok], events.dump()
    assert events.all(state="cancelled") == []
    assert d.stop() == 0


def test_redelivery_of_a_spooled_message_is_not_a_duplicate(
    broker: Broker, tmp_path: Path, announcer_cache: Path, event_logs: list[EventLog]
) -> None:
    """Crash after the spool commit, before the PUBACK: the broker redelivers (DUP) what is spooled.

    Simulated exactly: the message waits in the daemon's session; a stand-in with the
    daemon's client id receives it without acknowledging; the announcement is committed
    to the daemon's spool as the daemon would have. On start the daemon resumes it from
    the spool and gets the redelivery: that must not produce a ``rejected`` event (which
    ends ``announcer send --wait`` with exit 1 for an announcement that plays).
    """
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion
    from paho.mqtt.packettypes import PacketTypes
    from paho.mqtt.properties import Properties

    from announcer.config import load_config
    from announcer.intake.parse import parse

    d = DaemonProc(broker, tmp_path / "d", announcer_cache)
    events = event_log(broker, d, event_logs)
    d.start()
    assert d.stop() == 0  # the broker now holds the daemon's session
    ann_id = new_id("redelivered")
    payload = f'{{"id": "{ann_id}", "text": "{SHORT}", "chime": false}}'.encode()
    broker.client().publish(d.topic("say"), payload)

    got: list[mqtt.MQTTMessage] = []
    stand_in = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=d.client_id, protocol=mqtt.MQTTv5, manual_ack=True)
    stand_in.on_message = lambda _c, _u, msg: got.append(msg)
    props = Properties(PacketTypes.CONNECT)
    props.SessionExpiryInterval = 86400
    stand_in.connect(broker.host, broker.port, clean_start=False, properties=props)
    stand_in.loop_start()
    deadline = time.monotonic() + 10
    while not got:
        assert time.monotonic() < deadline, "the session did not deliver the message"
        time.sleep(0.02)
    cfg = load_config(d.config_path)
    spool = Spool(d.spool_path)
    assert spool.add(parse(got[0].payload, cfg))
    spool.close()
    stand_in.disconnect()  # no PUBACK: the broker redelivers with DUP
    stand_in.loop_stop()

    d.start()
    events.wait(ann_id, "finished", "a", timeout=20)
    time.sleep(1.0)
    assert [e["state"] for e in events.all(ann_id)] == ["queued", "started", "finished"], events.dump()
    assert d.stop() == 0
    assert "redeliver" in d.log(), d.log_tail()
