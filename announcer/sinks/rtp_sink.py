"""``rtp`` speaker: RTP (RFC 3550) over UDP to an IP speaker, a paging gateway or a multicast group.

Unicast or multicast, IPv4 or IPv6; ``interface`` picks the outgoing one for multicast,
``ttl`` bounds the hops (1: this LAN), ``dscp`` marks the packets (46, Expedited Forwarding,
as voice). Codecs and the SDP are in ``announcer.sinks.rtp_codecs``.

Pacing: a sender thread per announcement sends packet *i* at ``t0 + i * ptime`` on the
monotonic clock (plain sleeps: measured to jitter less than busy-waiting on a loaded
machine), so nothing bursts and nothing drifts however long the announcement. The
player's writes fill a queue at most ``SEND_AHEAD_SECONDS`` ahead and block while it is
full, as a sound device's writes do, so an interruption (an emergency, a stop) is heard
within one slice plus that much. When the player falls behind (synthesis slower than
speech) the sender fills the gap with silence: the receiver's timeline never breaks. A
sender more than ``RESYNC_SECONDS`` late (the machine was stalled) starts the clock anew
instead of bursting to catch up, and its timestamps jump over the stall, so the receiver
hears a gap there and stays in time.

``close`` sends what is left (the last packet padded with silence) and sets
``playing_until`` to the last packet plus ``latency_ms`` (the receiver's jitter buffer);
``abort`` sends what is queued (the player's fade-out) and stops.
"""

from __future__ import annotations

import errno
import ipaddress
import logging
import socket
import struct
import threading
import time
from collections import deque
from typing import Any, Literal

import numpy as np
from pydantic import Field, field_validator, model_validator

from ..audio import to_pcm16
from .base import Reachability, Sink, SinkError, SpeakerBase, Stream
from .rtp_codecs import CODECS, L16_RATES, RtpState, g722_available, is_multicast, make_encoder, session_description

_LOGGER = logging.getLogger(__name__)

SEND_AHEAD_SECONDS = 0.1  # how far the player's writes may run ahead of the wire
RESYNC_SECONDS = 0.5  # a sender this late starts its clock anew (no burst)


class Config(SpeakerBase):
    type: Literal["rtp"]
    address: str  # an IPv4/IPv6 unicast or multicast address (239.1.1.10, ff15::1:10, 192.168.1.50)
    port: int = Field(5004, ge=1, le=65535)
    codec: Literal["pcmu", "pcma", "l16", "g722"] = "pcmu"
    sample_rate: int = 16000  # l16 only (G.711 is 8000 Hz, G.722 16000 Hz)
    payload_type: int | None = Field(None, ge=96, le=127)  # l16's dynamic payload type (default 96)
    ttl: int = Field(1, ge=1, le=255)  # multicast TTL / IPv6 hop limit (1: this LAN)
    dscp: int = Field(46, ge=0, le=63)  # DiffServ code point (46: EF, voice)
    ptime_ms: Literal[10, 20, 30, 40] = 20  # audio per packet
    interface: str | None = None  # outgoing interface for multicast: a name (eth0) or its IPv4 address
    multicast_loop: bool = True  # multicast also reaches receivers on this host (a check with ffmpeg)
    latency_ms: int = Field(100, ge=0, le=5000)  # the receiver's buffer: `finished` comes this long after
    # the last packet

    @field_validator("address")
    @classmethod
    def _address(cls, v: str) -> str:
        try:
            ipaddress.ip_address(v.split("%", 1)[0])
        except ValueError:
            raise ValueError(
                f"{v!r} is not an IP address (a unicast or multicast IPv4/IPv6 address: 239.1.1.10, ff15::1:10)"
            ) from None
        return v

    @field_validator("sample_rate")
    @classmethod
    def _rate(cls, v: int) -> int:
        if v not in L16_RATES:
            raise ValueError(f"{v} Hz is not an l16 rate (allowed: {', '.join(map(str, L16_RATES))})")
        return v

    @model_validator(mode="after")
    def _codec_available(self) -> Config:
        if self.codec == "g722" and not g722_available():
            raise ValueError("codec: g722 needs the G722 package: pip install 'announcer[g722]'")
        return self

    @property
    def rate(self) -> int:
        return CODECS[self.codec].sample_rate or self.sample_rate

    @property
    def pt(self) -> int:
        static = CODECS[self.codec].payload_type
        return static if static is not None else (self.payload_type or 96)


