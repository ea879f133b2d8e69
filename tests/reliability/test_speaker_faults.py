"""Reliability: one speaker's device fails mid-announcement (issue 10, item 6).

Zone ``pair`` = ``good`` and ``bad``, two ``sounddevice`` speakers on real PortAudio/ALSA
devices that play in real time (``alsa.FifoSpeakers``: ALSA ``file`` PCMs writing into
FIFOs that readers drain at 1x), plus the file speaker ``a``. Every announcement goes to
the zone; ``bad``'s device fails the way real devices fail, in two phases of one run:

* **error** (a USB speaker pulled out): the device node goes away and the write in progress
  fails (``FifoSpeakers.unplug``: the reader closes, the writer gets EPIPE, PortAudio raises
  "Unanticipated host error"); the next announcement fails at its first write (the device
  cannot be written). Plugged back in, the next one plays.
* **hang** (a device that stops taking samples): the reader pauses; PortAudio's write blocks
  for real inside ALSA. ``bad`` has ``stall_timeout: 2``: the announcement fails with an
  error after that, one sent while the device still hangs fails at once, and once the device
  takes samples again the stuck write returns and the next announcement plays.

Asserted: ``good`` and ``a`` finish everything, ``good`` on its own pace (how far its
``finished`` lags ``started`` + audio, compared with the fault-free first announcement on
the same device); ``bad`` reports ``failed`` with an ``error`` naming the fault for every
announcement it could not play and ``finished`` after recovery; no restart, no traceback;
the ledger has every (announcement, speaker) terminal: nothing lost, nothing duplicated.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from alsa import FifoSpeakers
from broker import Broker
from daemon_proc import DaemonProc, EventLog, Events, new_id, unique_text
from ledger import Ledger

pytestmark = pytest.mark.timeout(150)

STALL_TIMEOUT = 2.0  # bad's stall_timeout (the default is 10 s)
SPEAKERS = ("good", "bad", "a")
LAG_SLACK = 1.0  # good may lag at most this much more than without a fault (s)


@pytest.fixture
def fifo(tmp_path: Path) -> Iterator[FifoSpeakers]:
    f = FifoSpeakers(tmp_path / "alsa", count=2)
    for reader in f.readers.values():
        reader.pace(1.0)
    yield f
    f.close()


@pytest.fixture
def daemon(durable_broker: Broker, tmp_path: Path, announcer_cache: Path, fifo: FifoSpeakers) -> Iterator[DaemonProc]:
    d = DaemonProc(
        durable_broker,
        tmp_path / "d",
        announcer_cache,
        env=fifo.env,
        speakers={"good": fifo.speaker_yaml(1), "bad": fifo.speaker_yaml(2, stall_timeout=STALL_TIMEOUT)},
        defaults={"targets": ["pair"], "chime": False},
    )
    d.patch_config({"zones": {"pair": list(SPEAKERS)}})
    yield d
    d.close()


def epoch(event: dict[str, Any]) -> float:
    return datetime.fromisoformat(event["ts"].replace("Z", "+00:00")).timestamp()


class Run:
    """Sends to the zone, records in the ledger, reads the outcomes per speaker."""

    def __init__(self, broker: Broker, daemon: DaemonProc, events: Events, ledger: Ledger, fifo: FifoSpeakers) -> None:
        self.client = broker.client()
        self.d = daemon
        self.events = events
        self.ledger = ledger
        self.fifo = fifo

    def say(self, tag: str, units: int) -> str:
        ann_id = new_id(tag)
        self.ledger.sent_one(ann_id, speakers=SPEAKERS)
        self.client.publish_json(self.d.topic("say"), {"id": ann_id, "text": unique_text(units)})
        return ann_id

    def outcome(self, ann_id: str, speaker: str, timeout: float = 40.0) -> dict[str, Any]:
        return self.events.wait_done([ann_id], (speaker,), timeout=timeout)[(ann_id, speaker)]

    def devices_idle(self, timeout: float = 10.0) -> None:
        """Until both devices have played out what they were given (their FIFOs stay empty)."""
        deadline = time.monotonic() + timeout
        while True:
            before = [r.bytes for r in self.fifo.readers.values()]
            time.sleep(0.3)
            if [r.bytes for r in self.fifo.readers.values()] == before:
                return
            assert time.monotonic() < deadline, "the devices did not go idle"

    def pair(self, tag: str, fault: Callable[[], None] | None = None) -> tuple[str, str, float | None]:
        """Two announcements back to back on idle devices, ``fault`` hitting bad 2 s into the first.

        Returns both ids and how long after the fault bad reported the first one ``failed``.
        """
        self.devices_idle()
        first = self.say(tag, 2)
        self.events.wait(first, "started", "bad", timeout=30)
        time.sleep(2.0)
        detect = None
        if fault is not None:
            t_fault = time.time()
            fault()
            failed = self.outcome(first, "bad", timeout=STALL_TIMEOUT + 10)
            detect = epoch(failed) - t_fault
        return first, self.say(f"{tag}-next", 1), detect

    def lag(self, first: str, second: str, speaker: str = "good") -> float:
        """How far the second one's ``finished`` came after the first one's ``started`` plus both
        audio durations (s): a device's pace over the two, the same with and without a fault."""
        started = self.events.wait(first, "started", speaker)
        durations = sum(float(self.events.wait(i, "finished", speaker)["duration_s"]) for i in (first, second))
        return epoch(self.events.wait(second, "finished", speaker)) - epoch(started) - durations

    def all_finished(self, ann_id: str) -> None:
        self.events.wait_done([ann_id], SPEAKERS, timeout=40)
        assert {self.outcome(ann_id, s)["state"] for s in SPEAKERS} == {"finished"}, self.events.dump()

    def failed_on_bad_only(self, ann_id: str, needle: str) -> dict[str, Any]:
        failed = self.outcome(ann_id, "bad")
        assert failed["state"] == "failed" and needle in failed.get("error", ""), failed
        for s in ("good", "a"):
            assert self.outcome(ann_id, s)["state"] == "finished", self.events.dump()
        return failed


