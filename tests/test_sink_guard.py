"""Sink calls with a deadline (``announcer.playback.sink_guard``): a stalled device fails its
announcement, not its speaker.

``SinkGuard`` alone with plain functions, then the scheduler with real parts (embedded-zh,
file speakers, spool) and one speaker whose writes hang on demand (``HangSink``: a
``FileSink`` whose stream blocks in ``write`` until released, as a sound device that stops
taking samples blocks inside PortAudio). The end-to-end version on real ALSA devices is
``tests/reliability/test_speaker_faults.py``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from announcer.audio.chimes import ChimeLibrary
from announcer.config import parse_config
from announcer.core.announcement import Announcement
from announcer.core.events import Event, EventBus
from announcer.engines.embedded_zh import EmbeddedZhEngine
from announcer.intake.parse import build
from announcer.playback.runtime import Runtime
from announcer.playback.scheduler import Scheduler
from announcer.playback.sink_guard import CHECK_AFTER_SECONDS, OutputStalled, SinkGuard
from announcer.playback.synthesizer import Synthesizer
from announcer.sinks.base import Sink, SinkError, Stream, create_sink
from announcer.sinks.file_sink import FileSink
from announcer.spool.store import Spool

pytestmark = [pytest.mark.unit, pytest.mark.timeout(60)]

SHORT = "请注意。"


# ---------------------------------------------------------------------------- the guard alone
def test_calls_run_in_order_on_one_thread_and_errors_come_back() -> None:
    guard = SinkGuard("x", "audio device 'x'", stall_timeout=1.0)
    threads = [guard.call("write", lambda: threading.current_thread().name) for _ in range(3)]
    assert threads == ["announcer-sink-x"] * 3
    with pytest.raises(SinkError, match="boom"):
        guard.call("open", _raise, SinkError("boom"))
    assert guard.call("close", lambda a, b: a + b, 2, 3) == 5
    guard.stop()


def test_a_call_that_does_not_return_stalls_the_output_until_it_does(caplog: pytest.LogCaptureFixture) -> None:
    guard = SinkGuard("x", "audio device 'x'", stall_timeout=0.3)
    release = threading.Event()
    ran: list[str] = []
    t0 = time.monotonic()
    with pytest.raises(OutputStalled, match=r"audio device 'x' stalled: its write took no audio for 0\.4 s"):
        guard.call("write", release.wait, 10, seconds=0.1)  # 0.1 s of audio + the 0.3 s stall timeout
    assert 0.4 <= time.monotonic() - t0 < 1.5
    # while it is stuck: calls fail at once, without touching the sink; clean-up waits behind it
    t1 = time.monotonic()
    with pytest.raises(OutputStalled, match="its write has not returned"):
        guard.call("open", ran.append, "open")
    assert time.monotonic() - t1 < 0.5
    assert guard.call("abort", ran.append, "abort", always=True) is None
    assert ran == []
    # the device takes audio again: the clean-up runs, the next call works
    with caplog.at_level(logging.WARNING, logger="announcer.playback.sink_guard"):
        release.set()
        deadline = time.monotonic() + 5
        while ran != ["abort"]:
            assert time.monotonic() < deadline, ran
            time.sleep(0.01)
    assert guard.call("open", lambda: "opened") == "opened"
    assert "speaker x: the output takes audio again (its write returned after" in caplog.text
    guard.stop()


def test_an_overdue_call_is_given_up_when_its_job_is_aborted() -> None:
    guard = SinkGuard("x", "audio device 'x'", stall_timeout=30.0)
    release = threading.Event()
    aborted = threading.Event()

    def check() -> None:
        if aborted.is_set():
            raise RuntimeError("stopped")

    aborted.set()  # aborted from the start: still, a call is only given up once overdue
    t0 = time.monotonic()
    with pytest.raises(RuntimeError, match="stopped"):
        guard.call("write", release.wait, 10, seconds=0.2, check=check)
    assert 0.2 + CHECK_AFTER_SECONDS <= time.monotonic() - t0 < 0.2 + CHECK_AFTER_SECONDS + 1.0
    with pytest.raises(OutputStalled):
        guard.call("write", lambda: None)
    release.set()
    guard.stop()


def _raise(exc: BaseException) -> None:
    raise exc


# ---------------------------------------------------------------------------- in the scheduler
class HangStream(Stream):
    def __init__(self, inner: Stream, sink: HangSink) -> None:
        self.inner = inner
        self.sink = sink

    def write(self, samples: np.ndarray) -> None:
        if self.sink.hang.is_set():
            self.sink.blocked.set()
            assert self.sink.release.wait(30), "test never released the device"
        self.inner.write(samples)

    def close(self) -> dict[str, Any]:
        return self.inner.close()

    def abort(self) -> None:
        self.sink.aborts.append(threading.current_thread().name)
        self.inner.abort()


class HangSink(Sink):
    """Test-only: a FileSink whose stream writes block while ``hang`` is set, until ``release``."""

    def __init__(self, name: str, config: Any) -> None:
        super().__init__(name, config)
        self.inner = FileSink(name, config)
        self.hang = threading.Event()
        self.release = threading.Event()
        self.blocked = threading.Event()
        self.aborts: list[str] = []

    def open(self, announcement_id: str, sample_rate: int) -> Stream:
        return HangStream(self.inner.open(announcement_id, sample_rate), self)


class Events:
    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []
        self._cond = threading.Condition()

    def __call__(self, event: Event, _ann: Announcement | None) -> None:
        with self._cond:
            self.events.append(event.to_wire())  # as published on P/events
            self._cond.notify_all()

    def wait(self, state: str, ann_id: str, speaker: str, timeout: float = 20) -> dict[str, Any]:
        with self._cond:
            assert self._cond.wait_for(lambda: self.find(state, ann_id, speaker), timeout), self.events
            return self.find(state, ann_id, speaker)[0]

    def find(self, state: str, ann_id: str, speaker: str) -> list[dict[str, Any]]:
        return [e for e in self.events if e["state"] == state and e["id"] == ann_id and e.get("speaker") == speaker]


@pytest.fixture(scope="module")
def engine() -> EmbeddedZhEngine:
    cfg = parse_config("engines: {zh: {type: embedded-zh}}\nspeakers: {x: {type: file, directory: /tmp}}")
    eng = EmbeddedZhEngine("zh", cfg.engines["zh"])
    eng.load()
    return eng


class Harness:
    def __init__(self, tmp: Path, engine: EmbeddedZhEngine) -> None:
        self.cfg = parse_config(f"""
