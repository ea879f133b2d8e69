"""Split normalised text into clauses short enough to synthesize one at a time."""

from __future__ import annotations

import logging
import re

_LOGGER = logging.getLogger(__name__)

# A clause ends at one of these (with any closing quotes/brackets that follow it).
_CLAUSE_END = "，。！？；：,!?;:…\n"
_CLOSERS = "”’」』）)】》\"'"
_SPLIT_RE = re.compile(rf"[^{_CLAUSE_END}]*?(?:[{_CLAUSE_END}.]+[{_CLOSERS}]*|$)")
_SOFT_BREAK = "、 "
_SPOKEN_RE = re.compile(r"[^\s\W_]", re.UNICODE)


def _has_speech(piece: str) -> bool:
    """True if ``piece`` holds anything but punctuation and spaces."""
    return bool(_SPOKEN_RE.search(piece))


def hard_split(clause: str, max_chars: int, soft_breaks: str = _SOFT_BREAK) -> list[str]:
    """Cut ``clause`` into pieces of at most ``max_chars``, each ending at the last of
    ``soft_breaks`` that fits (by default a 、 or a space), else at ``max_chars``."""
    pieces: list[str] = []
    rest = clause
    while len(rest) > max_chars:
        window = rest[:max_chars]
        cut = max(window.rfind(char) for char in soft_breaks) + 1
        if cut <= 0:
            cut = max_chars
        pieces.append(rest[:cut])
        rest = rest[cut:]
    pieces.append(rest)
    return pieces


def split_clauses(text: str, max_chars: int = 40) -> list[str]:
    """Split normalised ``text`` on Chinese and Western punctuation.

    Each clause keeps the punctuation that closes it; empty and punctuation-only pieces
    are dropped; a clause longer than ``max_chars`` is cut (at a 、 or space if possible).
    """
    if max_chars < 1:
        raise ValueError("max_chars must be at least 1")
    clauses: list[str] = []
    for match in _SPLIT_RE.finditer(text):
        piece = match.group(0)
        for part in hard_split(piece.strip(), max_chars):
            part = part.strip()
            if _has_speech(part):
                clauses.append(part)
            elif part and clauses:
                clauses[-1] += part  # a stray closing quote joins the clause before it
    return clauses
