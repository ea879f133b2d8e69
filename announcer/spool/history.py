"""The history: every announcement, where it came from and what each speaker did, kept ``history.days``.

Two tables in the spool database (schema 2, ``announcer.spool.store`` adds them to an older
spool when it opens it):

* ``history``: one row per announcement (and per rejected attempt): id, when it was
  received, its source (``mqtt``, ``http``, ``schedule``, ``hermes``, ``cli``) and ``via`` (the
  MQTT topic and the publisher's ``client`` user property, the HTTP token's name or JWT
  subject, the schedule), what it said (text, or template and variables, clips), targets,
  speakers, priority, and a summary ``state`` (as ``GET /announcements`` words it; ``mixed``
  when speakers ended differently), the ``error`` of a rejection;
* ``history_events``: every event of it as published on ``P/events``, with its time and
  speaker, so "what happened on speaker X and when" is answered from the record.

``HistoryRecorder`` is an ``EventBus`` listener. Rules:

* It never slows the intake: ``on_event`` only appends to a queue; a writer thread writes
  what has queued up (collecting for ``BATCH_DELAY`` first) in one transaction through the
  spool's lock, so the intake waits for at most one short transaction, and without an fsync
  of its own (the spool's next commit carries it to the disk: a power cut may lose the last
  moments of the record, never an announcement). Past ``MAX_PENDING`` queued
  events (a disk that stopped) the oldest are dropped, with one warning per burst.
* Pruning runs on the same thread every ``PRUNE_EVERY`` seconds: records older than
  ``days``, then the oldest beyond ``max_records`` (bounding the file), in transactions
  of ``PRUNE_BATCH`` records with a pause between them, so an intake commit waits at most
  for one small batch.
* A write that fails (disk full) is logged and dropped: the history is a record, the spool
  is what must not lose announcements.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from ..core.announcement import Announcement
from ..core.events import SPEAKER_TERMINAL, Event, Queued, Rejected

if TYPE_CHECKING:
    from .store import Spool

_LOGGER = logging.getLogger(__name__)

MAX_PENDING = 10_000  # events waiting for the writer
BATCH = 500  # events per write transaction
BATCH_DELAY = 0.1  # seconds the writer lets events gather before a transaction
PRUNE_EVERY = 3600.0
PRUNE_BATCH = 500  # records per prune transaction
PRUNE_PAUSE = 0.01  # seconds between prune transactions: the intake gets the lock in between
REJECTED_TEXT_CHARS = 500  # a rejected payload's text is kept this long

HISTORY_SCHEMA = """
CREATE TABLE IF NOT EXISTS history (
    seq      INTEGER PRIMARY KEY AUTOINCREMENT,
    id       TEXT NOT NULL,
    received REAL NOT NULL,
    source   TEXT NOT NULL,
    via      TEXT NOT NULL DEFAULT '{}',
    text     TEXT,
    template TEXT,
    vars     TEXT,
    clips    TEXT NOT NULL DEFAULT '[]',
    targets  TEXT NOT NULL DEFAULT '[]',
    speakers TEXT NOT NULL DEFAULT '[]',
    priority TEXT,
    state    TEXT NOT NULL,
    error    TEXT
);
CREATE INDEX IF NOT EXISTS history_received ON history(received);
CREATE INDEX IF NOT EXISTS history_id ON history(id);
CREATE TABLE IF NOT EXISTS history_events (
    hist_seq INTEGER NOT NULL REFERENCES history(seq) ON DELETE CASCADE,
    ts       REAL NOT NULL,
    state    TEXT NOT NULL,
    speaker  TEXT,
    data     TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS history_events_seq ON history_events(hist_seq);
"""


def epoch_of(ts: str) -> float:
    """An event's ``ts`` (``2026-11-23T10:00:00.123Z``) as epoch seconds."""
    try:  # fromisoformat: a tenth of strptime's time, and this runs for every event
        return datetime.fromisoformat(ts.removesuffix("Z")).replace(tzinfo=timezone.utc).timestamp()
    except ValueError:
        return time.time()


def summary_state(states: dict[str, str], speakers: Sequence[str], current: str) -> str:
    """One state for an announcement from each speaker's latest state (``current`` until they all ended)."""
    if speakers and all(states.get(s) in SPEAKER_TERMINAL for s in speakers):
        ended = {states[s] for s in speakers}
        return ended.pop() if len(ended) == 1 else "mixed"
    return "started" if "started" in states.values() or current == "started" else current


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


def _vars_text(value: Any) -> str | None:
    """A rejected payload's ``vars`` as the history keeps variables: names and values as (short) text."""
    if not isinstance(value, dict):
        return None
    items = list(value.items())[:20]
    return _dumps({_safe(str(k)[:64]): _safe((v if isinstance(v, str) else _dumps(v))[:100]) for k, v in items})


def _safe(text: str) -> str:
    """``text`` storable as UTF-8 (a lone surrogate from a JSON escape becomes ``\\udxxx``)."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


class HistoryRecorder:
    def __init__(
        self,
        spool: Spool,
        days: float = 90.0,
        max_records: int = 500_000,
        clock: Callable[[], float] = time.time,
        *,
        prune_batch: int = PRUNE_BATCH,
        max_pending: int = MAX_PENDING,
    ) -> None:
        self.spool = spool
        self.prune_batch = prune_batch
        self.max_pending = max_pending
        self.days = float(days)
        self.max_records = int(max_records)
        self.clock = clock
        self._pending: deque[tuple[Event, Announcement | None]] = deque()
        self._cond = threading.Condition()
        self._busy = False
        self._dropped = 0
        self._stop = False
        self._last_prune = 0.0
        self._thread: threading.Thread | None = None
        self.prune_transactions = 0  # of the last prune's last step (for tests and the benchmark)

    def configure(self, days: float, max_records: int) -> None:
        """A reloaded ``history:`` section: applied at the next prune."""
        self.days, self.max_records = float(days), int(max_records)

    # ---- the listener: never waits ---------------------------------------------------------------
    def on_event(self, event: Event, ann: Announcement | None) -> None:
        with self._cond:
            if len(self._pending) >= self.max_pending:
                self._pending.popleft()
                self._dropped += 1
            self._pending.append((event, ann))
            if len(self._pending) == 1 or len(self._pending) >= BATCH:  # the writer needs waking only then
                self._cond.notify()

    # ---- the writer thread ---------------------------------------------------------------------
    def start(self) -> None:
        self._last_prune = self.clock() - PRUNE_EVERY + 60.0  # the first prune a minute after start
        self._thread = threading.Thread(target=self._run, name="announcer-history", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Write what is queued, then end the thread."""
        with self._cond:
            self._stop = True
            self._cond.notify()
        if self._thread is not None:
            self._thread.join(timeout)

    def flush(self, timeout: float = 5.0) -> bool:
        """Wait until everything queued so far is written (tests, ``announcer say``)."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._pending or self._busy:
                left = deadline - time.monotonic()
                if left <= 0 or self._thread is None or not self._thread.is_alive():
                    return not self._pending and not self._busy
                self._cond.wait(min(left, 0.05))
        return True

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._pending and not self._stop and self.clock() - self._last_prune < PRUNE_EVERY:
                    self._cond.wait(1.0)
                deadline = time.monotonic() + BATCH_DELAY  # let a burst gather: one transaction for all of it
                while self._pending and not self._stop and len(self._pending) < BATCH:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        break
                    self._cond.wait(left)
                batch = [self._pending.popleft() for _ in range(min(BATCH, len(self._pending)))]
                stopping, dropped, self._dropped = self._stop and not self._pending, self._dropped, 0
                self._busy = bool(batch)
            if dropped:
                _LOGGER.warning("history: %d event(s) not recorded (the disk is not keeping up)", dropped)
            if batch:
                self.write(batch)
                with self._cond:
                    self._busy = False
                    self._cond.notify_all()
            if stopping:
                return
            if self.clock() - self._last_prune >= PRUNE_EVERY:
                self._last_prune = self.clock()
                try:
                    self.prune()
                except Exception as exc:  # the next round tries again
                    _LOGGER.warning("history: prune failed: %s", exc)

    def write(self, batch: list[tuple[Event, Announcement | None]]) -> None:
        """Record ``batch`` in one transaction; an event that cannot be recorded is left out alone."""
        try:
            with self.spool.transaction(durable=False) as db:
                for event, ann in batch:
                    db.execute("SAVEPOINT event")
                    try:
                        self._record(db, event, ann)
                    except (sqlite3.Error, ValueError) as exc:
                        db.execute("ROLLBACK TO event")
                        _LOGGER.warning("history: %s %s not recorded: %s", event.id, event.state, exc)
                    db.execute("RELEASE event")
        except Exception as exc:  # a record, not the announcement: never stop the daemon over it
            _LOGGER.warning("history: %d event(s) not recorded: %s", len(batch), exc)

    # ---- one event -----------------------------------------------------------------------------
    def _record(self, db: sqlite3.Connection, event: Event, ann: Announcement | None) -> None:
        if isinstance(event, Rejected):
            seq: int | None = self._insert_rejected(db, event)
        elif isinstance(event, Queued) and not event.resumed and ann is not None:
            seq = self._insert(db, ann)
        else:
            row = db.execute("SELECT seq FROM history WHERE id = ? ORDER BY seq DESC LIMIT 1", (event.id,)).fetchone()
            seq = row[0] if row else None
        if seq is None:  # an announcement from before the history (or pruned): nothing to attach to
            return
        speaker = event.speaker_name
        db.execute(
            "INSERT INTO history_events (hist_seq, ts, state, speaker, data) VALUES (?, ?, ?, ?, ?)",
            (seq, epoch_of(event.ts), event.state, speaker, _dumps(event.to_wire())),
        )
        if speaker is not None:
            self._update_state(db, seq)

    def _insert(self, db: sqlite3.Connection, ann: Announcement) -> int:
        cur = db.execute(
            "INSERT INTO history (id, received, source, via, text, template, vars, clips, targets, speakers, "
            "priority, state) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'queued')",
            (
                ann.id,
                ann.received,
                ann.source,
                _dumps(dict(ann.via)),
                ann.text or None,
                ann.template,
                _dumps(dict(ann.vars)) if ann.template else None,
                _dumps(list(ann.clips)),
                _dumps(list(ann.targets)),
                _dumps(list(ann.speakers)),
                ann.priority,
            ),
        )
        return int(cur.lastrowid or 0)

    def _insert_rejected(self, db: sqlite3.Connection, event: Rejected) -> int:
        raw = event.payload if isinstance(event.payload, dict) else {}

        def text_of(key: str, limit: int = 64) -> str | None:
            value = raw.get(key)
            return _safe(value[:limit]) if isinstance(value, str) else None

        targets = raw.get("targets")
        targets = [targets] if isinstance(targets, str) else targets if isinstance(targets, list) else []
        origin = event.origin
        received = getattr(origin, "received", None)
        cur = db.execute(
            "INSERT INTO history (id, received, source, via, text, template, vars, clips, targets, priority, "
            "state, error) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'rejected', ?)",
            (
                event.id,
                received if isinstance(received, float) else epoch_of(event.ts),
                str(getattr(origin, "source", None) or "unknown"),
                _dumps(dict(getattr(origin, "via", ()) or ())),
                text_of("text", REJECTED_TEXT_CHARS),
                text_of("template"),
                _vars_text(raw.get("vars")),
                _dumps([text_of("clip")] if text_of("clip") else []),
                _dumps([str(t)[:64] for t in targets[:20]]),
                text_of("priority", 16),
                event.error,
            ),
        )
        return int(cur.lastrowid or 0)

    def _update_state(self, db: sqlite3.Connection, seq: int) -> None:
        row = db.execute("SELECT speakers, state FROM history WHERE seq = ?", (seq,)).fetchone()
        latest = dict(
            db.execute(
                "SELECT speaker, state FROM history_events WHERE hist_seq = ? AND speaker IS NOT NULL ORDER BY rowid",
                (seq,),
            ).fetchall()
        )
        state = summary_state(latest, json.loads(row[0]), row[1])
        db.execute("UPDATE history SET state = ? WHERE seq = ?", (state, seq))

    # ---- pruning ----------------------------------------------------------------------------------
    def prune(self, now: float | None = None) -> int:
        """Delete records older than ``days``, then the oldest beyond ``max_records``, a batch per transaction."""
        now = self.clock() if now is None else now
        removed = self._delete_batches("WHERE received < ?", (now - self.days * 86400.0,), None)
        total = int(self.spool.read("SELECT COUNT(*) FROM history")[0][0])  # type: ignore[call-overload]
        if total > self.max_records:
            removed += self._delete_batches("", (), total - self.max_records)
        if removed:
            _LOGGER.info("history: pruned %d record(s)", removed)
        return removed

    def _delete_batches(self, where: str, params: tuple[object, ...], limit: int | None) -> int:
        """Delete the oldest records matching ``where`` (at most ``limit``), ``prune_batch`` per transaction."""
        removed = 0
        self.prune_transactions = 0
        while limit is None or removed < limit:
            size = self.prune_batch if limit is None else min(self.prune_batch, limit - removed)
            with self.spool.transaction(durable=False) as db:
                n = db.execute(
                    f"DELETE FROM history WHERE seq IN (SELECT seq FROM history {where} ORDER BY seq LIMIT ?)",
                    (*params, size),
                ).rowcount
            removed += n
            self.prune_transactions += 1
            if n < size:
                break
            time.sleep(PRUNE_PAUSE)
        return removed
