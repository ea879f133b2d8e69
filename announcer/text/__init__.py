"""Text front end: Chinese normalisation (numbers, times, units, letters), clause and sentence
splitting, tone sandhi and Baker phonemes.

Owns: what a text becomes before an engine speaks it. ``frontend(text)`` runs the whole
chain (``announcer normalize``); engines call the pieces they need.
May import: ``core``.
"""

from __future__ import annotations

import logging
from typing import Any

from .clauses import split_clauses
from .g2p import load_mapper, to_phonemes
from .normalize import normalize

_LOGGER = logging.getLogger(__name__)

__all__ = ["frontend", "load_mapper", "normalize", "split_clauses", "to_phonemes"]


def frontend(text: str, max_chars: int = 40) -> dict[str, Any]:
    """Everything the front end does to ``text``, for ``announcer normalize --json``."""
    normalized = normalize(text)
    clauses = split_clauses(normalized, max_chars=max_chars)
    return {
        "input": text,
        "normalized": normalized,
        "clauses": clauses,
        "phonemes": [to_phonemes(clause) for clause in clauses],
    }
