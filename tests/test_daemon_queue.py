"""End to end: what the daemon refuses, and how it orders, expires, deduplicates and stops.

One daemon serves this module (see ``daemon_proc``). File speakers are not real time
(the whole WAV is written at once), so a queue only forms while something is being
*synthesized*: a speaker is "playing" from the moment it takes a job until the last
clause is rendered and written. ``blocker()`` therefore publishes a long text whose
clauses are never in the cache (~2 s of synthesis), waits for its ``started`` and only
then publishes the batch under test; every test checks that the batch was queued
before the blocker finished, so a machine that synthesizes much faster fails loudly
instead of passing by accident.

Emergency interruption is observable the same way: an emergency that arrives while the
blocker is still being synthesized aborts it (``interrupted``), plays, and the blocker
is replayed from its start (``started`` with ``replay: true``) and finishes.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from broker import Broker, TestClient, properties
from daemon_proc import DaemonProc, Events, _idle_between_tests, module_daemon, new_id, unique_text  # noqa: F401

pytestmark = pytest.mark.timeout(120)

SHORT = "请注意。"
BLOCKER_UNITS = 10


@pytest.fixture(scope="module")
def daemon(
    shared_broker: Broker, tmp_path_factory: pytest.TempPathFactory, announcer_cache: Path
) -> Iterator[DaemonProc]:
    yield from module_daemon(shared_broker, tmp_path_factory.mktemp("daemon-queue"), announcer_cache)


def blocker(
    client: TestClient,
    daemon: DaemonProc,
    events: Events,
    target: str = "a",
    speaker: str = "a",
    priority: str = "normal",
) -> str:
    """Publish a long uncached announcement and wait until ``speaker`` has taken it."""
    ann_id = new_id("blocker")
    client.publish_json(
        daemon.topic("say"),
        {"id": ann_id, "text": unique_text(BLOCKER_UNITS), "targets": target, "priority": priority, "chime": False},
    )
    events.wait(ann_id, "started", speaker, timeout=20)
    return ann_id


def assert_queued_behind(events: Events, blocker_id: str, ids: list[str], speaker: str = "a") -> None:
    """Every id was queued before the blocker ended on ``speaker`` (else the test proves nothing)."""
    msgs = [m.json() for m in events.messages]
    end = next(
        (
            i
            for i, e in enumerate(msgs)
            if e["id"] == blocker_id
            and e.get("speaker") == speaker
            and e["state"] in ("finished", "interrupted", "cancelled")
        ),
        len(msgs),
    )
    queued_at = {e["id"]: i for i, e in enumerate(msgs) if e["state"] in ("queued", "rejected")}
    late = [i for i in ids if queued_at.get(i, len(msgs)) > end]
    assert not late, (
        f"{late} were queued after the blocker ended on {speaker}: synthesis too fast for this "
        f"test (raise BLOCKER_UNITS)\n  {events.dump()}"
    )


# ---------------------------------------------------------------------------- rejections
LONG_TEXT = "请" * 401  # limits.max_text_chars is 400 in the generated config

REJECTIONS: list[tuple[str, str, bytes, str, str]] = [
    # (case, topic suffix, payload, field named first in "error", reason)
    ("not utf-8", "say", b"\xff\xfe\xfa hello", "payload", "invalid"),
    ("bad json", "say", b'{"text": "hello",', "payload", "invalid"),
    ("json with trailing garbage", "say", b'{"text": "hello"} {', "payload", "invalid"),
    ("missing text", "say", b'{"id": "no-text-here"}', "text", "invalid"),
    ("empty text", "say", b'{"text": "   "}', "text", "invalid"),
    ("empty plain payload", "say", b"  \n ", "text", "invalid"),
    ("text is a number", "say", b'{"text": 42}', "text", "invalid"),
    ("speed is a string", "say", b'{"text": "hello", "speed": "fast"}', "speed", "invalid"),
    ("targets is a number", "say", b'{"text": "hello", "targets": 3}', "targets", "invalid"),
    ("speed 3", "say", b'{"text": "hello", "speed": 3}', "speed", "invalid"),
    ("intensity -1", "say", b'{"text": "hello", "intensity": -1}', "intensity", "invalid"),
    ("volume 2", "say", b'{"text": "hello", "volume": 2}', "volume", "invalid"),
    ("repeat 11", "say", b'{"text": "hello", "repeat": 11}', "repeat", "invalid"),
    ("repeat 1.5", "say", b'{"text": "hello", "repeat": 1.5}', "repeat", "invalid"),
    ("repeat_gap 61", "say", b'{"text": "hello", "repeat_gap": 61}', "repeat_gap", "invalid"),
    ("ttl 0", "say", b'{"text": "hello", "ttl": 0}', "ttl", "invalid"),
    ("unknown target in payload", "say", b'{"text": "hello", "targets": ["a", "nope"]}', "targets", "invalid"),
    ("unknown target in topic", "say/nope", b"hello", "targets", "invalid"),
    ("unknown priority", "say", b'{"text": "hello", "priority": "urgent"}', "priority", "invalid"),
    ("bad id", "say", b'{"text": "hello", "id": "bad id!"}', "id", "invalid"),
    ("id too long", "say", b'{"text": "hello", "id": "' + b"x" * 65 + b'"}', "id", "invalid"),
    ("unknown engine", "say", b'{"text": "hello", "engine": "nope"}', "engine", "invalid"),
    ("oversize payload", "say", b"a" * 5000, "payload", "oversize"),
    ("too-long text", "say", LONG_TEXT.encode(), "text", "oversize"),
]


def test_every_invalid_payload_is_rejected_naming_the_field(
    client: TestClient, daemon: DaemonProc, events: Events
) -> None:
    before = daemon.all_wavs()
    for n, (case, suffix, payload, field, reason) in enumerate(REJECTIONS, 1):
        client.publish(daemon.topic(*suffix.split("/")), payload)
        rejected = events.messages.wait_count(n, timeout=10)[-1].json()  # one event per message, in order
        assert rejected["state"] == "rejected", f"{case}: {rejected}"
        assert rejected["error"].startswith(f"{field}:"), f"{case}: {rejected['error']!r} does not name {field}"
        assert rejected["reason"] == reason, f"{case}: {rejected}"
        assert rejected["id"] and rejected["ts"]
    # ids taken from a payload when valid, never the invalid one
    assert events.all("no-text-here", "rejected")
    assert not events.all("bad id!")
    # the "allowed" part of the message, for a few
    by_case = {c: e for (c, *_), e in zip(REJECTIONS, events.all(state="rejected"))}
    assert "allowed" in by_case["unknown priority"]["error"] and "emergency" in by_case["unknown priority"]["error"]
    assert (
        "'nope'" in by_case["unknown target in topic"]["error"]
        and "files" in by_case["unknown target in topic"]["error"]
    )
    assert "0.5" in by_case["speed 3"]["error"] and "2.0" in by_case["speed 3"]["error"]
    assert "4096" in by_case["oversize payload"]["error"]
    # nothing was queued, played or written, and the daemon still works
    assert [e for e in events.all() if e["state"] != "rejected"] == []
    assert daemon.all_wavs() == before
    good = new_id("good")
    client.publish_json(daemon.topic("say"), {"id": good, "text": SHORT, "chime": False})
    assert events.wait(good, "finished", "a")["duration_s"] > 0.3
    assert daemon.wav("a", good).is_file()


def test_unknown_emotion_plays_as_neutral_with_a_warning(
    client: TestClient, daemon: DaemonProc, events: Events
) -> None:
    ann_id = new_id("emo")
    client.publish_json(daemon.topic("say"), {"id": ann_id, "text": SHORT, "emotion": "bored", "chime": False})
    queued = events.wait(ann_id, "queued")
    assert len(queued["warnings"]) == 1 and "emotion" in queued["warnings"][0] and "bored" in queued["warnings"][0]
    events.wait(ann_id, "finished", "a")
    assert daemon.wav("a", ann_id).is_file()


# ---------------------------------------------------------------------------- order
def test_priority_order_and_fifo_within_a_priority(client: TestClient, daemon: DaemonProc, events: Events) -> None:
    first = blocker(client, daemon, events)
    batch = [
        ("low", "low-1"),
        ("normal", "normal-1"),
        ("high", "high-1"),
        ("normal", "normal-2"),
        ("low", "low-2"),
        ("high", "high-2"),
        ("normal", "normal-3"),
    ]
    ids = {name: new_id(name) for _, name in batch}
    for priority, name in batch:
        client.publish_json(daemon.topic("say"), {"id": ids[name], "text": SHORT, "priority": priority, "chime": False})
    events.wait_done([first, *ids.values()], ("a",))
    assert_queued_behind(events, first, list(ids.values()))
    expected = [first] + [ids[n] for n in ("high-1", "high-2", "normal-1", "normal-2", "normal-3", "low-1", "low-2")]
    assert events.order("started", "a", [first, *ids.values()]) == expected, events.dump()
    assert events.order("finished", "a", [first, *ids.values()]) == expected


def test_emergency_interrupts_and_the_interrupted_one_replays(
    client: TestClient, daemon: DaemonProc, events: Events
) -> None:
    first = blocker(client, daemon, events)
    queued = new_id("normal")
    client.publish_json(daemon.topic("say"), {"id": queued, "text": SHORT, "chime": False})
    alarm = new_id("alarm")
    client.publish_json(daemon.topic("say"), {"id": alarm, "text": "火警，请撤离。", "priority": "emergency"})
    events.wait_done([first, queued, alarm], ("a",))
    on_a = [(e["id"], e["state"], e.get("replay")) for e in events.all(speaker="a")]
    assert on_a == [
        (first, "started", None),
        (first, "interrupted", None),
        (alarm, "started", None),
        (alarm, "finished", None),
        (first, "started", True),
        (first, "finished", None),  # back first: it keeps its place
        (queued, "started", None),
        (queued, "finished", None),
    ], events.dump()
    # the replay is complete: the whole text, not the part after the interruption
    duration = events.all(first, "finished", "a")[0]["duration_s"]
    assert duration > BLOCKER_UNITS * 3.0
    assert daemon.wav("a", first).is_file() and daemon.wav("a", alarm).is_file()


# ---------------------------------------------------------------------------- expiry
def test_ttl_and_message_expiry_expire_queued_announcements(
    client: TestClient, daemon: DaemonProc, events: Events
) -> None:
    first = blocker(client, daemon, events)
    by_ttl, by_expiry, fine = new_id("ttl"), new_id("expiry"), new_id("fine")
    client.publish_json(daemon.topic("say"), {"id": by_ttl, "text": SHORT, "ttl": 0.5})
    client.publish_json(
        daemon.topic("say"), {"id": by_expiry, "text": SHORT}, properties=properties(MessageExpiryInterval=1)
    )
    client.publish_json(
        daemon.topic("say"), {"id": fine, "text": SHORT, "ttl": 120}, properties=properties(MessageExpiryInterval=120)
    )
    done = events.wait_done([first, by_ttl, by_expiry, fine], ("a",))
    assert_queued_behind(events, first, [by_ttl, by_expiry, fine])
    states = {i: done[(i, "a")]["state"] for i in (first, by_ttl, by_expiry, fine)}
    assert states == {first: "finished", by_ttl: "expired", by_expiry: "expired", fine: "finished"}, events.dump()
    for gone in (by_ttl, by_expiry):
        assert not events.all(gone, "started"), events.dump()
        assert not daemon.wav("a", gone).exists()
    # expired on time (the sweep), not only when the speaker got to it
    t_expired = [
        m.json()["ts"] for m in events.messages if m.json()["id"] == by_ttl and m.json()["state"] == "expired"
    ][0]
    t_done = events.all(first, "finished", "a")[0]["ts"]
    assert t_expired < t_done, events.dump()


# ---------------------------------------------------------------------------- duplicates
def test_duplicate_id_is_rejected_and_played_once(client: TestClient, daemon: DaemonProc, events: Events) -> None:
    ann_id = new_id("dup")
    body = {"id": ann_id, "text": SHORT, "chime": False}
    client.publish_json(daemon.topic("say"), body)
    client.publish_json(daemon.topic("say"), {**body, "text": "另一句话。"})  # same id, other text
    events.wait(ann_id, "finished", "a")
    mtime = daemon.wav("a", ann_id).stat().st_mtime_ns
    client.publish_json(daemon.topic("say", "b"), body)  # after it finished, other target: still a duplicate
    dup = events.messages.wait_for(
        lambda m: (
            m.json()["id"] == ann_id and m.json()["state"] == "rejected" and len(events.all(ann_id, "rejected")) == 2
        ),
        10,
    )
    rejected = events.all(ann_id, "rejected")
    assert len(rejected) == 2 and all(e["reason"] == "duplicate" and e["error"].startswith("id:") for e in rejected)
    assert dup is not None
    time.sleep(0.5)
    assert len(events.all(ann_id, "queued")) == 1 and len(events.all(ann_id, "finished")) == 1, events.dump()
    assert daemon.wav("a", ann_id).stat().st_mtime_ns == mtime and not daemon.wav("b", ann_id).exists()


# ---------------------------------------------------------------------------- stop
def test_stop_cancels_what_plays_and_what_waits(client: TestClient, daemon: DaemonProc, events: Events) -> None:
    first = blocker(client, daemon, events)
    waiting = [new_id("w") for _ in range(3)]
    for i in waiting:
        client.publish_json(daemon.topic("say"), {"id": i, "text": SHORT, "priority": "high"})
    events.wait(waiting[-1], "queued")
    client.publish(daemon.topic("stop"), b"")
    done = events.wait_done([first, *waiting], ("a",), timeout=20)
    assert_queued_behind(events, first, waiting)
    for i in (first, *waiting):
        assert done[(i, "a")]["state"] == "cancelled" and done[(i, "a")]["reason"] == "stopped", events.dump()
        assert not daemon.wav("a", i).exists()
    assert not any(events.all(i, "started") for i in waiting)
    after = new_id("after")  # stop is not sticky
    client.publish_json(daemon.topic("say"), {"id": after, "text": SHORT, "chime": False})
    events.wait(after, "finished", "a")


def test_stop_target_only_touches_that_target(client: TestClient, daemon: DaemonProc, events: Events) -> None:
    first = blocker(client, daemon, events, target="files", speaker="b")
    events.wait(first, "started", "a")
    on_a, on_b, on_both = new_id("on-a"), new_id("on-b"), new_id("on-both")
    client.publish_json(daemon.topic("say", "a"), {"id": on_a, "text": SHORT})
    client.publish_json(daemon.topic("say", "b"), {"id": on_b, "text": SHORT})
    client.publish_json(daemon.topic("say", "files"), {"id": on_both, "text": SHORT})
    events.wait(on_both, "queued")
    client.publish(daemon.topic("stop", "b"), b"")
    done = events.wait_done([first, on_a, on_both], ("a",)) | events.wait_done([first, on_b, on_both], ("b",))
    assert_queued_behind(events, first, [on_a, on_b, on_both], "b")
    states = {k: v["state"] for k, v in done.items()}
    assert states == {
        (first, "a"): "finished",
        (on_a, "a"): "finished",
        (on_both, "a"): "finished",
        (first, "b"): "cancelled",
        (on_b, "b"): "cancelled",
        (on_both, "b"): "cancelled",
    }, events.dump()
    assert daemon.wav("a", first).is_file() and not daemon.wav("b", first).exists()
    assert not daemon.wav("b", on_b).exists() and not daemon.wav("b", on_both).exists()


def test_stop_priority_below_emergency_spares_emergencies(
    client: TestClient, daemon: DaemonProc, events: Events
) -> None:
    alarm = blocker(client, daemon, events, priority="emergency")
    low, high, alarm2 = new_id("low"), new_id("high"), new_id("alarm2")
    client.publish_json(daemon.topic("say"), {"id": low, "text": SHORT, "priority": "low"})
    client.publish_json(daemon.topic("say"), {"id": high, "text": SHORT, "priority": "high"})
    client.publish_json(daemon.topic("say"), {"id": alarm2, "text": SHORT, "priority": "emergency"})
    events.wait(alarm2, "queued")
    client.publish_json(daemon.topic("stop"), {"priority_below": "emergency"})
    done = events.wait_done([alarm, low, high, alarm2], ("a",))
    assert_queued_behind(events, alarm, [low, high, alarm2])
    states = {i: done[(i, "a")]["state"] for i in (alarm, low, high, alarm2)}
    assert states == {alarm: "finished", low: "cancelled", high: "cancelled", alarm2: "finished"}, events.dump()
    assert events.all(alarm, "interrupted") == []


def test_malformed_stop_is_rejected_and_stops_nothing(client: TestClient, daemon: DaemonProc, events: Events) -> None:
    first = blocker(client, daemon, events)
    client.publish(daemon.topic("stop"), b'{"priority_below": "urgent", "id": "stop-urgent"}')
    client.publish(daemon.topic("stop"), b"please stop")
    client.publish(daemon.topic("stop"), b"[1]")  # once "stop everything"
    client.publish(daemon.topic("stop"), b'{"foo": 1}')  # once "stop everything"
    client.publish(daemon.topic("stop", "nope"), b"")
    done = events.wait_done([first], ("a",))
    assert done[(first, "a")]["state"] == "finished", events.dump()
    states = [(e["id"], e["state"]) for e in events.all()]
    assert (
        states.index((first, "finished")) > max(i for i, (_, s) in enumerate(states) if s == "rejected")
        and len(events.all(state="rejected")) == 5
    ), f"the stops came after the blocker ended\n  {events.dump()}"
    rejected = events.all(state="rejected")
    assert [e["error"].split(":")[0] for e in rejected] == [
        "priority_below",
        "payload",
        "payload",
        "payload",
        "targets",
    ], events.dump()
    assert rejected[0]["id"] == "stop-urgent" and "low, normal, high, emergency" in rejected[0]["error"]
    assert "'nope'" in rejected[4]["error"] and "files" in rejected[4]["error"]
    assert all(e["reason"] == "invalid" for e in rejected)
