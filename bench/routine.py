"""``python -m bench routine``: what the daily routine costs the announcement path, measured, not asserted.

* intake with the history: ``Intake.accept`` (validate, commit to the spool with its fsync,
  hand to the queues) while the history recorder writes every event from its own thread;
  peer: the same accepts with no history. Target: within 1.5x of the peer at p50 (the
  recorder only appends to a queue on the intake's thread; its writes share the spool's
  lock and disk).
* a commit while the history is pruned: ``Spool.add`` while a prune removes 50 000 old
  records (in batches of 500 with their events); peer: the same adds with no prune running.
  Target: p95 within 50 ms (one batch, never the whole prune), and the prune's rate.
* the schedule runner's tick with 50 schedules and nothing due (what its thread does at
  least every 30 s); target ≤ 5 ms.

The queues are a stand-in here (``_Queues``: it keeps nothing): the playback scheduler's work
is not what is measured, and it would be the same on both sides of each ratio.
"""

from __future__ import annotations

import argparse
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from announcer.config import parse_config
from announcer.core.announcement import Announcement
from announcer.core.events import EventBus, Finished, Queued
from announcer.intake.intake import Intake, Origin
from announcer.intake.scheduled import ScheduledFirings
from announcer.schedule.clock import ManualClock
from announcer.schedule.runner import ScheduleRunner
from announcer.spool.history import HistoryRecorder
from announcer.spool.store import Spool

from .common import add_peer_ratios, figure, percentile, progress

NAME = "routine"
CONFIG = """
speakers: {a: {type: file, directory: /tmp/bench-routine-a}, b: {type: file, directory: /tmp/bench-routine-b}}
limits: {per_minute: 100000}
"""


class _Queues:
    """Stand-in for the playback scheduler: takes announcements, plays none (see the module doc)."""

    def __init__(self, events: EventBus) -> None:
        self.events = events

    def submit(self, ann: Announcement) -> None:
        self.events.emit(Queued(id=ann.id, targets=ann.targets, priority=ann.priority, speakers=ann.speakers), ann)

    def stop(self, target: str | None, priority_below: str | None = None) -> int:
        return 0


def _accepts(tmp: Path, n: int, history: bool) -> list[float]:
    cfg = parse_config(CONFIG + f"spool: {{path: {tmp}/spool-{history}.sqlite3}}\n")
    spool = Spool(cfg.spool.path)
    events = EventBus()
    recorder = HistoryRecorder(spool)
    if history:
        events.subscribe(recorder.on_event)
        recorder.start()
    intake = Intake(lambda: cfg, spool, _Queues(events), events)
    times = []
    try:
        for i in range(n):
            t0 = time.perf_counter()
            intake.accept({"text": "三号病房请注意。", "id": f"h{i}", "targets": ["a", "b"]}, Origin(source="http"))
            times.append((time.perf_counter() - t0) * 1000)
            ann_id = f"h{i}"
            for s in ("a", "b"):  # what the players would report
                events.emit(Finished(id=ann_id, speaker=s, duration_s=1.0))
    finally:
        recorder.stop(30.0)
        spool.close()
    return times


def _history_on_intake(tmp: Path, n: int) -> list[dict[str, Any]]:
    _accepts(tmp, 20, True)  # warm up imports and the file system
    plain = _accepts(tmp, n, False)
    recorded = _accepts(tmp, n, True)
    p50, base = percentile(recorded, 50), percentile(plain, 50)
    figures = [
        figure(NAME, "intake accept, no history", base, "ms", plain, note=f"value = p50 of {n}"),
        figure(
            NAME,
            "intake accept, history recording",
            p50,
            "ms",
            recorded,
            target=1.5,
            met=p50 <= 1.5 * base,
            note=f"value = p50 of {n}; target: ratio to the peer",
        ),
    ]
    add_peer_ratios(figures, {"intake accept, history recording": "intake accept, no history"})
    return figures