def open_socket(cfg: Config) -> tuple[socket.socket, tuple[Any, ...]]:
    """A UDP socket with the speaker's TTL, DSCP, multicast interface and loop; and the destination."""
    info = socket.getaddrinfo(cfg.address, cfg.port, type=socket.SOCK_DGRAM)[0]
    family, dest = info[0], info[4]
    sock = socket.socket(family, socket.SOCK_DGRAM)
    try:
        if family == socket.AF_INET:
            sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, cfg.ttl)
            sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_LOOP, int(cfg.multicast_loop))
            sock.setsockopt(socket.IPPROTO_IP, socket.IP_TOS, cfg.dscp << 2)
            if cfg.interface and cfg.interface[0].isdigit():
                sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton(cfg.interface))
            elif cfg.interface:  # struct ip_mreqn {imr_multiaddr, imr_address, imr_ifindex}
                mreqn = struct.pack("=4s4si", b"\0" * 4, b"\0" * 4, socket.if_nametoindex(cfg.interface))
                sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, mreqn)
        else:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_HOPS, cfg.ttl)
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_LOOP, int(cfg.multicast_loop))
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_TCLASS, cfg.dscp << 2)
            if cfg.interface:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_IF, socket.if_nametoindex(cfg.interface))
    except OSError:
        sock.close()
        raise
    return sock, dest


class _RtpStream(Stream):
    def __init__(self, sink: RtpSink, sock: socket.socket, dest: tuple[Any, ...], sample_rate: int) -> None:
        cfg = sink.config
        self._sink = sink
        self._sock = sock
        self._dest = dest
        self._ptime = cfg.ptime_ms / 1000.0
        self._spp = sample_rate * cfg.ptime_ms // 1000  # samples per packet
        self._ts_step = int(self._spp * CODECS[cfg.codec].clock_ratio)
        self._encode = make_encoder(cfg.codec)
        self._silence = make_encoder(cfg.codec)(np.zeros(self._spp, np.int16))
        self._pending = np.zeros(0, np.int16)
        self._queue: deque[bytes] = deque()
        self._max_queue = max(2, int(round(SEND_AHEAD_SECONDS / self._ptime)))
        self._cond = threading.Condition()
        self._closing = False
        self._aborted = False
        self._error: OSError | None = None
        self._thread: threading.Thread | None = None
        self.packets = 0
        self.late = 0  # packets sent more than one ptime after they were due
        self.filled = 0  # silence packets sent while the player was behind
        self.stalls = 0  # times the sender was more than RESYNC_SECONDS late (the machine stalled)
        self.last_sent = 0.0

    # ---- the player's side ------------------------------------------------------------------
    def write(self, samples: np.ndarray) -> None:
        if self._aborted or len(samples) == 0:
            return
        pcm = np.concatenate([self._pending, to_pcm16(np.asarray(samples, np.float32))])
        whole = len(pcm) // self._spp * self._spp
        self._pending = pcm[whole:]
        for start in range(0, whole, self._spp):
            self._put(self._encode(pcm[start : start + self._spp]))

    def _put(self, payload: bytes) -> None:
        with self._cond:
            while len(self._queue) >= self._max_queue and not self._aborted and self._error is None:
                self._cond.wait(0.5)
            self._raise_error()
            if self._aborted:
                return
            self._queue.append(payload)
            self._cond.notify_all()
        if self._thread is None:
            self._thread = threading.Thread(target=self._send_loop, name=f"rtp-{self._sink.name}", daemon=True)
            self._thread.start()

    def _flush(self) -> None:
        """The last partial packet, padded with silence."""
        if len(self._pending):
            last = np.zeros(self._spp, np.int16)
            last[: len(self._pending)] = self._pending
            self._pending = self._pending[:0]
            self._put(self._encode(last))

    def close(self) -> dict[str, Any]:
        self._flush()
        with self._cond:
            self._closing = True
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join()
        self._raise_error()
        self.playing_until = (self.last_sent or time.monotonic()) + self._ptime + self._sink.config.latency_ms / 1000
        return {"address": f"{self._sink.config.address}:{self._sink.config.port}", "packets": self.packets}

    def abort(self) -> None:
        if self._error is None and self._thread is not None:
            self._flush()  # the end of the player's fade-out
        with self._cond:
            self._aborted = True  # the sender sends what is queued (the fade-out) and stops
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(SEND_AHEAD_SECONDS + 2 * self._ptime + 0.5)

    def _raise_error(self) -> None:
        if self._error is not None:
            cfg = self._sink.config
            raise SinkError(f"rtp speaker {self._sink.name}: cannot send to {cfg.address}:{cfg.port}: {self._error}")

    # ---- the sender thread ------------------------------------------------------------------
    def _send_loop(self) -> None:
        state = self._sink.state
        t0 = time.monotonic()
        state.start_talkspurt(t0)
        i = 0
        while True:
            due = t0 + i * self._ptime
            delay = due - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            elif -delay > RESYNC_SECONDS:  # stalled: start the clock anew rather than burst, and let
                now = time.monotonic()  # the timestamps jump over the stall (a gap, as after a loss)
                state.timestamp = (state.timestamp + int((now - due) * state.clock_rate)) & 0xFFFFFFFF
                t0, i, due = now, 0, now
                self.stalls += 1
            with self._cond:
                if self._queue:
                    payload = self._queue.popleft()
                    self._cond.notify_all()
                elif self._closing or self._aborted:
                    break
                else:
                    payload = self._silence
                    self.filled += 1
            try:
                self._sock.sendto(state.packet(payload, self._ts_step, marker=self.packets == 0), self._dest)
            except OSError as exc:
                if exc.errno in (errno.EAGAIN, errno.ENOBUFS):  # a full queue drops a packet, as the network may
                    continue
                with self._cond:
                    self._error = exc
                    self._cond.notify_all()
                break
            now = time.monotonic()
            if now - due > self._ptime:
                self.late += 1
            self.packets += 1
            self.last_sent = now
            i += 1
        state.ended_at = t0 + i * self._ptime


