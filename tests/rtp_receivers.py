"""Real RTP receivers for the ``rtp`` speaker's tests: GStreamer, ffmpeg, a packet capture, network namespaces.

* ``GstReceiver``: ``gst-launch-1.0 -e udpsrc ! rtpjitterbuffer ! <depay> ! <decoder> ! wavenc``;
  stopped with SIGINT (``-e`` turns it into an end of stream, so the WAV header is written).
* ``FfmpegReceiver``: ``ffmpeg -protocol_whitelist file,udp,rtp -listen_timeout 2 -i x.sdp``;
  it ends by itself about 2 s after the last packet.
* ``PacketCapture``: a UDP socket in this process that keeps every packet with its arrival
  time (monotonic) and the DSCP it carried (``IP_RECVTOS``/``IPV6_RECVTCLASS``).
* ``lan`` (fixture): two network namespaces joined by a veth pair ("announcer" side A,
  "speaker" side B), with IPv4 addresses from TEST-NET-1 and a 224.0.0.0/4 route on both
  sides; IPv6 uses the link-local addresses and the kernel's ff00::/8 route. ``in_netns(ns,
  fn)`` runs ``fn`` on a thread that joined namespace ``ns`` (setns is per thread; threads and
  sockets it creates stay in that namespace). Needs root (CI runs as root); without it the
  fixture fails with that reason.

A missing GStreamer or ffmpeg fails the test with the command that installs it.
"""

from __future__ import annotations

import ctypes
import os
import shutil
import signal
import socket
import struct
import subprocess
import threading
import time
import uuid
import wave
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import pytest

from announcer.audio.g711 import alaw_decode, alaw_encode, ulaw_decode, ulaw_encode

INSTALL = "sh scripts/install-system-deps.sh (gstreamer1.0-tools gstreamer1.0-plugins-good ffmpeg iproute2)"
CLONE_NEWNET = 0x40000000
IP_RECVTTL = getattr(socket, "IP_RECVTTL", 12)  # Linux <netinet/in.h>; not in Python's socket module
ENCODING = {"pcmu": "PCMU", "pcma": "PCMA", "l16": "L16", "g722": "G722"}
T = TypeVar("T")


def need(binary: str) -> str:
    path = shutil.which(binary)
    if path is None:
        pytest.fail(f"{binary} is not installed: {INSTALL}", pytrace=False)
    return path


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def codec_roundtrip(pcm: np.ndarray, codec: str) -> np.ndarray:
    """What a receiver decodes from ``pcm`` (int16) sent with ``codec`` (exact for G.711 and L16)."""
    if codec == "pcmu":
        return ulaw_decode(ulaw_encode(pcm))
    if codec == "pcma":
        return alaw_decode(alaw_encode(pcm))
    return np.asarray(pcm, np.int16)


def read_wav16(path: Path) -> tuple[np.ndarray, int]:
    with wave.open(str(path), "rb") as w:
        rate, ch = w.getframerate(), w.getnchannels()
        x = np.frombuffer(w.readframes(w.getnframes()), "<i2").reshape(-1, ch)
    return x[:, 0].copy(), rate


def align(ref: np.ndarray, got: np.ndarray) -> int:
    """The lag at which ``got`` best matches ``ref`` (got[lag + i] ~ ref[i])."""
    n = 1 << int(np.ceil(np.log2(len(ref) + len(got) + 1)))
    c = np.fft.irfft(np.conj(np.fft.rfft(ref.astype(np.float64), n)) * np.fft.rfft(got.astype(np.float64), n), n)
    lag = int(np.argmax(c))
    return lag if lag < n // 2 else lag - n


def _udp_bound(port: int, netns: str | None) -> bool:
    cmd = ["ss", "-Hulnp", f"sport = :{port}"]
    if netns:
        cmd = ["ip", "netns", "exec", netns, *cmd]
    out = subprocess.run(cmd, capture_output=True, text=True).stdout
    return bool(out.strip())


def _wait_bound(port: int, netns: str | None, proc: subprocess.Popen[bytes], what: str) -> None:
    deadline = time.monotonic() + 15
    while not _udp_bound(port, netns):
        if proc.poll() is not None:
            raise AssertionError(
                f"{what} exited at once: {proc.stdout.read().decode(errors='replace') if proc.stdout else ''}"
            )
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} did not bind UDP port {port}")
        time.sleep(0.02)


