"""The audio chain every speaker shares: chime, lead-in, loudness, volume, limiter, fades.

One ``SpeakerChain`` per speaker. The player asks it for the prelude (lead-in silence
then the chime) and passes each synthesized clause chunk through ``process``:

1. loudness normalisation to ``target_lufs`` (BS.1770-4, ``announcer.audio.loudness``), which
   also removes whatever gain the engine applied;
2. the emotion's level offset ``level_db`` (``emotion_level_db``), so angry stays louder
   and sad softer than neutral after normalisation;
3. the volume (``gain``);
4. a look-ahead peak limiter, so nothing ever clips.

Normalisation is streaming: an announcement arrives a clause at a time and the first
clause must play before the next is synthesized. A ``LoudnessState`` per announcement
keeps a running integrated loudness over every clause so far (the current one
included, since it is already whole when it arrives), and each clause gets the gain
that brings that running loudness to the target. The first clause is normalised on
its own; later clauses move the gain less and less, and the change always falls at a
clause boundary, which is the clause's pause. This beats "the first clause's loudness
for the whole announcement" when the first clause is a short call like "注意，".
A recorded clip (``announcer.audio.clips``) arrives as one chunk whose loudness was measured
when it was loaded: ``process(..., known_lufs=...)`` brings it to the target as a whole, with
no emotion offset, and leaves the speech's running estimate alone.
All functions work on mono float32 at the rate the player asks for. The DSP pieces
(limiter, resampling, loudness meter, chimes) live in ``announcer.audio``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..audio.chimes import ChimeLibrary
from ..audio.dsp import limit
from ..audio.loudness import MAX_BOOST_DB, LoudnessState
from ..audio.samples import db_to_gain

DEFAULT_TARGET_LUFS = -16.0  # speech on small speakers: loud and clear, room for emotion offsets
GLIDE_SECONDS = 0.05  # a gain change is spread over this much audio


def emotion_level_db(emotion: str, intensity: float = 1.0) -> float:
    """The emotion's loudness relative to neutral (dB), from the prosody presets."""
    from ..engines.prosody import prosody_for

    return float(prosody_for(emotion, intensity, 1.0).gain_db)


class SpeakerChain:
    def __init__(
        self, speaker_config: Any, chimes: ChimeLibrary, target_lufs: float | None = DEFAULT_TARGET_LUFS
    ) -> None:
        self.config = speaker_config
        self.chimes = chimes
        self.target_lufs = target_lufs  # None: no loudness normalisation

    def gain(self, volume: float | None, cap: float | None = None) -> float:
        """Announcement volume (or the speaker's), capped by quiet hours."""
        g = self.config.volume if volume is None else volume * self.config.volume
        if cap is not None:
            g = min(g, cap)
        return float(g)

    def prelude(self, chime: bool | str, priority: str, rate: int, gain: float) -> np.ndarray:
        parts: list[np.ndarray] = [np.zeros(int(self.config.lead_in_ms * rate / 1000), np.float32)]
        name = self.chimes.pick(chime, priority)
        if name:
            parts.append(self.chimes.get(name, rate) * gain)
        return np.concatenate(parts).astype(np.float32)

    def postlude(self, chime: bool | str, rate: int, gain: float) -> np.ndarray:
        """The end chime (config ``audio.end_chime``), unless the announcement has no chime at all."""
        if chime is False or not self.chimes.end:
            return np.zeros(0, np.float32)
        pause = np.zeros(int(0.2 * rate), np.float32)
        return np.concatenate([pause, self.chimes.get(self.chimes.end, rate) * gain]).astype(np.float32)

    def process(
        self,
        samples: np.ndarray,
        gain: float,
        *,
        rate: int | None = None,
        level_db: float = 0.0,
        state: LoudnessState | None = None,
        known_lufs: float | None = None,
    ) -> np.ndarray:
        """One clause chunk: normalise, add the emotion's level, apply the volume, limit.

        Without ``rate`` (or with ``target_lufs=None``) the chunk is not normalised and
        ``level_db`` is ignored, since the engine's own gain is then still in the audio.
        Pass one ``LoudnessState`` for all chunks of an announcement (repeats included);
        without one each chunk is normalised on its own.
        """
        x = np.asarray(samples, np.float32)
        if rate is None or self.target_lufs is None:
            return limit(x * np.float32(gain), rate=rate)
        if known_lufs is not None:  # a recorded clip, measured whole when it was loaded
            boost = min(self.target_lufs - known_lufs, MAX_BOOST_DB)
            return limit(x * np.float32(gain * db_to_gain(boost)), rate=rate)
        state = state if state is not None else LoudnessState()
        before = state.gain_db
        after = state.update(x, rate, self.target_lufs)
        if before is None or abs(after - before) < 0.01 or len(x) < 2:
            return limit(x * np.float32(gain * db_to_gain(after + level_db)), rate=rate)
        # glide from the previous gain to the new one over the first GLIDE_SECONDS: no step, no lag
        n = min(len(x), max(2, int(GLIDE_SECONDS * rate)))
        ramp_db = np.full(len(x), after, np.float32)
        ramp_db[:n] = np.linspace(before, after, n, dtype=np.float32)
        ramp_db += np.float32(level_db)
        return limit(x * (np.float32(gain) * np.power(np.float32(10.0), ramp_db / np.float32(20.0))), rate=rate)
