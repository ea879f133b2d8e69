"""``announcer say``: synthesize on this machine, no broker.

With ``--out`` the announcement is rendered exactly as a ``file`` speaker would write it
(chime unless ``--no-chime``, speech, repeats) into one PCM-16 WAV at the engine's rate.
Without ``--out`` it plays on the targets now through the same scheduler and speakers
the daemon uses, with a throw-away spool in a temporary directory, and waits until every
target speaker is done: exit 0 if every speaker finished, 1 if any failed (each failure
is printed with its speaker).
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path
from typing import Any

from ..config import Config
from ..intake.parse import build
from ..playback.synthesizer import make_synthesizer


def play_now(cfg: Config, raw: dict[str, Any], timeout: float = 600.0) -> int:
    # imported here: ``say --out`` needs none of the scheduler's machinery
    from ..core.events import SPEAKER_TERMINAL, Event, EventBus
    from ..playback.runtime import Runtime
    from ..playback.scheduler import Scheduler
    from ..spool.store import Spool

    # Someone at the console asked for it now: quiet hours are for the daemon's queue, not for `say`.
    cfg = cfg.model_copy(update={"quiet_hours": ()})
    ann = build(raw, cfg, source="cli", ignore_unknown=True)
    for w in ann.warnings:
        print(f"warning: {w}", file=sys.stderr)
    runtime = Runtime.build(cfg, speakers=ann.speakers, engine=ann.engines)
    events = EventBus()
    outcomes: list[Event] = []
    events.subscribe(lambda ev, _ann: outcomes.append(ev) if ev.state in SPEAKER_TERMINAL else None)
    with tempfile.TemporaryDirectory(prefix="announcer-say-") as tmp:
        spool = Spool(Path(tmp) / "spool.sqlite3")
        scheduler = Scheduler(runtime, spool, events)
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
            for sink in runtime.sinks.values():
                sink.close()
    failed = [ev.to_wire() for ev in outcomes if ev.state != "finished"]
    for ev in failed:
        print(f"{ev.get('speaker', '?')}: {ev['state']}: {ev.get('error') or ev.get('reason') or ''}", file=sys.stderr)
    return 1 if failed or not outcomes else 0


def render_to_file(cfg: Config, raw: dict[str, Any], out: Path) -> Path:
    """Exactly what a ``file`` speaker (lead-in 0) would write for this announcement."""
    from ..playback.offline import render_to_wav

    ann = build(raw, cfg, source="cli", ignore_unknown=True)
    synth = make_synthesizer(cfg, only=ann.engines, one_shot=True)  # loaded only if a clause is not cached
    written = render_to_wav(cfg, synth, ann, out)  # written as it is rendered: memory does not grow with it
    for w in ann.warnings:
        print(f"warning: {w}", file=sys.stderr)
    return written.path


def with_engine_type(cfg: Config, raw: dict[str, Any]) -> Config:
    """``--engine kokoro`` where no engine has that name but an engine type does: that type with its
    defaults (``kokoro``: ``zf_xiaoyi``), so ``announcer say --engine kokoro ...`` works with no
    config. Only for ``say``: the daemon speaks with the engines its config names."""
    name = raw.get("engine")
    if not isinstance(name, str) or name in cfg.engines:
        return cfg
    from pydantic import ValidationError

    from ..engines.base import ENGINE_MODULES, engine_module

    if name not in ENGINE_MODULES:
        return cfg
    try:
        engine = engine_module(name).Config(type=name)
    except ValidationError:  # a type that needs settings (wyoming: a host): named in the usual error
        return cfg
    return cfg.model_copy(update={"engines": {**cfg.engines, name: engine}})


def say(cfg: Config, raw: dict[str, Any], out: Path | None) -> int:
    cfg = with_engine_type(cfg, raw)
    if out is not None:
        path = render_to_file(cfg, raw, out)
        print(path)
        return 0
    return play_now(cfg, raw)
