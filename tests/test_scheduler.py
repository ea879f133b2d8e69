"""The scheduler with real parts: the embedded-zh engine, real file speakers, a real spool.

Ordering is made deterministic with ``GateSink``: a real ``Sink`` (wrapping a
``FileSink``) whose streams let the first write through and then hold every later
write, and ``close``, until the test opens the gate, like a device that plays in real
time. While a gate is closed, the speaker is "playing" and everything else waits.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile as sf

from announcer.audio.chimes import ChimeLibrary
from announcer.config import Config, parse_config
from announcer.core.announcement import Announcement
from announcer.core.events import Event, EventBus
from announcer.engines.base import Style
from announcer.engines.embedded_zh import EmbeddedZhEngine
from announcer.intake.parse import build
from announcer.playback.runtime import Runtime
from announcer.playback.scheduler import Scheduler
from announcer.playback.synthesizer import Synthesizer
from announcer.sinks.base import Sink, Stream, create_sink
from announcer.sinks.file_sink import FileSink
from announcer.spool.store import Spool

pytestmark = pytest.mark.timeout(60)

SHORT = "请注意。"
LONGER = "三号病房请注意，医生马上到。"


class CountingEngine(EmbeddedZhEngine):
    """The real embedded-zh engine, counting the clauses it synthesizes."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.calls: list[str] = []
        self._count_lock = threading.Lock()

    def synthesize_clause(self, clause: str, style: Style, voice: str | None = None) -> np.ndarray:
        with self._count_lock:
            self.calls.append(clause)
        return super().synthesize_clause(clause, style, voice)


class GateStream(Stream):
    def __init__(self, inner: Stream, gate: threading.Event) -> None:
        self.inner = inner
        self.gate = gate
        self.writes = 0

    def write(self, samples: np.ndarray) -> None:
        if self.writes:
            assert self.gate.wait(30), "test gate never opened"
        self.inner.write(samples)
        self.writes += 1

    def close(self) -> dict[str, Any]:
        assert self.gate.wait(30), "test gate never opened"
        return self.inner.close()

    def abort(self) -> None:
        self.inner.abort()


class GateSink(Sink):
    """Test-only: a FileSink whose streams hold after the first write until ``gate`` is set."""

    def __init__(self, name: str, config: Any) -> None:
        super().__init__(name, config)
        self.inner = FileSink(name, config)
        self.gate = threading.Event()

    def open(self, announcement_id: str, sample_rate: int) -> Stream:
        return GateStream(self.inner.open(announcement_id, sample_rate), self.gate)


class EventLog:
    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []
        self._cond = threading.Condition()

    def __call__(self, event: Event, _ann: Announcement | None) -> None:
        with self._cond:
            self.events.append(event.to_wire())  # as published on P/events
            self._cond.notify_all()

    def of(self, state: str | None = None, ann_id: str | None = None, speaker: str | None = None) -> list[dict]:
        with self._cond:
            return [
                e
                for e in self.events
                if (state is None or e["state"] == state)
                and (ann_id is None or e["id"] == ann_id)
                and (speaker is None or e.get("speaker") == speaker)
            ]

    def wait(self, state: str, ann_id: str, speaker: str | None = None, timeout: float = 20) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                found = [
                    e
                    for e in self.events
                    if e["state"] == state and e["id"] == ann_id and (speaker is None or e.get("speaker") == speaker)
                ]
                if found:
                    return found[0]
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(f"no {state} event for {ann_id} {speaker or ''}; got {self.events}")
                self._cond.wait(remaining)

    def order(self, speaker: str, state: str = "started") -> list[str]:
        return [e["id"] for e in self.of(state, speaker=speaker)]


def wait_until(predicate: Callable[[], bool], timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.01)


class OffsetClock:
    """Wall time plus an offset the test can move forward."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset


@pytest.fixture(scope="module")
def engine() -> CountingEngine:
    cfg = parse_config("engines: {zh: {type: embedded-zh}}\nspeakers: {x: {type: file, directory: /tmp}}")
    eng = CountingEngine("zh", cfg.engines["zh"])
    eng.load()
    return eng


class Harness:
    def __init__(
        self,
        tmp: Path,
        engine: CountingEngine,
        max_queue: int = 10,
        on_status: Callable[[dict[str, Any]], None] | None = None,
    ) -> None:
        self.tmp = tmp
        (tmp / "notadir").write_text("a file where the bad speaker wants a directory")
        self.cfg: Config = parse_config(f"""