class RtpSink(Sink):
    config: Config

    def __init__(self, name: str, config: Config, context: Any = None) -> None:
        super().__init__(name, config, context)
        self.state = RtpState(config.pt, int(config.rate * CODECS[config.codec].clock_ratio))
        self._sock: tuple[socket.socket, tuple[Any, ...]] | None = None

    def preferred_rate(self, source_rate: int) -> int:
        return self.config.rate

    def _socket(self) -> tuple[socket.socket, tuple[Any, ...]]:
        if self._sock is None:
            try:
                self._sock = open_socket(self.config)
            except OSError as exc:
                cfg = self.config
                where = f" via {cfg.interface}" if cfg.interface else ""
                raise SinkError(
                    f"rtp speaker {self.name}: cannot send to {cfg.address}:{cfg.port}{where}: {exc.strerror or exc}"
                ) from None
        return self._sock

    def open(self, announcement_id: str, sample_rate: int) -> Stream:
        if sample_rate != self.config.rate:
            raise SinkError(
                f"rtp speaker {self.name}: {self.config.codec} needs {self.config.rate} Hz, not {sample_rate}"
            )
        sock, dest = self._socket()
        return _RtpStream(self, sock, dest, sample_rate)

    def close(self) -> None:
        if self._sock is not None:
            self._sock[0].close()
            self._sock = None

    def probe(self) -> Reachability:
        """A route to the address exists (UDP has no answer to wait for: nothing tells that a speaker listens)."""
        cfg = self.config
        try:
            sock, dest = open_socket(cfg)
        except OSError as exc:
            return Reachability(False, f"cannot open a socket for {cfg.address}: {exc.strerror or exc}")
        try:
            sock.connect(dest)  # a route lookup; sends nothing
            local = sock.getsockname()[0]
        except OSError as exc:
            return Reachability(False, f"no route to {cfg.address}: {exc.strerror or exc}")
        finally:
            sock.close()
        kind = "multicast group" if is_multicast(cfg.address) else "host"
        where = f"[{cfg.address}]:{cfg.port}" if ":" in cfg.address else f"{cfg.address}:{cfg.port}"
        return Reachability(True, f"route to {kind} {where} from {local} ({cfg.codec})")

    def session_description(self) -> str:
        cfg = self.config
        origin = cfg.interface if cfg.interface and cfg.interface[0].isdigit() else None
        return session_description(
            self.config.name or self.name,
            cfg.address,
            cfg.port,
            CODECS[cfg.codec],
            cfg.rate,
            cfg.pt,
            cfg.ttl,
            cfg.ptime_ms,
            origin,
        )


SINK = RtpSink
