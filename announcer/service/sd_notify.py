"""sd_notify: one datagram on the AF_UNIX socket named by $NOTIFY_SOCKET (leading '@' = abstract).

A few lines instead of a dependency. Without $NOTIFY_SOCKET (not under systemd) it does
nothing; a failure to send is logged once per kind, never swallowed silently.

``watchdog_interval()`` reads $WATCHDOG_USEC (and $WATCHDOG_PID, which must be ours when
set, as sd_watchdog_enabled(3) does) and returns how often to send ``WATCHDOG=1``: half
the timeout systemd enforces.
"""

from __future__ import annotations

import logging
import os
import socket
import time

_LOGGER = logging.getLogger(__name__)
_warned: set[str] = set()


def notify(message: str) -> bool:
    """Send ``message`` (e.g. ``READY=1``; several ``KEY=value`` lines allowed); True if sent."""
    address = os.environ.get("NOTIFY_SOCKET")
    if not address:
        return False
    if address.startswith("@"):
        address = "\0" + address[1:]
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
            sock.connect(address)
            sock.sendall(message.encode("utf-8"))
        return True
    except OSError as exc:
        kind = type(exc).__name__
        level = logging.DEBUG if kind in _warned else logging.WARNING
        _warned.add(kind)
        _LOGGER.log(level, "sd_notify to %s failed: %s", os.environ.get("NOTIFY_SOCKET"), exc)
        return False


def monotonic_usec() -> str:
    """``MONOTONIC_USEC=…`` for ``RELOADING=1`` (CLOCK_MONOTONIC, as systemd expects)."""
    return f"MONOTONIC_USEC={time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000}"


def watchdog_interval() -> float | None:
    """Seconds between ``WATCHDOG=1`` pings (half of $WATCHDOG_USEC), or None when no watchdog is asked for."""
    usec = os.environ.get("WATCHDOG_USEC")
    if not usec:
        return None
    pid = os.environ.get("WATCHDOG_PID")
    if pid and pid.strip() != str(os.getpid()):
        return None  # meant for another process (e.g. we were exec'd by a wrapper)
    try:
        value = int(usec)
    except ValueError:
        _LOGGER.warning("ignoring WATCHDOG_USEC=%r: not an integer", usec)
        return None
    if value <= 0:
        return None
    return value / 2_000_000.0
