"""One announcement rendered without speakers: what a ``file`` speaker (lead-in 0) would write.

Shared by ``announcer say --out`` and the HTTP ``/tts`` endpoint. ``render_chunks`` yields the
audio as it is synthesized and ``render_to_wav`` writes it to disk as it comes (a ``WavWriter``),
so memory does not grow with the announcement's length: each repeat renders the text again
(from the clause cache, normally) instead of keeping the first one's audio.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np

from ..audio.chimes import ChimeLibrary
from ..audio.loudness import LoudnessState
from ..audio.samples import Audio
from ..audio.wav import WavWriter
from ..config import Config
from ..core.announcement import Announcement
from ..engines.base import Style
from ..sinks.base import SpeakerBase
from .speaker_chain import SpeakerChain, emotion_level_db
from .synthesizer import Synthesizer, SynthStats


def render_chunks(
    cfg: Config,
    synth: Synthesizer,
    ann: Announcement,
    chimes: ChimeLibrary | None = None,
    stats: SynthStats | None = None,
) -> Iterator[np.ndarray]:
    """The audio a ``file`` speaker (lead-in 0) would write for ``ann``, piece by piece at the
    announcement's rate: chime, speech and clips, repeats, end chime. Blocking (synthesis): run
    it in a worker thread, never on an event loop."""
    pieces = ann.pieces()
    rate = synth.pieces_rate(pieces, ann.engine)
    style = Style(ann.emotion, ann.intensity, ann.speed)
    chain = SpeakerChain(SpeakerBase(lead_in_ms=0), chimes or ChimeLibrary.from_config(cfg), cfg.audio.target_lufs)
    gain = chain.gain(ann.volume, priority=ann.priority)
    level_db = emotion_level_db(ann.emotion, ann.intensity)
    loudness = LoudnessState.starting_at(synth.reference_lufs(ann.engine) if ann.speaks else None, level_db)
    yield chain.prelude(ann.chime, ann.priority, rate, gain)
    for i in range(ann.repeat):
        if i:
            yield np.zeros(round(ann.repeat_gap * rate), np.float32)
        chunks = synth.render_pieces(
            pieces, ann.engine, rate, style, ann.voice, stats if i == 0 else None, translations=ann.translations
        )
        yield from chain.speech(chunks, gain, rate=rate, level_db=level_db, state=loudness)
    yield chain.postlude(ann.chime, rate, gain)


def render_announcement(
    cfg: Config,
    synth: Synthesizer,
    ann: Announcement,
    chimes: ChimeLibrary | None = None,
    stats: SynthStats | None = None,
) -> Audio:
    """``render_chunks`` as one ``Audio`` (for short announcements and tests)."""
    rate = synth.pieces_rate(ann.pieces(), ann.engine)
    return Audio(np.concatenate(list(render_chunks(cfg, synth, ann, chimes, stats))), rate)


def render_to_wav(
    cfg: Config,
    synth: Synthesizer,
    ann: Announcement,
    path: str | Path,
    chimes: ChimeLibrary | None = None,
    stats: SynthStats | None = None,
    max_bytes: int | None = None,
) -> WavWriter:
    """``ann`` rendered into a PCM-16 WAV at ``path`` as it is synthesized (atomically: a temp
    file renamed at the end); ``WavTooLarge`` past ``max_bytes`` (nothing is left behind).
    Returns the committed writer (``seconds``, ``size``, ``rate``)."""
    writer = WavWriter(path, synth.pieces_rate(ann.pieces(), ann.engine), max_bytes=max_bytes)
    try:
        for piece in render_chunks(cfg, synth, ann, chimes, stats):
            writer.write(piece)
    except BaseException:
        writer.discard()
        raise
    writer.commit()
    return writer
