"""A real daemon-side stack serving the HTTP API, for the HTTP and console tests.

Real parts only: the embedded-zh engine behind a ``Synthesizer``, a SQLite spool, file
speakers (``lobby``, ``archive``; zone ``ward-3``), the ``Scheduler``, ``Intake`` and
``EventBus``, the history recorder, and uvicorn on a free loopback port (``HttpService``) —
everything but the MQTT link, which the HTTP side does not use.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from announcer.audio.chimes import ChimeLibrary
from announcer.config import Config, parse_config
from announcer.core.events import EventBus
from announcer.http.service import HttpContext, HttpService
from announcer.intake.intake import Intake
from announcer.playback.runtime import LiveRuntime, Runtime
from announcer.playback.scheduler import Scheduler
from announcer.playback.synthesizer import Synthesizer, make_synthesizer
from announcer.sinks.base import SinkContext, create_sink
from announcer.spool.history import HistoryRecorder
from announcer.spool.store import Spool

TOKEN = "test-token-0123456789abcdef"
JWT_SECRET = "jwt-secret-0123456789abcdef-0123456789"


def stack_config(root: Path, http: str = "", limits: str = "", engines: str = "", extra: str = "") -> Config:
    return parse_config(stack_yaml(root, http, limits, engines, extra))


def stack_yaml(root: Path, http: str = "", limits: str = "", engines: str = "", extra: str = "") -> str:
    return f"""{extra}
engines: {{zh: {{type: embedded-zh}}, {engines}}}
speakers:
  lobby: {{type: file, directory: {root}/lobby, name: 大厅}}
  archive: {{type: file, directory: {root}/archive, name: 档案}}
zones:
  ward-3: {{speakers: [lobby, archive], name: 三号病房}}
defaults: {{targets: [lobby]}}
spool: {{path: {root}/spool.sqlite3}}
cache: {{directory: {root}/cache}}
limits: {{{limits}}}
http: {{enabled: true, {http}}}
"""


@dataclass
class Stack:
    cfg: Config
    root: Path
    events: EventBus
    synth: Synthesizer
    spool: Spool
    scheduler: Scheduler
    intake: Intake
    service: HttpService
    history: HistoryRecorder

    @property
    def url(self) -> str:
        return self.service.server.url

    def client(self, token: str | None = None, **kwargs: Any) -> httpx.Client:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=30.0, **kwargs)

    def wait_state(
        self, client: httpx.Client, ann_id: str, states: tuple[str, ...] = ("finished",), timeout: float = 30.0
    ) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        record: dict[str, Any] = {}
        while time.monotonic() < deadline:
            r = client.get(f"/announcements/{ann_id}")
            if r.status_code == 200:
                record = r.json()
                if record["state"] in states:
                    return record
            time.sleep(0.05)
        raise AssertionError(f"{ann_id} did not reach {states}; last: {record}")

    def close(self) -> None:
        self.service.stop()
        self.scheduler.shutdown(5.0)
        self.history.stop()
        self.spool.close()


def start_stack(
    root: Path, http: str = "", limits: str = "", synth: Synthesizer | None = None, engines: str = "", extra: str = ""
) -> Stack:
    root.mkdir(parents=True, exist_ok=True)
    cfg = stack_config(root, http, limits, engines, extra)
    events = EventBus()
    synth = synth or make_synthesizer(cfg)
    spool = Spool(cfg.spool.path)
    sinks = {name: create_sink(name, scfg, SinkContext(publish=None)) for name, scfg in cfg.speakers.items()}
    scheduler = Scheduler(Runtime(cfg, synth, sinks, ChimeLibrary.from_config(cfg)), spool, events)
    live = LiveRuntime(scheduler.runtime)
    intake = Intake(lambda: live.config, spool, scheduler, events)
    history = HistoryRecorder(spool, cfg.history.days, cfg.history.max_records)
    events.subscribe(history.on_event)
    history.start()
    scheduler.start()
    service = HttpService(HttpContext(live, intake, spool, scheduler, events), port=0)
    service.start()
    return Stack(cfg, root, events, synth, spool, scheduler, intake, service, history)
