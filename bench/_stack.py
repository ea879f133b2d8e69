"""The real stack for the end-to-end benchmarks: mosquitto, the daemon as a subprocess, ALSA devices.

The pieces come from the test suite's harness (``tests/``, imported via ``sys.path`` as
``scripts/demo.py`` does):

* ``Broker``/``TestClient`` from ``tests/broker.py`` (a real mosquitto on a free port).
* ``Daemon`` is ``tests/daemon_proc.py``'s ``DaemonProc`` with a config of the benchmark's
  own, spawned with ``NOTIFY_SOCKET`` bound to a real AF_UNIX datagram socket
  (``NotifySocket``: the time of each sd_notify message is recorded); it reads the
  process's memory and CPU time from ``/proc``.
* ``Devices`` names the ALSA PCMs of ``tests/alsa.py`` (``AlsaDevices``) that PortAudio (in
  the daemon) opens by name:

  - ``capture``: the ``file`` plugin on a ``null`` slave writes every sample into a WAV file,
    **not in real time** (writes return at once). ``CaptureWatch`` polls the file every 2 ms
    and records when the first non-silent sample appears in it.
  - ``paced`` (``AlsaDevices.add_paced(streams=True)``): the ``file`` plugin writes into a
    FIFO that a thread empties at the sample rate (every 10 ms, what fell due; the pipe is
    shrunk to one page, 4096 bytes = 85 ms at 24 kHz mono S16), so PortAudio's writes block
    as on a sound card: the device plays in real time. The file plugin writes a 44-byte WAV
    header at each open, which marks where each stream (one announcement) begins in the
    FIFO; every consumed sample gets the time it was "played". What a real card does
    differently: ``abort`` drops its ring buffer; here up to one page already in the pipe
    is still played (≤ 85 ms).

  The daemon's speakers open both as S16_LE mono at 24 kHz.

``EventLog`` subscribes to ``P/events`` and stamps each event with its arrival time
(``time.monotonic()``, the clock the FIFO reader and the watcher use too).
"""

from __future__ import annotations

import json
import os
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
from alsa import SOUND_THRESHOLD, SYSTEM_ALSA_CONF, WAV_HEADER, AlsaDevices, PacedDevice
from broker import Broker, TestClient, find_mosquitto
from daemon_proc import DaemonProc, NotifySocket

RATE = 24000

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
            self._armed[path] = [None, WAV_HEADER, None]

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
                    if np.any(np.abs(audio) > SOUND_THRESHOLD * 32768):
                        st[2] = now
                    st[1] += len(data)
            time.sleep(self.interval)


class Devices:
    """Named ALSA PCMs (``tests/alsa.py``) for the daemon's sounddevice speakers (see the module doc)."""

    def __init__(self, directory: Path) -> None:
        if not Path(SYSTEM_ALSA_CONF).is_file():
            raise BenchError(f"{SYSTEM_ALSA_CONF} is missing: install ALSA (scripts/install-system-deps.sh)")
        self.alsa = AlsaDevices(directory, count=0)
        self.captures: dict[str, Path] = {}
        self.paced: dict[str, PacedDevice] = {}
        self._device: dict[str, str] = {}  # speaker name -> ALSA name

    def add_capture(self, name: str) -> Path:
        self.alsa.set_count(self.alsa.count + 1)
        self._device[name] = self.alsa.name(self.alsa.count)
        self.captures[name] = self.alsa.capture_path(self.alsa.count)
        return self.captures[name]

    def add_paced(self, name: str) -> PacedDevice:
        dev = self.alsa.add_paced(RATE, 1, streams=True, portaudio=False)  # only the daemon plays on it
        self._device[name] = dev.name
        self.paced[name] = dev
        return dev

    def speaker_config(self, name: str, lead_in_ms: int | None = None) -> str:
        """The YAML flow mapping of a sounddevice speaker on ``name``'s device."""
        lead = "" if lead_in_ms is None else f", lead_in_ms: {lead_in_ms}"
        return f"{{type: sounddevice, device: {self._device[name]}, channels: 1, samplerate: {RATE}{lead}}}"

    @property
    def env(self) -> dict[str, str]:
        return {"ALSA_CONFIG_PATH": self.alsa.config_path}

    def close(self) -> None:
        self.alsa.close()


# ---------------------------------------------------------------------------------- the daemon
class Daemon(DaemonProc):
    """``announcer run -c`` in a subprocess (``spawn()``), with a real sd_notify socket; ``body``: its
    engines, speakers, defaults ... (YAML), after the benchmark's mqtt, spool, limits and logging."""

    def __init__(self, workdir: Path, broker: Broker, body: str, env: dict[str, str] | None = None) -> None:
        self.body = body
        self.notify = NotifySocket()
        prefix = f"bench-{uuid.uuid4().hex[:6]}"
        super().__init__(
            broker, workdir, workdir / "cache", prefix=prefix, client_id=prefix, env={**(env or {}), **self.notify.env}
        )

    def _write_config(self) -> None:
        self.config_path.write_text(
            f"mqtt: {{host: {self.broker.host}, port: {self.broker.port}, topic_prefix: {self.prefix}, "
            f"client_id: {self.client_id}, reconnect_min_delay: 0.1}}\n"
            f"spool: {{path: {json.dumps(str(self.spool_path))}}}\n"
            f"homeassistant: {{enabled: false}}\n"
            f"limits: {{per_minute: 10000, max_queue: 1000}}\n"
            f"logging: {{level: INFO}}\n" + self.body,
            encoding="utf-8",
        )

    def wait_ready(self, timeout: float = 60.0) -> float:
        """Monotonic time of the first ``READY=1``."""
        deadline = time.monotonic() + timeout
        while not (ready := self.notify.times("READY=1")):
            if not self.running:
                raise BenchError(f"daemon exited before READY\n{self.log_tail()}")
            left = deadline - time.monotonic()
            if left <= 0:
                raise BenchError(f"daemon not READY within {timeout} s\n{self.log_tail()}")
            try:
                self.notify.wait_for(lambda m: "READY=1" in m.splitlines(), min(left, 0.2))
            except AssertionError:
                pass
        return ready[0]

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

    def close(self, timeout: float = 30.0) -> None:
        """SIGTERM (SIGKILL after ``timeout``) if it runs; closes the sd_notify socket."""
        super().close(timeout)
        self.notify.close()


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

    def wait(
        self, ann_id: str, state: str | tuple[str, ...], speaker: str | None = None, timeout: float = 60.0
    ) -> Stamped:
        states = (state,) if isinstance(state, str) else state
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for it in self.items:
                    e = it.event
                    if (
                        e.get("id") == ann_id
                        and e.get("state") in states
                        and (speaker is None or e.get("speaker") == speaker)
                    ):
                        return it
                failed = [
                    it.event
                    for it in self.items
                    if it.event.get("id") == ann_id and it.event.get("state") in ("failed", "rejected")
                ]
                if failed and not set(states) & {"failed", "rejected"}:
                    raise BenchError(f"{ann_id}: {failed[0]}")
                left = deadline - time.monotonic()
                if left <= 0:
                    raise BenchError(f"no {'/'.join(states)} event for {ann_id} within {timeout} s")
                self._cond.wait(left)
