"""Connection limits for the HTTP server: what uvicorn's own settings do not cover.

``guarded_protocol`` makes a subclass of uvicorn's h11 protocol (``uvicorn.Config(http=...)``)
that, for every TCP connection:

1. checks the client address against ``http.allow_ips`` (``AccessPolicy``) when the
   connection is made, and closes it before reading a byte when it is not allowed;
2. caps the connections open at once per client address (``http.max_connections_per_client``)
   and in all (``MAX_CONNECTIONS``): one more is closed at once;
3. closes a connection that has not sent a complete request header within
   ``http.header_timeout`` seconds of opening (or of its previous response): a client that
   opens connections and sends nothing, or a byte at a time ("slowloris"), holds them for
   that long only.

Idle keep-alive connections are closed after ``KEEP_ALIVE_SECONDS``. Refusals are logged
once a minute per kind, with a count (``RateLimitedLog``). So ``/healthz`` (and everything
else) keeps answering while other clients hold idle connections.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from typing import Any

from uvicorn.protocols.http.h11_impl import H11Protocol

from ..core.ratelog import RateLimitedLog
from .security import AccessPolicy

_LOGGER = logging.getLogger(__name__)

MAX_CONNECTIONS = 512  # open at once, all clients together
KEEP_ALIVE_SECONDS = 2  # an idle keep-alive connection is closed after this


class _Shared:
    """What every connection of one server shares (the event loop's thread only: no lock)."""

    def __init__(self, policy: AccessPolicy, per_client: int, header_timeout: float) -> None:
        self.policy = policy
        self.per_client = per_client
        self.header_timeout = header_timeout
        self.open: Counter[str] = Counter()
        self.total = 0
        self.log = RateLimitedLog(_LOGGER)


class GuardedH11Protocol(H11Protocol):
    shared: _Shared  # set on the subclass ``guarded_protocol`` makes

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._host: str | None = None
        self._header_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        shared = self.shared
        host = self.client[0] if self.client else None
        if not shared.policy.ip_allowed(host):
            shared.log.warning("ip", "http: closed a connection from %s at once (not in http.allow_ips)", host)
            transport.abort()
            return
        key = host or "?"
        if shared.open[key] >= shared.per_client or shared.total >= MAX_CONNECTIONS:
            shared.log.warning(
                "busy",
                "http: closed a connection from %s at once (%d open from it, %d in all; "
                "http.max_connections_per_client is %d)",
                key,
                shared.open[key],
                shared.total,
                shared.per_client,
            )
            transport.abort()
            return
        self._host = key
        shared.open[key] += 1
        shared.total += 1
        self._arm_header_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm_header_timer()
        if self._host is not None:
            shared = self.shared
            shared.open[self._host] -= 1
            if shared.open[self._host] <= 0:
                del shared.open[self._host]
            shared.total -= 1
            self._host = None
        super().connection_lost(exc)

    def handle_events(self) -> None:
        cycle = self.cycle
        super().handle_events()
        if self.cycle is not cycle:  # a whole request header arrived
            self._disarm_header_timer()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing():
            self._arm_header_timer()  # the next request's header has the same deadline

    # ---- the header deadline ---------------------------------------------------------
    def _arm_header_timer(self) -> None:
        self._disarm_header_timer()
        self._header_timer = self.loop.call_later(self.shared.header_timeout, self._header_timed_out)

    def _disarm_header_timer(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _header_timed_out(self) -> None:
        self._header_timer = None
        if self.transport is not None and not self.transport.is_closing():
            self.shared.log.info(
                "slow",
                "http: closed a connection from %s: no complete request header within %g s (http.header_timeout)",
                self._host,
                self.shared.header_timeout,
            )
            self.transport.abort()


def guarded_protocol(policy: AccessPolicy, per_client: int, header_timeout: float) -> type[GuardedH11Protocol]:
    """A protocol class for one server: its own counters, the given policy and limits."""
    return type("ServerH11Protocol", (GuardedH11Protocol,), {"shared": _Shared(policy, per_client, header_timeout)})
