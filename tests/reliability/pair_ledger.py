"""The accounting of an active/standby pair: two daemon logs, one set of announcements.

Both members log every state change of what they play (``announcer.events``), and the member
that takes the lead logs ``pair: <me> leads now (epoch N); resumed K announcement(s) ...``.
``PairLedger`` merges the two logs and checks the pair's promise for every announcement sent:

* **played once across the pair**: ``finished`` on its speaker by one of the members;
* **at most the cut-off one replayed**: an announcement started more than once (emergency
  replays within a run, ``replay=True``, aside) is allowed only when a takeover came between
  two of its starts and it was the last announcement the earlier member started before that
  takeover (still playing, or finished but its ``finished`` not out yet when the member died or
  lost its link): one per takeover and speaker;
* **one member at a time** (``overlaps``): the time spans in which the two members played
  (``started`` to its end, or the end of a killed run) overlap only for such a cut-off one.
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime

from ledger import LogEvent, parse_log

_TS = r"(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3})"
_TAKEOVER = re.compile(
    _TS + r" \w+ announcer\.integrations\.pair\.member: pair: (\S+) leads now \(epoch (\d+)\); resumed"
)
_LINE_TS = re.compile(r"^" + _TS + " ")


def _ts(stamp: str) -> float:
    return datetime.strptime(stamp, "%Y-%m-%d %H:%M:%S,%f").timestamp()


@dataclass(frozen=True)
class Start:
    member: str
    run: int
    ts: float
    end: float  # its terminal or interrupted event in that run, or the run's last line (killed)


@dataclass
class PairFigures:
    sent: int
    played: int
    lost: list[str]
    replayed: dict[str, int]  # id -> starts beyond the first (allowed ones)
    broken: list[str]  # ids started again without a takeover to explain it
    takeovers: list[tuple[float, str, int]]  # (when, member, epoch)
    overlaps: list[tuple[str, str]]  # (id of member 1's span, id of member 2's span) that overlap
    extra: dict[str, object] = field(default_factory=dict)

    def line(self) -> str:
        parts = [
            f"sent={self.sent}",
            f"played={self.played}",
            f"lost={len(self.lost)}",
            f"replayed={sum(self.replayed.values())}",
            f"broken={len(self.broken)}",
            f"takeovers={len(self.takeovers)}",
            f"overlaps={len(self.overlaps)}",
        ] + [f"{k}={v}" for k, v in self.extra.items()]
        return "[reliability] pair failover: " + " ".join(parts)


class PairLedger:
    def __init__(self, speaker: str = "a") -> None:
        self.speaker = speaker
        self.sent: list[str] = []

    def sent_one(self, ann_id: str) -> None:
        self.sent.append(ann_id)

    @staticmethod
    def takeovers(logs: dict[str, str]) -> list[tuple[float, str, int]]:
        out = []
        for text in logs.values():
            for line in text.splitlines():
                m = _TAKEOVER.match(line)
                if m:
                    out.append((_ts(m.group(1)), m.group(2), int(m.group(3))))
        return sorted(out)

    def figures(self, logs: dict[str, str]) -> PairFigures:
        """``logs``: member -> its daemon log (all runs)."""
        wanted = set(self.sent)
        starts: dict[str, list[Start]] = defaultdict(list)
        finished: set[str] = set()
        per_member_starts: dict[str, list[tuple[float, str]]] = defaultdict(list)  # member -> (ts, id)
        for member, text in logs.items():
            events = parse_log(text)
            ends = _run_ends(text)
            for i, e in enumerate(events):
                if e.speaker != self.speaker or e.id not in wanted:
                    continue
                if e.state == "finished":
                    finished.add(e.id)
                if e.state == "started" and e.fields.get("replay") != "True":
                    end = _end_of(events, i, ends.get(e.run, e.ts))
                    starts[e.id].append(Start(member, e.run, e.ts, end))
                    per_member_starts[member].append((e.ts, e.id))
        takeovers = self.takeovers(logs)
        replayed: dict[str, int] = {}
        broken: list[str] = []
        for ann_id, ss in starts.items():
            ss.sort(key=lambda s: s.ts)
            ok = True
            for a, b in zip(ss, ss[1:]):
                between = [t for t, m, _ in takeovers if a.ts < t <= b.ts + 0.001]
                last_before = [
                    i for ts, i in per_member_starts[a.member] if between and ts <= between[0]
                ]  # what a's member started before the (first) takeover after it
                if not between or not last_before or last_before[-1] != ann_id:
                    ok = False
            if len(ss) > 1 and ok:
                replayed[ann_id] = len(ss) - 1
            elif len(ss) > 1:
                broken.append(ann_id)
        spans = [(s.member, ann_id, s.ts, s.end) for ann_id, ss in starts.items() for s in ss]
        overlaps = [(i1, i2) for m1, i1, t1, e1 in spans for m2, i2, t2, e2 in spans if m1 < m2 and t1 < e2 and t2 < e1]
        return PairFigures(
            sent=len(self.sent),
            played=len(finished),
            lost=[i for i in self.sent if i not in finished],
            replayed=replayed,
            broken=broken,
            takeovers=takeovers,
            overlaps=overlaps,
        )


def _run_ends(text: str) -> dict[int, float]:
    """The time of the last line of each run (``==== start N ====``) of a log."""
    run, ends = 0, {}
    for line in text.splitlines():
        if line.startswith("==== start "):
            run = int(line.split()[2])
            continue
        m = _LINE_TS.match(line)
        if m:
            ends[run] = _ts(m.group(1))
    return ends


def _end_of(events: list[LogEvent], i: int, run_end: float) -> float:
    """When the start ``events[i]`` stopped playing: its next event on that speaker in that run."""
    e = events[i]
    for later in events[i + 1 :]:
        if later.run != e.run:
            break
        if later.id == e.id and later.speaker == e.speaker and later.state != "started":
            return later.ts
    return run_end