def _fill(spool: Spool, records: int, now: float) -> None:
    recorder = HistoryRecorder(spool)
    batch: list[Any] = []
    for i in range(records):
        ann = Announcement(id=f"old{i}", text="旧的广播", targets=("a",), speakers=("a",), received=now - 200 * 86400)
        batch += [(Queued(id=ann.id, targets=("a",), priority="normal"), ann), (Finished(id=ann.id, speaker="a"), ann)]
        if len(batch) >= 5000:
            recorder.write(batch)
            batch = []
    recorder.write(batch)


def _adds(spool: Spool, n: int, tag: str, stop: threading.Event | None = None) -> list[float]:
    times = []
    for i in range(n):
        if stop is not None and stop.is_set():
            break
        ann = Announcement(id=f"{tag}{i}", text="请注意。", targets=("a",), speakers=("a",), received=time.time())
        t0 = time.perf_counter()
        spool.add(ann)
        times.append((time.perf_counter() - t0) * 1000)
        time.sleep(0.002)
    return times


def _prune_vs_intake(tmp: Path, records: int) -> list[dict[str, Any]]:
    spool = Spool(tmp / "prune.sqlite3")
    try:
        progress(f"routine: filling the history with {records} old records")
        _fill(spool, records, time.time())
        idle = _adds(spool, 200, "idle")
        recorder = HistoryRecorder(spool, days=90)
        result: dict[str, float] = {}
        done = threading.Event()

        def prune() -> None:
            t0 = time.perf_counter()
            result["removed"] = recorder.prune()
            result["seconds"] = time.perf_counter() - t0
            done.set()

        worker = threading.Thread(target=prune)
        worker.start()
        during = _adds(spool, 100_000, "busy", stop=done)
        worker.join()
    finally:
        spool.close()
    p95 = percentile(during, 95) if during else 0.0
    figures = [
        figure(NAME, "spool add, no prune", percentile(idle, 50), "ms", idle, note="value = p50"),
        figure(
            NAME,
            "spool add during a prune",
            p95,
            "ms",
            during,
            target=50.0,
            met=p95 <= 50.0,
            note=f"value = p95 of {len(during)} adds while {int(result['removed'])} records went",
        ),
        figure(
            NAME,
            "history prune rate",
            result["removed"] / result["seconds"],
            "records/s",
            note=f"{int(result['removed'])} records with 2 events each, batches of 500",
        ),
    ]
    add_peer_ratios(figures, {"spool add during a prune": "spool add, no prune"})
    return figures


def _tick(tmp: Path) -> list[dict[str, Any]]:
    lines = "".join(f"  s{i}: {{cron: '{i % 60} */2 * * *', text: 第{i}号提醒}}\n" for i in range(50))
    cfg = parse_config(CONFIG + f"timezone: Europe/Berlin\nspool: {{path: {tmp}/tick.sqlite3}}\nschedules:\n{lines}")
    spool = Spool(cfg.spool.path)
    events = EventBus()
    intake = Intake(lambda: cfg, spool, _Queues(events), events)
    clock = ManualClock(time.time())
    runner = ScheduleRunner(lambda: cfg, ScheduledFirings(intake), clock=clock)
    try:
        runner.tick()
        times = []
        for _ in range(200):
            clock.advance(0.5)
            t0 = time.perf_counter()
            runner.tick()
            times.append((time.perf_counter() - t0) * 1000)
    finally:
        spool.close()
    p50 = percentile(times, 50)
    return [
        figure(
            NAME,
            "schedule tick, 50 schedules, none due",
            p50,
            "ms",
            times,
            target=5.0,
            met=p50 <= 5.0,
            note="value = p50 of 200",
        )  # fmt: skip
    ]


def add_arguments(group: argparse._ArgumentGroup) -> None:
    group.add_argument("--routine-records", type=int, default=50_000, help="history records to prune (routine)")


def run(args: argparse.Namespace) -> list[dict[str, Any]]:
    with tempfile.TemporaryDirectory(prefix="bench-routine-", dir=Path.cwd()) as name:
        tmp = Path(name)
        progress("routine: intake with and without the history")
        figures = _history_on_intake(tmp, 300)
        figures += _prune_vs_intake(tmp, getattr(args, "routine_records", 50_000))
        progress("routine: schedule runner tick")
        figures += _tick(tmp)
    return figures
