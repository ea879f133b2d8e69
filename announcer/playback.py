"""``announcer say`` without ``--out``: play on the targets now, without a broker.

Runs the same scheduler and speakers the daemon uses, with a throw-away spool in a
temporary directory, and waits until every target speaker is done. Exit 0 if every
speaker finished, 1 if any failed (each failure is printed with its speaker).
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path
from typing import Any

from .announcement import build
from .chain import ChimeLibrary
from .config import Config
from .events import EventBus
from .local import make_synthesizer
from .scheduler import Scheduler
from .sinks.base import create_sink
from .spool import Spool


def play_now(cfg: Config, raw: dict[str, Any], timeout: float = 600.0) -> int:
    # Someone at the console asked for it now: quiet hours are for the daemon's queue, not for `say`.
    cfg = cfg.model_copy(update={"quiet_hours": ()})
    ann = build(raw, cfg, source="cli", ignore_unknown=True)
    for w in ann.warnings:
        print(f"warning: {w}", file=sys.stderr)
    synth = make_synthesizer(cfg, only=ann.engine)
    sinks = {name: create_sink(name, cfg.speakers[name]) for name in ann.speakers}
    events = EventBus()
    outcomes: list[dict[str, Any]] = []
    events.subscribe(lambda ev, _ann: outcomes.append(ev) if ev["state"] in ("finished", "failed", "expired",
                                                                               "cancelled") else None)
    with tempfile.TemporaryDirectory(prefix="announcer-say-") as tmp:
        spool = Spool(Path(tmp) / "spool.sqlite3")
        scheduler = Scheduler(cfg, synth, sinks, spool, events, ChimeLibrary.from_config(cfg))
        scheduler.start()
        try:
            spool.add(ann)
            scheduler.submit(ann)
            if not scheduler.wait_idle(timeout):
                print(f"error: not finished after {timeout:.0f} s", file=sys.stderr)
                return 1
        finally:
            scheduler.shutdown(5.0)
            spool.close()
            for sink in sinks.values():
                sink.close()
    failed = [ev for ev in outcomes if ev["state"] != "finished"]
    for ev in failed:
        print(f"{ev.get('speaker', '?')}: {ev['state']}: {ev.get('error') or ev.get('reason') or ''}",
              file=sys.stderr)
    return 1 if failed or not outcomes else 0