engines: {{zh: {{type: embedded-zh}}}}
speakers:
  a: {{type: file, directory: {tmp}/a}}
  b: {{type: file, directory: {tmp}/b}}
  gate: {{type: file, directory: {tmp}/gate}}
  gate2: {{type: file, directory: {tmp}/gate2}}
  bad: {{type: file, directory: {tmp}/notadir/sub}}
zones: {{both: [a, b], mixed: [a, bad]}}
defaults: {{targets: [a], chime: false}}
limits: {{max_queue: {max_queue}}}
spool: {{path: {tmp}/spool.sqlite3}}
cache: {{enabled: false}}
""")
        self.engine = engine
        self.synth = Synthesizer({"zh": engine})
        self.sinks: dict[str, Sink] = {}
        for name, scfg in self.cfg.speakers.items():
            self.sinks[name] = GateSink(name, scfg) if name.startswith("gate") else create_sink(name, scfg)
        self.clock = OffsetClock()
        self.log = EventLog()
        self.events = EventBus()
        self.events.subscribe(self.log)
        self.statuses: list[dict[str, Any]] = []
        self.on_status = on_status
        self.spool: Spool | None = None
        self.sched: Scheduler | None = None
        self.open()

    def open(self) -> Scheduler:
        self.spool = Spool(self.cfg.spool.path)
        self.sched = Scheduler(
            Runtime(self.cfg, self.synth, self.sinks, ChimeLibrary()),
            self.spool,
            self.events,
            clock=self.clock,
            on_status_change=self.statuses.append,
        )
        return self.sched

    def say(self, text: str = SHORT, **raw: Any) -> Announcement:
        ann = build({"text": text, **raw}, self.cfg, now=self.clock())
        assert self.spool is not None and self.sched is not None
        assert self.spool.add(ann)
        self.sched.submit(ann)
        return ann

    def gate(self, name: str = "gate") -> threading.Event:
        return self.sinks[name].gate  # type: ignore[attr-defined]

    def wav(self, speaker: str, ann_id: str) -> tuple[np.ndarray, int]:
        data, rate = sf.read(str(self.tmp / speaker / f"{ann_id}.wav"), dtype="float32")
        return data, rate

    def close(self) -> None:
        for sink in self.sinks.values():
            if isinstance(sink, GateSink):
                sink.gate.set()
        if self.sched is not None:
            self.sched.shutdown(10)
        if self.spool is not None:
            self.spool.close()


@pytest.fixture
def h(tmp_path: Path, engine: CountingEngine):
    harness = Harness(tmp_path, engine)
    harness.sched.start()
    yield harness
    harness.close()


def test_priority_order_and_fifo_within_priority(h: Harness) -> None:
    blocker = h.say(targets="gate", priority="low", id="blocker")
    h.log.wait("started", blocker.id, "gate")
    ids = []
    for i, prio in enumerate(["normal", "high", "normal", "low", "high", "normal"]):
        ids.append(h.say(targets="gate", priority=prio, id=f"{prio}{i}").id)
    assert h.sched.status() == {"queue": 6, "speaking": ["gate"]}
    h.gate().set()
    assert h.sched.wait_idle(30)
    assert h.log.order("gate") == ["blocker", "high1", "high4", "normal0", "normal2", "normal5", "low3"]
    assert h.log.order("gate", "finished") == h.log.order("gate")
    assert h.sched.status() == {"queue": 0, "speaking": []}
    wait_until(lambda: h.statuses[-1] == {"queue": 0, "speaking": []})
    assert {"queue": 6, "speaking": ["gate"]} in h.statuses
    queued = h.log.wait("queued", "high1")
    assert queued["targets"] == ["gate"] and queued["priority"] == "high" and queued["warnings"] == []
    assert h.spool.pending() == []


def test_emergency_interrupts_and_the_interrupted_one_replays(h: Harness) -> None:
    low = h.say(LONGER, targets="gate", priority="low", id="low")
    h.log.wait("started", "low", "gate")
    later = h.say(targets="gate", id="queued-later", priority="low")
    emergency = h.say("着火了，请立即撤离。", targets="gate", priority="emergency", id="fire")
    h.gate().set()
    assert h.sched.wait_idle(30)
    gate_events = [(e["state"], e["id"]) for e in h.log.events if e.get("speaker") == "gate"]
    assert gate_events == [
        ("started", "low"),
        ("interrupted", "low"),
        ("started", "fire"),
        ("finished", "fire"),
        ("started", "low"),
        ("finished", "low"),  # replayed from the start, ahead of later arrivals
        ("started", "queued-later"),
        ("finished", "queued-later"),
    ]
    # the replay is whole: the file holds the full announcement, not the tail after the cut
    full = h.synth.render_all(LONGER, "zh", Style())
    data, rate = h.wav("gate", low.id)
    assert rate == full.sample_rate
    assert abs(len(data) - len(full.samples)) <= 1
    assert (h.tmp / "gate" / f"{emergency.id}.wav").exists()
    assert h.spool.state(low.id) == ("finished", {"gate": "finished"})
    assert [e.get("replay") for e in h.log.of("started", low.id)] == [None, True]
    assert later.id in [e["id"] for e in h.log.of("finished")]


def test_emergency_does_not_interrupt_an_emergency(h: Harness) -> None:
    h.say(targets="gate", priority="emergency", id="e1")
    h.log.wait("started", "e1", "gate")
    h.say(targets="gate", priority="emergency", id="e2")
    h.gate().set()
    assert h.sched.wait_idle(30)
    assert h.log.of("interrupted") == []
    assert h.log.order("gate") == ["e1", "e2"]


def test_ttl_expiry_at_play_time(h: Harness) -> None:
    h.say(targets="gate", id="blocker")
    h.log.wait("started", "blocker", "gate")
    doomed = h.say(targets="gate", id="doomed", ttl=5)
    fine = h.say(targets="gate", id="fine", ttl=600)
    h.clock.offset = 10  # ten seconds pass while the blocker plays
    h.gate().set()
    assert h.sched.wait_idle(30)
    assert h.log.wait("expired", doomed.id)["speaker"] == "gate"
    assert h.log.of("started", doomed.id) == []
    assert not (h.tmp / "gate" / f"{doomed.id}.wav").exists()
    assert h.log.order("gate", "finished") == ["blocker", fine.id]
    assert h.spool.state(doomed.id) == ("expired", {"gate": "expired"})


def test_repeat_with_gap(h: Harness) -> None:
    once = h.say(id="once")
    twice = h.say(id="twice", repeat=2, repeat_gap=0.5)
    assert h.sched.wait_idle(30)
    one, rate = h.wav("a", once.id)
    two, rate2 = h.wav("a", twice.id)
    assert rate == rate2
    assert abs(len(two) - (2 * len(one) + 0.5 * rate)) <= 2
    fin = h.log.wait("finished", twice.id, "a")
    assert fin["duration_s"] == pytest.approx(len(two) / rate, abs=0.01)
    assert fin["path"].endswith("twice.wav")
    started = h.log.wait("started", twice.id, "a")
    assert 0 <= started["latency_ms"] < 20000


def test_stop_one_target_priority_below_and_all(h: Harness) -> None:
    # one target: only gate's playing and queued announcements go
    h.say(targets="gate", id="g-playing", priority="low")
    h.say(targets="gate2", id="g2-playing", priority="low")
    h.log.wait("started", "g-playing", "gate")
    h.log.wait("started", "g2-playing", "gate2")
    h.say(targets="gate", id="g-queued")
    h.say(targets="gate2", id="g2-normal")
    h.say(targets="gate2", id="g2-high", priority="high")
    assert h.sched.stop("gate") == 2
    assert h.log.wait("cancelled", "g-queued", "gate")["reason"] == "stopped"
    h.gate("gate").set()
    assert h.log.wait("cancelled", "g-playing", "gate")["reason"] == "stopped"
    assert not (h.tmp / "gate" / "g-playing.wav").exists()
    assert h.sched.status() == {"queue": 2, "speaking": ["gate2"]}

    # priority_below: on every speaker, only what is below "high"
    assert h.sched.stop(None, priority_below="high") == 2
    h.log.wait("cancelled", "g2-normal", "gate2")
    h.gate("gate2").set()
    h.log.wait("cancelled", "g2-playing", "gate2")
    h.log.wait("finished", "g2-high", "gate2")

    # everything, everywhere
    h.gate("gate").clear()
    h.say(targets="gate", id="last-playing", priority="emergency")
    h.log.wait("started", "last-playing", "gate")
    h.say(targets=["gate", "gate2"], id="last-queued", priority="emergency")
    h.sched.stop(None)
    h.gate("gate").set()
    assert h.sched.wait_idle(30)
    assert h.log.wait("cancelled", "last-playing", "gate")
    assert {e["speaker"] for e in h.log.of("cancelled", "last-queued")} <= {"gate", "gate2"}
    assert h.log.of("started", "last-queued", "gate") == []
    assert h.log.of("finished", "g-playing") == [] and h.log.of("finished", "g2-normal") == []
    assert h.spool.pending() == []
    assert h.spool.state("last-playing") == ("cancelled", {"gate": "cancelled"})


def test_failure_of_one_sink_is_isolated(h: Harness, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    ann = h.say(targets="mixed", id="iso")
    assert h.sched.wait_idle(30)
    failed = h.log.wait("failed", ann.id, "bad")
    assert "cannot write" in failed["error"] and "notadir" in failed["error"]
    h.log.wait("finished", ann.id, "a")
    assert (h.tmp / "a" / "iso.wav").exists()
    assert h.spool.state(ann.id) == ("mixed", {"a": "finished", "bad": "failed"})
    assert not any(r.exc_info for r in caplog.records), "an expected sink error must not log a traceback"
    # the failed speaker's player is alive and keeps serving
    again = h.say(targets="mixed", id="iso2")
    assert h.sched.wait_idle(30)
    h.log.wait("failed", again.id, "bad")
    h.log.wait("finished", again.id, "a")
    assert all(p.thread.is_alive() for p in h.sched.speakers.players.values())


def test_engine_failure_is_a_failed_event(h: Harness) -> None:
    ann = h.say(targets="both", id="badvoice", voice="no-such-voice")
    assert h.sched.wait_idle(30)
    for speaker in ("a", "b"):
        assert "no-such-voice" in h.log.wait("failed", ann.id, speaker)["error"]
    h.say(id="after")
    assert h.sched.wait_idle(30)
    h.log.wait("finished", "after", "a")


def test_one_synthesis_for_two_speakers(h: Harness) -> None:
    clauses = h.engine.clauses(LONGER)
    assert len(clauses) >= 2
    h.synth.reference_lufs("zh")  # measured once per engine (the daemon does it at start)
    h.engine.calls.clear()
    ann = h.say(LONGER, targets="both", id="shared", chime=True)
    assert h.sched.wait_idle(30)
    assert h.engine.calls == clauses  # once, not once per speaker
    a, rate_a = h.wav("a", ann.id)
    b, rate_b = h.wav("b", ann.id)
    assert rate_a == rate_b and len(a) == len(b)
    assert np.max(np.abs(a[: int(0.3 * rate_a)])) > 0.05  # the chime came first
    assert {e["speaker"] for e in h.log.of("finished", ann.id)} == {"a", "b"}
    assert len(h.sched.renders) == 0  # audio freed once every speaker was done


def test_queue_full_sheds_lowest_newest(tmp_path: Path, engine: CountingEngine) -> None:
    h = Harness(tmp_path, engine, max_queue=2)
    try:
        h.sched.start()
        h.say(targets="gate", id="blocker")
        h.log.wait("started", "blocker", "gate")
        h.say(targets="gate", id="low1", priority="low")
        h.say(targets="gate", id="n1")
        h.say(targets="gate", id="n2")  # 3 waiting: low1 goes
        assert h.log.wait("cancelled", "low1", "gate")["reason"] == "queue full"
        h.say(targets="gate", id="low2", priority="low")  # itself the lowest and newest
        assert h.log.wait("cancelled", "low2", "gate")["reason"] == "queue full"
        h.say(targets="gate", id="h1", priority="high")  # n2 is now the lowest, newest
        assert h.log.wait("cancelled", "n2", "gate")["reason"] == "queue full"
        assert h.sched.status()["queue"] == 2
        h.gate().set()
        assert h.sched.wait_idle(30)
        assert h.log.order("gate") == ["blocker", "h1", "n1"]
        assert h.spool.state("low1") == ("cancelled", {"gate": "cancelled"})
    finally:
        h.close()


def test_resume_from_spool_after_restart(tmp_path: Path, engine: CountingEngine) -> None:
    h = Harness(tmp_path, engine)
    try:
        h.sched.start()
        h.say(targets="gate", id="cut-off")
        h.log.wait("started", "cut-off", "gate")
        h.say(targets="gate", id="waiting", priority="high")
        h.say(targets="gate", id="short-lived", ttl=30)
        h.say(targets=["a", "gate"], id="half")
        h.log.wait("finished", "half", "a")
        # shut down while cut-off plays: the gate opens only once shutdown has asked the player to stop
        threading.Timer(0.3, h.gate().set).start()
        h.sched.shutdown(10)
        assert h.log.wait("interrupted", "cut-off", "gate")["reason"] == "shutdown"
        assert h.log.of("finished", "cut-off") == []
        h.spool.close()

        h.gate().set()
        h.clock.offset = 60  # a minute later: short-lived has expired
        sched = h.open()
        assert [(a.id, s) for a, s in h.spool.pending()] == [
            ("cut-off", ("gate",)),
            ("waiting", ("gate",)),
            ("short-lived", ("gate",)),
            ("half", ("gate",)),
        ]
        sched.start()
        assert sched.wait_idle(30)
        assert h.log.wait("expired", "short-lived", "gate")
        resumed = [e["id"] for e in h.log.of("queued") if e.get("resumed")]
        assert resumed == ["cut-off", "waiting", "half"]
        assert h.log.order("gate", "finished") == ["waiting", "cut-off", "half"]
        assert h.log.of("finished", "half", "a")  # not played twice on a
        assert len(h.log.of("finished", "half")) == 2
        assert h.spool.pending() == []
    finally:
        h.close()


def test_shutdown_is_prompt_and_idempotent_submit(h: Harness) -> None:
    h.say(targets="gate", id="playing")
    h.log.wait("started", "playing", "gate")
    t0 = time.monotonic()
    threading.Timer(0.2, h.gate().set).start()
    h.sched.shutdown(5)
    assert time.monotonic() - t0 < 3
    assert all(not p.thread.is_alive() for p in h.sched.speakers.players.values())
    late = build({"text": SHORT}, h.cfg, now=h.clock())
    h.spool.add(late)
    h.sched.submit(late)  # after shutdown: stays in the spool for the next start
    assert late.id in [a.id for a, _ in h.spool.pending()]


def test_render_pool_memory_is_bounded(tmp_path: Path, engine: CountingEngine) -> None:
    from announcer.playback.render_pool import RenderPool

    h = Harness(tmp_path, engine)
    pool = RenderPool(h.synth, "zh", workers=2, max_kept=2)
    pool.start()
    try:
        anns = [build({"text": SHORT, "id": f"m{i}"}, h.cfg) for i in range(5)]
        for ann in anns:
            render = pool.acquire(ann)
            assert render.chunk(0, lambda: None) is not None
            while not render.done:
                time.sleep(0.01)
            pool.done_reading(render)
        assert len(pool) <= 2  # complete renders nobody reads are evicted past max_kept
        reading = pool.acquire(anns[-1])
        for ann in anns[:3]:
            pool.prefetch(ann)
        assert pool.acquire(anns[-1]) is reading  # one being read is never evicted
        pool.release(anns[-1].id)
        assert reading.cancelled
    finally:
        pool.stop(5)
        h.close()
