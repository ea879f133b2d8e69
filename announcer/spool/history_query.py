"""Reading the history (``announcer.spool.history``): filters, records as JSON objects, CSV.

Shared by ``GET /history`` (through the daemon's spool) and ``announcer history`` (which opens
the spool file itself, read-only, while the daemon may be running: SQLite's WAL lets it).

A record::

    {"id", "received" (UTC, like event ts), "source", "via": {...}, "text", "template",
     "vars": {...}, "clips": [...], "targets": [...], "speakers": [...], "priority", "state",
     "error", "speaker_results": {speaker: {"state", "ts", "error"?, "reason"?}},
     "events": [event as published on P/events, ...]}

The CSV has one row per announcement and speaker (a rejected one: one row without a
speaker), the columns of ``CSV_COLUMNS``; times are UTC, and ``received_local`` in the zone
the caller passes (the site's ``timezone``).
"""

from __future__ import annotations

import csv
import io
import json
import sqlite3
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timezone, tzinfo
from pathlib import Path
from typing import Any

from ..core.events import utc_ts

Run = Callable[[str, tuple[Any, ...]], list[tuple[Any, ...]]]

MAX_LIMIT = 100_000
CSV_COLUMNS = (
    "received",
    "received_local",
    "id",
    "source",
    "via",
    "text",
    "template",
    "vars",
    "clips",
    "targets",
    "priority",
    "state",
    "speaker",
    "speaker_state",
    "speaker_at",
    "detail",
)
_COLUMNS = "seq, id, received, source, via, text, template, vars, clips, targets, speakers, priority, state, error"


def parse_when(text: str, tz: tzinfo, name: str = "since") -> float:
    """``2025-05-01``, ``2025-05-01T08:00`` (in ``tz``, the site's zone) or with an offset/``Z``: epoch seconds.
    ValueError naming ``name`` and the accepted forms otherwise."""
    value = text.strip()
    try:
        when = datetime.fromisoformat(value[:-1] + "+00:00" if value.endswith(("Z", "z")) else value)
    except ValueError:
        raise ValueError(
            f"{name}: {text[:40]!r} is not an ISO date or time (e.g. 2025-05-01, 2025-05-01T08:00, 2025-05-01T00:00Z)"
        ) from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=tz)
    return when.timestamp()


class HistoryUnavailable(RuntimeError):
    """The spool has no history (never opened by a version that keeps one); the message says so."""


@dataclass(frozen=True)
class HistoryQuery:
    since: float | None = None  # epoch seconds, inclusive
    until: float | None = None  # exclusive
    target: str | None = None  # a speaker or zone named in targets or speakers
    source: str | None = None  # mqtt | http | schedule | hermes | cli
    state: str | None = None
    limit: int = 1000
    newest_first: bool = True

    def where(self) -> tuple[str, tuple[Any, ...]]:
        clauses: list[str] = []
        params: list[Any] = []
        if self.since is not None:
            clauses.append("received >= ?")
            params.append(self.since)
        if self.until is not None:
            clauses.append("received < ?")
            params.append(self.until)
        if self.target is not None:
            clauses.append("(instr(targets, ?) > 0 OR instr(speakers, ?) > 0)")
            params += [json.dumps(self.target, ensure_ascii=False)] * 2
        for column in ("source", "state"):
            if getattr(self, column) is not None:
                clauses.append(f"{column} = ?")
                params.append(getattr(self, column))
        return (" WHERE " + " AND ".join(clauses) if clauses else ""), tuple(params)


def read_history(run: Run, query: HistoryQuery) -> list[dict[str, Any]]:
    """The records ``query`` selects, with their events."""
    where, params = query.where()
    order = "DESC" if query.newest_first else "ASC"
    limit = max(1, min(query.limit, MAX_LIMIT))
    try:
        rows = run(f"SELECT {_COLUMNS} FROM history{where} ORDER BY seq {order} LIMIT ?", (*params, limit))
    except sqlite3.OperationalError as exc:
        if "no such table" in str(exc):
            raise HistoryUnavailable(
                "no history in this spool yet (the daemon keeps one from this version on)"
            ) from None
        raise
    records = {row[0]: _record(row) for row in rows}
    seqs = list(records)
    for i in range(0, len(seqs), 500):
        chunk = seqs[i : i + 500]
        marks = ",".join("?" * len(chunk))
        for seq, data in run(
            f"SELECT hist_seq, data FROM history_events WHERE hist_seq IN ({marks}) ORDER BY rowid", tuple(chunk)
        ):
            event = json.loads(data)
            record = records[seq]
            record["events"].append(event)
            speaker = event.get("speaker")
            if speaker:
                result = {"state": event["state"], "ts": event.get("ts")}
                for key in ("error", "reason"):
                    if event.get(key):
                        result[key] = event[key]
                record["speaker_results"][speaker] = result
    return list(records.values())


def _record(row: tuple[Any, ...]) -> dict[str, Any]:
    _seq, ann_id, received, source, via, text, template, vars_, clips, targets, speakers, priority, state, error = row
    return {
        "id": ann_id,
        "received": utc_ts(received),
        "source": source,
        "via": json.loads(via or "{}"),
        "text": text,
        "template": template,
        "vars": json.loads(vars_) if vars_ else None,
        "clips": json.loads(clips or "[]"),
        "targets": json.loads(targets or "[]"),
        "speakers": json.loads(speakers or "[]"),
        "priority": priority,
        "state": state,
        "error": error,
        "speaker_results": {},
        "events": [],
    }


def csv_rows(records: Iterable[dict[str, Any]], tz: tzinfo | None = None) -> Iterable[dict[str, str]]:
    """One row per announcement and speaker (see ``CSV_COLUMNS``)."""
    for r in records:
        local = ""
        if tz is not None:
            received = datetime.strptime(r["received"], "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=timezone.utc)
            local = received.astimezone(tz).strftime("%Y-%m-%d %H:%M:%S %Z")
        base = {
            "received": r["received"],
            "received_local": local,
            "id": r["id"],
            "source": r["source"],
            "via": " ".join(f"{k}={v}" for k, v in r["via"].items()),
            "text": r["text"] or "",
            "template": r["template"] or "",
            "vars": " ".join(f"{k}={v}" for k, v in (r["vars"] or {}).items()),
            "clips": " ".join(r["clips"]),
            "targets": " ".join(r["targets"]),
            "priority": r["priority"] or "",
            "state": r["state"],
        }
        speakers = r["speakers"] or list(r["speaker_results"])
        if not speakers:
            yield {**base, "speaker": "", "speaker_state": "", "speaker_at": "", "detail": r["error"] or ""}
        for speaker in speakers:
            result = r["speaker_results"].get(speaker, {})
            yield {
                **base,
                "speaker": speaker,
                "speaker_state": result.get("state", "queued"),
                "speaker_at": result.get("ts") or "",
                "detail": result.get("error") or result.get("reason") or "",
            }


def to_csv(records: Iterable[dict[str, Any]], tz: tzinfo | None = None) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(csv_rows(records, tz))
    return out.getvalue()


def open_history(path: str | Path) -> tuple[Run, Callable[[], None]]:
    """A reader on the spool file (``announcer history``): ``(run, close)``. It never writes."""
    p = Path(path)
    if not p.exists():
        raise HistoryUnavailable(f"no spool at {p} (spool.path; has the daemon run here?)")
    db = sqlite3.connect(str(p), timeout=10.0)
    db.execute("PRAGMA query_only=ON")
    return (lambda sql, params: db.execute(sql, params).fetchall()), db.close
