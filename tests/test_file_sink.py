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


def test_the_wav_is_written_as_it_plays_and_an_abort_leaves_nothing(tmp_path: Path) -> None:
    """Issue 15: the stream kept every part in memory until ``close`` (2.97 GB for an hour of
    audio). Now each write goes to a temp file in the directory, renamed at ``close``."""
    import os
    import time

    cfg = parse_config(f"speakers: {{a: {{type: file, directory: {tmp_path}}}}}")
    sink = create_sink("a", cfg.speakers["a"])
    stream = sink.open("long", 24000)
    sizes = []
    for _ in range(5):
        stream.write(np.full(24000 * 10, 0.1, np.float32))  # 10 s a write
        (tmp,) = tmp_path.glob(".*.wav.tmp")
        sizes.append(tmp.stat().st_size)
    assert sizes == sorted(sizes) and sizes[-1] >= 5 * 24000 * 10 * 2  # on disk as it goes
    assert not (tmp_path / "long.wav").exists()  # readers never see half a file
    stream.close()
    assert sf.info(str(tmp_path / "long.wav")).duration == pytest.approx(50.0)
    assert not list(tmp_path.glob(".*.wav.tmp"))

    aborted = sink.open("aborted", 24000)
    aborted.write(np.zeros(2400, np.float32))
    aborted.abort()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["long.wav"]

    stale = tmp_path / ".crashed.wav.tmp"  # left by a daemon killed while writing
    stale.write_bytes(b"RIFF")
    os.utime(stale, (time.time() - 7200, time.time() - 7200))
    sink.open("next", 24000).close()
    assert not stale.exists() and (tmp_path / "next.wav").exists()
