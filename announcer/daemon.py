"""The daemon: wiring and lifecycle only (start, ready, stop).

MQTT messages are parsed and spooled on paho's thread (``Intake``), played by the
``Scheduler``'s threads, and every state change goes out on ``P/events`` (and the
MQTT 5 response topic for the terminal one). ``P/status`` is kept current.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from pathlib import Path
from typing import Any

from . import __version__
from .announcement import Announcement
from .chain import ChimeLibrary
from .config import Config
from .errors import EngineUnavailable
from .events import TERMINAL, EventBus
from .ha_bridge import HomeAssistantBridge
from .hermes import HermesBridge
from .intake import Intake
from .integration import Integration
from .local import make_synthesizer
from .mqtt import MqttLink, publish_properties
from .notify import notify
from .scheduler import Scheduler
from .settings import RuntimeSettings, settings_path
from .sinks.base import SinkContext, create_sink
from .spool import Spool

_LOGGER = logging.getLogger(__name__)

PRUNE_EVERY = 3600.0


class Daemon:
    def __init__(self, cfg: Config) -> None:
        self.cfg = cfg
        self.prefix = cfg.mqtt.topic_prefix.rstrip("/")
        self.events = EventBus()
        self._stopping = threading.Event()
        self._status_lock = threading.Lock()
        self._last_status: dict[str, Any] | None = None
        self.link: MqttLink | None = None
        self.integrations: list[Integration] = []

    # ---- start ---------------------------------------------------------------------
    def start(self) -> None:
        cfg = self.cfg
        self._warn_unimplemented()
        self.synth = make_synthesizer(cfg)
        for name, eng in self.synth.engines.items():
            if hasattr(eng, "start_managed"):  # managed engine process: started in the background, never blocks
                eng.start_managed(on_change=lambda _name, _state: self._publish_status())
                continue
            t0 = time.perf_counter()
            try:
                eng.load()
                self.synth.reference_lufs(name)  # the loudness normaliser's starting point, measured now
                _LOGGER.info("engine %s (%s) ready in %.2f s", name, eng.type_name, time.perf_counter() - t0)
            except EngineUnavailable as exc:
                _LOGGER.error("engine %s unavailable: %s (announcements for it will fail)", name, exc)
        self.spool = Spool(cfg.spool.path, cfg.spool.keep_days, cfg.spool.max_records)
        context = SinkContext(publish=self._publish_raw)
        self.sinks = {name: create_sink(name, scfg, context) for name, scfg in cfg.speakers.items()}
        self.settings = RuntimeSettings(settings_path(cfg.spool.path))  # what Home Assistant sets, persisted
        self.scheduler = Scheduler(cfg, self.synth, self.sinks, self.spool, self.events,
                                   ChimeLibrary.from_config(cfg), on_status_change=self._status_changed,
                                   master_volume=lambda: self.settings.volume)
        self.intake = Intake(cfg, self.spool, self.scheduler, self.events, reply=self._reply,
                             field_defaults=self.settings.field_defaults)
        self.events.subscribe(self._publish_event)
        self._start_integrations()
        self.link = MqttLink(cfg.mqtt, self.intake.handle, self.intake.subscriptions(),
                             on_connect_change=self._connection_changed)
        self.scheduler.start()
        self.link.start()
        self._maintenance = threading.Thread(target=self._maintain, name="maintenance", daemon=True)
        self._maintenance.start()
        self._start_wyoming()
        self._start_http()

    def wait_ready(self, timeout: float | None = None) -> bool:
        return self.link is not None and self.link.wait_subscribed(timeout)

    def _warn_unimplemented(self) -> None:
        """Every config section is implemented (http was the last); kept for sections still to come."""

    def _start_wyoming(self) -> None:
        """Wyoming TTS server (Home Assistant Assist) on the daemon's Synthesizer; a taken port is logged."""
        self.wyoming: Any = None
        if not self.cfg.wyoming.enabled:
            return
        from .wyoming_server import WyomingServer

        server = WyomingServer(self.synth, self.cfg.wyoming.uri, default_engine=self.cfg.default_engine,
                               max_text_chars=self.cfg.limits.max_text_chars)
        try:
            server.start()
        except OSError as exc:
            _LOGGER.error("wyoming: cannot listen on %s: %s (the rest of the daemon runs)", self.cfg.wyoming.uri,
                          exc.strerror or exc)
            return
        self.wyoming = server

    # ---- http (HTTP API and web console: announcer/http/) ----
    def _start_http(self) -> None:
        """uvicorn in a background thread on the daemon's parts; a taken port is logged, the rest runs."""
        self.http: Any = None
        if not self.cfg.http.enabled:
            return
        from .http.service import HttpService

        service = HttpService.from_daemon(self)
        try:
            service.start()
        except OSError as exc:
            _LOGGER.error("http: %s (the rest of the daemon runs)", exc)
            service.ctx.close()
            return
        self.http = service
    # ---- end http ----

    def _start_integrations(self) -> None:
        """Home Assistant and Hermes: Intake routes their topics to them; they see every event."""
        cfg = self.cfg
        if cfg.homeassistant.enabled:
            self.integrations.append(HomeAssistantBridge(cfg, self.settings, self._publish_raw, __version__,
                                                         refresh_status=lambda: self._publish_status(force=True)))
        if cfg.hermes.enabled:
            self.integrations.append(HermesBridge(cfg, self.intake, self.events, self._publish_raw))
        for integration in self.integrations:
            self.intake.add_integration(integration)
            self.events.subscribe(integration.on_event)
            _LOGGER.info("%s: enabled", integration.name)

    # ---- MQTT output -----------------------------------------------------------------
    def _publish_raw(self, topic: str, payload: bytes, qos: int, retain: bool) -> Any:
        if self.link is None:
            raise RuntimeError("not connected")
        return self.link.publish(topic, payload, qos, retain)

    def _publish_event(self, event: dict[str, Any], ann: Announcement | None) -> None:
        if self.link is None:
            return
        self.link.publish_json(f"{self.prefix}/events", event, qos=1)
        if ann is not None and ann.response_topic and event["state"] in TERMINAL:
            self._reply(ann.response_topic, ann.correlation_data, event)

    def _reply(self, topic: str, correlation: bytes | None, event: dict[str, Any]) -> None:
        if self.link is None:
            return
        props = publish_properties(correlation_data=correlation) if correlation is not None else None
        self.link.publish_json(topic, event, qos=1, properties=props)

    def status(self) -> dict[str, Any]:
        st = self.scheduler.status()
        status = {"state": "online", "version": __version__, "queue": st["queue"], "speaking": st["speaking"]}
        managed = {name: eng.state for name, eng in self.synth.engines.items() if hasattr(eng, "start_managed")}
        if managed:  # managed engine processes: starting | ready | down
            status["engines"] = managed
        return status

    def _status_changed(self, _status: dict[str, Any] | None = None) -> None:
        self._publish_status()

    def _publish_status(self, force: bool = False) -> None:
        if self.link is None or not hasattr(self, "scheduler"):
            return
        status = self.status()
        with self._status_lock:
            if status == self._last_status and not force:
                return
            self._last_status = status
        self.link.publish_json(f"{self.prefix}/status", status, qos=1, retain=True)
        for integration in self.integrations:
            try:
                integration.on_status(status)
            except Exception:
                _LOGGER.exception("%s: status hook failed", integration.name)
        notify(f"STATUS=queue {status['queue']}, speaking {','.join(status['speaking']) or 'none'}, "
               f"broker {'connected' if self.link.connected else 'disconnected'}")

    def _connection_changed(self, connected: bool) -> None:
        if connected:
            for integration in self.integrations:  # discovery configs and states before the status
                try:
                    integration.on_connect()
                except Exception:
                    _LOGGER.exception("%s: connect hook failed", integration.name)
            self._publish_status(force=True)
        else:
            notify("STATUS=broker disconnected; reconnecting")

    # ---- maintenance and stop ----------------------------------------------------------
    def _maintain(self) -> None:
        while not self._stopping.wait(PRUNE_EVERY):
            try:
                removed = self.spool.prune()
                if removed:
                    _LOGGER.info("spool: pruned %d finished records", removed)
            except Exception as exc:  # keep the daemon alive; the next round retries
                _LOGGER.warning("spool prune failed: %s", exc)

    def request_stop(self) -> None:
        self._stopping.set()

    def wait(self) -> None:
        while not self._stopping.wait(1.0):
            pass

    def stop(self, timeout: float = 10.0) -> None:
        self._stopping.set()
        notify("STOPPING=1")
        if getattr(self, "wyoming", None) is not None:
            self.wyoming.stop()
        if getattr(self, "http", None) is not None:
            self.http.stop()  # http: no new requests before the intake closes
        if hasattr(self, "intake"):
            self.intake.close()  # from now on messages are not acked: the broker keeps them for next time
        if hasattr(self, "scheduler"):
            self.scheduler.shutdown(timeout)
        for eng in (self.synth.engines.values() if hasattr(self, "synth") else ()):
            if hasattr(eng, "start_managed"):
                eng.close()  # managed engine process: SIGTERM, then SIGKILL
        if self.link is not None:
            offline = dict(self._last_status or {}, state="offline", queue=len(self.spool.pending()), speaking=[])
            try:
                self.link.publish_json(f"{self.prefix}/status", offline, qos=1, retain=True)
            except Exception:
                pass
            self.link.close()
        for sink in getattr(self, "sinks", {}).values():
            sink.close()
        if hasattr(self, "spool"):
            self.spool.close()
        _LOGGER.info("stopped")


def run(cfg: Config, config_path: Path | None = None) -> int:
    daemon = Daemon(cfg)

    def on_signal(signum: int, _frame: Any) -> None:
        _LOGGER.info("received %s; stopping", signal.Signals(signum).name)
        daemon.request_stop()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    _LOGGER.info("announcer %s starting (config %s)", __version__, config_path or "built-in defaults")
    daemon.start()
    if daemon.wait_ready(30.0):
        notify("READY=1")
        _LOGGER.info("ready: subscribed on %s:%d, prefix %s", cfg.mqtt.host, cfg.mqtt.port, daemon.prefix)
    else:
        _LOGGER.warning("broker %s:%d not reachable yet; running and retrying", cfg.mqtt.host, cfg.mqtt.port)
        notify("READY=1")
    daemon.wait()
    daemon.stop()
    return 0
