"""RTP payloads and session descriptions for the ``rtp`` speaker: codecs, packets, SDP. Pure, no I/O.

Codecs (RFC 3551): ``pcmu`` (payload type 0) and ``pcma`` (8), G.711 at 8 kHz
(``announcer.audio.g711``); ``l16`` (a dynamic payload type, 96 by default), 16-bit
big-endian mono at a configured rate; ``g722`` (9), wideband 16 kHz at 64 kbit/s through
the optional ``G722`` package (public domain, ``pip install 'announcer[g722]'``), whose
RTP clock is 8000 Hz although it samples at 16 kHz (RFC 3551 4.5.2).

``RtpState`` is a speaker's RTP session: a random SSRC, sequence number and timestamp
(RFC 3550 5.1) that go on across announcements. Each announcement is a talkspurt: its first
packet has the marker bit, and its timestamps start where the previous one ended plus the
time that passed in between (as after silence suppression), so a receiver's jitter buffer
places it right.
"""

from __future__ import annotations

import ipaddress
import random
import struct
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from ..audio.g711 import alaw_encode, ulaw_encode


@dataclass(frozen=True)
class Codec:
    name: str
    encoding: str  # the encoding name in SDP and GStreamer caps
    payload_type: int | None  # static (RFC 3551), None: dynamic
    sample_rate: int | None  # None: the speaker's configured rate (l16)
    clock_ratio: float = 1.0  # RTP clock rate / sample rate (G.722: 0.5)


CODECS: dict[str, Codec] = {
    "pcmu": Codec("pcmu", "PCMU", 0, 8000),
    "pcma": Codec("pcma", "PCMA", 8, 8000),
    "l16": Codec("l16", "L16", None, None),
    "g722": Codec("g722", "G722", 9, 16000, clock_ratio=0.5),
}
L16_RATES = (8000, 11025, 16000, 22050, 24000, 32000, 44100, 48000)


def make_encoder(codec: str) -> Callable[[np.ndarray], bytes]:
    """A function int16 mono samples -> payload bytes (a new one per talkspurt: G.722 keeps state)."""
    if codec == "pcmu":
        return lambda pcm: ulaw_encode(pcm).tobytes()
    if codec == "pcma":
        return lambda pcm: alaw_encode(pcm).tobytes()
    if codec == "l16":
        return lambda pcm: np.asarray(pcm, np.int16).astype(">i2").tobytes()  # network byte order (RFC 3551)
    if codec == "g722":
        from G722 import G722  # optional extra: announcer[g722]

        encoder = G722(16000, 64000)
        return lambda pcm: bytes(encoder.encode(np.asarray(pcm, np.int16)))
    raise ValueError(f"unknown codec {codec!r} (allowed: {', '.join(CODECS)})")


def g722_available() -> bool:
    try:
        import G722  # noqa: F401
    except ImportError:
        return False
    return True


@dataclass
class RtpState:
    """A speaker's RTP session (see the module doc); ``payload_type`` and clock from the codec."""

    payload_type: int
    clock_rate: int
    ssrc: int = field(default_factory=lambda: random.SystemRandom().getrandbits(32))
    seq: int = field(default_factory=lambda: random.SystemRandom().getrandbits(16))
    timestamp: int = field(default_factory=lambda: random.SystemRandom().getrandbits(32))
    ended_at: float | None = None  # monotonic time the last talkspurt's next packet would have been due

    def start_talkspurt(self, now: float) -> None:
        """Advance the timestamp over the idle time since the last talkspurt."""
        if self.ended_at is not None and now > self.ended_at:
            self.timestamp = (self.timestamp + int((now - self.ended_at) * self.clock_rate)) & 0xFFFFFFFF

    def packet(self, payload: bytes, ts_step: int, marker: bool) -> bytes:
        """One RTP packet (V=2, no padding, extension or CSRC); advances sequence number and timestamp."""
        header = struct.pack(
            "!BBHII", 0x80, (0x80 if marker else 0) | self.payload_type, self.seq, self.timestamp, self.ssrc
        )
        self.seq = (self.seq + 1) & 0xFFFF
        self.timestamp = (self.timestamp + ts_step) & 0xFFFFFFFF
        return header + payload


def parse_header(packet: bytes) -> dict[str, int]:
    """The RTP header fields of ``packet`` (for tests and diagnostics)."""
    b0, b1, seq, ts, ssrc = struct.unpack("!BBHII", packet[:12])
    return {"version": b0 >> 6, "marker": b1 >> 7, "payload_type": b1 & 0x7F, "seq": seq, "timestamp": ts, "ssrc": ssrc}


def is_multicast(address: str) -> bool:
    return ipaddress.ip_address(address.split("%", 1)[0]).is_multicast


def session_description(
    name: str,
    address: str,
    port: int,
    codec: Codec,
    sample_rate: int,
    payload_type: int,
    ttl: int,
    ptime_ms: int,
    origin: str | None = None,
) -> str:
    """SDP (RFC 4566) for a receiver of this stream (ffmpeg ``-i x.sdp``, VLC, a SIP gateway)."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    family = "IP6" if ip.version == 6 else "IP4"
    # RFC 4566 5.7: an IPv4 multicast connection address carries its TTL; IPv6 has no TTL field
    conn = f"{ip}/{ttl}" if ip.is_multicast and ip.version == 4 else str(ip)
    origin = origin or ("::1" if ip.version == 6 else "127.0.0.1")
    clock = int(sample_rate * codec.clock_ratio)
    rtpmap = f"{codec.encoding}/{clock}" + ("/1" if codec.name == "l16" else "")
    lines = [
        "v=0",
        f"o=- 0 0 IN {family} {origin}",
        f"s=announcer {name}",
        f"c=IN {family} {conn}",
        "t=0 0",
        f"m=audio {port} RTP/AVP {payload_type}",
        f"a=rtpmap:{payload_type} {rtpmap}",
        f"a=ptime:{ptime_ms}",
        "a=recvonly",
    ]
    return "\r\n".join(lines) + "\r\n"