class GstReceiver:
    """GStreamer receiving one codec on ``address:port`` into a WAV (see the module doc)."""

    def __init__(
        self,
        out: Path,
        codec: str,
        rate: int,
        pt: int,
        port: int,
        address: str | None = None,
        iface: str | None = None,
        netns: str | None = None,
    ) -> None:
        need("gst-launch-1.0")
        self.out = out
        clock = rate // 2 if codec == "g722" else rate
        caps = f"application/x-rtp,media=audio,clock-rate={clock},encoding-name={ENCODING[codec]},payload={pt}"
        if codec == "l16":
            caps += ",channels=1"
        src = ["udpsrc", f"port={port}", f"caps={caps}"]
        if address:
            src += [f"address={address}", "auto-multicast=true"]
        if iface:
            src.append(f"multicast-iface={iface}")
        dec = {
            "pcmu": ["rtppcmudepay", "!", "mulawdec"],
            "pcma": ["rtppcmadepay", "!", "alawdec"],
            "l16": ["rtpL16depay"],
            "g722": ["rtpg722depay", "!", "avdec_g722"],
        }[codec]
        cmd = ["gst-launch-1.0", "-e", *src, "!", "rtpjitterbuffer", "latency=100", "!", *dec, "!", "audioconvert"]
        cmd += ["!", "audio/x-raw,format=S16LE", "!", "wavenc", "!", "filesink", f"location={out}"]
        if netns:
            cmd = ["ip", "netns", "exec", netns, *cmd]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        _wait_bound(port, netns, self.proc, "gst-launch-1.0")

    def stop(self, settle: float = 0.4) -> tuple[np.ndarray, int]:
        """Stop after ``settle`` s (the jitter buffer's latency) and return the received samples and rate."""
        time.sleep(settle)
        self.proc.send_signal(signal.SIGINT)
        out, _ = self.proc.communicate(timeout=15)
        assert self.proc.returncode == 0, out.decode(errors="replace")
        return read_wav16(self.out)

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


class FfmpegReceiver:
    """ffmpeg reading an SDP (see the module doc); ``wait()`` returns the received samples and rate."""

    def __init__(self, sdp: str, workdir: Path, port: int, netns: str | None = None) -> None:
        need("ffmpeg")
        self.sdp_path = workdir / "stream.sdp"
        self.sdp_path.write_text(sdp, encoding="utf-8")
        self.out = workdir / "ffmpeg.wav"
        cmd = ["ffmpeg", "-hide_banner", "-nostdin", "-y", "-protocol_whitelist", "file,udp,rtp"]
        cmd += ["-listen_timeout", "2", "-i", str(self.sdp_path), "-c:a", "pcm_s16le", str(self.out)]
        if netns:
            cmd = ["ip", "netns", "exec", netns, *cmd]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        _wait_bound(port, netns, self.proc, "ffmpeg")

    def wait(self, timeout: float = 30) -> tuple[np.ndarray, int]:
        out, _ = self.proc.communicate(timeout=timeout)
        assert self.proc.returncode == 0, out.decode(errors="replace")[-2000:]
        return read_wav16(self.out)

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


@dataclass
class Packet:
    arrived: float
    data: bytes
    dscp: int | None
    ttl: int | None = None  # the IPv4 TTL / IPv6 hop limit it arrived with

    @property
    def header(self) -> dict[str, int]:
        from announcer.sinks.rtp_codecs import parse_header

        return parse_header(self.data)

    @property
    def payload(self) -> bytes:
        return self.data[12:]


