"""The durable spool: round trip, duplicates, crash recovery, per-speaker progress, pruning."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from announcer.core.announcement import Announcement
from announcer.spool.store import DUPLICATE_WINDOW, Spool

pytestmark = pytest.mark.unit  # the fast lane (make check)

REPO = Path(__file__).resolve().parents[1]


def ann(
    ann_id: str, speakers: tuple[str, ...] = ("lobby", "archive"), received: float | None = None, **kw
) -> Announcement:

    received = time.time() if received is None else received
    return Announcement(
        id=ann_id,
        text=f"text of {ann_id} 你好",
        targets=speakers,
        speakers=speakers,
        received=received,
        expires=received + 600,
        **kw,
    )


@pytest.fixture
def spool(tmp_path: Path):
    s = Spool(tmp_path / "state" / "spool.sqlite3")
    yield s
    s.close()


def test_round_trip_and_parent_dirs(spool: Spool, tmp_path: Path) -> None:
    a = ann(
        "a1",
        priority="high",
        emotion="happy",
        repeat=2,
        correlation_data=b"\x01\x02",
        response_topic="resp/x",
        warnings=("unknown emotion 'x' plays as neutral",),
    )
    assert (tmp_path / "state").is_dir()
    assert spool.add(a)
    assert spool.seen("a1")
    assert not spool.seen("nope")
    [(back, speakers)] = spool.pending()
    assert back == a
    assert speakers == ("lobby", "archive")


def test_pending_in_arrival_order(spool: Spool) -> None:
    now = time.time()
    for i, name in enumerate(["z", "a", "m"]):
        spool.add(ann(name, received=now + i))
    assert [a.id for a, _ in spool.pending()] == ["z", "a", "m"]


def test_duplicate_within_24h_rejected_after_accepted(spool: Spool) -> None:
    t0 = 1_800_000_000.0
    first = ann("dup", received=t0)
    assert spool.add(first)
    assert not spool.add(ann("dup", received=t0 + 3600))  # an hour later: duplicate
    assert spool.count() == 1
    [(back, _)] = spool.pending()
    assert back.received == t0  # nothing of the duplicate was stored
    assert spool.seen("dup", now=t0 + DUPLICATE_WINDOW - 1)
    assert not spool.seen("dup", now=t0 + DUPLICATE_WINDOW + 1)
    later = ann("dup", speakers=("lobby",), received=t0 + DUPLICATE_WINDOW + 1)
    assert spool.add(later)  # a day later the id is free again; the new record replaces the old
    assert spool.count() == 1
    [(back, speakers)] = spool.pending()
    assert back.received == later.received and speakers == ("lobby",)


def test_duplicate_of_finished_announcement_still_rejected(spool: Spool) -> None:
    spool.add(ann("x"))
    spool.ann_done("x", "finished")
    assert spool.pending() == []
    assert not spool.add(ann("x"))


def test_per_speaker_progress_survives_reopen(tmp_path: Path) -> None:
    path = tmp_path / "spool.sqlite3"
    s = Spool(path)
    s.add(ann("p1", speakers=("lobby", "archive", "bus")))
    s.add(ann("p2", speakers=("lobby",)))
    s.speaker_done("p1", "archive", "finished")
    s.speaker_done("p2", "lobby", "finished")  # last speaker: the announcement closes itself
    s.close()
    s2 = Spool(path)
    try:
        assert [(a.id, sp) for a, sp in s2.pending()] == [("p1", ("lobby", "bus"))]
        assert s2.state("p2") == ("finished", {"lobby": "finished"})
        s2.speaker_done("p1", "lobby", "cancelled")
        s2.speaker_done("p1", "bus", "finished")
        assert s2.pending() == []
        assert s2.state("p1")[0] == "mixed"
    finally:
        s2.close()


def test_interrupted_is_not_terminal(spool: Spool) -> None:
    spool.add(ann("i1"))
    with pytest.raises(ValueError):
        spool.speaker_done("i1", "lobby", "interrupted")
    assert spool.pending()[0][1] == ("lobby", "archive")


def test_ann_done_closes_remaining_speakers(spool: Spool) -> None:
    spool.add(ann("c1"))
    spool.speaker_done("c1", "lobby", "finished")
    spool.ann_done("c1", "cancelled")
    assert spool.pending() == []
    assert spool.state("c1") == ("cancelled", {"lobby": "finished", "archive": "cancelled"})


def test_pending_after_crash_second_connection(tmp_path: Path) -> None:
    """A second Spool on the same file while the first is still open (never closed) sees every commit."""
    path = tmp_path / "spool.sqlite3"
    first = Spool(path)
    first.add(ann("k1"))
    first.speaker_done("k1", "lobby", "finished")
    second = Spool(path)
    try:
        assert [(a.id, sp) for a, sp in second.pending()] == [("k1", ("archive",))]
    finally:
        second.close()


def test_pending_after_sigkill(tmp_path: Path) -> None:
    """A process that adds and is killed with SIGKILL before closing: the commits are on disk."""
    path = tmp_path / "spool.sqlite3"
    script = textwrap.dedent(f"""
        import sys, time
        sys.path.insert(0, {str(REPO)!r})
        from announcer.core.announcement import Announcement
        from announcer.spool.store import Spool
        s = Spool({str(path)!r})
        now = time.time()
        for i in range(5):
            s.add(Announcement(id=f"crash{{i}}", text="hello", targets=("lobby",), speakers=("lobby", "bus"),
                               received=now + i, expires=now + 600))
        s.speaker_done("crash0", "lobby", "finished")
        s.ann_done("crash1", "finished")
        print("committed", flush=True)
        time.sleep(60)
    """)
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "committed"
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
    assert proc.returncode == -signal.SIGKILL
    s = Spool(path)
    try:
        assert [(a.id, sp) for a, sp in s.pending()] == [
            ("crash0", ("bus",)),
            ("crash2", ("lobby", "bus")),
            ("crash3", ("lobby", "bus")),
            ("crash4", ("lobby", "bus")),
        ]
        assert not s.add(ann("crash4"))
    finally:
        s.close()


def test_prune_keeps_duplicate_window(tmp_path: Path) -> None:
    """keep_days below a day: finished records still stay 24 h, so duplicates are still caught."""
    s = Spool(tmp_path / "spool.sqlite3", keep_days=0.5)
    try:
        now = time.time()
        for i in range(4):
            s.add(ann(f"r{i}", speakers=("lobby",), received=now + i))
        for i in (0, 1):
            s.speaker_done(f"r{i}", "lobby", "finished")
        assert s.prune(now + 0.6 * 86400) == 0
        assert s.prune(now + 1.1 * 86400) == 2
        assert [a.id for a, _ in s.pending()] == ["r2", "r3"]
    finally:
        s.close()


def test_prune_age_and_cap(tmp_path: Path) -> None:
    s = Spool(tmp_path / "spool.sqlite3", keep_days=2, max_records=100)
    try:
        now = time.time()
        for i in range(6):
            s.add(ann(f"r{i}", speakers=("lobby",), received=now + i))
        for i in (0, 1, 2):
            s.speaker_done(f"r{i}", "lobby", "finished")
        assert s.prune(now + 86400) == 0  # younger than keep_days
        assert s.seen("r0", now=now + 3600)
        assert s.prune(now + 3 * 86400) == 3  # old finished ones go
        assert sorted(a.id for a, _ in s.pending()) == ["r3", "r4", "r5"]  # unfinished stay, however old
        assert s.count() == 3

        s.max_records = 4
        for i in range(6, 10):
            s.add(ann(f"r{i}", speakers=("lobby",), received=now + i))
            if i < 9:
                s.speaker_done(f"r{i}", "lobby", "finished")
        assert s.count() == 7
        assert s.prune(now) == 3  # over the cap: oldest finished first
        assert s.state("r6") is None and s.state("r7") is None and s.state("r8") is None
        s.max_records = 1
        assert s.prune(now) == 0  # only unfinished left: never deleted, even over the cap
        assert sorted(a.id for a, _ in s.pending()) == ["r3", "r4", "r5", "r9"]
    finally:
        s.close()


def test_thread_safety(spool: Spool) -> None:
    import threading

    now = time.time()
    errors: list[BaseException] = []

    def worker(k: int) -> None:
        try:
            for i in range(30):
                spool.add(ann(f"t{k}-{i}", received=now))
                spool.speaker_done(f"t{k}-{i}", "lobby", "finished")
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert len(spool.pending()) == 120
    assert all(sp == ("archive",) for _, sp in spool.pending())
