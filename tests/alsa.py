"""Real PortAudio output devices without a sound card: ALSA ``file`` PCMs on a ``null`` slave.

For each speaker ``i`` the config defines::

    pcm.annfileI    { type file slave.pcm "null" file "<dir>/speakerI.wav" format "wav" }
    pcm.annspeakerI { type plug slave { pcm "annfileI" format S16_LE } ... }

``annspeakerI`` is what a ``sounddevice`` speaker opens (by name substring); ``plug``
converts PortAudio's float32 to S16_LE at whatever rate and channel count the stream
was opened with, and the file plugin writes exactly those samples into a WAV file
(rate and channels in its header, rewritten when the stream closes). The ``null``
slave does not run in real time: writes return at once.

Measured on this host: the capture holds exactly the samples written, with no zero
padding before or after (``latency`` low, high or 50 ms; 24, 44.1 and 48 kHz); each
open of the PCM truncates the file, so one capture holds one stream.

PortAudio reads the ALSA configuration when it initialises. ``alsa_devices`` sets
``ALSA_CONFIG_PATH`` and re-initialises PortAudio in this process (``sd._terminate()``
then ``sd._initialize()``, under the sink module's PortAudio lock; measured to work),
and restores both afterwards. ``AlsaDevices.env`` is the environment for subprocesses.

Usage in a test module::

    from alsa import alsa_devices  # noqa: F401  (the fixture)

    def test_x(alsa_devices): ...

Paced devices (``AlsaDevices.add_paced``): something that *plays in real time*
-----------------------------------------------------------------------------
The ``null`` slave takes every write at once, so nothing is ever "still playing" on
the capture devices above. To test what happens while a device plays (an emergency
interrupting, a fade-out), ``add_paced`` defines::

    pcm.annfifoN   { type file slave.pcm "null" file "<dir>/pacedN.fifo" format "raw" }
    pcm.annpacedN  { type plug slave { pcm "annfifoN" format S16_LE rate R channels C } ... }

The file plugin writes every sample PortAudio commits into a FIFO (a named pipe) as it
commits it, and a reader thread in the test empties the pipe at the sample rate: every
10 ms it reads what has fallen due since its last read (what the writer did not
supply in time is lost, as on a device that underruns; the pipe never bursts to catch
up). The pipe is shrunk to one page (4096 bytes: 85 ms at 24 kHz mono S16), so once
it is full, PortAudio's ``Pa_WriteStream`` blocks in the file plugin's ``write()``
until the reader takes the next 10 ms. Measured on this host: 100 ms slices written
from a player return 80-160 ms apart, 2 s of audio take 2.0 s, and every sample
written arrives in order, with nothing added between streams (no priming silence, no
padding at close or abort). The reader holds the FIFO open read-write, so PortAudio's
device probe (which opens every PCM) never blocks and a stream's close is no EOF.

What it does not model: a sound card's ring buffer. On real hardware ``abort`` drops
what is still in that buffer (about the ``latency``); here everything committed has
already left ALSA for the pipe, so the capture holds it. ``PacedDevice.samples()``
returns the capture as float32 (frames, channels).

With ``streams=True`` the file plugin writes ``format "wav"``: a 44-byte WAV header at
each open of the PCM, which marks where each stream (one announcement) begins in the
FIFO. The reader strips the headers and records a ``PacedStream`` per open: when it
began and when its first sound (|sample| > ``SOUND_THRESHOLD``) was played, each consumed
byte being "played" when the reader takes it (``stream_after()``; used by the benchmarks).
Every consumed sample's play time is kept too: ``played_at(frame)`` for a frame of
``samples()``, ``frame_at(t)`` the other way (to find a sound inside a stream that goes on,
e.g. an emergency's chime behind a fade-out).

FIFO speakers that hang on demand (``FifoSpeakers``, for the daemon as a subprocess)
-----------------------------------------------------------------------------------
Each is an ALSA ``file`` PCM on a ``null`` slave writing raw S16_LE mono 16 kHz into a
FIFO (``plug`` converts whatever the stream was opened with). The writer blocks for
real once the pipe (64 KiB, about 2 s of audio; ``pipe_bytes`` makes it smaller) is full, inside PortAudio's write,
exactly like a sound card that stopped taking samples. ``FifoReader`` holds the read
end open (so the writer's open never blocks) and drains it at a chosen pace:
``pace(None)`` as fast as it comes, ``pace(1.0)`` real time (32000 bytes/s), ``pause()``
not at all (the speaker hangs). ``speaker_yaml`` sets a long ``stall_timeout`` (60 s), so a
speaker paused as a blocker stays "playing" and finishes once read again; pass a short one
to see the daemon give up on a hung device.

``unplug(i)`` pulls device ``i`` out like a USB speaker: the FIFO's path leads into a missing
directory (as a device node that went away) and the reader closes, so a write in progress
fails (EPIPE: PortAudio's "Unanticipated host error") and so does the first write of a stream
opened meanwhile (the ``file`` plugin cannot open its file); ``plug(i)`` puts the FIFO back
with a new reader (paused: ``pace`` it).
"""

