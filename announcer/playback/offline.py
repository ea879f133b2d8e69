"""One announcement rendered whole, without speakers: what a ``file`` speaker (lead-in 0) would write.

Shared by ``announcer say --out`` and the HTTP ``/tts`` endpoint.
"""

from __future__ import annotations

import numpy as np

from ..audio.chimes import ChimeLibrary
from ..audio.loudness import LoudnessState
from ..audio.samples import Audio
from ..config import Config
from ..core.announcement import Announcement
from ..engines.base import Style
from ..sinks.base import SpeakerBase
from .speaker_chain import SpeakerChain, emotion_level_db
from .synthesizer import Synthesizer, SynthStats


def render_announcement(
    cfg: Config,
    synth: Synthesizer,
    ann: Announcement,
    chimes: ChimeLibrary | None = None,
    stats: SynthStats | None = None,
) -> Audio:
    """The audio a ``file`` speaker (lead-in 0) would write for ``ann``: chime, speech, repeats, end chime.

    Shared by ``say --out`` and the HTTP ``/tts`` endpoint. Blocking (synthesis): call it
    from a worker thread, never from an event loop.
    """
    rate = synth.engine(ann.engine).sample_rate
    style = Style(ann.emotion, ann.intensity, ann.speed)
    chain = SpeakerChain(SpeakerBase(lead_in_ms=0), chimes or ChimeLibrary.from_config(cfg), cfg.audio.target_lufs)
    gain = chain.gain(ann.volume)
    level_db = emotion_level_db(ann.emotion, ann.intensity)
    loudness = LoudnessState.starting_at(synth.reference_lufs(ann.engine), level_db)
    chunks = list(synth.render_parts(ann.parts(), style, stats))  # the text, then each translation
    parts = [chain.prelude(ann.chime, ann.priority, rate, gain)]
    for i in range(ann.repeat):
        if i:
            parts.append(np.zeros(round(ann.repeat_gap * rate), np.float32))
        parts.extend(chain.process(c.samples, gain, rate=rate, level_db=level_db, state=loudness) for c in chunks)
    parts.append(chain.postlude(ann.chime, rate, gain))
    return Audio(np.concatenate(parts), rate)