@dataclass
class PacketCapture:
    """Every packet to ``port`` (see the module doc); ``group`` joins a multicast group."""

    port: int
    host: str = "127.0.0.1"
    group: str | None = None
    iface: str | None = None
    packets: list[Packet] = field(default_factory=list)

    def __post_init__(self) -> None:
        v6 = ":" in (self.group or self.host)
        self.sock = socket.socket(socket.AF_INET6 if v6 else socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
        if v6:
            self.sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_RECVTCLASS, 1)
            self.sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_RECVHOPLIMIT, 1)
            self.sock.bind(("::" if self.group else self.host, self.port))
        else:
            self.sock.setsockopt(socket.IPPROTO_IP, socket.IP_RECVTOS, 1)
            self.sock.setsockopt(socket.IPPROTO_IP, IP_RECVTTL, 1)
            self.sock.bind(("0.0.0.0" if self.group else self.host, self.port))
        if self.group and v6:
            index = socket.if_nametoindex(self.iface) if self.iface else 0
            mreq = socket.inet_pton(socket.AF_INET6, self.group) + struct.pack("@I", index)
            self.sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_JOIN_GROUP, mreq)
        elif self.group:
            mreqn = struct.pack(
                "=4s4si",
                socket.inet_aton(self.group),
                b"\0" * 4,
                socket.if_nametoindex(self.iface) if self.iface else 0,
            )
            self.sock.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, mreqn)
        self.sock.settimeout(0.2)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                data, anc, _flags, _addr = self.sock.recvmsg(65536, 2 * socket.CMSG_SPACE(8))
            except TimeoutError:
                continue
            except OSError:
                return
            now = time.monotonic()
            dscp = ttl = None
            for level, kind, value in anc:
                number = value[0] if len(value) == 1 else struct.unpack("@i", value[:4])[0]
                if (level, kind) in ((socket.IPPROTO_IP, socket.IP_TOS), (socket.IPPROTO_IPV6, socket.IPV6_TCLASS)):
                    dscp = number >> 2
                elif (level, kind) in ((socket.IPPROTO_IP, socket.IP_TTL), (socket.IPPROTO_IPV6, socket.IPV6_HOPLIMIT)):
                    ttl = number
            self.packets.append(Packet(now, data, dscp, ttl))

    def wait_quiet(self, quiet: float = 0.5, timeout: float = 60) -> None:
        """Until no packet came for ``quiet`` s (after at least one)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.packets and time.monotonic() - self.packets[-1].arrived > quiet:
                return
            time.sleep(0.05)
        raise AssertionError(f"packets still coming (or none) after {timeout} s: {len(self.packets)}")

    def talkspurts(self) -> list[list[Packet]]:
        """The packets split at each marker bit."""
        out: list[list[Packet]] = []
        for p in self.packets:
            if p.header["marker"] or not out:
                out.append([])
            out[-1].append(p)
        return out

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2)
        self.sock.close()


# ---- network namespaces ---------------------------------------------------------------------
_libc = ctypes.CDLL(None, use_errno=True)


def in_netns(name: str, fn: Callable[[], T]) -> T:
    """``fn()`` on a thread that joined network namespace ``name``; its result (or exception)."""
    out: dict[str, Any] = {}

    def run() -> None:
        fd = os.open(f"/run/netns/{name}", os.O_RDONLY)
        try:
            if _libc.setns(fd, CLONE_NEWNET) != 0:
                raise OSError(ctypes.get_errno(), "setns")
        finally:
            os.close(fd)
        try:
            out["v"] = fn()
        except BaseException as exc:  # noqa: BLE001 - re-raised in the caller
            out["e"] = exc

    t = threading.Thread(target=run)
    t.start()
    t.join()
    if "e" in out:
        raise out["e"]
    return out["v"]  # type: ignore[no-any-return]


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True)


@dataclass
class Lan:
    a: str  # the announcer's namespace
    b: str  # the speakers' namespace
    va: str  # A's end of the veth
    vb: str


@pytest.fixture
def lan() -> Iterator[Lan]:
    """Two namespaces joined by a veth pair (see the module doc), deleted after the test."""
    need("ip")
    if os.geteuid() != 0:
        pytest.fail("the multicast tests create network namespaces: run them as root (CI does)", pytrace=False)
    tag = uuid.uuid4().hex[:6]
    net = Lan(f"ann-a-{tag}", f"ann-b-{tag}", f"va{tag}", f"vb{tag}")
    _ip("netns", "add", net.a)
    _ip("netns", "add", net.b)
    try:
        _ip("link", "add", net.va, "netns", net.a, "type", "veth", "peer", "name", net.vb, "netns", net.b)
        for ns, dev, addr in ((net.a, net.va, "192.0.2.1/24"), (net.b, net.vb, "192.0.2.2/24")):
            subprocess.run(
                ["ip", "netns", "exec", ns, "sysctl", "-qw", f"net.ipv6.conf.{dev}.accept_dad=0"],
                check=True,
                capture_output=True,
            )
            _ip("-n", ns, "link", "set", "lo", "up")
            _ip("-n", ns, "addr", "add", addr, "dev", dev)
            _ip("-n", ns, "link", "set", dev, "up")
            _ip("-n", ns, "route", "add", "224.0.0.0/4", "dev", dev)
        yield net
    finally:
        subprocess.run(["ip", "netns", "del", net.a], capture_output=True)  # takes its veth end, and so the pair
        subprocess.run(["ip", "netns", "del", net.b], capture_output=True)
