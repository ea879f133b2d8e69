"""The daemon: wiring and lifecycle only (start, ready, reload, drain, stop).

MQTT messages are parsed and spooled on paho's thread (``Intake``), played by the
``Scheduler``'s threads, and every state change goes out on ``P/events`` (and the
MQTT 5 response topic for the terminal one). ``P/status`` is kept current.

Under systemd (``Type=notify``, see systemd/README.md):

* ``READY=1`` once the engines are loaded, the spool is open and the broker has
  acknowledged the subscriptions (SUBACK). While the broker is unreachable the daemon
  keeps retrying and stays "activating"; systemd's ``TimeoutStartSec`` bounds that.
  ``STATUS=`` carries the queue depth, who speaks and the broker state.
* Watchdog (``$WATCHDOG_USEC``, ``announcer.service.watchdog``): ``WATCHDOG=1`` every half
  period, only while paho's network loop runs (``MqttLink.loop_alive``) and every player
  makes progress (``Player.health``: idle players beat every second; a sink call may take
  its audio's duration plus a margin). A hung speaker therefore gets the service restarted.
* SIGHUP (``systemctl reload``): ``RELOADING=1``, re-read the config file, apply it
  (``reload``; the steps are in ``announcer.service.reload``), ``READY=1``. SIGTERM/SIGINT:
  ``STOPPING=1`` and drain (``stop``).
  Signal handlers only set flags; the main thread does the work.
"""

from __future__ import annotations

import logging
import select
import signal
import socket
import threading
import time
from pathlib import Path
from typing import Any

from .. import __version__
from ..audio.chimes import ChimeLibrary
from ..config import Config
from ..core.announcement import Announcement
from ..core.errors import EngineUnavailable
from ..core.events import TERMINAL, EventBus
from ..engines.base import Engine
from ..intake.intake import Intake
from ..integrations.base import Integration
from ..integrations.hermes import HermesBridge
from ..integrations.homeassistant.bridge import HomeAssistantBridge
from ..mqtt.link import MqttLink, publish_properties
from ..playback.scheduler import Scheduler
from ..playback.synthesizer import Synthesizer, make_synthesizer
from ..sinks.base import SinkContext, create_sink
from ..spool.settings import RuntimeSettings, settings_path
from ..spool.store import Spool
from .memory import IdleTrim
from .reload import close_engines, keep_restart_sections, log_applied, read_config, rebuild
from .sd_notify import monotonic_usec, notify
from .watchdog import health, start_watchdog

_LOGGER = logging.getLogger(__name__)

PRUNE_EVERY = 3600.0


