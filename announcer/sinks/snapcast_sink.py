"""``snapcast`` speaker: the announcement on Snapcast groups, their music back afterwards.

Snapserver needs a TCP stream source for announcer (``source =
tcp://0.0.0.0:4953?name=announcer&mode=server``) and its control port (JSON-RPC, 1705).
Per announcement, in this order (measured with snapserver 0.26: audio written while no
group listens is lost, so the groups are switched first):

1. ``Server.GetStatus``: the stream must exist; the chosen ``groups`` (ids or names, a
   client's id or name for its group, or ``all``) and each one's stream and clients'
   volumes are remembered;
2. ``Group.SetStream`` to the announcer stream; ``Client.SetVolume`` to the announcement's
   volume, unmuted (``remote_volume``: the samples go at full scale);
3. the audio (16-bit stereo at ``sample_rate``, snapserver's ``sampleformat``) is written
   to the TCP source, paced at real time at most ``SEND_AHEAD_SECONDS`` ahead (snapserver
   reads its sources in real time and timestamps a chunk when it reads it), then
   ``TAIL_SECONDS`` of silence (snapserver does not play a stream's last partial chunk);
4. ``close`` sets ``playing_until``: the last sample plays ``buffer_ms`` (snapserver's
   ``[stream] buffer``, which JSON-RPC does not report) after snapserver read it;
5. ``played`` (or ``abort``): each group still on the announcer stream goes back to the
   stream it played before, each client to its volume and mute state.

An emergency interrupting an announcement goes on in the same stream (``resumable``):
the groups stay switched, no gap. A stop (``abort``) switches the groups back at once:
snapclient drops what it buffered, so the music is back immediately.

The TCP source takes one writer; the connection is kept between announcements and opened
again when snapserver closed it (a restart).
"""

from __future__ import annotations

import json
import logging
import socket
import time
from typing import Any, Literal

import numpy as np
from pydantic import Field

from ..audio import to_pcm16
from .base import Reachability, Sink, SinkError, SpeakerBase, Stream

_LOGGER = logging.getLogger(__name__)

SEND_AHEAD_SECONDS = 0.2
TAIL_SECONDS = 0.1
CHUNK_SECONDS = 0.02  # snapserver's chunk_ms: the play-out is at most this much later


class Config(SpeakerBase):
    type: Literal["snapcast"]
    host: str = "127.0.0.1"  # snapserver
    stream_port: int = Field(4953, ge=1, le=65535)  # the TCP source announcer writes to
    control_port: int = Field(1705, ge=1, le=65535)  # JSON-RPC over TCP
    stream: str = Field("announcer", min_length=1)  # the TCP source's name (its stream id)
    groups: tuple[str, ...] = Field(("all",), min_length=1)  # group ids/names, client ids/names; all: every group
    buffer_ms: int = Field(1000, ge=0, le=10000)  # snapserver's [stream] buffer
    sample_rate: int = Field(48000, ge=8000, le=192000)  # snapserver's sampleformat rate (16 bit, 2 channels)
    timeout: float = Field(5.0, gt=0, le=60)  # seconds for a control call or a connection


class SnapRpc:
    """Newline-delimited JSON-RPC 2.0 on snapserver's control port; notifications are skipped."""

    def __init__(self, host: str, port: int, timeout: float) -> None:
        self._sock = socket.create_connection((host, port), timeout=timeout)
        self._buf = b""
        self._id = 0

    def call(self, method: str, params: dict[str, Any] | None = None) -> Any:
        self._id += 1
        request: dict[str, Any] = {"id": self._id, "jsonrpc": "2.0", "method": method}
        if params is not None:
            request["params"] = params
        self._sock.sendall(json.dumps(request).encode() + b"\r\n")
        while True:
            while b"\n" not in self._buf:
                data = self._sock.recv(65536)
                if not data:
                    raise OSError("snapserver closed the control connection")
                self._buf += data
            line, self._buf = self._buf.split(b"\n", 1)
            if not line.strip():
                continue
            msg = json.loads(line)
            if isinstance(msg, dict) and msg.get("id") == self._id:
                if "error" in msg:
                    err = msg["error"]
                    raise SinkError(f"snapserver: {method}: {err.get('message')} {err.get('data') or ''}".strip())
                return msg.get("result")

    def close(self) -> None:
        self._sock.close()


