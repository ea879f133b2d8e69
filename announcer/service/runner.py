"""``announcer run``: the daemon's main loop under systemd (signals, READY, the reload and the stop).

Signal handlers only set flags (``_Signals``); a wake-up fd interrupts the main loop's
``select``, and the main thread does the work: ``READY=1`` once the daemon is ready (within
10 ms of the broker's SUBACK), a reload on SIGHUP, the drain on SIGTERM/SIGINT. The
daemon itself (its parts and their lifecycle) is ``announcer.service.daemon``.
"""

from __future__ import annotations

import logging
import select
import signal
import socket
import time
from pathlib import Path
from typing import Any

from .. import __version__
from ..config import Config
from .daemon import Daemon
from .sd_notify import notify

_LOGGER = logging.getLogger(__name__)


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
                _LOGGER.warning(
                    "broker %s:%d not reachable yet (%s); still retrying, and not READY until the "
                    "subscriptions are acknowledged (systemd's TimeoutStartSec bounds the wait)",
                    cfg.mqtt.host,
                    cfg.mqtt.port,
                    why or "no answer",
                )
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
