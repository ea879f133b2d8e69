"""Running the HTTP API beside the MQTT side: uvicorn in a background thread with its own loop.

``HttpContext`` gathers what the endpoints use (the daemon's live runtime, intake, spool,
scheduler and event bus, plus the HTTP side's own records) and subscribes its listeners.
``HttpServer`` runs uvicorn in a thread and stops it with ``should_exit``. ``HttpService``
is what the daemon starts and stops: context + app + server + the audio sweeper.
"""

from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from .. import __version__
from ..config import Config
from ..core.events import EventBus
from ..intake.intake import Intake
from ..intake.rate_limit import RateLimiter
from ..playback.runtime import LiveRuntime
from ..playback.scheduler import Scheduler
from ..playback.synthesizer import Synthesizer
from ..spool.store import Spool
from .handouts import Handouts
from .metrics import Metrics
from .records import AudioStore, RecentAnnouncements
from .security import AccessPolicy

_LOGGER = logging.getLogger(__name__)

SWEEP_SECONDS = 60.0
TTS_WORKERS = 2


class HttpContext:
    """What the endpoints use. The config, synthesizer and chimes are read from ``live`` at each
    request, so a SIGHUP reload reaches the HTTP side too (``http:`` itself needs a restart)."""

    def __init__(self, live: LiveRuntime, intake: Intake, spool: Spool, scheduler: Scheduler, events: EventBus) -> None:
        self.live = live
        cfg = live.config
        h = cfg.http
        audio_dir = h.audio_dir or Path(cfg.spool.path).parent / "http-audio"
        self.intake = intake
        self.spool = spool
        self.scheduler = scheduler
        self.events = events
        self.version = __version__
        self.audio = AudioStore(audio_dir, h.audio_max_age, int(h.audio_max_mb * 1024 * 1024))
        self.recent = RecentAnnouncements()
        self.handouts = Handouts(h.base_url or f"http://127.0.0.1:{h.port}")  # the port is known at start
        self.metrics = Metrics(lambda: list(self.cfg.speakers), __version__, status=scheduler.status)
        self.policy = AccessPolicy(h.token_pairs(), h.jwt_secret, h.allow_ips)
        self.tts_limiter = RateLimiter(cfg.limits.per_minute)
        self.tts_pool = ThreadPoolExecutor(TTS_WORKERS, thread_name_prefix="http-tts")
        events.subscribe(self.recent.on_event)
        events.subscribe(self.metrics.on_event)

    @property
    def cfg(self) -> Config:
        return self.live.config

    @property
    def synth(self) -> Synthesizer:
        return self.live.current.synth

    def close(self) -> None:
        self.tts_pool.shutdown(wait=False, cancel_futures=True)


class HttpServer:
    """uvicorn in a daemon thread. ``port=0`` picks a free port (see ``port`` after ``start``)."""

    def __init__(
        self,
        asgi_app: Any,
        host: str,
        port: int,
        policy: AccessPolicy | None = None,
        per_client: int = 8,
        header_timeout: float = 10.0,
    ) -> None:
        import uvicorn

        from .connections import KEEP_ALIVE_SECONDS, MAX_CONNECTIONS, guarded_protocol

        self.host = host
        config = uvicorn.Config(
            asgi_app,
            host=host,
            port=port,
            log_config=None,
            access_log=False,
            proxy_headers=False,  # X-Forwarded-For must not fool the allow-list
            server_header=False,
            lifespan="off",
            http=guarded_protocol(policy or AccessPolicy(), per_client, header_timeout),  # announcer.http.connections
            limit_concurrency=MAX_CONNECTIONS + 64,  # connections are capped at accept; this bounds the tasks
            timeout_keep_alive=KEEP_ALIVE_SECONDS,
            h11_max_incomplete_event_size=16 * 1024,
        )
        self.server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._run, name="http", daemon=True)
        self._error: BaseException | None = None

    def _run(self) -> None:
        try:
            self.server.run()  # its own event loop; signal handlers are left to the main thread
        except BaseException as exc:  # noqa: BLE001  # uvicorn exits with SystemExit when it cannot bind
            self._error = exc

    def start(self, timeout: float = 10.0) -> None:
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self.server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self.server.should_exit = True
                raise OSError(f"cannot listen on {self.host}:{self.server.config.port} (see the log above)")
            time.sleep(0.01)

    @property
    def port(self) -> int:
        for server in getattr(self.server, "servers", []):
            for sock in server.sockets:
                return int(sock.getsockname()[1])
        return int(self.server.config.port)

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def stop(self, timeout: float = 5.0) -> None:
        self.server.should_exit = True
        if self._thread.is_alive():
            self._thread.join(timeout)
            if self._thread.is_alive():
                self.server.force_exit = True
                self._thread.join(1.0)


class HttpService:
    """The daemon's HTTP side: ``start()`` after the scheduler runs, ``stop()`` before it stops."""

    def __init__(self, ctx: HttpContext, port: int | None = None) -> None:
        from .app import create_app, wrap

        self.ctx = ctx
        self.app = create_app(ctx)
        h = ctx.cfg.http
        self.server = HttpServer(
            wrap(self.app, ctx),
            h.bind,
            h.port if port is None else port,
            ctx.policy,
            h.max_connections_per_client,
            h.header_timeout,
        )
        self._stopping = threading.Event()
        self._sweeper = threading.Thread(target=self._sweep, name="http-audio-sweep", daemon=True)

    def start(self) -> None:
        self.ctx.audio.sweep()
        self.server.start()
        self.ctx.handouts.base_url = (self.ctx.cfg.http.public_url or self.server.url).rstrip("/")
        self._sweeper.start()
        auth = "bearer auth" if self.ctx.policy.auth_required else "no auth (loopback only)"
        _LOGGER.info(
            "http: listening on %s (%s%s)",
            self.server.url,
            auth,
            f", allow {', '.join(self.ctx.cfg.http.allow_ips)}" if self.ctx.cfg.http.allow_ips else "",
        )

    def _sweep(self) -> None:
        while not self._stopping.wait(SWEEP_SECONDS):
            try:
                self.ctx.audio.sweep()
            except Exception as exc:  # noqa: BLE001  # keep sweeping next time
                _LOGGER.warning("http: audio sweep failed: %s", exc)

    def stop(self, timeout: float = 5.0) -> None:
        self._stopping.set()
        self.server.stop(timeout)
        self.ctx.close()