class Daemon:
    def __init__(self, cfg: Config, config_path: Path | None = None) -> None:
        self.cfg = cfg
        self.config_path = config_path  # what a reload re-reads
        self.prefix = cfg.mqtt.topic_prefix.rstrip("/")
        self.events = EventBus()
        self._stopping = threading.Event()
        self._status_lock = threading.Lock()
        self._last_status: dict[str, Any] | None = None
        self.link: MqttLink | None = None
        self.integrations: list[Integration] = []
        self._idle_trim = IdleTrim()

    # ---- start ---------------------------------------------------------------------
    def start(self) -> None:
        cfg = self.cfg
        self._warn_unimplemented()
        self.synth = make_synthesizer(cfg)
        self._load_engines(self.synth, self.synth.engines)
        self.spool = Spool(cfg.spool.path, cfg.spool.keep_days, cfg.spool.max_records)
        self._sink_context = SinkContext(publish=self._publish_raw)
        self.sinks = {name: create_sink(name, scfg, self._sink_context) for name, scfg in cfg.speakers.items()}
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

    def _load_engines(self, synth: Synthesizer, engines: dict[str, Engine]) -> None:
        for name, eng in engines.items():
            if hasattr(eng, "start_managed"):  # managed engine process: started in the background, never blocks
                eng.start_managed(on_change=lambda _name, _state: self._publish_status())
                continue
            t0 = time.perf_counter()
            try:
                eng.load()
                _LOGGER.info("engine %s (%s) ready in %.2f s", name, eng.type_name, time.perf_counter() - t0)
            except EngineUnavailable as exc:
                _LOGGER.error("engine %s unavailable: %s (announcements for it will fail)", name, exc)
        # The loudness normaliser's starting point, measured in the background so it does not delay
        # READY (usually from the clause cache; a player that needs it first measures it itself).
        names = [n for n, e in engines.items() if not hasattr(e, "start_managed")]
        threading.Thread(target=lambda: [synth.reference_lufs(n) for n in names],
                         name="reference-loudness", daemon=True).start()

    def wait_ready(self, timeout: float | None = None) -> bool:
        return self.link is not None and self.link.wait_subscribed(timeout)

    # ---- watchdog (announcer/watchdog.py) ------------------------------------------------
    def health(self) -> list[str]:
        """Why the daemon is not making progress (empty: it is): the MQTT loop and every player."""
        return health(self.link, getattr(self, "scheduler", None))

    def start_watchdog(self, interval: float | None = None) -> None:
        """Ping ``WATCHDOG=1`` every ``interval`` s (default: half of $WATCHDOG_USEC) while ``health()`` is clean."""
        self._watchdog = start_watchdog(self.health, self._stopping, interval)

    # ---- reload (announcer/reload.py) ------------------------------------------------------
    def reload(self) -> bool:
        """Re-read ``config_path`` and apply it; an invalid file is logged (every error) and changes nothing."""
        if self.config_path is None:
            _LOGGER.warning("reload: started without a config file; nothing to re-read")
            return False
        notify(f"RELOADING=1\n{monotonic_usec()}")
        try:
            new = read_config(self.config_path)
            if new is None:
                return False
            try:
                self._apply(new)
            except Exception as exc:  # e.g. a chime file that cannot be read: nothing was swapped yet
                _LOGGER.error("reload: cannot apply %s: %s; the running config stays in force", self.config_path,
                              exc, exc_info=not isinstance(exc, (OSError, ValueError)))
                return False
            return True
        finally:
            notify("READY=1")
            self._publish_status(force=True)

    def _apply(self, new: Config) -> None:
        old = self.cfg
        new = keep_restart_sections(old, new)
        # build everything first (may fail: nothing swapped yet), then swap
        parts = rebuild(old, new, self.synth, self.sinks, self._sink_context)
        self._load_engines(parts.synth, parts.fresh)
        self.scheduler.reconfigure(new, parts.synth, parts.sinks, parts.chimes)
        self.intake.reconfigure(new)
        self.synth, self.sinks, self.cfg = parts.synth, parts.sinks, new
        close_engines(parts.dropped)
        if new.logging.level != old.logging.level:
            logging.getLogger().setLevel(new.logging.level)
        log_applied(old, new, parts)

    def _warn_unimplemented(self) -> None:
        """Every config section is implemented (http was the last); kept for sections still to come."""

    def _start_wyoming(self) -> None:
        """Wyoming TTS server (Home Assistant Assist) on the daemon's Synthesizer; a taken port is logged."""
        self.wyoming: Any = None
        if not self.cfg.wyoming.enabled:
            return
        from ..integrations.wyoming.server import WyomingServer

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
        from ..http.service import HttpService

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

    def _status_changed(self, status: dict[str, Any] | None = None) -> None:
        self._publish_status()
        if status is not None:  # malloc keeps what a busy spell freed: give it back once idle
            self._idle_trim.update(status.get("queue") == 0 and not status.get("speaking"))

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

    def stop(self, timeout: float = 10.0, drain: bool = False) -> None:
        """Stop everything. With ``drain``, a high/emergency announcement that is playing may
        finish first (at most ``shutdown.drain_timeout`` s); the rest stays in the spool."""
        self._stopping.set()
        notify("STOPPING=1")
        if getattr(self, "wyoming", None) is not None:
            self.wyoming.stop()
        if getattr(self, "http", None) is not None:
            self.http.stop()  # http: no new requests before the intake closes
        if hasattr(self, "intake"):
            self.intake.close()  # from now on messages are not acked: the broker keeps them for next time
        if hasattr(self, "scheduler"):
            self.scheduler.shutdown(timeout, drain=self.cfg.shutdown.drain_timeout if drain else 0.0)
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


class _Signals:
    """What the signal handlers asked for. The handlers only set these flags (the wake-up fd
    then interrupts the main loop's select); the main thread does the work."""

    def __init__(self) -> None:
        self.stop: int | None = None
        self.reload = False

    def handler(self, signum: int, _frame: Any) -> None:
        if signum == signal.SIGHUP:
            self.reload = True
        else:
            self.stop = signum


NOT_READY_WARNING_S = 30.0


def run(cfg: Config, config_path: Path | None = None) -> int:
    daemon = Daemon(cfg, config_path)
    flags = _Signals()
    wake_r, wake_w = socket.socketpair()
    wake_r.setblocking(False)
    wake_w.setblocking(False)
    previous_fd = signal.set_wakeup_fd(wake_w.fileno(), warn_on_full_buffer=False)
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, flags.handler)
    try:
        _LOGGER.info("announcer %s starting (config %s)", __version__, config_path or "built-in defaults")
        daemon.start()
        daemon.start_watchdog()
        started = time.monotonic()
        ready = warned = False
        while flags.stop is None:
            if not ready and daemon.wait_ready(0):
                ready = True
                notify("READY=1")
                _LOGGER.info("ready: subscribed on %s:%d, prefix %s", cfg.mqtt.host, cfg.mqtt.port, daemon.prefix)
            elif not ready and not warned and time.monotonic() - started > NOT_READY_WARNING_S:
                warned = True
                why = daemon.link.last_error if daemon.link is not None else None
                _LOGGER.warning("broker %s:%d not reachable yet (%s); still retrying, and not READY until the "
                                "subscriptions are acknowledged (systemd's TimeoutStartSec bounds the wait)",
                                cfg.mqtt.host, cfg.mqtt.port, why or "no answer")
            if flags.reload and ready:  # a reload asked for during start-up waits for READY
                flags.reload = False
                daemon.reload()
            select.select([wake_r], [], [], 0.01 if not ready else 1.0)  # READY within 10 ms of the SUBACK
            try:
                while wake_r.recv(64):
                    pass
            except (BlockingIOError, InterruptedError):
                pass
        _LOGGER.info("received %s; stopping", signal.Signals(flags.stop).name)
        daemon.stop(drain=True)
    finally:
        signal.set_wakeup_fd(previous_fd)
        wake_r.close()
        wake_w.close()
    return 0
