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
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np
import pytest

SYSTEM_ALSA_CONF = "/usr/share/alsa/alsa.conf"
DEVICE_COUNT = 2


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


class AlsaDevices:
    def __init__(self, directory: Path, count: int = DEVICE_COUNT) -> None:
        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.config_file = self.dir / "asoundrc"
        self.set_count(count)

    def set_count(self, count: int) -> None:
        """(Re)write the config with speakers 1..count (PortAudio sees a change when it re-initialises)."""
        self.count = count
        lines = []
        for i in range(1, count + 1):
            lines.append(f'pcm.annfile{i} {{ type file slave.pcm "null" file "{self.capture_path(i)}" '
                         f'format "wav" }}')
            lines.append(f'pcm.annspeaker{i} {{ type plug slave {{ pcm "annfile{i}" format S16_LE }} '
                         f'hint {{ show on description "announcer test speaker {i}" }} }}')
        self.config_file.write_text("\n".join(lines) + "\n", encoding="utf-8")

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


def reinitialise_portaudio() -> None:
    from announcer.sinks.sounddevice_sink import _PA_LOCK

    import sounddevice as sd

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