def choose_groups(groups: list[dict[str, Any]], wanted: tuple[str, ...]) -> tuple[list[dict[str, Any]], list[str]]:
    """The groups ``wanted`` names (group id/name, client id/name, ``all``) and the names that match none."""
    if "all" in wanted:
        return groups, []
    chosen: dict[str, dict[str, Any]] = {}
    missing = []
    for name in wanted:
        found = [
            g
            for g in groups
            if name in (g["id"], g.get("name"))
            or any(
                name in (c["id"], c.get("config", {}).get("name"), c.get("host", {}).get("name")) for c in g["clients"]
            )
        ]
        if not found:
            missing.append(name)
        for g in found:
            chosen[g["id"]] = g
    return list(chosen.values()), missing


class _SnapStream(Stream):
    resumable = True

    def __init__(self, sink: SnapcastSink, rpc: SnapRpc, groups: list[dict[str, Any]], source: socket.socket) -> None:
        self._sink = sink
        self._rpc = rpc
        self._groups = groups
        self._source = source
        self._rate = sink.config.sample_rate
        self._switched: dict[str, str] = {}  # group id -> the stream it played before
        self._volumes: dict[str, dict[str, Any]] = {}  # client id -> its volume before
        self._due: float | None = None  # when snapserver will have read all that was written
        self._done = False
        self.written = 0.0

    def switch(self) -> None:
        for g in self._groups:
            if g["stream_id"] != self._sink.config.stream:
                self._rpc.call("Group.SetStream", {"id": g["id"], "stream_id": self._sink.config.stream})
                self._switched[g["id"]] = g["stream_id"]

    def set_volume(self, gain: float) -> None:
        percent = max(0, min(100, round(gain * 100)))
        for g in self._groups:
            for c in g["clients"]:
                self._volumes.setdefault(c["id"], dict(c["config"]["volume"]))
                self._call("Client.SetVolume", {"id": c["id"], "volume": {"muted": False, "percent": percent}})

    def write(self, samples: np.ndarray) -> None:
        if self._done or len(samples) == 0:
            return
        pcm = to_pcm16(np.asarray(samples, np.float32))
        data = np.repeat(pcm[:, None], 2, axis=1).astype("<i2").tobytes()
        now = time.monotonic()
        self._due = max(self._due or now, now) + len(pcm) / self._rate
        try:
            self._source.sendall(data)
        except OSError as exc:
            self._sink.drop_source()
            raise SinkError(
                f"{self._sink.where(self._sink.config.stream_port)}: stream connection lost: {exc}"
            ) from None
        self.written += len(pcm) / self._rate
        ahead = self._due - SEND_AHEAD_SECONDS - time.monotonic()
        if ahead > 0:
            time.sleep(ahead)

    def close(self) -> dict[str, Any]:
        self.write(np.zeros(int(TAIL_SECONDS * self._rate), np.float32))
        due = self._due or time.monotonic()
        self.playing_until = due + self._sink.config.buffer_ms / 1000 + CHUNK_SECONDS
        return {"stream": self._sink.config.stream, "groups": [g["id"] for g in self._groups]}

    def played(self) -> None:
        self._restore()

    def abort(self) -> None:
        self._restore()

    def resume(self, announcement_id: str, sample_rate: int) -> bool:
        return sample_rate == self._rate and not self._done

    def _call(self, method: str, params: dict[str, Any]) -> Any:
        try:
            return self._rpc.call(method, params)
        except (OSError, ValueError) as exc:
            raise SinkError(f"{self._sink.where(self._sink.config.control_port)}: {method} failed: {exc}") from None

    def _restore(self) -> None:
        """Give every group its stream and every client its volume back (see the module doc)."""
        if self._done:
            return
        self._done = True
        try:
            status = self._rpc.call("Server.GetStatus")["server"]
            now_on = {g["id"]: g["stream_id"] for g in status["groups"]}
            for gid, before in self._switched.items():
                if now_on.get(gid) == self._sink.config.stream:  # nobody switched it meanwhile
                    self._rpc.call("Group.SetStream", {"id": gid, "stream_id": before})
            for cid, volume in self._volumes.items():
                self._rpc.call("Client.SetVolume", {"id": cid, "volume": volume})
        except (OSError, ValueError, SinkError) as exc:
            _LOGGER.warning("speaker %s: cannot give the Snapcast groups their streams back: %s", self._sink.name, exc)
        finally:
            self._rpc.close()


