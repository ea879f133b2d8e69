"""Audio: the sample type, WAV files, resampling, fades, the peak limiter, loudness and chimes.

Owns: the signal processing that engines, sinks and the speaker chain share (``samples``,
``wav``: whole WAVs and ``WavWriter``, which writes one as it is rendered, ``dsp``,
``loudness``: the BS.1770 meter and the streaming normaliser's state,
``chimes``: built-in and configured chimes per priority).
May import: ``core``.
"""

from .samples import Audio, db_to_gain, to_pcm16
from .wav import WavTooLarge, WavWriter, read_wav, wav_bytes, write_wav_atomic

__all__ = [
    "Audio",
    "WavTooLarge",
    "WavWriter",
    "db_to_gain",
    "read_wav",
    "to_pcm16",
    "wav_bytes",
    "write_wav_atomic",
]
