"""The daily routine's parts, real and in one process, on a clock the test moves.

``RoutineStack`` is what the daemon wires for schedules, templates, clips and the history,
minus the broker: a SQLite spool, the event bus, the playback ``Scheduler`` with ``file``
speakers (``lobby``, ``hall``), ``Intake``, the ``HistoryRecorder`` and the ``ScheduleRunner``
firing through ``ScheduledFirings``, all on a ``ManualClock``. The bell is the committed clip
``config/clips/bell.flac``; a clip announcement needs no engine, so nothing here loads a model.

``restart()`` stops everything but keeps the spool file (what a daemon restart keeps), and
builds it all again; ``run_until(t)`` drives the runner as its thread would (tick, then sleep
until the next firing, at most 30 s), only faster: after a firing it waits (in real time)
until it has played, as it would have long before the clock moved on.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from announcer.audio.chimes import ChimeLibrary
from announcer.config import Config, parse_config
from announcer.core.events import Event, EventBus
from announcer.intake.intake import Intake
from announcer.intake.scheduled import ScheduledFirings
from announcer.playback.runtime import Runtime
from announcer.playback.scheduler import Scheduler
from announcer.playback.synthesizer import make_synthesizer
from announcer.schedule.clock import ManualClock
from announcer.schedule.runner import ScheduleRunner
from announcer.sinks.base import SinkContext, create_sink
from announcer.spool.history import HistoryRecorder
from announcer.spool.history_query import HistoryQuery, read_history
from announcer.spool.settings import RuntimeSettings, settings_path
from announcer.spool.store import Spool

BELL = Path(__file__).resolve().parent.parent / "config" / "clips" / "bell.flac"


def routine_yaml(root: Path, schedules: str, timezone: str = "Europe/Berlin", extra: str = "") -> str:
    return f"""
timezone: {timezone}
engines: {{zh: {{type: embedded-zh}}}}
speakers:
  lobby: {{type: file, directory: {root}/lobby}}
  hall: {{type: file, directory: {root}/hall}}
defaults: {{targets: [lobby], chime: false}}
clips: {{bell: {BELL}}}
spool: {{path: {root}/spool.sqlite3}}
cache: {{directory: {root}/cache}}
schedules:
{schedules}
{extra}
"""


def epoch(local: str, zone: str = "Europe/Berlin") -> float:
    """``2025-03-30 02:59:30`` in ``zone`` (fold 0) as epoch seconds."""
    return datetime.fromisoformat(local).replace(tzinfo=ZoneInfo(zone)).timestamp()


class RoutineStack:
    def __init__(self, root: Path, yaml_text: str, start: float) -> None:
        self.root = root
        self.cfg: Config = parse_config(yaml_text)
        self.clock = ManualClock(start)
        self.events_seen: list[Event] = []
        self.outcomes: list[tuple[str, str]] = []  # (firing id, what the runner did) of every tick run_until made
        self._build()

    def _build(self) -> None:
        cfg = self.cfg
        self.events = EventBus()
        self.events.subscribe(lambda ev, _ann: self.events_seen.append(ev))
        self.spool = Spool(cfg.spool.path)
        self.settings = RuntimeSettings(settings_path(cfg.spool.path))
        sinks = {n: create_sink(n, s, SinkContext(publish=None)) for n, s in cfg.speakers.items()}
        runtime = Runtime(cfg, make_synthesizer(cfg), sinks, ChimeLibrary.from_config(cfg))
        self.scheduler = Scheduler(runtime, self.spool, self.events, clock=self.clock.now)
        self.intake = Intake(lambda: self.cfg, self.spool, self.scheduler, self.events)
        self.history = HistoryRecorder(self.spool, cfg.history.days, cfg.history.max_records, clock=self.clock.now)
        self.events.subscribe(self.history.on_event)
        self.runner = ScheduleRunner(
            lambda: self.cfg, ScheduledFirings(self.intake), lambda: self.settings.paused_schedules, self.clock
        )
        self.history.start()
        self.scheduler.start()

    def start_runner(self) -> list:
        """The first tick, as ``ScheduleRunner.start`` does, without the thread."""
        return self.runner.tick()

    def run_until(self, end: float, restart_at: float | None = None) -> list[tuple[str, float]]:
        """Tick as the runner's thread would until ``end`` (restarting once at ``restart_at``):
        ``(firing id, clock at its tick)`` of every firing announced."""
        fired: list[tuple[str, float]] = []
        while self.clock.now() < end:
            if restart_at is not None and self.clock.now() >= restart_at:
                restart_at = None
                self.restart()
            done = self.runner.tick()
            self.outcomes += [(f.id, outcome) for f, outcome in done]
            now = [(f.id, self.clock.now()) for f, outcome in done if outcome == "accepted"]
            if now:  # let it play before the clock moves on (in real time it would: it is seconds long)
                assert self.scheduler.wait_idle(30.0), "playback did not finish"
            fired += now
            step = max(0.5, self.runner.seconds_to_next())
            if restart_at is not None and self.clock.now() < restart_at:
                step = min(step, restart_at - self.clock.now())
            self.clock.set(min(end, self.clock.now() + step))
        self.settle()
        return fired

    def settle(self) -> None:
        assert self.scheduler.wait_idle(30.0), "playback did not finish"
        assert self.history.flush(10.0), "history not written"

    def wavs(self, speaker: str = "lobby") -> list[str]:
        return sorted(p.stem for p in (self.root / speaker).glob("*.wav"))

    def records(self, **query) -> list[dict]:
        self.settle()
        return read_history(self.spool.read, HistoryQuery(**query))

    def stop(self) -> None:
        self.runner.stop()
        self.scheduler.shutdown(5.0)
        self.history.stop()
        self.spool.close()

    def restart(self) -> None:
        """What a daemon restart keeps: the spool file and settings.json; everything else is new."""
        self.settle()
        self.stop()
        self._build()
        self.outcomes += [(f.id, outcome) for f, outcome in self.runner.tick()]

    def close(self) -> None:
        self.stop()
