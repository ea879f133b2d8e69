"""A small client for Home Assistant's WebSocket API (``/api/websocket``), standard library only.

RFC 6455 as far as Home Assistant needs it: the upgrade handshake (``ws://`` or ``wss://``
with the system's certificates), masked text frames from the client, fragmented frames
from the server, pings answered, close. On top: HA's ``auth`` exchange and commands with
increasing ids whose ``result`` is awaited (events arriving meanwhile are skipped).

Why not a library: ``websockets`` or ``aiohttp`` would be a new run-time dependency (and an
event loop) for a handful of request/response messages on a short-lived connection; this
is about 150 lines and is tested against a real Home Assistant (``tests/test_homeassistant_speaker.py``).
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import socket
import ssl
import struct
import time
import urllib.parse
from typing import Any

_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


class HomeAssistantError(Exception):
    """Home Assistant could not be reached, refused the token, or answered a command with an error."""


class WebSocket:
    def __init__(self, url: str, timeout: float) -> None:
        u = urllib.parse.urlsplit(url)
        if u.scheme not in ("ws", "wss") or not u.hostname:
            raise HomeAssistantError(f"not a ws:// or wss:// URL: {url}")
        port = u.port or (443 if u.scheme == "wss" else 80)
        sock = socket.create_connection((u.hostname, port), timeout=timeout)
        if u.scheme == "wss":
            sock = ssl.create_default_context().wrap_socket(sock, server_hostname=u.hostname)
        self.sock = sock
        self._buf = b""
        key = base64.b64encode(os.urandom(16)).decode()
        host = u.hostname if u.port is None else f"{u.hostname}:{u.port}"
        if ":" in u.hostname:
            host = f"[{u.hostname}]" + (f":{u.port}" if u.port else "")
        request = (
            f"GET {u.path or '/'} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
        )
        sock.sendall(request.encode())
        while b"\r\n\r\n" not in self._buf:
            self._fill()
        head, self._buf = self._buf.split(b"\r\n\r\n", 1)
        lines = head.decode("latin-1").split("\r\n")
        if " 101 " not in lines[0] + " ":
            raise HomeAssistantError(f"no WebSocket at {url}: {lines[0]}")
        accept = base64.b64encode(hashlib.sha1((key + _GUID).encode()).digest()).decode()
        headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
        if headers.get("sec-websocket-accept") != accept:
            raise HomeAssistantError(f"bad WebSocket handshake from {url}")

    def _fill(self) -> None:
        data = self.sock.recv(65536)
        if not data:
            raise HomeAssistantError("Home Assistant closed the connection")
        self._buf += data

    def _exact(self, n: int) -> bytes:
        while len(self._buf) < n:
            self._fill()
        out, self._buf = self._buf[:n], self._buf[n:]
        return out

    def _send(self, opcode: int, payload: bytes) -> None:
        n = len(payload)
        head = bytes([0x80 | opcode])
        if n < 126:
            head += bytes([0x80 | n])
        elif n < 65536:
            head += bytes([0x80 | 126]) + struct.pack("!H", n)
        else:
            head += bytes([0x80 | 127]) + struct.pack("!Q", n)
        mask = os.urandom(4)
        body = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        self.sock.sendall(head + mask + body)

    def send_json(self, obj: dict[str, Any]) -> None:
        self._send(0x1, json.dumps(obj).encode())

    def recv_json(self, timeout: float) -> Any:
        self.sock.settimeout(max(0.01, timeout))
        parts: list[bytes] = []
        while True:
            b1, b2 = self._exact(2)
            n = b2 & 0x7F
            if n == 126:
                n = struct.unpack("!H", self._exact(2))[0]
            elif n == 127:
                n = struct.unpack("!Q", self._exact(8))[0]
            mask = self._exact(4) if b2 & 0x80 else b""
            data = self._exact(n)
            if mask:
                data = bytes(b ^ mask[i % 4] for i, b in enumerate(data))
            opcode = b1 & 0x0F
            if opcode == 0x9:  # ping
                self._send(0xA, data)
            elif opcode == 0x8:
                raise HomeAssistantError("Home Assistant closed the connection")
            elif opcode in (0x0, 0x1, 0x2):
                parts.append(data)
                if b1 & 0x80:
                    return json.loads(b"".join(parts))

    def close(self) -> None:
        try:
            self._send(0x8, struct.pack("!H", 1000))
        except OSError:
            pass
        self.sock.close()


class HomeAssistant:
    """One authenticated connection: ``call(message)`` returns the command's ``result``."""

    def __init__(self, url: str, token: str, timeout: float = 10.0) -> None:
        self.timeout = timeout
        base = url.rstrip("/")
        ws_url = "ws" + base[4:] if base.startswith("http") else base
        if not ws_url.endswith("/api/websocket"):
            ws_url += "/api/websocket"
        try:
            self.ws = WebSocket(ws_url, timeout)
            hello = self.ws.recv_json(timeout)
            if hello.get("type") != "auth_required":
                raise HomeAssistantError(f"{ws_url} is not Home Assistant's WebSocket API: {hello}")
            self.version = str(hello.get("ha_version", "?"))
            self.ws.send_json({"type": "auth", "access_token": token})
            answer = self.ws.recv_json(timeout)
        except (OSError, ValueError) as exc:
            raise HomeAssistantError(f"cannot reach Home Assistant at {url}: {exc}") from None
        if answer.get("type") != "auth_ok":
            self.ws.close()
            raise HomeAssistantError(f"Home Assistant refused the token: {answer.get('message', answer.get('type'))}")
        self._id = 0

    def call(self, message: dict[str, Any]) -> Any:
        self._id += 1
        msg_id = self._id
        deadline = time.monotonic() + self.timeout
        try:
            self.ws.send_json({**message, "id": msg_id})
            while True:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise HomeAssistantError(f"no answer to {message.get('type')} within {self.timeout:g} s")
                answer = self.ws.recv_json(left)
                if answer.get("id") == msg_id and answer.get("type") == "result":
                    break
        except (OSError, ValueError) as exc:
            raise HomeAssistantError(f"Home Assistant connection failed: {exc}") from None
        if not answer.get("success"):
            error = answer.get("error") or {}
            raise HomeAssistantError(f"{error.get('code', 'error')}: {error.get('message', answer)}")
        return answer.get("result")

    def state(self, entity_id: str) -> dict[str, Any] | None:
        """The entity's state object, or None when Home Assistant has no such entity."""
        for s in self.call({"type": "get_states"}) or []:
            if s.get("entity_id") == entity_id:
                return dict(s)
        return None

    def service(self, domain: str, service: str, data: dict[str, Any]) -> Any:
        return self.call({"type": "call_service", "domain": domain, "service": service, "service_data": data})

    def close(self) -> None:
        self.ws.close()
