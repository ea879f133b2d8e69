"""The systemd watchdog: ``WATCHDOG=1`` only while the daemon makes progress.

Pings go out every half period of ``$WATCHDOG_USEC`` (``notify.watchdog_interval``), only
while paho's network loop runs (``MqttLink.loop_alive``) and every player makes progress
(``Scheduler.health``: idle players beat every second; a sink call may take its audio's
duration plus a margin). A hung speaker therefore gets the service restarted. While
unhealthy, the problems go out once as ``STATUS=unhealthy: …`` and one error line.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

from .sd_notify import notify, watchdog_interval

if TYPE_CHECKING:
    from ..mqtt.link import MqttLink
    from ..playback.scheduler import Scheduler

# logged under the daemon's name, as before this module was split out of it (log filters and
# caplog(logger="announcer.daemon") keep matching)
_LOGGER = logging.getLogger(__name__)


def health(link: MqttLink | None, scheduler: Scheduler | None) -> list[str]:
    """Why the daemon is not making progress (empty: it is): the MQTT loop and every player."""
    problems = []
    if link is not None and not link.loop_alive():
        problems.append("MQTT network loop is not running")
    if scheduler is not None:
        problems += scheduler.health()
    return problems


def start_watchdog(
    check: Callable[[], list[str]], stopping: threading.Event, interval: float | None = None
) -> threading.Thread | None:
    """Ping ``WATCHDOG=1`` every ``interval`` s (default: half of $WATCHDOG_USEC) while ``check()``
    is clean, until ``stopping`` is set. None (no thread) when no watchdog is asked for."""
    interval = interval if interval is not None else watchdog_interval()
    if interval is None:
        return None
    _LOGGER.info("watchdog: pinging systemd every %.1f s while healthy", interval)
    thread = threading.Thread(target=_watchdog_loop, args=(check, stopping, interval), name="watchdog", daemon=True)
    thread.start()
    return thread


def _watchdog_loop(check: Callable[[], list[str]], stopping: threading.Event, interval: float) -> None:
    reported: list[str] = []
    while not stopping.is_set():
        try:
            problems = check()
        except Exception as exc:  # a bug here must not look like a hang, nor hide one
            problems = [f"health check failed: {exc}"]
        if not problems:
            notify("WATCHDOG=1")
            if reported:
                _LOGGER.warning("watchdog: healthy again; pinging systemd")
        elif problems != reported:
            _LOGGER.error(
                "watchdog: not pinging systemd (it restarts the service after WatchdogSec): %s", "; ".join(problems)
            )
            notify(f"STATUS=unhealthy: {'; '.join(problems)}")
        reported = problems
        stopping.wait(interval)
