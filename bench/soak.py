"""Soak: every fault of the reliability suite, mixed, for N minutes; then the accounting.

    .venv/bin/python bench/soak.py --minutes 30 [--seed S] [--keep DIR]

Not part of ``make test`` or ``python -m bench`` (it runs as long as you ask): run it on
the machine you are about to deploy to, with nothing else busy. It sets up what the
reliability suite uses (``tests/reliability``): a mosquitto that persists after every
change, the real daemon with the embedded voice behind a TCP proxy that can cut the
line without a FIN, two file speakers, an MQTT speaker and two real-time ALSA devices
(``tests/alsa.FifoSpeakers``; no sound card needed). Announcements (all priorities, a
fifth with a ``ttl``) and invalid payloads (each with an id, invalid for a known
reason) arrive at random; every 20-60 s a fault, chosen at random (seeded):

* ``broker-kill``: mosquitto SIGKILLed, down 0.2-2 s;
* ``daemon-kill``: the daemon SIGKILLed and started again at once;
* ``net-cut``: the daemon's line blackholed for 1-30 s;
* ``unplug``: a real-time speaker's device pulled out for 5-20 s;
* ``burst``: 60 announcements at once and an emergency.

At the end the publisher resends, with the same id, what the daemon never confirmed
(``queued`` or ``rejected``: mosquitto acknowledges a publish before it writes it to
disk, so a killed broker can lose one), waits until everything has an outcome and
prints the same accounting as the suite: sent = played + expired + shed + rejected +
failed, lost, replays (only the announcement each daemon kill cut off may play twice),
invalid payloads each answered by ``rejected``, and the daemon's memory. Exit status 0
when the promise held, 1 when it did not (the reasons are printed).
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "tests"), str(ROOT / "tests" / "reliability")]

from alsa import FifoSpeakers  # noqa: E402
from broker import DURABLE_CONF, Broker, find_mosquitto  # noqa: E402
from corpus import corpus_rows  # noqa: E402
from daemon_proc import DaemonProc, EventLog, Events  # noqa: E402
from ledger import Ledger, parse_log, proc_mib, replays  # noqa: E402
from netproxy import CutProxy  # noqa: E402
from publisher import Publisher, warm_up  # noqa: E402

TARGETS = {"a": ("a",), "b": ("b",), "files": ("a", "b"), "p1": ("p1",), "p2": ("p2",), "live": ("p1", "p2")}
PRIORITIES = ("low", "low", "normal", "normal", "normal", "high")
FAULTS = ("broker-kill", "daemon-kill", "net-cut", "unplug", "burst")
# invalid on purpose, each for a reason the daemon must name (the id lets us match its answer)
INVALID: tuple[dict[str, Any], ...] = (
    {"text": ""},
    {"text": 42},
    {"text": "请注意。", "priority": "urgent"},
    {"text": "请注意。", "volume": 1.5},
    {"text": "请注意。", "ttl": -1},
    {"text": "请注意。", "targets": "nowhere"},
    {"text": "请注意。", "repeat": "x"},
    {"text": "请" * 450},  # over max_text_chars (400 here), under max_payload_bytes: the id is readable
    {"text": "请注意。", "chime": {"a": 1}},
    {"text": "\x00\x01\x02"},
)


def log(msg: str) -> None:
    print(f"[soak {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


class Soak:
    def __init__(self, work: Path, minutes: float, seed: int) -> None:
        self.rng = random.Random(seed)
        self.seed = seed
        self.minutes = minutes
        self.texts = [text for _e, _p, text in corpus_rows()]
        binary = find_mosquitto()
        if binary is None:
            raise SystemExit("mosquitto is not installed: run scripts/install-system-deps.sh")
        self.broker = Broker(work / "mosquitto", binary, extra_conf=DURABLE_CONF).start()
        self.proxy = CutProxy((self.broker.host, self.broker.port))
        self.fifo = FifoSpeakers(work / "fifo", count=2)
        for r in self.fifo.readers.values():
            r.pace(None)
        self.daemon = DaemonProc(
            self.broker,
            work / "daemon",
            work / "cache",
            env=self.fifo.env,
            speakers={
                "p1": self.fifo.speaker_yaml(1, stall_timeout=5),
                "p2": self.fifo.speaker_yaml(2, stall_timeout=5),
            },
            limits={"per_minute": 150, "max_queue": 8},
            mqtt={"host": "127.0.0.1", "port": self.proxy.port, "keepalive": 5},
        )
        self.daemon.patch_config({"zones": {name: list(spk) for name, spk in TARGETS.items() if len(spk) > 1}})
        self.events = EventLog(self.broker, self.daemon.topic("events"))
        self.ledger = Ledger(f"soak {minutes:g} min")
        self.invalid: dict[str, dict[str, Any]] = {}
        self.bodies: dict[str, dict[str, Any]] = {}  # what was sent under each id, for a resend
        self.faults: Counter[str] = Counter()
        self.rss: list[float] = []
        self.pub: Publisher | None = None
        self._stop = threading.Event()
        self._lock = threading.Lock()  # one publisher call at a time (traffic and bursts)
        self._n = 0

    # ---- traffic ------------------------------------------------------------------------
    def _next_id(self, tag: str) -> str:
        self._n += 1
        return f"soak-{self._n:06d}-{tag}"

    def announce(self, priority: str | None = None) -> None:
        priority = priority or self.rng.choice(PRIORITIES)
        target = "live" if priority == "emergency" else self.rng.choice(tuple(TARGETS))
        ann_id = self._next_id(priority)
        body: dict[str, Any] = {
            "id": ann_id,
            "text": self.rng.choice(self.texts),
            "priority": priority,
            "targets": target,
        }
        if priority != "emergency" and self.rng.random() < 0.2:
            body["ttl"] = 20
        self.ledger.sent_one(ann_id, priority=priority, speakers=TARGETS[target])
        self.bodies[ann_id] = body
        self._send(body)

    def garbage(self) -> None:
        ann_id = self._next_id("invalid")
        body = {"id": ann_id, **self.rng.choice(INVALID)}
        self.invalid[ann_id] = self.bodies[ann_id] = body
        self._send(body)

    def _send(self, body: dict[str, Any]) -> None:
        assert self.pub is not None
        with self._lock:
            self.pub.send_json(self.daemon.topic("say"), body, timeout=600)

    def _traffic(self) -> None:
        while not self._stop.wait(self.rng.uniform(0.2, 1.2)):
            if self.rng.random() < 0.15:
                self.garbage()
            else:
                self.announce("emergency" if self.rng.random() < 0.02 else None)

    # ---- faults -------------------------------------------------------------------------
    def fault(self, kind: str) -> None:
        self.faults[kind] += 1
        log(f"fault {kind}")
        if kind == "broker-kill":
            self.broker.kill()
            time.sleep(self.rng.uniform(0.2, 2.0))
            self.broker.start()
        elif kind == "daemon-kill":
            self.daemon.kill()
            self.daemon.spawn()
        elif kind == "net-cut":
            self.proxy.blackhole()
            time.sleep(self.rng.uniform(1.0, 30.0))
            self.proxy.restore()
        elif kind == "unplug":
            i = self.rng.choice((1, 2))
            self.fifo.unplug(i)
            time.sleep(self.rng.uniform(5.0, 20.0))
            self.fifo.plug(i).pace(1.0)
        elif kind == "burst":
            for _ in range(60):
                self.announce()
            self.announce("emergency")

    # ---- the run ------------------------------------------------------------------------
    def run(self) -> int:
        d = self.daemon
        d.start()
        self.pub = Publisher(self.broker)
        log("warming the clause cache")
        warm_up(self.pub, d, self.texts, "files", ("a", "b"))
        for r in self.fifo.readers.values():
            r.pace(1.0)
        rss_start = proc_mib(d.proc.pid) if d.proc else 0.0
        traffic = threading.Thread(target=self._traffic, daemon=True)
        traffic.start()
        end = time.monotonic() + self.minutes * 60
        next_sample = 0.0
        next_fault = time.monotonic() + self.rng.uniform(20, 60)
        while time.monotonic() < end:
            now = time.monotonic()
            if now >= next_sample and d.proc is not None:
                try:
                    self.rss.append(proc_mib(d.proc.pid))
                except (OSError, KeyError):
                    pass
                next_sample = now + 5
            if now >= next_fault:
                self.fault(self.rng.choice(FAULTS))
                next_fault = time.monotonic() + self.rng.uniform(20, 60)
            time.sleep(0.5)
        self._stop.set()
        traffic.join(700)
        log("traffic stopped; confirming and draining")
        self.confirm()
        settled = self.settle(timeout=600)
        return self.report(rss_start, settled)

    def confirm(self) -> None:
        """Resend (same id) what the daemon never answered: the broker may have lost it."""
        events = Events(self.events.messages)
        for _attempt in range(3):
            time.sleep(5.0)
            answered = {e["id"] for e in events.all() if e.get("state") in ("queued", "rejected")}
            missing = [i for i in self.bodies if i not in answered]
            self.faults["resent-unconfirmed"] += len(missing)
            for ann_id in missing:
                log(f"resending {ann_id}: no queued or rejected event for it")
                self._send(self.bodies[ann_id])
            if not missing:
                return

    def settle(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while self.ledger.figures(self.daemon.log()).lost:
            if time.monotonic() > deadline:
                return False
            time.sleep(1.0)
        time.sleep(2.0)
        return True

    def report(self, rss_start: float, settled: bool) -> int:
        d = self.daemon
        text = d.log()
        events = parse_log(text)
        cut_off, broken = replays(events, self.ledger.sent)
        answered = {e.id for e in events if e.state == "rejected"}
        unanswered = sorted(set(self.invalid) - answered)
        rss_end = proc_mib(d.proc.pid) if d.proc else 0.0
        peak = proc_mib(d.proc.pid, "VmHWM") if d.proc else 0.0
        fig = self.ledger.figures(
            text,
            seed=self.seed,
            faults=dict(self.faults),
            runs=d.starts,
            invalid_sent=len(self.invalid),
            invalid_unanswered=len(unanswered),
            replays_cut_off=sum(len(v) for v in cut_off.values()),
            replays_broken=len(broken),
            rss_mib=f"{rss_start:.0f}->{rss_end:.0f}",
            rss_sampled_max_mib=round(max(self.rss, default=0.0)),
            peak_rss_mib=round(peak),
            tracebacks=text.count("Traceback"),
        )
        Ledger.print(fig)
        problems = []
        if not settled or fig.lost:
            problems.append(f"lost (no outcome on some speaker): {fig.lost[:20]}")
        if fig.sent != fig.played + fig.expired + fig.shed + fig.rejected + fig.failed + fig.cancelled:
            problems.append("the accounting does not add up")
        if broken:
            problems.append(f"played twice, not the one a kill cut off: {broken[:10]}")
        if unanswered:
            problems.append(f"invalid payloads without a rejected event: {unanswered[:10]}")
        if fig.extra["tracebacks"]:
            problems.append("tracebacks in the daemon log")
        if not d.running:
            problems.append("the daemon is not running")
        for p in problems:
            print(f"[soak] FAIL: {p}", flush=True)
        print(f"[soak] {'FAIL' if problems else 'OK'}: {json.dumps(fig.extra, ensure_ascii=False)}", flush=True)
        return 1 if problems else 0

    def close(self) -> None:
        for closer in (self.events.close, self.daemon.close, self.proxy.close, self.broker.close, self.fifo.close):
            try:
                closer()
            except Exception as exc:  # clean-up only: report, go on
                log(f"clean-up: {exc}")
        if self.pub is not None:
            self.pub.close()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="bench/soak.py", description=__doc__.split("\n\n")[0])
    ap.add_argument("--minutes", type=float, default=10.0, help="how long to inject faults (default 10)")
    ap.add_argument("--seed", type=int, default=None, help="random seed (default: random, printed)")
    ap.add_argument("--keep", type=Path, default=None, help="work directory to keep (logs, spool, WAVs)")
    args = ap.parse_args(argv)
    seed = args.seed if args.seed is not None else random.randrange(1 << 30)
    work = args.keep or Path(tempfile.mkdtemp(prefix="announcer-soak-"))
    work.mkdir(parents=True, exist_ok=True)
    log(f"seed {seed}, {args.minutes:g} min, work dir {work}")
    soak = Soak(work, args.minutes, seed)
    try:
        return soak.run()
    finally:
        soak.close()
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
