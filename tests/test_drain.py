"""SIGTERM drains: a playing ``high``/``emergency`` announcement finishes (bounded by
``shutdown.drain_timeout``), a playing ``normal`` one stops at once with a short fade;
whatever did not finish stays pending in the spool (the lifecycle tests cover the resume).

Playback must take real time for this to mean anything, so the speaker is a PortAudio
device on an ALSA ``file`` PCM writing into a FIFO that the test drains at real-time
pace (``alsa.FifoSpeakers``; the ALSA ``null`` device alone does not run in
real time).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from alsa import FifoSpeakers
from broker import Broker
from daemon_proc import DaemonProc, Events, new_id, unique_text  # noqa: F401

from announcer.spool.store import Spool

pytestmark = pytest.mark.timeout(150)


@pytest.fixture
def stack(
    shared_broker: Broker,
    tmp_path: Path,
    announcer_cache: Path,  # noqa: F811
) -> Iterator[Any]:
    made: list[tuple[DaemonProc, FifoSpeakers]] = []

    def make(drain_timeout: float = 20.0, speed: float | None = 1.0) -> tuple[DaemonProc, FifoSpeakers, Events]:
        fifo = FifoSpeakers(tmp_path / f"alsa{len(made)}", count=1)
        fifo.readers[1].pace(speed)
        d = DaemonProc(
            shared_broker,
            tmp_path / f"d{len(made)}",
            announcer_cache,
            env=fifo.env,
            speakers={"slow": fifo.speaker_yaml(1)},
            sections=f"shutdown: {{drain_timeout: {drain_timeout}}}\n",
        )
        made.append((d, fifo))
        events = Events(shared_broker.client().collect(d.topic("events")))
        d.start()
        return d, fifo, events

    yield make
    for d, fifo in made:
        d.close()
        fifo.close()


def pending(d: DaemonProc) -> dict[str, tuple[str, ...]]:
    spool = Spool(d.spool_path)
    try:
        return {ann.id: speakers for ann, speakers in spool.pending()}
    finally:
        spool.close()


def publish(d: DaemonProc, ann_id: str, priority: str, units: int) -> None:
    d.broker.client().publish_json(
        d.topic("say", "slow"), {"id": ann_id, "text": unique_text(units), "priority": priority, "chime": False}
    )


def test_high_finishes_on_sigterm_and_what_waits_stays_in_the_spool(stack: Any) -> None:
    d, _fifo, events = stack()
    high, waiting = new_id("high"), new_id("waits")
    publish(d, high, "high", 2)  # about 9 s of speech, played in real time
    events.wait(high, "started", "slow", timeout=30)
    publish(d, waiting, "normal", 1)
    events.wait(waiting, "queued", timeout=10)
    time.sleep(1.0)
    t0 = time.monotonic()
    assert d.stop(timeout=40) == 0, d.log_tail()
    took = time.monotonic() - t0
    finished = events.wait(high, "finished", "slow", timeout=5)
    assert finished["duration_s"] > 6.0, finished
    assert took > 3.0, f"exited after {took:.1f} s: the high announcement cannot have played to its end"
    assert "draining: letting" in d.log() and f"{high} (high) on slow" in d.log(), d.log_tail()
    assert not events.all(waiting, "started") and not events.all(waiting, "cancelled")
    left = pending(d)
    assert high not in left, left
    assert left.get(waiting) == ("slow",), left


def test_normal_stops_at_once_and_stays_in_the_spool(stack: Any) -> None:
    d, _fifo, events = stack()
    normal = new_id("normal")
    publish(d, normal, "normal", 2)
    events.wait(normal, "started", "slow", timeout=30)
    time.sleep(1.0)
    t0 = time.monotonic()
    assert d.stop(timeout=30) == 0, d.log_tail()
    assert time.monotonic() - t0 < 8.0, d.log_tail()
    stopped = events.wait(normal, "interrupted", "slow", timeout=5)
    assert stopped.get("reason") == "shutdown", stopped
    assert not events.all(normal, "finished")
    assert pending(d).get(normal) == ("slow",)
    assert "draining" not in d.log()


def test_drain_is_bounded_by_drain_timeout(stack: Any) -> None:
    d, _fifo, events = stack(drain_timeout=2.0, speed=0.5)  # the speaker plays at half speed: cannot finish
    alarm = new_id("alarm")
    publish(d, alarm, "emergency", 3)
    events.wait(alarm, "started", "slow", timeout=30)
    t0 = time.monotonic()
    assert d.stop(timeout=30) == 0, d.log_tail()
    took = time.monotonic() - t0
    assert 2.0 <= took < 12.0, f"{took:.1f} s\n{d.log_tail()}"
    assert "did not finish within 2 s; stopped (it stays in the spool)" in d.log(), d.log_tail()
    assert events.wait(alarm, "interrupted", "slow", timeout=5).get("reason") == "shutdown"
    assert pending(d).get(alarm) == ("slow",)
    assert "Traceback" not in d.log(), d.log_tail(80)
