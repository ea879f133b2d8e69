"""``announcer schedules`` and ``announcer history``: what the routine will announce, and what was announced.

Both read what the daemon keeps (the config, ``settings.json`` for paused schedules, the
spool database for the history) and need no running daemon; ``history`` reads the spool
file while the daemon writes it (SQLite's WAL allows that) and never writes.

* ``schedules``: per schedule, its next ``count`` firings in the site's zone, with the
  firing ids, and ``[paused]`` for a paused one.
* ``history``: the records ``--since``/``--until`` (ISO date or time; without an offset, in
  the site's ``timezone``), ``--target``, ``--source``, ``--state`` select, newest first
  (``--oldest-first`` for a log in time order), at most ``--limit`` (default 1000 lines, 100000
  records with ``--csv`` or ``--json``): one line each, or ``--csv`` (one row per announcement
  and speaker) or ``--json``.
"""

from __future__ import annotations

import json
import sys
import time
from datetime import datetime
from typing import Any, TextIO

from ..config import Config
from ..core.errors import InputError
from ..schedule.calendar import firings, site_zone
from ..spool.history_query import (
    MAX_LIMIT,
    HistoryQuery,
    HistoryUnavailable,
    open_history,
    parse_when,
    read_history,
    to_csv,
)
from ..spool.settings import RuntimeSettings, settings_path


def print_schedules(cfg: Config, count: int = 1, now: float | None = None, out: TextIO | None = None) -> int:
    out = out or sys.stdout
    tz = site_zone(cfg.timezone)
    now = time.time() if now is None else now
    if not cfg.schedules:
        print("no schedules configured (schedules: in the config)", file=out)
        return 0
    paused = RuntimeSettings(settings_path(cfg.spool.path)).paused_schedules
    width = max(len(n) for n in cfg.schedules)
    zone = cfg.timezone or f"system time, {datetime.now(tz).tzname()}"
    print(f"next firings ({zone}):", file=out)
    for name, sched in cfg.schedules.items():
        rule = f"cron {sched.cron}" if sched.cron else f"at {' '.join(sched.at)} on {' '.join(sched.days)}"
        mark = "  [paused]" if name in paused else ""
        upcoming = []
        for f in firings(name, sched.timing(), tz, now):
            upcoming.append(f)
            if len(upcoming) >= count:
                break
        if not upcoming:
            print(f"{name:<{width}}  never again ({rule}){mark}", file=out)
        for i, f in enumerate(upcoming):
            label = name if i == 0 else ""
            print(f"{label:<{width}}  {f.describe(tz):<22}  {f.id}  ({rule}){mark if i == 0 else ''}", file=out)
    return 0


def print_history(cfg: Config, args: Any, out: TextIO | None = None) -> int:
    """``announcer history`` with parsed ``args`` (the options of the module doc)."""
    out = out or sys.stdout
    tz = site_zone(cfg.timezone)
    try:
        since = parse_when(args.since, tz, "--since") if args.since else None
        until = parse_when(args.until, tz, "--until") if args.until else None
    except ValueError as exc:
        field, _, message = str(exc).partition(": ")
        raise InputError(field, message) from None
    query = HistoryQuery(
        since=since,
        until=until,
        target=args.target,
        source=args.source,
        state=args.state,
        limit=args.limit or (MAX_LIMIT if args.csv or args.json else 1000),
        newest_first=not args.oldest_first,
    )
    try:
        run, close = open_history(cfg.spool.path)
    except HistoryUnavailable as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    try:
        records = read_history(run, query)
    except HistoryUnavailable as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    finally:
        close()
    if args.csv:
        out.write(to_csv(records, tz))
    elif args.json:
        print(json.dumps(records, ensure_ascii=False, indent=1), file=out)
    else:
        for r in records:
            print(_line(r, tz), file=out)
    return 0


def _line(r: dict[str, Any], tz: Any) -> str:
    received = datetime.strptime(r["received"], "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=site_zone("UTC"))
    when = received.astimezone(tz).strftime("%Y-%m-%d %H:%M:%S %Z")
    via = ",".join(f"{k}={v}" for k, v in r["via"].items())
    source = f"{r['source']}({via})" if via else r["source"]
    said = r["text"] or ""
    if r["template"]:
        said = f"template {r['template']} {json.dumps(r['vars'] or {}, ensure_ascii=False)}: {said}"
    if r["clips"]:
        said = f"{said} [clip {' '.join(r['clips'])}]".strip()
    results = " ".join(f"{s}:{v['state']}" for s, v in r["speaker_results"].items())
    tail = r["error"] if r["state"] == "rejected" else results
    return f"{when}  {r['id']}  {source}  {r['state']}  {tail}  {said}"
