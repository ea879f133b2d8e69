"""Emotion presets as prosody controls for the embedded FastSpeech2 voice.

An emotion is rendered by moving a few measurable dials rather than by a separate
voice: duration (tempo), pitch level and range, vocal effort (energy), loudness and
pauses. ``prosody_for`` interpolates linearly from neutral (intensity 0) to the preset
(intensity 1) and extrapolates up to intensity 2, clamped to values the model still
renders cleanly (no dropped syllables, no pitch-tracker collapse, no clipping).

Units:

* ``duration``: multiplier on phoneme durations (1.2 = 20 % longer), already divided
  by the requested speed (speed 2.0 = twice as fast).
* ``f0_offset``: added to the model's normalised F0. Measured around 256 Hz: +1 moves
  the mean F0 about +11.3 %, -1 about -12.5 %; beyond +-1.5 the effect saturates.
* ``f0_range``: multiplier on the normalised F0 contour (pitch range, not level).
* ``energy_offset``: added to the model's normalised energy (vocal effort; +0.5 is
  about +2 dB and brighter). Below -0.5 syllables start to drop out.
* ``gain_db``: applied to the output samples by the engine; the speaker audio chain
  normalises loudness and re-applies this offset, so it is the emotion's loudness.
* ``pause``: multiplier on the silence after each clause.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..core.emotions import EMOTIONS
from ..core.schema import bounds

# measured slope of mean F0 per unit of normalised F0 offset (fraction of F0)
F0_UP_PER_UNIT = 0.113
F0_DOWN_PER_UNIT = 0.125


def _limits(field: str) -> tuple[float, float]:
    lo, hi = bounds(field)
    assert lo is not None and hi is not None
    return float(lo), float(hi)


F0_OFFSET_LIMITS = (-1.5, 1.5)
F0_RANGE_LIMITS = (0.5, 1.6)
ENERGY_OFFSET_LIMITS = (-0.4, 1.0)
GAIN_DB_LIMITS = (-12.0, 9.0)
DURATION_LIMITS = (0.6, 1.6)  # the emotion's own tempo change, before speed
SPEED_LIMITS = _limits("speed")  # the announcement schema's bounds
PAUSE_LIMITS = (0.5, 2.0)
INTENSITY_LIMITS = _limits("intensity")


def f0_offset_for(percent: float) -> float:
    """Normalised F0 offset that moves the mean pitch by ``percent`` (e.g. +7 -> +7 %)."""
    frac = percent / 100.0
    return frac / F0_UP_PER_UNIT if frac >= 0 else frac / F0_DOWN_PER_UNIT


@dataclass(frozen=True)
class Prosody:
    duration: float = 1.0
    f0_offset: float = 0.0
    f0_range: float = 1.0
    energy_offset: float = 0.0
    gain_db: float = 0.0
    pause: float = 1.0


NEUTRAL = Prosody()

# Starting points measured to separate well on the Baker voice (intensity 1).
PRESETS: dict[str, Prosody] = {
    "neutral": NEUTRAL,
    "happy": Prosody(
        duration=0.92, f0_offset=f0_offset_for(+7), f0_range=1.13, energy_offset=0.1, gain_db=2.0, pause=0.9
    ),
    "sad": Prosody(
        duration=1.25, f0_offset=f0_offset_for(-9), f0_range=0.88, energy_offset=-0.2, gain_db=-4.0, pause=1.4
    ),
    "angry": Prosody(
        duration=0.86, f0_offset=f0_offset_for(+3), f0_range=1.14, energy_offset=0.3, gain_db=4.0, pause=0.8
    ),
    "fearful": Prosody(
        duration=0.90, f0_offset=f0_offset_for(+10), f0_range=0.86, energy_offset=-0.1, gain_db=-2.0, pause=0.9
    ),
    "surprised": Prosody(
        duration=0.95, f0_offset=f0_offset_for(+11), f0_range=1.23, energy_offset=0.1, gain_db=2.0, pause=1.1
    ),
}
assert set(PRESETS) == set(EMOTIONS)


def _clamp(value: float, limits: tuple[float, float]) -> float:
    return min(max(value, limits[0]), limits[1])


def _lerp(neutral: float, preset: float, t: float) -> float:
    return neutral + (preset - neutral) * t


def prosody_for(emotion: str, intensity: float = 1.0, speed: float = 1.0) -> Prosody:
    """Controls for ``emotion`` at ``intensity`` (0 neutral, 1 preset, up to 2) and ``speed``.

    An emotion without a preset plays as neutral (the caller has already warned).
    """
    preset = PRESETS.get(emotion, NEUTRAL)
    t = _clamp(float(intensity), INTENSITY_LIMITS)
    speed = _clamp(float(speed), SPEED_LIMITS)
    duration = _clamp(_lerp(1.0, preset.duration, t), DURATION_LIMITS)
    return Prosody(
        duration=duration / speed,
        f0_offset=_clamp(_lerp(0.0, preset.f0_offset, t), F0_OFFSET_LIMITS),
        f0_range=_clamp(_lerp(1.0, preset.f0_range, t), F0_RANGE_LIMITS),
        energy_offset=_clamp(_lerp(0.0, preset.energy_offset, t), ENERGY_OFFSET_LIMITS),
        gain_db=_clamp(_lerp(0.0, preset.gain_db, t), GAIN_DB_LIMITS),
        pause=_clamp(_lerp(1.0, preset.pause, t), PAUSE_LIMITS),
    )
