"""Split text into clauses (for the embedded voices) and sentences (for Wyoming servers), each
short enough to synthesize one at a time."""

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


# --- sentences (Wyoming engines and the Wyoming server's streaming mode) --------------
MAX_SENTENCE_CHARS = 200

# A sentence ends after CJK 。！？ and ；, or after . ! ? ; … followed by white space
# (so "3.14" and "e.g.x" stay whole); closing quotes/brackets stay with it.
_CJK_END = "。！？；…"
_ASCII_END = ".!?;"
_SENTENCE_RE = re.compile(rf"[{_CJK_END}]+[{_CLOSERS}]*|[{_ASCII_END}]+[{_CLOSERS}]*(?=\s)")
_SOFT_BREAKS = "，、,：: "


def cut_long(sentence: str, max_chars: int) -> list[str]:
    """A sentence longer than ``max_chars`` in pieces cut at a comma or space where possible."""
    return [p.strip() for p in hard_split(sentence, max_chars, _SOFT_BREAKS) if p.strip()]


def split_complete(text: str) -> tuple[list[str], str]:
    """Complete sentences at the start of ``text`` and the unfinished rest (streaming input)."""
    sentences: list[str] = []
    start = 0
    for m in _SENTENCE_RE.finditer(text):
        piece = text[start : m.end()].strip()
        start = m.end()
        if piece:
            sentences.append(piece)
    return sentences, text[start:]


def split_sentences(text: str, max_chars: int = MAX_SENTENCE_CHARS) -> list[str]:
    """All sentences of ``text`` (the last may lack final punctuation), long ones cut at commas/spaces."""
    text = " ".join(text.split())
    done, rest = split_complete(text + " ")
    out: list[str] = []
    for s in done + ([rest.strip()] if rest.strip() else []):
        if not re.search(r"\w", s) and out:
            out[-1] += s  # stray punctuation joins the sentence before it
        else:
            out.extend(cut_long(s, max_chars))
    return [s for s in out if re.search(r"\w", s)]
