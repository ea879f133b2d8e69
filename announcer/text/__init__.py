"""Text front end: Chinese normalisation (numbers, times, units, codes, letters), clause and sentence
splitting, tone sandhi, Baker phonemes (``g2p``), Kokoro's Mandarin phonemes (``kokoro_zh``) and
English for Kokoro (``english``, on misaki's Apache-2.0 lexicons).

Owns: what a text becomes before an engine speaks it. ``frontend(text)`` runs the whole
chain (``announcer normalize``); engines call the pieces they need.
May import: ``core``.
"""

from __future__ import annotations

from typing import Any

# Import the pieces from their modules (``announcer.text.normalize`` ...): the package itself
# loads nothing, so that importing ``announcer.text.clauses`` (as the config does) does not
# load the pinyin dictionaries (a third of a second).
__all__ = ["frontend"]


def frontend(text: str, max_chars: int = 40) -> dict[str, Any]:
    """Everything the front end does to ``text``, for ``announcer normalize --json``."""
    from .clauses import split_clauses
    from .g2p import to_phonemes
    from .normalize import normalize

    normalized = normalize(text)
    clauses = split_clauses(normalized, max_chars=max_chars)
    return {
        "input": text,
        "normalized": normalized,
        "clauses": clauses,
        "phonemes": [to_phonemes(clause) for clause in clauses],
    }
