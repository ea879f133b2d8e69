"""A private Snapcast for the ``snapcast`` speaker's tests: real ``snapserver`` and ``snapclient`` on loopback.

``Snapcast`` writes its own snapserver config (``-c``: nothing of ``/etc/snapserver.conf``),
a fresh data dir (``server.json`` keeps groups and their streams), four free ports (clients,
control, HTTP, announcer's TCP source) and two sources: ``default``, music (a looping file of
two steady tones, so "the music is back" can be heard), listed first so new groups play
it, and ``announcer`` (``tcp://127.0.0.1:PORT?name=announcer&mode=server``). PCM codec,
``buffer`` 1000 ms.

Its snapclient plays with its own ``file`` player (``--player file:filename=X,mode=a``), which
writes the samples it plays in real time (50 ms every 50 ms), as a sound card would take them:
``Capture`` reads that file. Not an ALSA device of ``tests/alsa.py``: measured here, snapclient's
ALSA player on the ALSA ``file`` plugin resyncs hard every few seconds (the ``null`` slave
reports no delay) and aborts in ``snd_pcm_file_drop`` when its group switches streams.
``mode=a`` because the client re-creates its player at every stream switch (``w`` would
truncate the file); ``--hostID`` because every client on one host has the same MAC.

``Rpc`` is the test's own JSON-RPC client (the speaker's is what is tested). A missing
snapserver or snapclient fails the test with the command that installs it.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

RATE = 48000
MUSIC_HZ = (300.0, 450.0)
MUSIC_AMP = 0.1
INSTALL = "sh scripts/install-system-deps.sh (apt-get install snapserver snapclient)"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(port: int, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise AssertionError(f"snapserver: port {port} not listening") from None
            time.sleep(0.02)


def music(seconds: float = 10.0) -> np.ndarray:
    t = np.arange(int(seconds * RATE)) / RATE
    return (MUSIC_AMP * (np.sin(2 * np.pi * MUSIC_HZ[0] * t) + np.sin(2 * np.pi * MUSIC_HZ[1] * t)) / 2).astype(
        np.float32
    )


class Rpc:
    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        self.buf = b""
        self.id = 0

    def call(self, method: str, params: dict[str, Any] | None = None) -> Any:
        self.id += 1
        req: dict[str, Any] = {"id": self.id, "jsonrpc": "2.0", "method": method}
        if params is not None:
            req["params"] = params
        self.sock.sendall(json.dumps(req).encode() + b"\r\n")
        while True:
            while b"\n" not in self.buf:
                self.buf += self.sock.recv(65536)
            line, self.buf = self.buf.split(b"\n", 1)
            msg = json.loads(line)
            if msg.get("id") == self.id:
                assert "error" not in msg, msg
                return msg["result"]

    def groups(self) -> list[dict[str, Any]]:
        return list(self.call("Server.GetStatus")["server"]["groups"])

    def close(self) -> None:
        self.sock.close()


class Capture:
    """What a snapclient's file player played (16-bit stereo at ``RATE``)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    @property
    def frames(self) -> int:
        try:
            return self.path.stat().st_size // 4
        except FileNotFoundError:
            return 0

    def samples(self) -> np.ndarray:
        """Everything played so far, float32 (frames, 2)."""
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            raw = b""
        return (np.frombuffer(raw[: len(raw) // 4 * 4], "<i2").astype(np.float32) / 32768.0).reshape(-1, 2)


class Snapcast:
    def __init__(self, workdir: Path) -> None:
        for binary in ("snapserver", "snapclient"):
            if shutil.which(binary) is None:
                pytest.fail(f"{binary} is not installed: {INSTALL}", pytrace=False)
        self.dir = workdir
        self.dir.mkdir(parents=True, exist_ok=True)
        self.stream_port, self.control_port, self.http_port, self.source_port = (free_port() for _ in range(4))
        self.procs: list[subprocess.Popen[bytes]] = []
        self.devices: dict[str, Capture] = {}
        music_file = self.dir / "music.pcm"
        m = (np.clip(music(), -1, 1) * 32767).astype("<i2")
        music_file.write_bytes(np.repeat(m[:, None], 2, axis=1).tobytes())
        (self.dir / "data").mkdir()
        conf = self.dir / "snapserver.conf"
        conf.write_text(
            f"""[server]
datadir = {self.dir / "data"}
threads = 2
[http]
enabled = true
bind_to_address = 127.0.0.1
port = {self.http_port}
doc_root =
[tcp]
enabled = true
bind_to_address = 127.0.0.1
port = {self.control_port}
[stream]
bind_to_address = 127.0.0.1
port = {self.stream_port}
source = file://{music_file}?name=default
source = tcp://127.0.0.1:{self.source_port}?name=announcer&mode=server
sampleformat = {RATE}:16:2
codec = pcm
chunk_ms = 20
buffer = 1000
[logging]
sink = stdout
filter = *:info
""",
            encoding="utf-8",
        )
        self._spawn(["snapserver", "-c", str(conf)], "server.log")
        try:
            wait_port(self.control_port)
            wait_port(self.stream_port)
            self.rpc = Rpc(self.control_port)
        except BaseException:
            self._stop_processes()
            raise

    def _spawn(self, cmd: list[str], log: str) -> None:
        with open(self.dir / log, "wb") as out:
            self.procs.append(subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT))

    def add_client(self, host_id: str) -> Capture:
        """A snapclient playing into a file in real time; returns once the server lists it connected."""
        device = Capture(self.dir / f"{host_id}.raw")
        self.devices[host_id] = device
        cmd = ["snapclient", "-h", "127.0.0.1", "-p", str(self.stream_port), "--hostID", host_id]
        cmd += ["--player", f"file:filename={device.path},mode=a", "--logsink", "stdout"]
        self._spawn(cmd, f"client-{host_id}.log")
        deadline = time.monotonic() + 15
        while not any(c["id"] == host_id and c["connected"] for g in self.rpc.groups() for c in g["clients"]):
            assert time.monotonic() < deadline, f"snapclient {host_id} did not connect: {self.log(host_id)}"
            time.sleep(0.05)
        return device

    def group_of(self, host_id: str) -> dict[str, Any]:
        return next(g for g in self.rpc.groups() if any(c["id"] == host_id for c in g["clients"]))

    def client(self, host_id: str) -> dict[str, Any]:
        return next(c for c in self.group_of(host_id)["clients"] if c["id"] == host_id)

    def log(self, host_id: str | None = None) -> str:
        name = f"client-{host_id}.log" if host_id else "server.log"
        return (self.dir / name).read_text(errors="replace")[-3000:]

    def speaker_yaml(self, groups: str = "[all]") -> str:
        return (
            f"{{type: snapcast, host: 127.0.0.1, stream_port: {self.source_port}, control_port: {self.control_port}, "
            f"stream: announcer, groups: {groups}, buffer_ms: 1000}}"
        )

    def close(self) -> None:
        self.rpc.close()
        self._stop_processes()

    def _stop_processes(self) -> None:
        for p in self.procs:
            if p.poll() is None:
                p.terminate()
        for p in self.procs:
            try:
                p.wait(5)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


def windows_matching(
    sent: np.ndarray, got: np.ndarray, window: int = RATE // 4, search: int = int(0.03 * RATE)
) -> tuple[int, float]:
    """Where ``sent`` starts in ``got`` and the share of its 250 ms windows (with sound) found there
    sample for sample after a local re-alignment of up to ±30 ms (snapcast resyncs by a chunk under load)."""
    from rtp_receivers import align

    sent16 = np.round(np.clip(sent, -1, 1) * 32767).astype(np.int16)
    start = align(sent16[:RATE].astype(np.float64), got.astype(np.float64))
    total = matched = 0
    for st in range(0, len(sent16) - window, window):
        seg = sent16[st : st + window]
        if np.max(np.abs(seg)) < 1000:
            continue
        total += 1
        lo = max(0, start + st - search)
        region = got[lo : start + st + window + search]
        if len(region) < window:
            continue
        k = align(seg.astype(np.float64), region.astype(np.float64))
        cand = region[k : k + window] if k >= 0 else region[:0]
        if len(cand) == window and np.max(np.abs(cand.astype(np.int32) - seg)) <= 1:
            matched += 1
    return start, matched / max(1, total)
