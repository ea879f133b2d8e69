"""Normalised Mandarin clause -> Kokoro v1.0 phonemes, every character accounted for.

Kokoro-82M v1.0 was trained on misaki's ``ZHG2P(version=None)`` output: pypinyin (TONE3) per
jieba word, each syllable as IPA with its tone as an arrow after the vowel nucleus (→ 1, ↗ 2,
↓ 3, ↘ 4, nothing for the neutral tone), words separated by a space, clause punctuation as
ASCII. This module produces the same alphabet from announcer's own front end instead
(``normalize(keep_letters=True)`` -> ``split_clauses`` -> ``syllables`` with tone sandhi), so
numbers, times, codes and letters are read as announcer reads them and the tones are the
sandhi'd ones; misaki is not needed at run time. The syllable table reproduces misaki's
mapping on every syllable pypinyin knows (2,130 syllable x tone pairs, checked once against
misaki 0.9.4).

Latin letters (kept by ``normalize(keep_letters=True)``) become English letter names in
Kokoro's alphabet (``C`` -> sˈi), so "C区" is the letter C, not 西区 ("west zone").

``clause_phonemes`` returns, besides the phoneme string, what each character of the clause
became: nothing is dropped silently (a character the table cannot say is listed in
``dropped`` and logged by the engine).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass, field

from .normalize import CJK

_LOGGER = logging.getLogger(__name__)

TONES = {1: "→", 2: "↗", 3: "↓", 4: "↘", 5: ""}

INITIALS = {
    "b": "p", "p": "pʰ", "m": "m", "f": "f", "d": "t", "t": "tʰ", "n": "n", "l": "l",
    "g": "k", "k": "kʰ", "h": "x", "j": "ʨ", "q": "ʨʰ", "x": "ɕ",
    "zh": "ꭧ", "ch": "ꭧʰ", "sh": "ʂ", "r": "ɻ", "z": "ʦ", "c": "ʦʰ", "s": "s",
}  # fmt: skip

# final -> (onset glide + nucleus, coda); the tone arrow goes between them
FINALS = {
    "a": ("a", ""), "ai": ("ai", ""), "an": ("a", "n"), "ang": ("a", "ŋ"), "ao": ("au", ""),
    "e": ("ɤ", ""), "ei": ("ei", ""), "en": ("ə", "n"), "eng": ("ə", "ŋ"), "er": ("ɚ", ""),
    "i": ("i", ""), "ia": ("ja", ""), "ian": ("jɛ", "n"), "iang": ("ja", "ŋ"), "iao": ("jau", ""),
    "ie": ("je", ""), "in": ("i", "n"), "iou": ("jou", ""), "ing": ("i", "ŋ"), "iong": ("jʊ", "ŋ"),
    "o": ("wo", ""), "ong": ("ʊ", "ŋ"), "ou": ("ou", ""),
    "u": ("u", ""), "ua": ("wa", ""), "uai": ("wai", ""), "uan": ("wa", "n"), "uang": ("wa", "ŋ"),
    "uei": ("wei", ""), "uen": ("wə", "n"), "ueng": ("wə", "ŋ"), "uo": ("wo", ""),
    "ü": ("y", ""), "üe": ("ɥe", ""), "üan": ("ɥɛ", "n"), "ün": ("y", "n"),
    "ɨ": ("ɨ", ""),  # the apical vowel of zhi chi shi ri zi ci si
}  # fmt: skip

# whole syllables outside the initial + final scheme (interjections, syllabic nasals)
SPECIAL = {"m": "m", "n": "n", "ng": "ŋ", "hm": "hm", "hng": "hŋ", "ê": "ɛ", "e^": "ɛ", "o": "ɔ", "io": "jɔ", "er": "ɚ"}

# zero-initial spellings (y-, w-) -> the final they write
_Y_W = {
    "yi": "i", "ya": "ia", "yao": "iao", "ye": "ie", "you": "iou", "yan": "ian", "yin": "in",
    "yang": "iang", "ying": "ing", "yong": "iong", "yo": "o", "yu": "ü", "yue": "üe", "yuan": "üan",
    "yun": "ün", "wu": "u", "wa": "ua", "wo": "uo", "wai": "uai", "wei": "uei", "wan": "uan",
    "wen": "uen", "wang": "uang", "weng": "ueng", "wong": "ong",
}  # fmt: skip
_ABBREV = {"ui": "uei", "iu": "iou", "un": "uen"}  # after a consonant initial
_U_IS_UE = {"u": "ü", "ue": "üe", "uan": "üan", "un": "ün"}  # after j q x

# English letter names in Kokoro's alphabet (misaki's us_gold lexicon, Apache-2.0)
LETTERS = {
    "A": "ˈA", "B": "bˈi", "C": "sˈi", "D": "dˈi", "E": "ˈi", "F": "ˈɛf", "G": "ʤˈi", "H": "ˈAʧ",
    "I": "ˈI", "J": "ʤˈA", "K": "kˈA", "L": "ˈɛl", "M": "ˈɛm", "N": "ˈɛn", "O": "ˈO", "P": "pˈi",
    "Q": "kjˈu", "R": "ˈɑɹ", "S": "ˈɛs", "T": "tˈi", "U": "jˈu", "V": "vˈi", "W": "dˈʌbᵊlju",
    "X": "ˈɛks", "Y": "wˈI", "Z": "zˈi",
}  # fmt: skip

# clause punctuation -> what Kokoro was trained with (misaki maps full-width marks to ASCII)
PUNCTUATION = {
    "，": ",", "、": ",", ",": ",", "；": ";", ";": ";", "：": ":", ":": ":", "。": ".", ".": ".",
    "！": "!", "!": "!", "？": "?", "?": "?", "…": "…", "—": "—", "“": "“", "”": "”", '"': '"',
    "（": "(", "）": ")", "(": "(", ")": ")", "《": "“", "》": "”", "「": "“", "」": "”", "『": "“",
    "』": "”", "【": "“", "】": "”", "[": "(", "]": ")", "〈": "“", "〉": "”", "‘": "“", "’": "”",
    "'": "", "·": " ",
}  # fmt: skip
_TOKEN_RE = re.compile(rf"([{CJK}]+)|([A-Z]+)|(\s+)|(.)")


def split_tone(syllable: str) -> tuple[str, int]:
    """``'zhong1'`` -> ``('zhong', 1)``; no digit (or 0) is the neutral tone 5."""
    if syllable and syllable[-1] in "012345":
        tone = int(syllable[-1])
        return syllable[:-1], 5 if tone == 0 else tone
    return syllable, 5


def pinyin_to_kokoro(syllable: str, tone: int | None = None) -> str:
    """One pinyin syllable (``lv4``, ``nü3``, ``huar1``, or ``zhong`` with ``tone=1``) -> Kokoro phonemes."""
    base, t = split_tone(syllable.strip().lower())
    if tone is not None:
        t = tone
    arrow = TONES[t]
    base = base.replace("u:", "ü").replace("v", "ü")
    erhua = base.endswith("r") and base != "er" and len(base) > 1
    if erhua:
        base = base[:-1]
    out = SPECIAL[base] + arrow if base in SPECIAL else _initial_final(base, arrow)
    return out + ("ɚ" if erhua else "")


def _initial_final(base: str, arrow: str) -> str:
    if base in _Y_W:
        initial, final = "", _Y_W[base]
    elif base[:1] in ("a", "e", "o"):
        initial, final = "", base
    else:
        initial = base[:2] if base[:2] in ("zh", "ch", "sh") else base[:1]
        if initial not in INITIALS:
            raise ValueError(f"not a pinyin syllable: {base!r}")
        final = base[len(initial) :]
        if initial in ("j", "q", "x"):
            final = _U_IS_UE.get(final, final)
        final = _ABBREV.get(final, final)
        if final == "i" and initial in ("zh", "ch", "sh", "r", "z", "c", "s"):
            final = "ɨ"
    if final not in FINALS:
        raise ValueError(f"not a pinyin syllable: {base!r}")
    nucleus, coda = FINALS[final]
    return INITIALS.get(initial, "") + nucleus + arrow + coda


def spell(letters: str) -> str:
    """``CT`` -> ``sˌi tˈi``: letter names, the last one stressed."""
    names = [LETTERS[c].replace("ˈ", "ˌ") for c in letters]
    names[-1] = LETTERS[letters[-1]]
    return " ".join(names)


@dataclass
class Phonemized:
    """A clause in Kokoro phonemes and what became of each of its characters."""

    phonemes: str
    spoken: list[tuple[str, str]] = field(default_factory=list)  # (character, its phonemes; "" for a space)
    dropped: list[str] = field(default_factory=list)  # characters with no reading (none expected)


Segmenter = Callable[[str], list[str]]


def _words_of(run: str, segment: Segmenter | None) -> list[str]:
    if segment is None:
        return [run]
    words = [w for w in segment(run) if w]
    return words if "".join(words) == run else [run]


def clause_phonemes(clause: str, segment: Segmenter | None = None) -> Phonemized:
    """A clause of ``normalize(keep_letters=True)`` output -> Kokoro phonemes.

    ``segment`` cuts a run of Chinese characters into words (jieba's ``lcut``): Kokoro was
    trained with a space between words, which shapes its phrasing; None keeps runs whole.
    """
    from .g2p import syllables
    from .sandhi import Syllable

    out = Phonemized("")
    pieces: list[str] = []
    for match in _TOKEN_RE.finditer(clause):
        han, latin, space, other = match.groups()
        if han:
            runs = syllables(han)
            said: list[Syllable] = runs[0] if runs else []
            k = 0  # the next syllable of ``said``
            word_phonemes: list[str] = []
            for word in _words_of(han, segment):
                ps = ""
                for char in word:
                    syl = said[k] if k < len(said) else None
                    if syl is None or syl.char != char:  # pypinyin had no reading for it
                        out.dropped.append(char)
                        out.spoken.append((char, ""))
                        continue
                    k += 1
                    p = "ɚ" if syl.erhua else _safe_pinyin(syl.pinyin, syl.tone)
                    if not p:
                        out.dropped.append(char)
                    out.spoken.append((char, p))
                    ps += p
                if ps:
                    word_phonemes.append(ps)
            if word_phonemes:
                pieces.append(" ".join(word_phonemes))
        elif latin:
            pieces.append(spell(latin))
            out.spoken.extend((c, LETTERS[c]) for c in latin)
        elif space:
            out.spoken.append((" ", ""))
        else:
            mark = PUNCTUATION.get(other)
            if mark is None:
                out.dropped.append(other)
                out.spoken.append((other, ""))
                continue
            out.spoken.append((other, mark or " "))
            if mark.strip() and pieces:
                pieces[-1] += mark
            elif mark.strip():
                pieces.append(mark)
    out.phonemes = " ".join(pieces)
    return out


def _safe_pinyin(pinyin: str, tone: int) -> str:
    try:
        return pinyin_to_kokoro(pinyin, tone)
    except (ValueError, KeyError):
        _LOGGER.warning("kokoro: no phonemes for pinyin %r", pinyin)
        return ""
