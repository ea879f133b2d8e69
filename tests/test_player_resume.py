"""An emergency goes on in the interrupted announcement's stream when the sink allows it.

A ``resumable`` stream (a device) interrupted by an emergency is not aborted: the player
writes the fade-out and keeps the stream, and the emergency, next on that speaker, is
written into it right behind the fade (``Stream.resume``): no silence flushed, no device
re-opened. A stream that cannot resume (another rate) is aborted and a new one opened.
The sink here records its calls; its streams hold after their first write until the
test opens the gate, like a device that plays in real time.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from test_scheduler import LONGER, EventLog, wait_until

from announcer.audio.chimes import ChimeLibrary
from announcer.config import parse_config
from announcer.core.events import EventBus
from announcer.intake.parse import build
from announcer.playback.player import FADE_OUT_SECONDS
from announcer.playback.runtime import Runtime
from announcer.playback.scheduler import Scheduler
from announcer.playback.synthesizer import make_synthesizer
from announcer.sinks.base import Sink, Stream
from announcer.spool.store import Spool

pytestmark = [pytest.mark.unit, pytest.mark.timeout(60)]


class RecordingStream(Stream):
    resumable = True

    def __init__(self, sink: RecordingSink, ann_id: str, rate: int) -> None:
        self.sink = sink
        self.rate = rate
        self.anns = [ann_id]
        self.writes: list[tuple[str, np.ndarray]] = []
        self.ended: str | None = None  # closed | aborted

    def write(self, samples: np.ndarray) -> None:
        if self.writes:
            assert self.sink.gate.wait(30), "test gate never opened"
        self.writes.append((self.anns[-1], np.array(samples, np.float32)))

    def close(self) -> dict[str, Any]:
        self.ended = "closed"
        return {}

    def abort(self) -> None:
        self.ended = "aborted"

    def resume(self, announcement_id: str, sample_rate: int) -> bool:
        assert self.ended is None
        if not self.sink.resumes or sample_rate != self.rate:
            return False
        self.anns.append(announcement_id)
        return True


class RecordingSink(Sink):
    def __init__(self, name: str, config: Any, resumes: bool) -> None:
        super().__init__(name, config)
        self.resumes = resumes
        self.gate = threading.Event()
        self.streams: list[RecordingStream] = []

    def open(self, announcement_id: str, sample_rate: int) -> Stream:
        self.streams.append(RecordingStream(self, announcement_id, sample_rate))
        return self.streams[-1]


def interrupt(tmp_path: Path, resumes: bool) -> tuple[RecordingSink, EventLog]:
    cfg = parse_config(f"""
engines: {{zh: {{type: embedded-zh}}}}
speakers: {{hall: {{type: file, directory: {tmp_path}/hall}}}}
defaults: {{targets: [hall], chime: false}}
spool: {{path: {tmp_path}/spool.sqlite3}}
cache: {{enabled: false}}
""")
    sink = RecordingSink("hall", cfg.speakers["hall"], resumes)
    log = EventLog()
    events = EventBus()
    events.subscribe(log)
    spool = Spool(cfg.spool.path)
    sched = Scheduler(Runtime(cfg, make_synthesizer(cfg), {"hall": sink}, ChimeLibrary()), spool, events)
    sched.start()
    try:
        for raw in ({"text": LONGER, "id": "long"}, {"text": "着火了。", "id": "fire", "priority": "emergency"}):
            ann = build(raw, cfg)
            assert spool.add(ann)
            sched.submit(ann)
            if raw["id"] == "long":
                log.wait("started", "long", "hall")
        sink.gate.set()
        log.wait("finished", "fire", "hall")
        sched.stop()
        assert sched.wait_idle(30)
    finally:
        sink.gate.set()
        sched.shutdown(10)
        spool.close()
    states = [(e["state"], e["id"]) for e in log.events if e.get("speaker") == "hall"]
    assert states[:4] == [("started", "long"), ("interrupted", "long"), ("started", "fire"), ("finished", "fire")]
    return sink, log


def test_the_emergency_goes_on_in_the_interrupted_stream(tmp_path: Path) -> None:
    sink, _ = interrupt(tmp_path, resumes=True)
    stream = sink.streams[0]
    assert stream.anns == ["long", "fire"] and stream.ended == "closed"  # never aborted, closed by "fire"
    long_parts = [s for a, s in stream.writes if a == "long"]
    fade = long_parts[-1]  # the fade-out: the next 50 ms of "long", ramped to silence
    assert len(fade) <= round(FADE_OUT_SECONDS * stream.rate) and abs(fade[-1]) < 1e-3
    assert [a for a, _ in stream.writes] == ["long"] * len(long_parts) + ["fire"] * (
        len(stream.writes) - len(long_parts)
    )


def test_a_stream_that_cannot_resume_is_aborted(tmp_path: Path) -> None:
    sink, _ = interrupt(tmp_path, resumes=False)
    first, second = sink.streams[:2]
    assert first.anns == ["long"] and first.ended == "aborted"
    assert second.anns == ["fire"] and second.ended == "closed"
    wait_until(lambda: all(s.ended for s in sink.streams))
