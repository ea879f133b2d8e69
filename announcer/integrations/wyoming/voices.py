"""The Wyoming voices announcer offers: every engine voice, plus one per emotion (``baker-happy``).

``voice_table`` lists them for ``describe``; ``resolve`` turns a request's voice (a name,
a language, a speaker field carrying an emotion) and context (``announcer_style``:
intensity and speed, clamped to the announcement schema's bounds) into an engine, an
engine voice and a style.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from wyoming.info import Attribution, Info, TtsProgram, TtsVoice
from wyoming.tts import SynthesizeVoice

from ... import __version__
from ...core.emotions import EMOTIONS, resolve_emotion
from ...core.errors import InputError
from ...core.schema import clamp
from ...engines.base import Style
from ...engines.wyoming_protocol import ANNOUNCER_PROGRAM, STYLE_CONTEXT_KEY
from ...playback.synthesizer import Synthesizer

ATTRIBUTION = Attribution(name="announcer", url="")  # no public home page yet


@dataclass(frozen=True)
class VoiceEntry:
    """One Wyoming voice: which engine voice and emotion it stands for."""

    name: str
    engine: str
    voice: str
    emotion: str
    languages: tuple[str, ...]


def voice_table(synth: Synthesizer) -> dict[str, VoiceEntry]:
    """Wyoming voice name → engine/voice/emotion, neutral voices first within each engine voice."""
    table: dict[str, VoiceEntry] = {}
    for engine_name, eng in synth.engines.items():
        languages = tuple(eng.languages)
        emotions = ["neutral"] + [e for e in EMOTIONS if e != "neutral" and e in eng.emotions]
        for voice in eng.voices:
            # a voice that is itself a language code (espeak) speaks that language
            langs = (voice,) if voice in languages and len(languages) > 1 else languages
            base = voice if voice not in table else f"{engine_name}:{voice}"
            for emotion in emotions:
                name = base if emotion == "neutral" else f"{base}-{emotion}"
                if name not in table:
                    table[name] = VoiceEntry(name, engine_name, voice, emotion, langs)
    return table


def build_info(table: dict[str, VoiceEntry]) -> Info:
    voices = [
        TtsVoice(
            name=v.name,
            description=f"{v.voice} ({v.engine}, {v.emotion})",
            attribution=ATTRIBUTION,
            installed=True,
            version=None,
            languages=list(v.languages),
            speakers=None,
        )
        for v in table.values()
    ]
    program = TtsProgram(
        name=ANNOUNCER_PROGRAM,
        description="announcer: local voice announcements with emotions",
        attribution=ATTRIBUTION,
        installed=True,
        version=__version__,
        voices=voices,
        supports_synthesize_streaming=True,
    )
    return Info(tts=[program])


def _same_language(a: str, b: str) -> bool:
    a, b = a.lower().replace("_", "-"), b.lower().replace("_", "-")
    return a == b or a.split("-")[0] == b.split("-")[0]


@dataclass(frozen=True)
class Request:
    """A resolved request: engine, engine voice and style, and the synthesizer that speaks it."""

    engine: str
    voice: str
    style: Style
    synth: Synthesizer


def resolve(
    synth: Synthesizer,
    default_engine: str,
    table: dict[str, VoiceEntry],
    voice: SynthesizeVoice | None,
    context: dict[str, Any] | None = None,
) -> Request:
    """Engine, voice and style for a request; InputError for an unknown voice name."""
    entry: VoiceEntry | None = None
    if voice is not None and voice.name:
        entry = table.get(voice.name)
        if entry is None:  # baker-开心: an emotion alias after the last dash
            base, _, suffix = voice.name.rpartition("-")
            emotion, warning = resolve_emotion(suffix)
            if base in table and warning is None:
                entry = VoiceEntry(voice.name, table[base].engine, table[base].voice, emotion, ())
        if entry is None:
            raise InputError("voice", f"unknown voice {voice.name!r} (have: {', '.join(table)})")
    elif voice is not None and voice.language:
        entry = next(
            (
                v
                for v in table.values()
                if v.emotion == "neutral" and any(_same_language(voice.language, lang) for lang in v.languages)
            ),
            None,
        )
    if entry is None:
        eng = synth.engine(default_engine)
        entry = VoiceEntry("", default_engine, eng.default_voice, "neutral", ())
    emotion = entry.emotion
    if voice is not None and voice.speaker:
        spoken, warning = resolve_emotion(voice.speaker)
        if warning is None:
            emotion = spoken
    intensity, speed = 1.0, 1.0
    style = (context or {}).get(STYLE_CONTEXT_KEY)
    if isinstance(style, dict):  # within the announcement schema's bounds, like any announcement
        intensity = clamp("intensity", style.get("intensity", 1.0), 1.0)
        speed = clamp("speed", style.get("speed", 1.0), 1.0)
    return Request(entry.engine, entry.voice, Style(emotion, intensity, speed), synth)