engines: {{zh: {{type: embedded-zh}}}}
speakers:
  a: {{type: file, directory: {tmp}/a}}
  hung: {{type: file, directory: {tmp}/hung, stall_timeout: 0.5}}
  slow: {{type: file, directory: {tmp}/slow, stall_timeout: 30}}
zones: {{pair: [a, hung]}}
defaults: {{targets: [pair], chime: false}}
spool: {{path: {tmp}/spool.sqlite3}}
cache: {{enabled: false}}
""")
        self.sinks: dict[str, Sink] = {
            name: HangSink(name, scfg) if name != "a" else create_sink(name, scfg)
            for name, scfg in self.cfg.speakers.items()
        }
        self.log = Events()
        bus = EventBus()
        bus.subscribe(self.log)
        self.spool = Spool(self.cfg.spool.path)
        self.sched = Scheduler(
            Runtime(self.cfg, Synthesizer({"zh": engine}), self.sinks, ChimeLibrary()), self.spool, bus
        )

    def sink(self, name: str) -> HangSink:
        sink = self.sinks[name]
        assert isinstance(sink, HangSink)
        return sink

    def say(self, ann_id: str, **raw: Any) -> Announcement:
        ann = build({"text": SHORT, "id": ann_id, **raw}, self.cfg)
        assert self.spool.add(ann)
        self.sched.submit(ann)
        return ann


@pytest.fixture
def h(tmp_path: Path, engine: EmbeddedZhEngine) -> Iterator[Harness]:
    harness = Harness(tmp_path, engine)
    harness.sched.start()
    yield harness
    for sink in harness.sinks.values():
        if isinstance(sink, HangSink):
            sink.release.set()
    harness.sched.shutdown(10)
    harness.spool.close()


def test_a_stalled_speaker_fails_its_announcements_and_plays_again_once_the_device_returns(h: Harness) -> None:
    hung = h.sink("hung")
    hung.hang.set()
    h.say("s1")
    h.log.wait("started", "s1", "hung")
    assert hung.blocked.wait(10)
    t0 = time.monotonic()
    failed = h.log.wait("failed", "s1", "hung", timeout=10)
    assert time.monotonic() - t0 < 1.5
    assert "speaker hung's output stalled: its write took no audio" in failed["error"], failed
    h.log.wait("finished", "s1", "a")
    assert h.sched.health() == []  # the player went on: not stuck, nothing for the watchdog

    # still stuck: the next one fails at once (the device is not touched), the other speaker plays
    h.say("s2")
    failed = h.log.wait("failed", "s2", "hung", timeout=5)
    assert "has not returned" in failed["error"], failed
    h.log.wait("finished", "s2", "a")
    assert hung.aborts == []  # the stuck stream's abort waits behind its write

    # the device takes audio again: the stuck stream is aborted on the sink's thread, the next one plays
    hung.hang.clear()
    hung.release.set()
    deadline = time.monotonic() + 5
    while not hung.aborts:
        assert time.monotonic() < deadline, "the stuck stream was never aborted"
        time.sleep(0.01)
    assert hung.aborts == ["announcer-sink-hung"]
    h.say("s3")
    h.log.wait("finished", "s3", "hung")
    h.log.wait("finished", "s3", "a")
    assert h.sched.wait_idle(10)
    assert h.spool.pending() == []


def test_a_stop_does_not_wait_out_a_hung_device(h: Harness) -> None:
    slow = h.sink("slow")
    slow.hang.set()
    h.say("s1", targets="slow")
    assert slow.blocked.wait(10)
    time.sleep(0.2)
    t0 = time.monotonic()
    assert h.sched.stop("slow") == 1
    cancelled = h.log.wait("cancelled", "s1", "slow", timeout=5)
    assert cancelled["reason"] == "stopped"
    assert time.monotonic() - t0 < CHECK_AFTER_SECONDS + 1.0  # not the 30 s stall timeout
