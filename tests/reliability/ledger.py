"""The delivery accounting of the reliability suite: what was sent, and what became of it.

The daemon logs one line per announcement state change (``announcer.events: <id> <state>
speaker=... latency_ms=...``), written before the event is published, into its
``daemon.log`` (one file across restarts, each start marked ``==== start N ====``). That
log survives a SIGKILL of the daemon and of the broker, so it is the ground truth of what
was *played* (``finished`` per speaker); MQTT events are what users see and are checked
by the tests where the broker stays up.

``Ledger`` records each announcement the test sends (id, priority, speakers, wall-clock
send time), parses the log into ``LogEvent`` s and reports the figures every test prints:
sent, played, lost, duplicated, expired, shed, rejected, max latency::

    ledger = Ledger("broker restarts")
    ledger.sent_one("r-1", priority="normal", speakers=["a"])
    ...
    fig = ledger.figures(daemon.log())
    ledger.print(fig)            # one line, on stdout (pytest -s or the captured output)
    assert fig.lost == [] and fig.duplicated == {}
"""

from __future__ import annotations

import re
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

_START = re.compile(r"^==== start (\d+) ====$")
_EVENT = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) \w+ announcer\.events: (\S+) (\w+)(?: (.*))?$")
_FIELD_SPLIT = re.compile(r" (?=\w+=)")  # "speaker=a reason=queue full error=..." -> fields


@dataclass(frozen=True)
class LogEvent:
    run: int  # which start of the daemon logged it (1, 2, ...)
    ts: float  # epoch seconds (the log's local time)
    id: str
    state: str
    speaker: str | None
    fields: dict[str, str]


def parse_log(text: str) -> list[LogEvent]:
    """Every announcement event in a daemon log, in log order."""
    run = 0
    out: list[LogEvent] = []
    for line in text.splitlines():
        m = _START.match(line)
        if m:
            run = int(m.group(1))
            continue
        m = _EVENT.match(line)
        if not m:
            continue
        ts = datetime.strptime(m.group(1), "%Y-%m-%d %H:%M:%S,%f").timestamp()
        fields = dict(f.split("=", 1) for f in _FIELD_SPLIT.split(m.group(4) or "") if "=" in f)
        out.append(LogEvent(run, ts, m.group(2), m.group(3), fields.get("speaker"), fields))
    return out


@dataclass
class Sent:
    id: str
    priority: str
    speakers: tuple[str, ...]
    at: float  # epoch seconds when the test published it (first attempt)
    seq: int  # order of sending


@dataclass
class Figures:
    name: str
    sent: int
    played: int  # announcements finished on every speaker they were for
    lost: list[str]  # ids with no terminal outcome on some speaker
    duplicated: dict[tuple[str, str], int]  # (id, speaker) -> times started, when > 1
    expired: int
    shed: int  # cancelled with reason "queue full"
    cancelled: int  # cancelled for another reason (a stop)
    rejected: int
    failed: int
    max_latency_ms: float  # send -> first ``started``, over announcements that started
    p50_latency_ms: float
    extra: dict[str, Any] = field(default_factory=dict)

    def line(self) -> str:
        dup = sum(n - 1 for n in self.duplicated.values())
        parts = [
            f"sent={self.sent}",
            f"played={self.played}",
            f"lost={len(self.lost)}",
            f"duplicated={dup}",
            f"expired={self.expired}",
            f"shed={self.shed}",
            f"cancelled={self.cancelled}",
            f"rejected={self.rejected}",
            f"failed={self.failed}",
            f"latency_ms(p50/max)={self.p50_latency_ms:.0f}/{self.max_latency_ms:.0f}",
        ]
        parts += [f"{k}={v}" for k, v in self.extra.items()]
        return f"[reliability] {self.name}: " + " ".join(parts)