def test_a_failing_device_does_not_delay_the_others_and_recovers(
    durable_broker: Broker, daemon: DaemonProc, fifo: FifoSpeakers
) -> None:
    t_begin = time.monotonic()
    log = EventLog(durable_broker, daemon.topic("events"))
    events = Events(log.messages)
    ledger = Ledger("speaker faults")
    run = Run(durable_broker, daemon, events, ledger, fifo)
    try:
        daemon.start()

        # -- no fault: everything plays; good's pace over two announcements
        b1, b2, _ = run.pair("base")
        for ann_id in (b1, b2):
            run.all_finished(ann_id)
        base_lag = run.lag(b1, b2)

        # -- error: bad's device is pulled out while it plays; the next one fails at its first write
        e1, e2, error_detect = run.pair("unplug", lambda: fifo.unplug(2))
        for ann_id in (e1, e2):
            run.failed_on_bad_only(ann_id, "annfifo2")  # the error names the device
        error_lag = run.lag(e1, e2)
        fifo.plug(2).pace(1.0)  # back: the next announcement plays there again
        run.all_finished(run.say("replugged", 1))

        # -- hang: bad's device stops taking samples while it plays; the next one fails at once
        h1, h2, hang_detect = run.pair("hang", fifo.readers[2].pause)
        for ann_id in (h1, h2):
            run.failed_on_bad_only(ann_id, "stalled")
        assert hang_detect is not None and hang_detect < STALL_TIMEOUT + 3.0, hang_detect
        hang_lag = run.lag(h1, h2)
        mark = len(daemon.this_run_log())
        fifo.readers[2].pace(1.0)  # the device takes samples again: the stuck write returns
        daemon.wait_log("speaker bad: the output takes audio again", timeout=10, after=mark)
        run.all_finished(run.say("unhung", 1))

        # -- accounting: every announcement has an outcome on every speaker; the daemon stayed up
        assert daemon.running and daemon.starts == 1, daemon.log_tail()
        fig = ledger.figures(
            daemon.log(),
            error_detect_ms=round((error_detect or 0) * 1000),
            hang_detect_ms=round(hang_detect * 1000),
            good_lag_ms=f"{base_lag * 1000:.0f}/{error_lag * 1000:.0f}/{hang_lag * 1000:.0f}",
            runtime_s=round(time.monotonic() - t_begin, 1),
        )
        Ledger.print(fig)
        assert fig.lost == [] and fig.duplicated == {}, fig.line()
        assert fig.played == 4 and fig.failed == 4, fig.line()
        bad_failed = events.all(state="failed")
        assert sorted(e["id"] for e in bad_failed) == sorted([e1, e2, h1, h2]), events.dump()
        assert all(e["speaker"] == "bad" and e.get("error") for e in bad_failed), events.dump()
        assert error_lag - base_lag < LAG_SLACK and hang_lag - base_lag < LAG_SLACK, fig.line()
        assert daemon.stop() == 0, daemon.log_tail()
        assert "Traceback" not in daemon.log(), daemon.log_tail(80)
    finally:
        log.close()
