"""The daemon: wiring and lifecycle only (start, ready, reload, drain, stop).

MQTT messages are routed (``MqttRouter``) to the intake on paho's thread (parsed and
spooled), played by the ``Scheduler``'s threads, and every state change goes out on
``P/events`` (``EventPublisher``; the MQTT 5 response topic gets the terminal one).
``P/status`` is kept current (``StatusReporter``). Schedules fire through the same intake
(``ScheduleRunner`` with ``ScheduledFirings``); every event is also kept in the history
(``HistoryRecorder``, in the spool database). With a ``site`` the router also takes the
fleet's topics (``FleetTopics``); as one member of a ``pair`` (``PairMember``) the daemon
schedules, plays and publishes only while it leads: the pair is the intake's scheduling, the
scheduler's start gate and the gate of every event listener that publishes.

The parts are ``Component`` s with start, stop and reconfigure: started in the order of
``self.components``, stopped in ``STOP_ORDER`` (front doors first, then the scheduler
drains while the broker link still carries its events, then the rest), each one only if
it started. A reload builds a new ``Runtime`` (``announcer.service.reload``), swaps it into
the one ``LiveRuntime`` every part reads from, and hands it to every component.

``announcer run``'s main loop (signals, READY) is ``announcer.service.run``.
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
  Signal handlers only set flags; the main thread does the work (``announcer.service.run``).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .. import __version__
from ..config import Config
from ..core.errors import EngineUnavailable
from ..core.events import EventBus, Listener
from ..engines.base import Engine
from ..intake.intake import Intake
from ..intake.scheduled import ScheduledFirings
from ..integrations.base import Integration
from ..integrations.hermes import HermesBridge
from ..integrations.homeassistant.bridge import HomeAssistantBridge
from ..integrations.pair.member import PairMember
from ..mqtt.link import MqttLink
from ..mqtt.publisher import Deliveries, EventPublisher
from ..mqtt.router import MqttRouter
from ..mqtt.topics import FleetTopics, Topics
from ..playback.runtime import LiveRuntime, Runtime
from ..playback.scheduler import Scheduler
from ..schedule.runner import ScheduleRunner
from ..sinks.base import SinkContext
from ..spool.history import HistoryRecorder
from ..spool.settings import RuntimeSettings, settings_path
from ..spool.store import Spool
from .reload import close_engines, keep_restart_sections, log_applied, read_config, rebuild
from .sd_notify import monotonic_usec, notify
from .status import StatusReporter
from .watchdog import health, start_watchdog

_LOGGER = logging.getLogger(__name__)

PRUNE_EVERY = 3600.0
STOP_ORDER = (
    "pair",
    "schedules",
    "wyoming",
    "http",
    "intake",
    "scheduler",
    "engines",
    "mqtt",
    "maintenance",
    "sinks",
    "history",
    "spool",
)


def _nothing(_runtime: Runtime) -> None:
    return None


def _gated(listener: Listener, publishing: Callable[[], bool] | None) -> Listener:
    """An integration hears the events only from the pair member that leads (a daemon of its own: always)."""
    if publishing is None:
        return listener
    gate = publishing
    return lambda event, ann: listener(event, ann) if gate() else None


@dataclass
class Component:
    """One part of the daemon as its lifecycle sees it."""

    name: str
    start: Callable[[], None]
    stop: Callable[[], None]
    reconfigure: Callable[[Runtime], None] = _nothing


class Daemon:
    def __init__(self, cfg: Config, config_path: Path | None = None) -> None:
        self.cfg = cfg  # as started; the live config is ``self.live.config``
        self.config_path = config_path  # what a reload re-reads
        self.topics = Topics.under(cfg.mqtt.topic_prefix)
        self.prefix = self.topics.prefix
        site = cfg.site.name if cfg.site is not None else None
        self.events = EventBus(site=site, member=cfg.mqtt.client_id if cfg.pair is not None else None)
        self.fleet = FleetTopics.under(cfg.fleet.prefix, site) if site is not None else None
        self._stopping = threading.Event()
        self.link: MqttLink | None = None
        self.pair: PairMember | None = None
        self.wyoming: Any = None
        self.http: Any = None
        self.integrations: list[Integration] = []
        self.components: list[Component] = []
        self._started: list[Component] = []
        self._drain = False  # stop(drain=True): SIGTERM lets a high/emergency announcement finish
        self._stop_timeout = 10.0

    # ---- start -----------------------------------------------------------------------
    def start(self) -> None:
        """Build every part, then start them in order (engines first: READY means they are loaded)."""
        cfg = self.cfg
        self.spool = Spool(cfg.spool.path, cfg.spool.keep_days, cfg.spool.max_records)
        self.settings = RuntimeSettings(settings_path(cfg.spool.path))  # what Home Assistant sets, persisted
        self.history = HistoryRecorder(self.spool, cfg.history.days, cfg.history.max_records)
        self.events.subscribe(self.history.on_event)
        self.sink_context = SinkContext(
            publish=self._publish_raw,
            homeassistant_url=cfg.homeassistant.url,
            homeassistant_token=cfg.homeassistant.token,
        )
        self.live = LiveRuntime(Runtime.build(cfg, self.sink_context))
        self.status = StatusReporter(self.live, lambda: self.scheduler.status(), self.topics)
        pair = self.pair = PairMember(cfg, self.topics, self.spool, lambda: self.live.config) if cfg.pair else None
        self.scheduler = Scheduler(
            self.live.current,
            self.spool,
            self.events,
            on_status_change=self.status.scheduler_changed,
            master_volume=lambda: self.settings.volume,
            may_start=pair.may_start if pair is not None else None,
        )
        self.intake = Intake(
            lambda: self.live.config,
            self.spool,
            self.scheduler if pair is None else pair,  # a pair member schedules only while it leads
            self.events,
            field_defaults=self.settings.field_defaults,
        )
        self.schedules = ScheduleRunner(
            lambda: self.live.config, ScheduledFirings(self.intake), paused=lambda: self.settings.paused_schedules
        )
        self.integrations = self._integrations() + ([pair] if pair is not None else [])
        self.status.integrations = list(self.integrations)
        router = MqttRouter(self.intake, self.topics, self.integrations, fleet=self.fleet)
        self.link = MqttLink(
            cfg.mqtt,
            router.handle,
            router.subscriptions(),
            on_connect_change=self.status.connection_changed,
            availability_topic=pair.availability_topic if pair is not None else None,
        )
        self.status.link = self.link
        publishing = (lambda: pair.publishing) if pair is not None else None  # only the leader speaks
        deliveries = Deliveries()  # a pair leader's terminal events not yet acknowledged
        self.events.subscribe(
            EventPublisher(self.link, self.topics, cfg.mqtt.reply_prefixes, publishing, deliveries if pair else None)
        )
        self.events.subscribe(self.status.on_event)
        for integration in self.integrations:
            self.events.subscribe(_gated(integration.on_event, publishing))
        if pair is not None:
            pair.attach(self.scheduler, self.link, deliveries)
            pair.on_change = lambda: self.status.publish(force=True)
            self.status.pair = pair
        self.components = self._components()
        for component in self.components:
            component.start()
            self._started.append(component)

    def _components(self) -> list[Component]:
        link, scheduler = self.link, self.scheduler
        assert link is not None
        return [
            Component("spool", lambda: None, self.spool.close),
            Component("history", self.history.start, self.history.stop, self._reconfigure_history),
            Component("engines", lambda: self._start_engines(self.live.current.synth.engines), self._close_engines),
            # a pair member resumes the spool when it takes the lead, not at start
            Component(
                "scheduler",
                lambda: scheduler.start(resume=self.pair is None),
                self._stop_scheduler,
                scheduler.reconfigure,
            ),  # fmt: skip
            Component("intake", lambda: None, self.intake.close),
            # before the broker: homeassistant speakers hand out their audio over it from the first announcement
            Component("http", self._start_http, self._stop_http),
            Component("mqtt", link.start, self._close_link),
            Component(
                "pair",
                self.pair.start if self.pair else lambda: None,
                self.pair.stop_thread if self.pair else lambda: None,
            ),
            Component("schedules", self.schedules.start, self.schedules.stop, lambda _rt: self.schedules.wake()),
            Component("maintenance", self._start_maintenance, lambda: None),
            Component("sinks", lambda: None, self._close_sinks),
            Component("integrations", lambda: None, lambda: None, self._reconfigure_integrations),
            Component("wyoming", self._start_wyoming, lambda: self.wyoming and self.wyoming.stop()),
        ]

    def _integrations(self) -> list[Integration]:
        """Home Assistant and Hermes: the router hands them their topics; they see every event."""
        cfg = self.cfg
        out: list[Integration] = []
        if cfg.homeassistant.enabled:
            out.append(
                HomeAssistantBridge(
                    cfg,
                    self.settings,
                    self._publish_raw,
                    __version__,
                    refresh_status=lambda: self.status.publish(force=True),
                    schedules=self.schedules,
                )
            )
        if cfg.hermes.enabled:
            out.append(HermesBridge(self.intake, self.events, self._publish_raw))
        for integration in out:
            _LOGGER.info("%s: enabled", integration.name)
        return out

    def _start_engines(self, engines: dict[str, Engine]) -> None:
        """Start each engine: a plain one loads now (timed), a supervised one starts its process in the
        background (its states republish ``P/status``)."""
        for name, eng in engines.items():
            t0 = time.perf_counter()
            try:
                eng.start(on_change=lambda _name, _state: self.status.publish())
            except EngineUnavailable as exc:
                _LOGGER.error("engine %s unavailable: %s (announcements for it will fail)", name, exc)
                continue
            if not eng.supervised:
                _LOGGER.info("engine %s (%s) ready in %.2f s", name, eng.type_name, time.perf_counter() - t0)
        # The loudness normaliser's starting point, measured in the background so it does not delay
        # READY (usually from the clause cache; a player that needs it first measures it itself).
        synth = self.live.current.synth
        names = [n for n, e in engines.items() if not e.supervised]
        threading.Thread(
            target=lambda: [synth.reference_lufs(n) for n in names], name="reference-loudness", daemon=True
        ).start()

    def _stop_scheduler(self) -> None:
        drain = self.live.config.shutdown.drain_timeout if self._drain else 0.0  # the reloaded value counts
        self.scheduler.shutdown(self._stop_timeout, drain=drain)

    def _close_engines(self) -> None:
        close_engines(list(self.live.current.synth.engines.values()))

    def _close_sinks(self) -> None:
        for sink in self.live.current.sinks.values():
            sink.close()

    def _close_link(self) -> None:
        assert self.link is not None
        self.status.publish_offline(len(self.spool.pending()))
        self.link.close()

    def _start_maintenance(self) -> None:
        threading.Thread(target=self._maintain, name="maintenance", daemon=True).start()

    def _maintain(self) -> None:
        while not self._stopping.wait(PRUNE_EVERY):
            try:
                removed = self.spool.prune()
                if removed:
                    _LOGGER.info("spool: pruned %d finished records", removed)
            except Exception as exc:  # keep the daemon alive; the next round retries
                _LOGGER.warning("spool prune failed: %s", exc)

    def _start_wyoming(self) -> None:
        """Wyoming TTS server (Home Assistant Assist) on the live runtime; a taken port is logged."""
        if not self.cfg.wyoming.enabled:
            return
        from ..integrations.wyoming.server import WyomingServer

        server = WyomingServer(self.live, self.cfg.wyoming.uri)
        try:
            server.start()
        except OSError as exc:
            _LOGGER.error(
                "wyoming: cannot listen on %s: %s (the rest of the daemon runs)",
                self.cfg.wyoming.uri,
                exc.strerror or exc,
            )
            return
        self.wyoming = server

    def _start_http(self) -> None:
        """The HTTP API and web console (uvicorn in a thread); a taken port is logged, the rest runs."""
        if not self.cfg.http.enabled:
            return
        from ..http.service import HttpContext, HttpService

        if self.pair is not None:
            _LOGGER.warning(
                "http: in an active/standby pair, POST /announce and /stop reach this member only (the "
                "other one never sees them); send announcements over MQTT so that both members have them"
            )
        service = HttpService(HttpContext(self.live, self.intake, self.spool, self.scheduler, self.events))
        try:
            service.start()
        except OSError as exc:
            _LOGGER.error("http: %s (the rest of the daemon runs)", exc)
            service.ctx.close()
            return
        self.http = service
        self.sink_context.offer = service.ctx.handouts.offer  # homeassistant speakers' audio URLs

    def _stop_http(self) -> None:
        self.sink_context.offer = None
        if self.http is not None:
            self.http.stop()

    def _reconfigure_history(self, runtime: Runtime) -> None:
        h = runtime.config.history
        self.history.configure(h.days, h.max_records)

    def _reconfigure_integrations(self, runtime: Runtime) -> None:
        for integration in self.integrations:
            try:
                integration.reconfigure(runtime.config)
            except Exception:
                _LOGGER.exception("%s: reconfigure failed", integration.name)

    def wait_ready(self, timeout: float | None = None) -> bool:
        return self.link is not None and self.link.wait_subscribed(timeout)

    # ---- watchdog (announcer/service/watchdog.py) ------------------------------------------
    def health(self) -> list[str]:
        """Why the daemon is not making progress (empty: it is): the MQTT loop and every player."""
        return health(self.link, getattr(self, "scheduler", None))

    def start_watchdog(self, interval: float | None = None) -> None:
        """Ping ``WATCHDOG=1`` every ``interval`` s (default: half of $WATCHDOG_USEC) while ``health()`` is clean."""
        self._watchdog = start_watchdog(self.health, self._stopping, interval)

    # ---- reload (announcer/service/reload.py) ------------------------------------------------
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
                _LOGGER.error(
                    "reload: cannot apply %s: %s; the running config stays in force",
                    self.config_path,
                    exc,
                    exc_info=not isinstance(exc, (OSError, ValueError)),
                )
                return False
            return True
        finally:
            notify("READY=1")
            self.status.publish(force=True)

    def _apply(self, new: Config) -> None:
        old = self.live.current
        new = keep_restart_sections(old.config, new)
        # build everything first (may fail: nothing swapped yet), then swap
        rebuilt = rebuild(old, new, self.sink_context)
        self._start_engines(rebuilt.fresh)
        self.live.swap(rebuilt.runtime)
        for component in self._started:
            component.reconfigure(rebuilt.runtime)
        close_engines(rebuilt.dropped)
        if new.logging.level != old.config.logging.level:
            logging.getLogger().setLevel(new.logging.level)
        log_applied(old.config, new, rebuilt)

    # ---- MQTT output -----------------------------------------------------------------
    def _publish_raw(self, topic: str, payload: bytes | bytearray, qos: int, retain: bool) -> Any:
        if self.link is None:
            raise RuntimeError("not connected")
        return self.link.publish(topic, payload, qos, retain)

    # ---- stop ----------------------------------------------------------------------------
    def request_stop(self) -> None:
        self._stopping.set()

    def wait(self) -> None:
        while not self._stopping.wait(1.0):
            pass

    def stop(self, timeout: float = 10.0, drain: bool = False) -> None:
        """Stop every part that started, in ``STOP_ORDER``. With ``drain``, a high/emergency announcement
        that is playing may finish first (at most ``shutdown.drain_timeout`` s); the rest stays in the spool."""
        self._stopping.set()
        notify("STOPPING=1")
        self._stop_timeout = timeout
        self._drain = drain
        started = {c.name: c for c in self._started}
        for name in STOP_ORDER:
            component = started.pop(name, None)
            if component is None:
                continue
            try:
                component.stop()
            except Exception:
                _LOGGER.exception("stopping %s failed", name)
        for component in started.values():  # anything not named in STOP_ORDER
            component.stop()
        self._started.clear()
        _LOGGER.info("stopped")
