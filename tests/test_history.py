"""The history in the spool database: an old spool upgraded in place, every announcement recorded with
its source and each speaker's outcome, filters, CSV, and pruning that stays in small batches."""

from __future__ import annotations

import csv
import io
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from routine_stack import RoutineStack, epoch, routine_yaml

from announcer.core.announcement import Announcement
from announcer.core.events import Finished, Queued
from announcer.intake.intake import Accepted, Origin, Rejected
from announcer.schedule.calendar import site_zone
from announcer.spool.history import HistoryRecorder
from announcer.spool.history_query import (
    HistoryQuery,
    HistoryUnavailable,
    open_history,
    parse_when,
    read_history,
    to_csv,
)
from announcer.spool.store import Spool

pytestmark = [pytest.mark.unit, pytest.mark.timeout(120)]

V1_SCHEMA = """
CREATE TABLE announcements (seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL UNIQUE, received REAL NOT NULL,
    data TEXT NOT NULL, state TEXT, done_at REAL);
CREATE INDEX announcements_open ON announcements(state, seq);
CREATE INDEX announcements_done ON announcements(done_at);
CREATE TABLE deliveries (ann_seq INTEGER NOT NULL REFERENCES announcements(seq) ON DELETE CASCADE,
    position INTEGER NOT NULL, speaker TEXT NOT NULL, state TEXT NOT NULL DEFAULT 'pending', done_at REAL,
    PRIMARY KEY (ann_seq, speaker)) WITHOUT ROWID;
PRAGMA user_version=1;
"""

TEMPLATES = """
templates:
  code_blue: {text: "{ward}号病房，蓝色警报", vars: {ward: str}, before: bell, priority: emergency}
"""


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[RoutineStack]:
    s = RoutineStack(tmp_path, routine_yaml(tmp_path, "  {}", extra=TEMPLATES), epoch("2025-06-02 08:00:00"))
    yield s
    s.close()


def test_a_spool_of_schema_1_opens_upgraded_with_its_pending_announcement(tmp_path: Path) -> None:
    path = tmp_path / "spool.sqlite3"
    db = sqlite3.connect(path)
    db.executescript(V1_SCHEMA)
    old = Announcement(id="old-1", text="旧的广播", targets=("lobby",), speakers=("lobby",), received=time.time())
    old = old.with_(expires=old.received + 600)
    data = old.to_json().replace(', "parts": [], "template": null, "vars": [], "via": []', "")
    assert '"parts"' not in data  # written as the previous version wrote it
    db.execute("INSERT INTO announcements (id, received, data) VALUES (?, ?, ?)", ("old-1", old.received, data))
    db.execute("INSERT INTO deliveries (ann_seq, position, speaker) VALUES (1, 0, 'lobby')")
    db.commit()
    db.close()
    with pytest.raises(HistoryUnavailable):
        run, close = open_history(path)
        try:
            read_history(run, HistoryQuery())
        finally:
            close()
    spool = Spool(path)
    try:
        assert [(a, s) for a, s in spool.pending()] == [(old, ("lobby",))]
        assert spool.read("PRAGMA user_version") == [(2,)]
        assert spool.read("SELECT COUNT(*) FROM history") == [(0,)]
    finally:
        spool.close()
    Spool(path).close()  # opening it again changes nothing
    newer = sqlite3.connect(path)
    newer.execute("PRAGMA user_version=3")
    newer.close()
    with pytest.raises(Exception, match="written by a newer announcer"):
        Spool(path)


def test_every_source_is_recorded_with_what_each_speaker_did(stack: RoutineStack) -> None:
    intake, now = stack.intake, stack.clock.now()
    mqtt = Origin(source="mqtt", received=now, via=(("topic", "ann/say/hall"), ("client", "nurse-station-2")))
    assert isinstance(intake.accept({"text": "请到护士站", "id": "m1"}, mqtt, target="hall"), Accepted)
    http = Origin(source="http", received=now + 1, via=(("user", "ops-panel"),))
    assert isinstance(intake.accept({"template": "code_blue", "vars": {"ward": "3"}, "id": "h1"}, http), Accepted)
    hermes = Origin(source="hermes", received=now + 2, via=(("topic", "hermes/tts/say"),))
    assert isinstance(intake.accept({"clip": "bell", "id": "r1", "targets": ["lobby", "hall"]}, hermes), Accepted)
    bad = intake.accept({"text": "hi", "speed": 9, "id": "bad-1"}, Origin(source="http", received=now + 3))
    assert isinstance(bad, Rejected)
    records = {r["id"]: r for r in stack.records(newest_first=False)}
    assert list(records) == ["m1", "h1", "r1", "bad-1"]
    m1, h1, r1, bad1 = records.values()
    assert (m1["source"], m1["via"], m1["text"], m1["targets"], m1["state"]) == (
        "mqtt",
        {"topic": "ann/say/hall", "client": "nurse-station-2"},
        "请到护士站",
        ["hall"],
        "finished",
    )
    assert (h1["source"], h1["via"], h1["template"], h1["vars"], h1["clips"], h1["priority"]) == (
        "http",
        {"user": "ops-panel"},
        "code_blue",
        {"ward": "3"},
        ["bell"],
        "emergency",
    )
    assert h1["text"] == "3号病房，蓝色警报" and h1["speaker_results"]["lobby"]["state"] == "finished"
    assert r1["text"] is None and r1["clips"] == ["bell"] and set(r1["speaker_results"]) == {"lobby", "hall"}
    assert [e["state"] for e in r1["events"] if e.get("speaker") == "hall"] == ["started", "finished"]
    assert r1["events"][0]["state"] == "queued" and r1["received"] == "2025-06-02T06:00:02.000Z"
    assert (bad1["state"], bad1["source"], bad1["text"], bad1["speakers"]) == ("rejected", "http", "hi", [])
    assert bad1["error"] == "speed: 9 is out of range (allowed: 0.5 .. 2.0)"


