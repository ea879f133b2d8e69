"""Text front end: Chinese normalisation (numbers, times, units, letters), clause and sentence
splitting, tone sandhi and Baker phonemes.

Owns: what a text becomes before an engine speaks it. ``frontend(text)`` runs the whole
chain (``announcer normalize``); engines call the pieces they need.
May import: ``core``.
"""

from __future__ import annotations

import importlib
from typing import Any

# the pieces load on first use: the pinyin dictionaries take a third of a second, and
# importing ``announcer.text.clauses`` (as the config does) must not pay for them
_LAZY = {"split_clauses": "clauses", "load_mapper": "g2p", "to_phonemes": "g2p", "normalize": "normalize"}

__all__ = ["frontend", "load_mapper", "normalize", "split_clauses", "to_phonemes"]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


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
