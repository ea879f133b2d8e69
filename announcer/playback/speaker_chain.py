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
keeps a running integrated loudness over everything so far, and the gain brings that
running loudness to the target. This beats "the first clause's loudness for the whole
announcement" when the first clause is a short call like "注意，".

The same input gives the same samples however it arrives: one chunk per whole clause
(from the clause cache) or many small ones (an engine streaming within a clause). So the
chain works in fixed blocks of ``BLOCK_SECONDS`` counted from the start of the speech,
never at chunk boundaries: ``process`` keeps what does not fill a block for the next call
(in the ``LoudnessState``), each whole block is measured, gets its gain (gliding from the
previous block's over ``GLIDE_SECONDS``) and is limited, and ``flush`` gives the last,
partial block at the end of the speech (each repeat). The player and ``say --out``/``/tts``
both go through ``speech``, so a warm cache and a cold one render sample-identical audio.
A recorded clip (``announcer.audio.clips``) arrives as one ``Audio`` whose loudness was
measured when it was loaded: ``process(..., known_lufs=...)`` first flushes the speech's partial
block, then brings the clip to the target as a whole, with no emotion offset, and leaves the
speech's running estimate alone.
All functions work on mono float32 at the rate the player asks for. The DSP pieces
(limiter, resampling, loudness meter, chimes) live in ``announcer.audio``.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

import numpy as np

from ..audio.chimes import ChimeLibrary
from ..audio.dsp import limit
from ..audio.loudness import MAX_BOOST_DB, LoudnessState
from ..audio.samples import Audio, db_to_gain

DEFAULT_TARGET_LUFS = -16.0  # speech on small speakers: loud and clear, room for emotion offsets
GLIDE_SECONDS = 0.05  # a gain change is spread over this much audio
BLOCK_SECONDS = 0.1  # the gain changes only at block boundaries, counted from the start of the speech


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

    def gain(
        self, volume: float | None, cap: float | None = None, master: float = 1.0, priority: str | None = None
    ) -> float:
        """Announcement volume (or the speaker's), capped by quiet hours, times the master volume.

        An emergency never goes below the speaker's floor, ``volume * emergency_volume``: a master
        volume of 0 (a retained command, a slip in Home Assistant), a quiet-hours cap or an
        announcement's ``volume: 0`` must not silence it.
        """
        g = self.config.volume if volume is None else volume * self.config.volume
        if cap is not None:
            g = min(g, cap)
        g *= master
        if priority == "emergency":
            g = max(g, self.config.volume * self.config.emergency_volume)
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
        """A chunk of speech: normalise, add the emotion's level, apply the volume, limit.

        Without ``rate`` (or with ``target_lufs=None``) the chunk is not normalised and
        ``level_db`` is ignored, since the engine's own gain is then still in the audio.
        Normalised, the whole ``BLOCK_SECONDS`` blocks are returned and the rest waits in
        ``state`` for the next call or ``flush`` (see the module doc). Pass one
        ``LoudnessState`` for all chunks of an announcement (repeats included).
        """
        x = np.asarray(samples, np.float32)
        if rate is None or self.target_lufs is None:
            return limit(x * np.float32(gain), rate=rate)
        if known_lufs is not None:  # a recorded clip, measured whole when it was loaded
            boost = min(self.target_lufs - known_lufs, MAX_BOOST_DB)
            clip = limit(x * np.float32(gain * db_to_gain(boost)), rate=rate)
            if state is None:
                return clip
            return np.concatenate([self.flush(gain, rate=rate, level_db=level_db, state=state), clip])
        state = state if state is not None else LoudnessState()
        block = max(1, int(BLOCK_SECONDS * rate))
        pending = np.concatenate([state.pending, x]) if len(state.pending) else x
        whole = len(pending) // block * block
        state.pending = pending[whole:].copy()
        out = [self._block(pending[i : i + block], gain, rate, level_db, state) for i in range(0, whole, block)]
        return np.concatenate(out) if out else np.zeros(0, np.float32)

    def flush(self, gain: float, *, rate: int, level_db: float = 0.0, state: LoudnessState) -> np.ndarray:
        """The partial block ``process`` kept: call at the end of the speech (of each repeat)."""
        rest, state.pending = state.pending, np.zeros(0, np.float32)
        if not len(rest) or self.target_lufs is None:
            return np.zeros(0, np.float32)
        return self._block(rest, gain, rate, level_db, state)

    def speech(
        self, chunks: Iterable[np.ndarray | Audio], gain: float, *, rate: int, level_db: float, state: LoudnessState
    ) -> Iterator[np.ndarray]:
        """``chunks`` (one repeat: speech as arrays or ``Audio``, clips as ``Audio`` with their
        ``loudness``) through ``process``, then ``flush``."""
        for chunk in chunks:
            known = chunk.loudness if isinstance(chunk, Audio) else None
            samples = chunk.samples if isinstance(chunk, Audio) else chunk
            out = self.process(samples, gain, rate=rate, level_db=level_db, state=state, known_lufs=known)
            if len(out):
                yield out
        yield self.flush(gain, rate=rate, level_db=level_db, state=state)

    def _block(self, x: np.ndarray, gain: float, rate: int, level_db: float, state: LoudnessState) -> np.ndarray:
        """One block: its gain from everything measured so far (itself included), gliding from the last."""
        assert self.target_lufs is not None
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
