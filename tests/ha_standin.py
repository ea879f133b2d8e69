"""A stand-in for Home Assistant's WebSocket API, for the fast test of the ``homeassistant`` speaker's requests.

Named as a stand-in: the real Home Assistant runs in the slow lane (``tests/ha_real.py``).
This one speaks the same messages, as recorded against Home Assistant 2025.4.4
(``auth_required`` → ``auth`` → ``auth_ok``/``auth_invalid``; ``get_states``;
``call_service`` → ``result``), including its quirks: a call on an unknown entity succeeds,
a service the entity does not support fails with ``service_validation_error``. Its player
``media_player.kitchen`` fetches the URL it is told to play (as a real player would; the
bytes and the HTTP status are kept), and ``volume_set`` changes its ``volume_level``.

Plain sockets and RFC 6455 framing (server frames unmasked), one thread per connection.
"""

from __future__ import annotations

import base64
import hashlib
import json
import socket
import struct
import threading
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from typing import Any

TOKEN = "standin-token-0123456789"
_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


@dataclass
class Fetch:
    url: str
    status: int
    body: bytes
    content_type: str | None


@dataclass
class HaStandIn:
    entities: dict[str, dict[str, Any]] = field(
        default_factory=lambda: {
            "media_player.kitchen": {"state": "playing", "supported_features": 119695, "volume_level": 0.3},
            "media_player.walkman": {"state": "playing", "supported_features": 914877, "volume_level": 0.5},
            # play_media fails inside Home Assistant (as an integration raising HomeAssistantError does)
            "media_player.broken": {"state": "idle", "supported_features": 512, "error": "Speaker is offline"},
        }
    )
    calls: list[dict[str, Any]] = field(default_factory=list)  # every call_service message, as received
    fetches: list[Fetch] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = int(self.server.getsockname()[1])
        self.url = f"http://127.0.0.1:{self.port}"
        self._lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.server.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    # ---- framing ------------------------------------------------------------------------
    @staticmethod
    def _recv_exact(conn: socket.socket, buf: bytearray, n: int) -> bytes:
        while len(buf) < n:
            data = conn.recv(65536)
            if not data:
                raise ConnectionError("closed")
            buf += data
        out = bytes(buf[:n])
        del buf[:n]
        return out

    def _recv(self, conn: socket.socket, buf: bytearray) -> dict[str, Any] | None:
        b1, b2 = self._recv_exact(conn, buf, 2)
        n = b2 & 0x7F
        if n == 126:
            n = struct.unpack("!H", self._recv_exact(conn, buf, 2))[0]
        elif n == 127:
            n = struct.unpack("!Q", self._recv_exact(conn, buf, 8))[0]
        assert b2 & 0x80, "client frames must be masked (RFC 6455 5.3)"
        mask = self._recv_exact(conn, buf, 4)
        data = bytes(b ^ mask[i % 4] for i, b in enumerate(self._recv_exact(conn, buf, n)))
        if b1 & 0x0F == 0x8:
            return None
        return dict(json.loads(data))

    @staticmethod
    def _send(conn: socket.socket, obj: dict[str, Any]) -> None:
        data = json.dumps(obj).encode()
        n = len(data)
        head = bytes([0x81]) + (bytes([n]) if n < 126 else bytes([126]) + struct.pack("!H", n))
        conn.sendall(head + data)

    # ---- the API ------------------------------------------------------------------------
    def _serve(self, conn: socket.socket) -> None:
        buf = bytearray()
        try:
            while b"\r\n\r\n" not in buf:
                buf += conn.recv(4096)
            head, _, rest = bytes(buf).partition(b"\r\n\r\n")
            buf = bytearray(rest)
            headers = {
                k.strip().lower(): v.strip()
                for k, _, v in (ln.partition(":") for ln in head.decode("latin-1").split("\r\n")[1:])
            }
            accept = base64.b64encode(hashlib.sha1((headers["sec-websocket-key"] + _GUID).encode()).digest()).decode()
            conn.sendall(
                b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                + f"Sec-WebSocket-Accept: {accept}\r\n\r\n".encode()
            )
            self._send(conn, {"type": "auth_required", "ha_version": "standin"})
            auth = self._recv(conn, buf)
            if not auth or auth.get("access_token") != TOKEN:
                self._send(conn, {"type": "auth_invalid", "message": "Invalid access token or password"})
                return
            self._send(conn, {"type": "auth_ok", "ha_version": "standin"})
            while (msg := self._recv(conn, buf)) is not None:
                self._send(conn, {"id": msg["id"], "type": "result", **self._answer(msg)})
        except (ConnectionError, OSError):
            pass
        finally:
            conn.close()

    def _answer(self, msg: dict[str, Any]) -> dict[str, Any]:
        if msg["type"] == "get_states":
            with self._lock:
                states = [
                    {
                        "entity_id": e,
                        "state": a["state"],
                        "attributes": {k: v for k, v in a.items() if k not in ("state", "error")},
                    }
                    for e, a in self.entities.items()
                ]
            return {"success": True, "result": states}
        if msg["type"] != "call_service":
            return {"success": False, "error": {"code": "unknown_command", "message": "Unknown command."}}
        with self._lock:
            self.calls.append(msg)
        data = msg["service_data"]
        entity = self.entities.get(data["entity_id"])
        if entity is None:  # Home Assistant only logs a warning
            return {"success": True, "result": {"context": {}}}
        bit = {"play_media": 512, "volume_set": 4, "media_stop": 4096}.get(msg["service"], 0)
        if not entity["supported_features"] & bit:
            return {
                "success": False,
                "error": {
                    "code": "service_validation_error",
                    "message": f"Validation error: Entity {data['entity_id']} does not support action "
                    f"media_player.{msg['service']}",
                },
            }
        if entity.get("error"):
            return {"success": False, "error": {"code": "home_assistant_error", "message": entity["error"]}}
        if msg["service"] == "volume_set":
            entity["volume_level"] = data["volume_level"]
        elif msg["service"] == "play_media":
            self._fetch(data["media_content_id"])
        return {"success": True, "result": {"context": {}}}

    def _fetch(self, url: str) -> None:
        try:
            with urllib.request.urlopen(url, timeout=10) as r:
                self.fetches.append(Fetch(url, r.status, r.read(), r.headers.get("content-type")))
        except urllib.error.HTTPError as exc:
            self.fetches.append(Fetch(url, exc.code, b"", None))

    def services(self) -> list[tuple[str, dict[str, Any]]]:
        with self._lock:
            return [(c["service"], dict(c["service_data"])) for c in self.calls]

    def close(self) -> None:
        self.server.close()