from __future__ import annotations

import fcntl
import os
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

SYSTEM_ALSA_CONF = "/usr/share/alsa/alsa.conf"
DEVICE_COUNT = 2
FIFO_RATE = 16000
FIFO_BYTES_PER_SECOND = FIFO_RATE * 2  # S16_LE mono


@dataclass
class Capture:
    samples: np.ndarray  # float32, shape (frames, channels)
    rate: int

    @property
    def mono(self) -> np.ndarray:
        return self.samples[:, 0]

    @property
    def channels(self) -> int:
        return int(self.samples.shape[1])


_F_SETPIPE_SZ = 1031  # fcntl.F_SETPIPE_SZ (Linux), named in the fcntl module only from Python 3.10 on some builds
PACED_TICK = 0.01
WAV_HEADER = 44  # what the file plugin writes at every open with format "wav"
SOUND_THRESHOLD = 1e-3  # |sample| above this (-60 dBFS) counts as sound


@dataclass
class PacedStream:
    """One open→close of a paced device (``streams=True``): when it began and when its first sound was played."""

    began: float
    first_sound: float | None = None
    frames: int = 0


class PacedDevice:
    """An ALSA device that consumes samples in real time (see the module docstring)."""

    def __init__(self, directory: Path, index: int, rate: int, channels: int = 1, streams: bool = False) -> None:
        self.index = index
        self.rate = rate
        self.channels = channels
        self.fifo = Path(directory) / f"paced{index}.fifo"
        self.frame_bytes = 2 * channels
        self.marks_streams = streams
        self.streams: list[PacedStream] = []  # with streams=True
        self._data = bytearray()
        # (len(_data) after a read, when its last byte was played): the play time of every sample
        self._marks: list[tuple[int, float]] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._fd: int | None = None
        self._thread: threading.Thread | None = None

    @property
    def name(self) -> str:
        """The ALSA (and PortAudio) name of this device."""
        return f"annpaced{self.index}"

    def pcm_config(self) -> list[str]:
        i = self.index
        fmt = "wav" if self.marks_streams else "raw"
        return [
            f'pcm.annfifo{i} {{ type file slave.pcm "null" file "{self.fifo}" format "{fmt}" }}',
            (
                f'pcm.annpaced{i} {{ type plug slave {{ pcm "annfifo{i}" format S16_LE rate {self.rate} '
                f'channels {self.channels} }} hint {{ show on description "announcer paced speaker {i}" }} }}'
            ),
        ]

    def start(self) -> None:
        """Create the FIFO and start consuming it (before PortAudio probes the device)."""
        self.fifo.unlink(missing_ok=True)
        os.mkfifo(self.fifo)
        self._fd = os.open(self.fifo, os.O_RDWR | os.O_NONBLOCK)  # read-write: never EOF, never blocks an open
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

    def _consume(self) -> None:
        assert self._fd is not None
        last = time.monotonic()
        owed = 0.0  # bytes due but not yet a whole frame
        while not self._stop.is_set():
            time.sleep(PACED_TICK)
            now = time.monotonic()
            owed += (now - last) * self.rate * self.frame_bytes
            last = now
            due = int(owed) // self.frame_bytes * self.frame_bytes
            owed -= due
            try:
                chunk = os.read(self._fd, due) if due else b""
            except BlockingIOError:  # nothing written: the device "plays" silence, unrecorded
                chunk = b""
            if chunk and self.marks_streams:
                self._split_streams(chunk, now)
            elif chunk:
                with self._lock:
                    self._data += chunk
                    self._marks.append((len(self._data), now))

    def _split_streams(self, data: bytes, now: float) -> None:
        """Keep ``data`` (read at ``now``: its last byte played then) without the WAV headers; stamp the streams."""
        bytes_per_second = self.rate * self.frame_bytes
        pos = 0
        end = len(data)
        with self._lock:
            while pos < end:
                h = data.find(b"RIFF", pos)
                stop = end if h < 0 else h
                if stop > pos:
                    self._data += data[pos:stop]
                    self._marks.append((len(self._data), now - (end - stop) / bytes_per_second))
                    audio = np.frombuffer(data[pos : stop - (stop - pos) % 2], "<i2")
                    if self.streams:
                        s = self.streams[-1]
                        if s.first_sound is None:
                            loud = np.flatnonzero(np.abs(audio) > SOUND_THRESHOLD * 32768)
                            if loud.size:
                                s.first_sound = now - (end - pos - 2 * int(loud[0])) / bytes_per_second
                        s.frames += audio.size // self.channels
                if h < 0:
                    break
                self.streams.append(PacedStream(began=now - (end - h) / bytes_per_second))
                pos = h + WAV_HEADER

    def stream_after(self, t: float) -> PacedStream | None:
        """The first stream that began after ``t`` and has played a sound (``streams=True``)."""
        with self._lock:
            for s in self.streams:
                if s.began >= t and s.first_sound is not None:
                    return s
        return None

    def played_at(self, frame: int) -> float | None:
        """When frame ``frame`` of ``samples()`` was played (consumed), or None if it has not been yet."""
        bytes_per_second = self.rate * self.frame_bytes
        offset = frame * self.frame_bytes
        with self._lock:
            lo, hi = 0, len(self._marks)
            while lo < hi:  # the first read that ended beyond ``offset``
                mid = (lo + hi) // 2
                if self._marks[mid][0] <= offset:
                    lo = mid + 1
                else:
                    hi = mid
            if lo == len(self._marks):
                return None
            end, t = self._marks[lo]
        return t - (end - offset - self.frame_bytes) / bytes_per_second

    def frame_at(self, t: float) -> int:
        """The first frame of ``samples()`` played at or after ``t`` (``frames`` if none yet)."""
        bytes_per_second = self.rate * self.frame_bytes
        with self._lock:
            start = 0
            for end, played in self._marks:
                if played >= t:
                    first = max(start, end - int((played - t) * bytes_per_second))
                    return -(-first // self.frame_bytes)
                start = end
            return len(self._data) // self.frame_bytes

    @property
    def frames(self) -> int:
        with self._lock:
            return len(self._data) // self.frame_bytes

    def samples(self) -> np.ndarray:
        """Everything consumed so far, float32 (frames, channels)."""
        with self._lock:
            raw = bytes(self._data[: len(self._data) // self.frame_bytes * self.frame_bytes])
        return (np.frombuffer(raw, "<i2").astype(np.float32) / 32768.0).reshape(-1, self.channels)


class AlsaDevices:
    def __init__(self, directory: Path, count: int = DEVICE_COUNT) -> None:
        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.config_file = self.dir / "asoundrc"
        self.paced: list[PacedDevice] = []
        self.set_count(count)

    def set_count(self, count: int) -> None:
        """(Re)write the config with speakers 1..count (PortAudio sees a change when it re-initialises)."""
        self.count = count
        lines = []
        for i in range(1, count + 1):
            lines.append(f'pcm.annfile{i} {{ type file slave.pcm "null" file "{self.capture_path(i)}" format "wav" }}')
            lines.append(
                f'pcm.annspeaker{i} {{ type plug slave {{ pcm "annfile{i}" format S16_LE }} '
                f'hint {{ show on description "announcer test speaker {i}" }} }}'
            )
        for dev in self.paced:
            lines += dev.pcm_config()
        self.config_file.write_text("\n".join(lines) + "\n", encoding="utf-8")

    def add_paced(
        self, rate: int = 24000, channels: int = 1, streams: bool = False, portaudio: bool = True
    ) -> PacedDevice:
        """A real-time device ``annpacedN`` (its reader running), visible to PortAudio in this process
        (``portaudio=False``: only to subprocesses started afterwards, with ``env``).
        ``streams``: mark and time each stream (see the module doc)."""
        dev = PacedDevice(self.dir, len(self.paced) + 1, rate, channels, streams)
        dev.start()
        self.paced.append(dev)
        self.set_count(self.count)
        if portaudio:
            reinitialise_portaudio()
        return dev

    def close(self) -> None:
        for dev in self.paced:
            dev.close()

    @staticmethod
    def name(i: int) -> str:
        """The ALSA (and PortAudio) name of speaker ``i`` (1-based)."""
        return f"annspeaker{i}"

    def capture_path(self, i: int) -> Path:
        return self.dir / f"speaker{i}.wav"

    @property
    def config_path(self) -> str:
        return f"{SYSTEM_ALSA_CONF}:{self.config_file}"

    @property
    def env(self) -> dict[str, str]:
        """Environment for a subprocess that should see the devices."""
        return {**os.environ, "ALSA_CONFIG_PATH": self.config_path}

    def clear(self, i: int) -> None:
        self.capture_path(i).unlink(missing_ok=True)

    def capture(self, i: int) -> Capture:
        """What speaker ``i`` played last (raises if it never played)."""
        import soundfile as sf

        data, rate = sf.read(str(self.capture_path(i)), dtype="float32", always_2d=True)
        return Capture(data, int(rate))


class FifoReader:
    """Holds a FIFO's read end and drains it at a pace (see the module doc)."""

    def __init__(self, path: Path, pipe_bytes: int | None = None) -> None:
        self.path = path
        self.fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
        if pipe_bytes is not None:  # less than the default 64 KiB (2 s): the writer is held in real time sooner
            fcntl.fcntl(self.fd, _F_SETPIPE_SZ, pipe_bytes)
        self.bytes = 0
        self._speed: float | None = 0.0  # 0: paused; None: as fast as possible; x: x times real time
        self._stop = False
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def pace(self, speed: float | None) -> None:
        self._speed = speed

    def pause(self) -> None:
        self._speed = 0.0

    def _run(self) -> None:
        tick = 0.05
        while not self._stop:
            speed = self._speed
            want = 1 << 20 if speed is None else int(FIFO_BYTES_PER_SECOND * speed * tick) & ~1
            while want > 0:
                try:
                    got = os.read(self.fd, min(want, 65536))
                except BlockingIOError:
                    break
                except OSError:
                    return
                if not got:
                    break
                self.bytes += len(got)
                want -= len(got)
            time.sleep(tick)

    def close(self) -> None:
        if self._stop:
            return
        self._stop = True
        self._thread.join(2)
        os.close(self.fd)


class FifoSpeakers:
    """``count`` FIFO-backed ALSA speakers ``annfifo1`` .. ``annfifoN`` (see the module doc)."""

    def __init__(self, directory: Path, count: int = 1, pipe_bytes: int | None = None) -> None:
        if not Path(SYSTEM_ALSA_CONF).is_file():
            raise AssertionError(f"{SYSTEM_ALSA_CONF} is missing: install ALSA (scripts/install-system-deps.sh)")
        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.config_file = self.dir / "asoundrc"
        lines = []
        self.readers: dict[int, FifoReader] = {}
        for i in range(1, count + 1):
            fifo = self.fifo(i)
            os.mkfifo(fifo)
            lines.append(f'pcm.annfiforaw{i} {{ type file slave.pcm "null" file "{fifo}" format "raw" }}')
            lines.append(
                f'pcm.annfifo{i} {{ type plug slave {{ pcm "annfiforaw{i}" format S16_LE rate {FIFO_RATE} '
                f'channels 1 }} hint {{ show on description "announcer FIFO speaker {i}" }} }}'
            )
            self.readers[i] = FifoReader(fifo, pipe_bytes)
        self.config_file.write_text("\n".join(lines) + "\n", encoding="utf-8")

    @staticmethod
    def device(i: int) -> str:
        return f"annfifo{i}"

    def fifo(self, i: int) -> Path:
        return self.dir / f"speaker{i}.fifo"

    def speaker_yaml(self, i: int, stall_timeout: float = 60.0) -> str:
        return (
            f"{{type: sounddevice, device: {self.device(i)}, latency: low, lead_in_ms: 0, "
            f"stall_timeout: {stall_timeout}}}"
        )

    def unplug(self, i: int) -> None:
        """Device ``i`` goes away (see the module doc)."""
        fifo = self.fifo(i)
        os.rename(fifo, fifo.with_suffix(".unplugged"))
        os.symlink(self.dir / "unplugged" / fifo.name, fifo)
        self.readers[i].close()

    def plug(self, i: int) -> FifoReader:
        """Device ``i`` is back (after ``unplug``); its new reader, paused."""
        fifo = self.fifo(i)
        fifo.unlink()
        os.rename(fifo.with_suffix(".unplugged"), fifo)
        self.readers[i] = FifoReader(fifo)
        return self.readers[i]

    @property
    def env(self) -> dict[str, str]:
        return {"ALSA_CONFIG_PATH": f"{SYSTEM_ALSA_CONF}:{self.config_file}"}

    def close(self) -> None:
        for r in self.readers.values():
            r.pace(None)
        time.sleep(0.2)
        for r in self.readers.values():
            r.close()


def reinitialise_portaudio() -> None:
    import sounddevice as sd

    from announcer.sinks.sounddevice_sink import _PA_LOCK

    with _PA_LOCK:
        sd._terminate()
        sd._initialize()


@pytest.fixture
def alsa_devices(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[AlsaDevices]:
    """Two capture-to-file ALSA speakers, visible to PortAudio in this process and in ``env``."""
    if not Path(SYSTEM_ALSA_CONF).is_file():
        pytest.fail(f"{SYSTEM_ALSA_CONF} is missing: install ALSA (scripts/install-system-deps.sh)", pytrace=False)
    devices = AlsaDevices(tmp_path / "alsa")
    monkeypatch.setenv("ALSA_CONFIG_PATH", devices.config_path)
    reinitialise_portaudio()
    try:
        yield devices
    finally:
        monkeypatch.undo()
        reinitialise_portaudio()
        devices.close()  # after PortAudio let go of the paced devices
