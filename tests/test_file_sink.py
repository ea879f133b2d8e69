"""The ``file`` speaker's stream: the WAV it writes, and what it keeps afterwards."""

from __future__ import annotations

import gc
import weakref
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from announcer.config import parse_config
from announcer.sinks.base import create_sink

pytestmark = pytest.mark.unit  # the fast lane (make check)


def test_closed_stream_writes_the_wav_and_lets_go_of_the_audio(tmp_path: Path) -> None:
    """The speaker's sink thread keeps its last call (the stream's close) until the next
    announcement: a stream that kept its parts held the last announcement's audio while idle."""
    cfg = parse_config(f"speakers: {{a: {{type: file, directory: {tmp_path}}}}}")
    sink = create_sink("a", cfg.speakers["a"])
    stream = sink.open("ann-1", 24000)
    part = np.full(24000, 0.25, np.float32)
    ref = weakref.ref(part)
    stream.write(part)
    stream.write(np.zeros(12000, np.float32))
    del part
    details = stream.close()
    gc.collect()
    assert ref() is None, "the closed stream still holds its audio"
    data, rate = sf.read(details["path"], dtype="float32")
    assert rate == 24000 and len(data) == 36000 and abs(float(data[0]) - 0.25) < 1e-3
    assert Path(details["path"]) == tmp_path / "ann-1.wav"