class Ledger:
    """What a test sent; ``figures()`` matches it against the daemon's log."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.sent: dict[str, Sent] = {}
        self._lock = threading.Lock()

    def sent_one(
        self, ann_id: str, *, priority: str = "normal", speakers: Iterable[str] = ("a",), at: float | None = None
    ) -> None:
        with self._lock:
            if ann_id not in self.sent:
                self.sent[ann_id] = Sent(
                    ann_id, priority, tuple(speakers), time.time() if at is None else at, len(self.sent)
                )

    def outcomes(self, events: list[LogEvent]) -> dict[tuple[str, str], list[LogEvent]]:
        """(id, speaker) -> that speaker's events for one of our announcements, in order."""
        out: dict[tuple[str, str], list[LogEvent]] = defaultdict(list)
        for e in events:
            if e.id in self.sent and e.speaker:
                out[(e.id, e.speaker)].append(e)
        return out

    def figures(self, log_text: str, **extra: Any) -> Figures:
        events = parse_log(log_text)
        by_pair = self.outcomes(events)
        by_id: dict[str, list[LogEvent]] = defaultdict(list)
        for e in events:
            if e.id in self.sent:
                by_id[e.id].append(e)
        played = expired = shed = cancelled = rejected = failed = 0
        lost: list[str] = []
        duplicated: dict[tuple[str, str], int] = {}
        latencies: list[float] = []
        for ann_id, s in self.sent.items():
            evs = by_id.get(ann_id, [])
            states = Counter(e.state for e in evs)
            if states["rejected"] and not states["queued"]:
                rejected += 1  # (a resend of an id already queued is rejected as "duplicate": not counted)
                continue
            if states["expired"] and not states["started"]:
                expired += 1
                continue
            starts = [e for e in evs if e.state == "started"]
            if starts:
                latencies.append((min(e.ts for e in starts) - s.at) * 1000.0)
            outcome: list[str] = []
            for spk in s.speakers:
                pair = by_pair.get((ann_id, spk), [])
                n_started = sum(1 for e in pair if e.state == "started")
                if n_started > 1:
                    duplicated[(ann_id, spk)] = n_started
                terminal = [e.state for e in pair if e.state in ("finished", "failed", "cancelled", "expired")]
                outcome.append(terminal[-1] if terminal else "")
                if terminal and terminal[-1] == "cancelled":
                    reasons = [e.fields.get("reason", "") for e in pair if e.state == "cancelled"]
                    outcome[-1] = "shed" if any("queue" in r for r in reasons) else "cancelled"
            if "" in outcome:
                lost.append(ann_id)
            elif all(o == "finished" for o in outcome):
                played += 1
            elif "shed" in outcome:
                shed += 1
            elif "failed" in outcome:
                failed += 1
            elif "expired" in outcome:
                expired += 1
            else:
                cancelled += 1
        latencies.sort()
        p50 = latencies[len(latencies) // 2] if latencies else 0.0
        return Figures(
            self.name,
            len(self.sent),
            played,
            lost,
            duplicated,
            expired,
            shed,
            cancelled,
            rejected,
            failed,
            latencies[-1] if latencies else 0.0,
            p50,
            dict(extra),
        )

    @staticmethod
    def print(fig: Figures) -> None:
        print(fig.line(), flush=True)

    def start_order(self, log_text: str, speaker: str, priority: str) -> list[str]:
        """Our ids of ``priority`` in the order they first started on ``speaker``."""
        seen: set[str] = set()
        out = []
        for e in parse_log(log_text):
            s = self.sent.get(e.id)
            if s and e.state == "started" and e.speaker == speaker and s.priority == priority and e.id not in seen:
                seen.add(e.id)
                out.append(e.id)
        return out

    def sent_order(self, priority: str) -> list[str]:
        return [s.id for s in sorted(self.sent.values(), key=lambda s: s.seq) if s.priority == priority]


def replays(
    events: list[LogEvent], ids: Iterable[str]
) -> tuple[dict[tuple[int, str], list[str]], list[tuple[str, str, list[int]]]]:
    """Announcements of ``ids`` started on a speaker in more than one run of the daemon.

    The contract allows one such replay per crash and speaker: the one the crash cut off,
    which is the last one that run started on that speaker (still playing, or finished
    but not yet recorded in the spool), or one an emergency had interrupted and that was
    waiting to play again. Replays after an emergency within a run (``replay=True``) are
    not counted. Returns ``({(run, speaker): [ids cut off by that run's end]},
    [(id, speaker, runs) that break the rule]]``.
    """
    wanted = set(ids)
    runs_of: dict[tuple[str, str], list[int]] = defaultdict(list)
    last_started: dict[tuple[int, str], str] = {}
    interrupted: set[tuple[str, str, int]] = set()
    for e in events:
        if e.id not in wanted or not e.speaker:
            continue
        if e.state == "interrupted":
            interrupted.add((e.id, e.speaker, e.run))
        elif e.state == "started" and e.fields.get("replay") != "True":
            runs_of[(e.id, e.speaker)].append(e.run)
            last_started[(e.run, e.speaker)] = e.id
    cut_off: dict[tuple[int, str], list[str]] = defaultdict(list)
    broken: list[tuple[str, str, list[int]]] = []
    for (ann_id, spk), runs in runs_of.items():
        if len(runs) == 1:
            continue
        if len(runs) == len(set(runs)) and all(
            last_started[(r, spk)] == ann_id or (ann_id, spk, r) in interrupted for r in runs[:-1]
        ):
            for r in runs[:-1]:
                cut_off[(r, spk)].append(ann_id)
        else:
            broken.append((ann_id, spk, runs))
    return dict(cut_off), broken


def proc_mib(pid: int, key: str = "VmRSS") -> float:
    """A memory field of ``/proc/<pid>/status`` in MiB (``VmRSS``: resident now, ``VmHWM``: peak)."""
    with open(f"/proc/{pid}/status", encoding="ascii") as fh:
        for line in fh:
            if line.startswith(key + ":"):
                return int(line.split()[1]) / 1024.0
    raise KeyError(key)
