"""The durable spool: every accepted announcement, committed before the broker is acked.

SQLite from the standard library, one connection guarded by a lock (the MQTT callback
thread, the player threads and the HTTP side all write through it).

Tables:

* ``announcements``: one row per accepted announcement (its ``to_json``), in arrival
  order (``seq``). ``state`` is NULL while something is still owed, else the final
  state (``finished``, ``cancelled``, ``expired``, ``failed`` or ``mixed`` when the
  speakers ended differently) and ``done_at``.
* ``deliveries``: one row per (announcement, speaker), ``pending`` until that speaker
  reaches a terminal state. An announcement that was interrupted (by an emergency or a
  crash) is still ``pending`` for that speaker, so it is replayed from its start.

Durability: WAL with ``synchronous=FULL``. In WAL mode, ``NORMAL`` only fsyncs at
checkpoints, so a power cut can roll back the last commits (the database stays
consistent, but the transactions are gone). We ack the broker right after ``add``
commits and the broker then forgets the message, so a rolled-back ``add`` would be a
lost announcement, which the contract forbids; a rolled-back ``speaker_done`` would be
an announcement played twice. ``FULL`` fsyncs the WAL at every commit: one fsync per
``add`` (well under a millisecond on SSD/tmpfs, a few ms on SD cards; see
``python -m bench parts``), a fair price for an announcement system.

Schema versions (``PRAGMA user_version``): 1 had the two tables above; 2 adds the history
(``announcer.spool.history``). Opening an older spool upgrades it in place (the new tables
are added, nothing existing changes); a spool of a newer version is refused.

Duplicates: an id already accepted less than 24 h before the new one's receipt time
(``Announcement.received``) is refused by ``add``; after 24 h the old record is
replaced. ``prune`` therefore keeps finished records for at least 24 h, whatever
``keep_days`` says (only ``max_records`` may cut deeper, oldest first).
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ..core.announcement import Announcement
from ..core.files import make_dirs
from .history import HISTORY_SCHEMA

_LOGGER = logging.getLogger(__name__)

DUPLICATE_WINDOW = 24 * 3600.0
SPEAKER_TERMINAL = frozenset({"finished", "cancelled", "expired", "failed"})
SCHEMA_VERSION = 2

_SCHEMA = """
CREATE TABLE IF NOT EXISTS announcements (
    seq      INTEGER PRIMARY KEY AUTOINCREMENT,
    id       TEXT NOT NULL UNIQUE,
    received REAL NOT NULL,
    data     TEXT NOT NULL,
    state    TEXT,
    done_at  REAL
);
CREATE INDEX IF NOT EXISTS announcements_open ON announcements(state, seq);
CREATE INDEX IF NOT EXISTS announcements_done ON announcements(done_at);
CREATE TABLE IF NOT EXISTS deliveries (
    ann_seq  INTEGER NOT NULL REFERENCES announcements(seq) ON DELETE CASCADE,
    position INTEGER NOT NULL,
    speaker  TEXT NOT NULL,
    state    TEXT NOT NULL DEFAULT 'pending',
    done_at  REAL,
    PRIMARY KEY (ann_seq, speaker)
) WITHOUT ROWID;
"""


class SpoolError(RuntimeError):
    """The spool file cannot be opened or used; the message names the file."""


class Spool:
    def __init__(self, path: Path | str, keep_days: float = 7, max_records: int = 100000) -> None:
        self.path = Path(path)
        self.keep_days = float(keep_days)
        self.max_records = int(max_records)
        self._lock = threading.Lock()
        try:
            make_dirs(self.path.parent)
            # isolation_level=None: we issue BEGIN/COMMIT ourselves
            self._db = sqlite3.connect(str(self.path), check_same_thread=False, isolation_level=None, timeout=10.0)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.execute("PRAGMA foreign_keys=ON")
            version = self._db.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                raise SpoolError(f"spool {self.path} was written by a newer announcer (schema {version})")
            self._migrate(version)
        except (OSError, sqlite3.Error) as exc:
            raise SpoolError(f"cannot open spool {self.path}: {exc}") from None

    def _migrate(self, version: int) -> None:
        """Bring a spool of schema ``version`` (0: a new file) to ``SCHEMA_VERSION``, in one transaction."""
        if version == SCHEMA_VERSION:
            return
        self._db.execute("BEGIN IMMEDIATE")
        try:
            for statement in _statements(_SCHEMA + HISTORY_SCHEMA):
                self._db.execute(statement)
            self._db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
            self._db.execute("COMMIT")
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        if version:
            _LOGGER.info("spool: %s upgraded from schema %d to %d (history added)", self.path, version, SCHEMA_VERSION)

    # ------------------------------------------------------------------ writing
    @contextmanager
    def transaction(self, durable: bool = True) -> Iterator[sqlite3.Connection]:
        """``BEGIN IMMEDIATE`` under the lock: COMMIT when the block ends, ROLLBACK if it raises.

        ``durable=False`` (the history): the commit is not fsynced itself (``synchronous=NORMAL``
        for this transaction only); the next durable commit, or a checkpoint, makes it durable.
        """
        with self._lock:
            db = self._db
            if not durable:
                db.execute("PRAGMA synchronous=NORMAL")
            try:
                db.execute("BEGIN IMMEDIATE")
                try:
                    yield db
                    db.execute("COMMIT")
                except BaseException:
                    db.execute("ROLLBACK")
                    raise
            finally:
                if not durable:
                    db.execute("PRAGMA synchronous=FULL")

    def add(self, ann: Announcement) -> bool:
        """Commit ``ann`` with one ``pending`` row per speaker; False if it is a duplicate (nothing stored)."""
        data = ann.to_json()
        with self.transaction() as db:
            row = db.execute("SELECT seq, received FROM announcements WHERE id = ?", (ann.id,)).fetchone()
            if row is not None:
                if ann.received - row[1] < DUPLICATE_WINDOW:
                    return False  # nothing written (the transaction ends empty)
                db.execute("DELETE FROM announcements WHERE seq = ?", (row[0],))  # cascades
            cur = db.execute(
                "INSERT INTO announcements (id, received, data) VALUES (?, ?, ?)", (ann.id, ann.received, data)
            )
            seq = cur.lastrowid
            db.executemany(
                "INSERT INTO deliveries (ann_seq, position, speaker) VALUES (?, ?, ?)",
                [(seq, i, s) for i, s in enumerate(ann.speakers)],
            )
            if not ann.speakers:
                db.execute("UPDATE announcements SET state = 'finished', done_at = ? WHERE seq = ?", (time.time(), seq))
        return True

    def speaker_done(self, ann_id: str, speaker: str, state: str) -> None:
        """Record that ``speaker`` is done with ``ann_id`` (finished/cancelled/expired/failed).

        When no speaker is owed any more the announcement is closed too (``state`` if all
        speakers ended alike, else ``mixed``), so a crash before ``ann_done`` loses nothing.
        """
        if state not in SPEAKER_TERMINAL:
            raise ValueError(
                f"{state!r} is not a terminal speaker state (allowed: {', '.join(sorted(SPEAKER_TERMINAL))})"
            )
        now = time.time()
        with self.transaction() as db:
            row = db.execute("SELECT seq FROM announcements WHERE id = ?", (ann_id,)).fetchone()
            if row is not None:
                seq = row[0]
                db.execute(
                    "UPDATE deliveries SET state = ?, done_at = ? WHERE ann_seq = ? AND speaker = ?",
                    (state, now, seq, speaker),
                )
                states = [r[0] for r in db.execute("SELECT state FROM deliveries WHERE ann_seq = ?", (seq,))]
                if states and "pending" not in states:
                    final = states[0] if len(set(states)) == 1 else "mixed"
                    db.execute(
                        "UPDATE announcements SET state = ?, done_at = ? WHERE seq = ? AND state IS NULL",
                        (final, now, seq),
                    )

    def ann_done(self, ann_id: str, state: str) -> None:
        """Close ``ann_id``: speakers still pending get ``state`` too (e.g. everything cancelled)."""
        now = time.time()
        with self.transaction() as db:
            row = db.execute("SELECT seq FROM announcements WHERE id = ?", (ann_id,)).fetchone()
            if row is not None:
                db.execute(
                    "UPDATE deliveries SET state = ?, done_at = ? WHERE ann_seq = ? AND state = 'pending'",
                    (state, now, row[0]),
                )
                db.execute("UPDATE announcements SET state = ?, done_at = ? WHERE seq = ?", (state, now, row[0]))

    # ------------------------------------------------------------------ reading
    def pending(self) -> list[tuple[Announcement, tuple[str, ...]]]:
        """Every announcement not finished, with the speakers still owed, in arrival order."""
        with self._lock:
            rows = self._db.execute(
                "SELECT a.seq, a.data, d.speaker FROM announcements a JOIN deliveries d ON d.ann_seq = a.seq "
                "WHERE a.state IS NULL AND d.state = 'pending' ORDER BY a.seq, d.position"
            ).fetchall()
        owed: dict[int, list[str]] = {}
        data_by_seq: dict[int, str] = {}
        for seq, data, speaker in rows:  # ordered by seq: dicts keep arrival order
            data_by_seq[seq] = data
            owed.setdefault(seq, []).append(speaker)
        out: list[tuple[Announcement, tuple[str, ...]]] = []
        for seq, data in data_by_seq.items():
            try:
                ann = Announcement.from_json(data)
            except (ValueError, TypeError) as exc:  # an unreadable record must not block the rest
                _LOGGER.error("spool: skipping unreadable record %s: %s", seq, exc)
                continue
            out.append((ann, tuple(owed[seq])))
        return out

    def seen(self, ann_id: str, now: float | None = None) -> bool:
        """True if ``ann_id`` was accepted within the duplicate window before ``now``."""
        now = time.time() if now is None else now
        with self._lock:
            row = self._db.execute("SELECT received FROM announcements WHERE id = ?", (ann_id,)).fetchone()
        return row is not None and now - row[0] < DUPLICATE_WINDOW

    def state(self, ann_id: str) -> tuple[str | None, dict[str, str]] | None:
        """(announcement state or None while open, {speaker: state}); None if unknown. For tests and status."""
        with self._lock:
            row = self._db.execute("SELECT seq, state FROM announcements WHERE id = ?", (ann_id,)).fetchone()
            if row is None:
                return None
            speakers = dict(
                self._db.execute(
                    "SELECT speaker, state FROM deliveries WHERE ann_seq = ? ORDER BY position", (row[0],)
                ).fetchall()
            )
        return row[1], speakers

    def read(self, sql: str, params: tuple[object, ...] = ()) -> list[tuple[object, ...]]:
        """The rows of one query, under the lock (for the history and status)."""
        with self._lock:
            return list(self._db.execute(sql, params).fetchall())

    def count(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT COUNT(*) FROM announcements").fetchone()[0])

    # ------------------------------------------------------------------ upkeep
    def prune(self, now: float | None = None) -> int:
        """Delete finished records older than ``keep_days`` (at least 24 h, for duplicate detection),
        then the oldest finished ones while over ``max_records``. Unfinished records are never deleted.
        Returns how many records went."""
        now = time.time() if now is None else now
        cutoff = now - max(self.keep_days * 86400.0, DUPLICATE_WINDOW)
        with self.transaction() as db:
            removed = db.execute(
                "DELETE FROM announcements WHERE state IS NOT NULL AND done_at < ?", (cutoff,)
            ).rowcount
            total = db.execute("SELECT COUNT(*) FROM announcements").fetchone()[0]
            excess = total - self.max_records
            if excess > 0:
                removed += db.execute(
                    "DELETE FROM announcements WHERE seq IN (SELECT seq FROM announcements "
                    "WHERE state IS NOT NULL ORDER BY done_at, seq LIMIT ?)",
                    (excess,),
                ).rowcount
        if removed:
            _LOGGER.debug("spool: pruned %d finished records", removed)
        return removed

    def close(self) -> None:
        with self._lock:
            try:
                self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            except sqlite3.Error:
                pass
            self._db.close()


def _statements(script: str) -> list[str]:
    """The statements of a schema script (no string literal in them holds a ';')."""
    return [s.strip() for s in script.split(";") if s.strip()]
