"""``announcer say``: synthesize on this machine, no broker.

With ``--out`` the announcement is rendered exactly as a ``file`` speaker would write it
(chime unless ``--no-chime``, speech, repeats) into one PCM-16 WAV at the engine's rate.
Without ``--out`` it plays on the targets through the same scheduler the daemon uses,
with a throw-away in-memory spool.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np

from .announcement import Announcement, build
from .audio import Audio, write_wav_atomic
from .cache import ClauseCache
from .chain import ChimeLibrary, LoudnessState, SpeakerChain, emotion_level_db
from .config import Config
from .engines.base import Style, create_engine
from .sinks.base import SpeakerBase
from .synth import Synthesizer, SynthStats


def make_synthesizer(cfg: Config, only: str | None = None) -> Synthesizer:
    engines = {name: create_engine(name, ecfg, cfg.cache.directory)
               for name, ecfg in cfg.engines.items() if only is None or name == only}
    return Synthesizer(engines, ClauseCache.from_config(cfg.cache))


def render_announcement(cfg: Config, synth: Synthesizer, ann: Announcement, chimes: ChimeLibrary | None = None,
                        stats: SynthStats | None = None) -> Audio:
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
    chunks = list(synth.render(ann.text, ann.engine, style, ann.voice, stats))
    parts = [chain.prelude(ann.chime, ann.priority, rate, gain)]
    for i in range(ann.repeat):
        if i:
            parts.append(np.zeros(round(ann.repeat_gap * rate), np.float32))
        parts.extend(chain.process(c.samples, gain, rate=rate, level_db=level_db, state=loudness) for c in chunks)
    parts.append(chain.postlude(ann.chime, rate, gain))
    return Audio(np.concatenate(parts), rate)


def render_to_file(cfg: Config, raw: dict[str, Any], out: Path) -> Path:
    """Exactly what a ``file`` speaker (lead-in 0) would write for this announcement."""
    ann = build(raw, cfg, source="cli", ignore_unknown=True)
    synth = make_synthesizer(cfg, only=ann.engine)
    audio = render_announcement(cfg, synth, ann)
    for w in ann.warnings:
        print(f"warning: {w}", file=sys.stderr)
    return write_wav_atomic(out, audio)


def say(cfg: Config, raw: dict[str, Any], out: Path | None) -> int:
    if out is not None:
        path = render_to_file(cfg, raw, out)
        print(path)
        return 0
    from .playback import play_now

    return play_now(cfg, raw)
