"""The real stack for the end-to-end benchmarks: mosquitto, the daemon as a subprocess, ALSA devices.

* ``Broker``/``TestClient`` come from ``tests/broker.py`` (a real mosquitto on a free port).
* ``Daemon`` runs ``announcer run -c <generated yaml>`` with ``NOTIFY_SOCKET`` bound to a real
  AF_UNIX datagram socket (the time of each sd_notify message is recorded) and reads the
  process's memory and CPU time from ``/proc``.
* ``Devices`` defines ALSA PCMs that PortAudio (in the daemon) opens by name:

  - ``capture``: the ``file`` plugin on a ``null`` slave writes every sample into a WAV file,
    **not in real time** (writes return at once). ``CaptureWatch`` polls the file every 2 ms
    and records when the first non-silent sample appears in it.
  - ``paced``: the ``file`` plugin writes into a FIFO that a thread here empties at the sample
    rate (every 10 ms, what fell due; the pipe is shrunk to one page, 4096 bytes = 85 ms at
    24 kHz mono S16), so PortAudio's writes block as on a sound card: the device plays in real
    time. The file plugin writes a 44-byte WAV header at each open, which marks where each
    stream (one announcement) begins in the FIFO; every consumed sample gets the time it was
    "played". What a real card does differently: ``abort`` drops its ring buffer; here up to
    one page already in the pipe is still played (≤ 85 ms).

  Both are S16_LE mono at 24 kHz (``plug`` converts whatever the sink opens).

``EventLog`` subscribes to ``P/events`` and stamps each event with its arrival time
(``time.monotonic()``, the clock the FIFO reader and the watcher use too).
"""

from __future__ import annotations

import fcntl
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .common import REPO_ROOT, BenchError, process_cpu_seconds

sys.path.insert(0, str(REPO_ROOT / "tests"))
from broker import Broker, TestClient, find_mosquitto

SYSTEM_ALSA_CONF = "/usr/share/alsa/alsa.conf"
RATE = 24000
SILENCE = 1e-3  # |sample| above this (-60 dBFS) counts as sound
_F_SETPIPE_SZ = 1031
_HEADER = 44  # the file plugin's WAV header (written at every open)

__all__ = [
    "Broker",
    "CaptureWatch",
    "Daemon",
    "Devices",
    "EventLog",
    "TestClient",
    "start_broker",
    "unique_text",
]


def start_broker(workdir: Path, nodelay: bool = False) -> Broker:
    """mosquitto with its defaults (Nagle on) or with ``set_tcp_nodelay true``."""
    binary = find_mosquitto()
    if binary is None:
        raise BenchError("mosquitto is not installed: run scripts/install-system-deps.sh")
    return Broker(workdir / "broker", binary, extra_conf="set_tcp_nodelay true\n" if nodelay else "").start()


def unique_text(text: str, n: int) -> str:
    """``text`` with a number in front that no cache has seen (its first clause is new)."""
    return f"第{n}号，{text}"


# ---------------------------------------------------------------------------------- devices
@dataclass
class PacedStream:
    """One open→close of a paced device: when it began and when its first sound was played."""

    began: float
    first_sound: float | None = None
    frames: int = 0