def test_filters_and_csv(stack: RoutineStack) -> None:
    intake, t0 = stack.intake, stack.clock.now()
    for i, (target, source) in enumerate([("lobby", "mqtt"), ("hall", "http"), ("lobby", "http")]):
        origin = Origin(source=source, received=t0 + i * 3600)
        intake.accept({"clip": "bell", "id": f"a{i}", "targets": target}, origin)
    stack.settle()
    ids = [r["id"] for r in stack.records()]
    assert ids == ["a2", "a1", "a0"]  # newest first
    assert [r["id"] for r in stack.records(target="hall")] == ["a1"]
    assert [r["id"] for r in stack.records(source="http", newest_first=False)] == ["a1", "a2"]
    tz = site_zone("Europe/Berlin")
    since = parse_when("2025-06-02T09:00", tz)  # local time: 07:00 UTC
    assert since == epoch("2025-06-02 09:00:00")
    assert [r["id"] for r in stack.records(since=since)] == ["a2", "a1"]
    assert [r["id"] for r in stack.records(until=parse_when("2025-06-02T06:30Z", tz))] == ["a0"]
    assert [r["id"] for r in stack.records(limit=1)] == ["a2"]
    with pytest.raises(ValueError, match="since: 'yesterday' is not an ISO date or time"):
        parse_when("yesterday", tz)
    rows = list(csv.DictReader(io.StringIO(to_csv(stack.records(newest_first=False), tz))))
    assert [(r["id"], r["speaker"], r["speaker_state"], r["source"]) for r in rows] == [
        ("a0", "lobby", "finished", "mqtt"),
        ("a1", "hall", "finished", "http"),
        ("a2", "lobby", "finished", "http"),
    ]
    assert rows[0]["received_local"] == "2025-06-02 08:00:00 CEST" and rows[0]["clips"] == "bell"


def test_pruning_goes_by_age_then_by_count_in_small_batches(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool.sqlite3")
    day = 86400.0
    now = 1_750_000_000.0
    recorder = HistoryRecorder(spool, days=90, max_records=1000, clock=lambda: now, prune_batch=200)
    batch = []
    for i in range(2500):
        received = now - 100 * day + i * (100 * day / 2500)  # spread over the last 100 days
        ann = Announcement(id=f"n{i}", text="x", targets=("a",), speakers=("a",), received=received)
        batch += [(Queued(id=ann.id, targets=("a",), priority="normal"), ann), (Finished(id=ann.id, speaker="a"), ann)]
    recorder.write(batch)
    assert spool.read("SELECT COUNT(*) FROM history") == [(2500,)]
    assert spool.read("SELECT COUNT(*) FROM history_events") == [(5000,)]
    # 90 of 100 days are kept (2250 records: 250 go in two transactions), then only the newest 1000
    assert recorder.prune() == 1500
    assert recorder.prune_transactions == 7  # the last step: 1250 beyond max_records, 200 at a time
    assert spool.read("SELECT COUNT(*) FROM history") == [(1000,)]
    assert spool.read("SELECT COUNT(*) FROM history_events") == [(2000,)]  # their events went with them
    assert spool.read("SELECT id FROM history ORDER BY received LIMIT 1") == [("n1500",)]
    assert recorder.prune() == 0
    spool.close()


def test_the_recorder_never_blocks_and_drops_the_oldest_when_the_disk_stops(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool.sqlite3")
    recorder = HistoryRecorder(spool, max_pending=100)
    recorder.start()
    with spool.transaction():  # the spool is busy (a stuck disk): the writer cannot get in
        for i in range(150):  # events keep coming, and on_event returns at once every time
            ann = Announcement(id=f"q{i}", text="x", targets=("a",), speakers=("a",), received=time.time())
            recorder.on_event(Queued(id=ann.id, targets=("a",), priority="normal"), ann)
    assert recorder.flush(20.0)
    recorder.stop()
    ids = [r[0] for r in spool.read("SELECT id FROM history ORDER BY seq")]
    # the writer may have taken the first batch before the test held the lock; after that only the newest 100
    assert ids[-100:] == [f"q{i}" for i in range(50, 150)] and len(ids) < 150
    spool.close()
