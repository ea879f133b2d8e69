"""A TCP proxy that cuts the line without a FIN: the network faults of the reliability suite.

``CutProxy(upstream)`` listens on ``127.0.0.1:<port>`` and forwards each connection to
``upstream`` (the broker). ``blackhole()`` stops forwarding on the live connections
without closing them (no FIN, no RST: packets simply stop arriving, as on a pulled cable
or a NAT that forgot us) and accepts new connections without answering; ``restore()``
closes the dead sockets (whoever still holds one sees a FIN or a reset then, as when a
line comes back) and forwards again. ``bytes_up`` / ``bytes_down`` count what it forwarded.
Used by ``test_network_cut.py``, ``bench/soak.py`` and the fleet tests (a site's bridge).
"""

from __future__ import annotations

import select
import socket
import threading


class _Link:
    """One proxied connection: the client's socket and ours to the broker."""

    def __init__(self, client: socket.socket, upstream: socket.socket) -> None:
        self.client = client
        self.upstream = upstream
        self.lock = threading.Lock()
        self.dead = False  # blackholed or closed: nothing is forwarded any more

    def close(self) -> None:
        self.dead = True
        for s in (self.client, self.upstream):
            try:
                s.close()
            except OSError:
                pass


class CutProxy:
    """A TCP proxy to ``upstream`` that can cut the line without a FIN (see the module doc)."""

    def __init__(self, upstream: tuple[str, int]) -> None:
        self.upstream = upstream
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]
        self._lock = threading.Lock()
        self._cut = False
        self._links: list[_Link] = []
        self._held: list[socket.socket] = []  # sockets of a blackhole, closed by restore()
        self._closed = False
        self.accepted_while_cut = 0
        self.bytes_up = 0  # client -> upstream (TCP payload), over every connection
        self.bytes_down = 0  # upstream -> client
        threading.Thread(target=self._accept_loop, name="cut-proxy-accept", daemon=True).start()

    def _accept_loop(self) -> None:
        while not self._closed:
            try:
                ready, _, _ = select.select([self._listener], [], [], 0.2)
                if not ready:
                    continue
                conn, _addr = self._listener.accept()
            except OSError:
                return
            with self._lock:
                if self._cut:  # accepted by the kernel anyway; never answered, never closed (yet)
                    self._held.append(conn)
                    self.accepted_while_cut += 1
                    continue
            try:
                up = socket.create_connection(self.upstream, timeout=5.0)
            except OSError:
                conn.close()  # broker down: the client sees a refused-like close
                continue
            for s in (conn, up):
                s.settimeout(None)
                s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            link = _Link(conn, up)
            with self._lock:
                self._links.append(link)
            for src, dst, direction in ((conn, up, "up"), (up, conn, "down")):
                threading.Thread(
                    target=self._pump, args=(link, src, dst, direction), name="cut-proxy-pump", daemon=True
                ).start()

    def _count(self, direction: str, n: int) -> None:
        with self._lock:
            if direction == "up":
                self.bytes_up += n
            else:
                self.bytes_down += n

    def _pump(self, link: _Link, src: socket.socket, dst: socket.socket, direction: str) -> None:
        while not link.dead:
            try:
                ready, _, _ = select.select([src], [], [], 0.2)
                if not ready:
                    continue
                data = src.recv(65536)
            except (OSError, ValueError):  # ValueError: closed under us (fd -1)
                data = b""
            with link.lock:
                if link.dead:  # read during a cut: lost on the dead line; stop reading altogether
                    return
                if data:
                    try:
                        dst.sendall(data)
                        self._count(direction, len(data))
                        continue
                    except OSError:
                        pass
                link.close()  # a real close on one side (clean disconnect, takeover): pass it on
                return

    def blackhole(self) -> None:
        """Stop forwarding both ways on every connection, without closing any; ignore new ones."""
        with self._lock:
            self._cut = True
            for link in self._links:
                with link.lock:
                    if not link.dead:
                        link.dead = True
                        self._held += [link.client, link.upstream]
            self._links = [link for link in self._links if not link.dead]

    def restore(self) -> None:
        """Close the blackholed sockets (dead to both ends already) and forward new connections."""
        with self._lock:
            held, self._held = self._held, []
            for s in held:
                try:
                    s.close()
                except OSError:
                    pass
            self._cut = False

    def close(self) -> None:
        self._closed = True
        self.restore()
        with self._lock:
            links, self._links = self._links, []
        for link in links:
            with link.lock:
                link.close()
        self._listener.close()
