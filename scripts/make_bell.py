"""Make ``config/clips/bell.flac``: a synthesised shift bell (CC0, made here; no recording was used).

A struck bell is a handful of inharmonic partials, each decaying at its own rate; two strikes a
little apart sound like a factory bell. Run ``python scripts/make_bell.py`` to write it again
(the result is deterministic); the file is small on purpose (16 kHz, about two seconds, FLAC).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import soundfile as sf

RATE = 16000
SECONDS = 2.2
FUNDAMENTAL = 523.25  # C5
# (frequency ratio, relative level, decay per second): the usual "minor third" bell spectrum
PARTIALS = (
    (0.5, 0.35, 1.2),
    (1.0, 1.0, 2.0),
    (1.183, 0.45, 2.6),
    (1.506, 0.35, 3.2),
    (2.0, 0.3, 4.0),
    (2.66, 0.2, 5.5),
)
STRIKES = (0.0, 0.55)  # seconds


def bell() -> np.ndarray:
    t = np.arange(int(SECONDS * RATE)) / RATE
    out = np.zeros_like(t)
    for at in STRIKES:
        s = np.clip(t - at, 0.0, None)
        on = t >= at
        attack = np.minimum(1.0, s / 0.003)
        for ratio, level, decay in PARTIALS:
            out += on * attack * level * np.exp(-decay * s) * np.sin(2 * np.pi * FUNDAMENTAL * ratio * s)
    out *= np.minimum(1.0, (SECONDS - t) / 0.2)  # fade the tail out
    return (out / np.max(np.abs(out)) * 0.8).astype(np.float32)


def main() -> int:
    path = Path(__file__).resolve().parent.parent / "config" / "clips" / "bell.flac"
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), bell(), RATE, subtype="PCM_16", format="FLAC")
    print(f"{path}: {path.stat().st_size} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