class SnapcastSink(Sink):
    config: Config
    remote_volume = True

    def __init__(self, name: str, config: Config, context: Any = None) -> None:
        super().__init__(name, config, context)
        self._source: socket.socket | None = None

    def where(self, port: int) -> str:
        return f"snapcast speaker {self.name} (snapserver {self.config.host}:{port})"

    def preferred_rate(self, source_rate: int) -> int:
        return self.config.sample_rate

    def _status(self, rpc: SnapRpc) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        cfg = self.config
        server = rpc.call("Server.GetStatus")["server"]
        streams = [s["id"] for s in server["streams"]]
        if cfg.stream not in streams:
            raise SinkError(
                f"{self.where(cfg.control_port)} has no stream {cfg.stream!r} (has: {', '.join(streams)}); add "
                f"source = tcp://0.0.0.0:{cfg.stream_port}?name={cfg.stream}&mode=server to snapserver.conf"
            )
        groups, missing = choose_groups(server["groups"], cfg.groups)
        if missing:
            raise SinkError(f"{self.where(cfg.control_port)}: no group or client {', '.join(map(repr, missing))}")
        return server, groups

    def _connect_source(self) -> socket.socket:
        cfg = self.config
        if self._source is not None:
            try:  # snapserver never sends on it: readable means closed
                self._source.setblocking(False)
                gone = self._source.recv(1) == b""
            except BlockingIOError:
                gone = False
            except OSError:
                gone = True
            if not gone:
                self._source.settimeout(cfg.timeout)
                return self._source
            self.drop_source()
        try:
            self._source = socket.create_connection((cfg.host, cfg.stream_port), timeout=cfg.timeout)
        except OSError as exc:
            raise SinkError(f"{self.where(cfg.stream_port)}: cannot connect to the stream source: {exc}") from None
        self._source.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return self._source

    def drop_source(self) -> None:
        if self._source is not None:
            self._source.close()
            self._source = None

    def open(self, announcement_id: str, sample_rate: int) -> Stream:
        cfg = self.config
        try:
            rpc = SnapRpc(cfg.host, cfg.control_port, cfg.timeout)
        except OSError as exc:
            raise SinkError(f"{self.where(cfg.control_port)}: cannot connect: {exc}") from None
        try:
            _server, groups = self._status(rpc)
            stream = _SnapStream(self, rpc, groups, self._connect_source())
        except (OSError, ValueError) as exc:
            rpc.close()
            raise SinkError(f"{self.where(cfg.control_port)}: {exc}") from None
        except SinkError:
            rpc.close()
            raise
        try:
            stream.switch()
        except (OSError, ValueError, SinkError) as exc:
            stream.abort()  # the groups switched so far go back
            raise SinkError(f"{self.where(cfg.control_port)}: cannot switch the groups: {exc}") from None
        return stream

    def close(self) -> None:
        self.drop_source()

    def probe(self) -> Reachability:
        """snapserver answers on its control port, has the stream and the groups."""
        cfg = self.config
        try:
            rpc = SnapRpc(cfg.host, cfg.control_port, min(cfg.timeout, 3.0))
        except OSError as exc:
            return Reachability(False, f"snapserver {cfg.host}:{cfg.control_port}: {exc}")
        try:
            server, groups = self._status(rpc)
        except (OSError, ValueError, SinkError) as exc:
            return Reachability(False, str(exc))
        finally:
            rpc.close()
        version = server.get("server", {}).get("snapserver", {}).get("version", "?")
        clients = [c for g in groups for c in g["clients"]]
        connected = sum(1 for c in clients if c.get("connected"))
        return Reachability(
            True,
            f"snapserver {version} at {cfg.host}:{cfg.control_port}, stream {cfg.stream}, "
            f"{len(groups)} group(s), {connected}/{len(clients)} client(s) connected",
        )


SINK = SnapcastSink
