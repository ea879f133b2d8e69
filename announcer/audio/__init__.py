"""Audio: the sample type, WAV files, resampling, loudness, the limiter and chimes.

Owns the signal processing every engine, sink and speaker chain shares.
May import: ``core`` only.
"""

from .samples import Audio, db_to_gain, to_pcm16
from .wav import read_wav, wav_bytes, write_wav_atomic

__all__ = ["Audio", "db_to_gain", "read_wav", "to_pcm16", "wav_bytes", "write_wav_atomic"]