class PacedDevice:
    def __init__(self, name: str, fifo: Path) -> None:
        self.name = name
        self.fifo = fifo
        self.streams: list[PacedStream] = []
        self.underruns = 0  # ticks where a stream had fallen behind (the player did not supply in time)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._fd: int | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self.fifo.unlink(missing_ok=True)
        os.mkfifo(self.fifo)
        self._fd = os.open(self.fifo, os.O_RDWR | os.O_NONBLOCK)  # read-write: no EOF, never blocks an open
        fcntl.fcntl(self._fd, _F_SETPIPE_SZ, 4096)
        self._thread = threading.Thread(target=self._consume, name=f"paced-{self.name}", daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        self.fifo.unlink(missing_ok=True)

    def stream_after(self, t: float) -> PacedStream | None:
        """The first stream that began after ``t`` and has played a sound."""
        with self._lock:
            for s in self.streams:
                if s.began >= t and s.first_sound is not None:
                    return s
        return None

    def _consume(self) -> None:
        assert self._fd is not None
        bps = RATE * 2
        last = time.monotonic()
        owed = 0.0
        pending = b""
        while not self._stop.is_set():
            time.sleep(0.01)
            now = time.monotonic()
            owed += (now - last) * bps
            last = now
            due = int(owed) // 2 * 2
            owed -= due
            try:
                chunk = os.read(self._fd, due) if due else b""
            except BlockingIOError:
                chunk = b""
            if len(chunk) < due:
                owed = 0.0  # nothing more to play: silence, no catching up later
                with self._lock:
                    if self.streams and self.streams[-1].frames and chunk:
                        self.underruns += 1
            if chunk:
                self._parse(pending + chunk, now)
                pending = b""

    def _parse(self, data: bytes, now: float) -> None:
        """Split ``data`` (read at ``now``, its last byte played then) at WAV headers; stamp first sounds."""
        pos = 0
        end = len(data)
        with self._lock:
            while pos < end:
                h = data.find(b"RIFF", pos)
                stop = end if h < 0 else h
                if stop > pos:
                    audio = np.frombuffer(data[pos:stop - (stop - pos) % 2], "<i2")
                    if self.streams:
                        s = self.streams[-1]
                        if s.first_sound is None:
                            loud = np.flatnonzero(np.abs(audio) > SILENCE * 32768)
                            if loud.size:
                                s.first_sound = now - (end - pos - 2 * int(loud[0])) / (RATE * 2)
                        s.frames += audio.size
                if h < 0:
                    break
                self.streams.append(PacedStream(began=now - (end - h) / (RATE * 2)))
                pos = h + _HEADER


class CaptureWatch:
    """Polls capture files every ``interval`` s: when does the first non-silent sample appear?"""

    def __init__(self, interval: float = 0.002) -> None:
        self.interval = interval
        self._armed: dict[Path, list[Any]] = {}  # path -> [fd or None, offset, result time or None]
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="capture-watch", daemon=True)
        self._thread.start()

    def arm(self, path: Path) -> None:
        """Forget ``path``'s previous capture (the next stream creates it anew) and watch for sound."""
        with self._lock:
            old = self._armed.pop(path, None)
            if old and old[0] is not None:
                os.close(old[0])
            path.unlink(missing_ok=True)
            self._armed[path] = [None, _HEADER, None]

    def wait(self, path: Path, timeout: float) -> float | None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                st = self._armed.get(path)
                if st is not None and st[2] is not None:
                    return float(st[2])
            time.sleep(0.005)
        return None

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2)

    def _run(self) -> None:
        while not self._stop.is_set():
            now = time.monotonic()
            with self._lock:
                for path, st in self._armed.items():
                    if st[2] is not None:
                        continue
                    if st[0] is None:
                        try:
                            st[0] = os.open(path, os.O_RDONLY)
                        except FileNotFoundError:
                            continue
                    size = os.fstat(st[0]).st_size
                    if size - st[1] < 2:
                        continue
                    data = os.pread(st[0], (size - st[1]) // 2 * 2, st[1])
                    audio = np.frombuffer(data, "<i2")
                    if np.any(np.abs(audio) > SILENCE * 32768):
                        st[2] = now
                    st[1] += len(data)
            time.sleep(self.interval)


class Devices:
    """ALSA PCMs ``bench_<name>`` for the daemon's sounddevice speakers (see the module doc)."""

    def __init__(self, directory: Path) -> None:
        self.dir = directory
        self.dir.mkdir(parents=True, exist_ok=True)
        self.config_file = self.dir / "asoundrc"
        self.captures: dict[str, Path] = {}
        self.paced: dict[str, PacedDevice] = {}
        if not Path(SYSTEM_ALSA_CONF).is_file():
            raise BenchError(f"{SYSTEM_ALSA_CONF} is missing: install ALSA (scripts/install-system-deps.sh)")

    def add_capture(self, name: str) -> Path:
        self.captures[name] = self.dir / f"{name}.wav"
        self._write()
        return self.captures[name]

    def add_paced(self, name: str) -> PacedDevice:
        dev = PacedDevice(name, self.dir / f"{name}.fifo")
        dev.start()
        self.paced[name] = dev
        self._write()
        return dev

    def _write(self) -> None:
        lines = []
        for name, path in self.captures.items():
            lines.append(f'pcm.benchfile_{name} {{ type file slave.pcm "null" file "{path}" format "wav" }}')
        for name, dev in self.paced.items():
            lines.append(f'pcm.benchfile_{name} {{ type file slave.pcm "null" file "{dev.fifo}" format "wav" }}')
        for name in [*self.captures, *self.paced]:
            lines.append(f'pcm.bench_{name} {{ type plug slave {{ pcm "benchfile_{name}" format S16_LE '
                         f'rate {RATE} channels 1 }} }}')
        self.config_file.write_text("\n".join(lines) + "\n", encoding="utf-8")

    @staticmethod
    def speaker_config(name: str, lead_in_ms: int | None = None) -> str:
        """The YAML flow mapping of a sounddevice speaker on device ``bench_<name>``."""
        lead = "" if lead_in_ms is None else f", lead_in_ms: {lead_in_ms}"
        return f"{{type: sounddevice, device: bench_{name}, channels: 1, samplerate: {RATE}{lead}}}"

    @property
    def env(self) -> dict[str, str]:
        return {"ALSA_CONFIG_PATH": f"{SYSTEM_ALSA_CONF}:{self.config_file}"}

    def close(self) -> None:
        for dev in self.paced.values():
            dev.close()


# ---------------------------------------------------------------------------------- the daemon
class Daemon:
    """``announcer run -c`` in a subprocess, with a real sd_notify socket."""

    def __init__(self, workdir: Path, broker: Broker, body: str, env: dict[str, str] | None = None) -> None:
        self.workdir = workdir
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.broker = broker
        self.prefix = f"bench-{uuid.uuid4().hex[:6]}"
        self.config_path = workdir / "announcer.yaml"
        self.log_path = workdir / "daemon.log"
        self.config_path.write_text(
            f"mqtt: {{host: {broker.host}, port: {broker.port}, topic_prefix: {self.prefix}, "
            f"client_id: {self.prefix}, reconnect_min_delay: 0.1}}\n"
            f"spool: {{path: {json.dumps(str(workdir / 'spool.sqlite3'))}}}\n"
            f"homeassistant: {{enabled: false}}\n"
            f"limits: {{per_minute: 10000, max_queue: 1000}}\n"
            f"logging: {{level: INFO}}\n" + body, encoding="utf-8")
        self.env = env or {}
        self.proc: subprocess.Popen[bytes] | None = None
        self.spawned = 0.0
        self.notifications: list[tuple[float, str]] = []
        self._notify_cond = threading.Condition()
        self._sock: socket.socket | None = None

    def topic(self, *parts: str) -> str:
        return "/".join((self.prefix, *parts))

    def start(self) -> None:
        sock_path = self.workdir / "notify.sock"
        sock_path.unlink(missing_ok=True)
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._sock.bind(str(sock_path))
        threading.Thread(target=self._receive, args=(self._sock,), name="sd-notify", daemon=True).start()
        env = dict(os.environ, PYTHONUNBUFFERED="1", NOTIFY_SOCKET=str(sock_path), **self.env)
        with open(self.log_path, "ab") as log:
            self.spawned = time.monotonic()
            self.proc = subprocess.Popen([sys.executable, "-m", "announcer.cli", "run", "-c", str(self.config_path)],
                                         stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=log,
                                         cwd=self.workdir, env=env)

    def _receive(self, sock: socket.socket) -> None:
        while True:
            try:
                data = sock.recv(4096)
            except OSError:
                return
            with self._notify_cond:
                self.notifications.append((time.monotonic(), data.decode("utf-8", "replace")))
                self._notify_cond.notify_all()

    def wait_ready(self, timeout: float = 60.0) -> float:
        """Monotonic time of the first ``READY=1``."""
        deadline = time.monotonic() + timeout
        with self._notify_cond:
            while True:
                for t, msg in self.notifications:
                    if "READY=1" in msg.splitlines():
                        return t
                if self.proc is None or self.proc.poll() is not None:
                    raise BenchError(f"daemon exited before READY\n{self.log_tail()}")
                left = deadline - time.monotonic()
                if left <= 0:
                    raise BenchError(f"daemon not READY within {timeout} s\n{self.log_tail()}")
                self._notify_cond.wait(min(left, 0.2))

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def status_kib(self, key: str) -> int:
        """A field of /proc/<pid>/status in KiB (VmHWM: peak RSS, VmRSS: now)."""
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
        raise BenchError(f"no {key} in /proc/{self.pid}/status")

    def cpu_seconds(self) -> float:
        """User + system CPU time of the daemon so far (all its threads)."""
        return process_cpu_seconds(self.pid)

    def stop(self, timeout: float = 30.0) -> int | None:
        proc, self.proc = self.proc, None
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if self._sock is not None:
            self._sock.close()
        return None if proc is None else proc.returncode

    def log_tail(self, lines: int = 30) -> str:
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return "(no daemon log)"
        return "daemon log (tail):\n" + "\n".join(text.splitlines()[-lines:])


# ---------------------------------------------------------------------------------- events
@dataclass
class Stamped:
    t: float
    event: dict[str, Any]


@dataclass
class EventLog:
    """Every event on ``P/events`` with its arrival time."""

    client: TestClient
    topic: str
    items: list[Stamped] = field(default_factory=list)
    listeners: list[Callable[[Stamped], None]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._cond = threading.Condition()
        self.client.on(self.topic, self._on)

    def _on(self, msg: Any) -> None:
        item = Stamped(time.monotonic(), json.loads(msg.payload))
        with self._cond:
            self.items.append(item)
            self._cond.notify_all()
        for listener in self.listeners:
            listener(item)

    def wait(self, ann_id: str, state: str | tuple[str, ...], speaker: str | None = None,
             timeout: float = 60.0) -> Stamped:
        states = (state,) if isinstance(state, str) else state
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for it in self.items:
                    e = it.event
                    if e.get("id") == ann_id and e.get("state") in states and \
                            (speaker is None or e.get("speaker") == speaker):
                        return it
                failed = [it.event for it in self.items
                          if it.event.get("id") == ann_id and it.event.get("state") in ("failed", "rejected")]
                if failed and not set(states) & {"failed", "rejected"}:
                    raise BenchError(f"{ann_id}: {failed[0]}")
                left = deadline - time.monotonic()
                if left <= 0:
                    raise BenchError(f"no {'/'.join(states)} event for {ann_id} within {timeout} s")
                self._cond.wait(left)
