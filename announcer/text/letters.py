"""Latin letters and a few common words, spelled with Chinese syllables pypinyin reads cleanly."""

from __future__ import annotations

import logging
import re

_LOGGER = logging.getLogger(__name__)

# One reading per letter, close to how letters are said in Mandarin announcements.
LETTERS: dict[str, str] = {
    "A": "诶", "B": "比", "C": "西", "D": "迪", "E": "伊", "F": "艾福", "G": "吉",
    "H": "艾尺", "I": "爱", "J": "杰", "K": "开", "L": "艾楼", "M": "艾姆", "N": "恩",
    "O": "欧", "P": "批", "Q": "丘", "R": "阿尔", "S": "艾斯", "T": "替", "U": "优",
    "V": "维", "W": "达布留", "X": "艾克斯", "Y": "歪", "Z": "贼",
}  # fmt: skip

# Whole words (case-insensitive) read as words rather than spelled.
WORDS: dict[str, str] = {
    "wifi": "歪法爱",
    "ok": "欧凯",
    "app": "爱普",
    "email": "伊妹儿",
    "hi": "嗨",
    "bye": "拜",
}

_WORD_RE = re.compile(
    r"(?<![A-Za-z])(" + "|".join(sorted(WORDS, key=len, reverse=True)) + r")(?![A-Za-z])",
    re.IGNORECASE,
)
_LETTER_RE = re.compile(r"[A-Za-z]")


def read_words(text: str) -> str:
    """Replace the known words in ``text`` (``WiFi`` -> 歪法爱)."""
    return _WORD_RE.sub(lambda m: WORDS[m.group(1).lower()], text)


def read_code(letters: str, digits: str) -> str:
    """A code such as G1234 or CA1301: its letters as they are (spelled later), then each digit (1 as 幺)."""
    from .numbers import read_digits

    return letters + read_digits(digits, one="幺")


def spell_letters(text: str) -> str:
    """Spell every remaining Latin letter (``CT`` -> 西替)."""
    return _LETTER_RE.sub(lambda m: LETTERS[m.group(0).upper()], text)
