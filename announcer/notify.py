"""sd_notify: one datagram on the AF_UNIX socket named by $NOTIFY_SOCKET (leading '@' = abstract).

A few lines instead of a dependency. Without $NOTIFY_SOCKET (not under systemd) it does
nothing; a failure to send is logged once per kind, never swallowed silently.
"""

from __future__ import annotations

import logging
import os
import socket

_LOGGER = logging.getLogger(__name__)
_warned: set[str] = set()


def notify(message: str) -> bool:
    """Send ``message`` (e.g. ``READY=1``); True if sent."""
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
