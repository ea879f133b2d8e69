"""Emotion names, their aliases, and resolution of what a user typed."""

from __future__ import annotations

EMOTIONS: tuple[str, ...] = ("neutral", "happy", "sad", "angry", "fearful", "surprised")

ALIASES: dict[str, str] = {
    "fear": "fearful",
    "surprise": "surprised",
    "calm": "neutral",
    "中性": "neutral",
    "平静": "neutral",
    "开心": "happy",
    "高兴": "happy",
    "悲伤": "sad",
    "难过": "sad",
    "生气": "angry",
    "愤怒": "angry",
    "害怕": "fearful",
    "恐惧": "fearful",
    "惊讶": "surprised",
}


def resolve_emotion(name: str | None, default: str = "neutral") -> tuple[str, str | None]:
    """Return ``(emotion, warning)``.

    An unknown emotion is not an error: per the contract it plays as neutral and the
    caller reports ``warning`` (in the ``queued`` event, or on stderr for the CLI).
    """
    if name is None or name == "":
        return default, None
    key = name.strip()
    low = key.lower()
    if low in EMOTIONS:
        return low, None
    if low in ALIASES:
        return ALIASES[low], None
    if key in ALIASES:
        return ALIASES[key], None
    allowed = ", ".join(EMOTIONS)
    return "neutral", f"emotion: unknown emotion {name!r} played as neutral (allowed: {allowed})"
