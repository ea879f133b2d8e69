"""English text -> Kokoro v1.0 phonemes, offline, nothing GPL.

The pronunciations come from misaki's own lexicons (``us_gold.json`` and ``us_silver.json`` in
the plain ``misaki`` wheel, Apache-2.0; ``misaki.en``, which needs spaCy and espeak, is never
imported): they are written in the alphabet Kokoro v1.0 was trained on (``A`` = eɪ, ``I`` = aɪ,
``O`` = oʊ, ``W`` = aʊ, ``Y`` = ɔɪ, stress ``ˈ ˌ``), so no mapping is needed. On top: numbers
(cardinals, decimals, clock times, percentages, codes such as CA1301 read letter by letter
then digit by digit), -s/-ed/-ing/'s suffixes on known stems, the weak forms of *the*, *a*,
*to*, and unknown words spelled letter by letter (acronyms). Part-of-speech dependent entries
take their default. An announcement's English, not a general English front end.
"""

from __future__ import annotations

import importlib.resources
import json
import logging
import re
import threading
from typing import Any

from .clauses import split_clauses

_LOGGER = logging.getLogger(__name__)

INSTALL_HINT = "pip install 'announcer[kokoro]' (misaki==0.9.4 for its English lexicons)"
MAX_CLAUSE_CHARS = 120
VOWELS = frozenset("AIOWYaeiouæɑɒɔəɛɜɪʊʌᵊᵻ")
PUNCT = ".,!?;:"
_ONES = "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen seventeen eighteen nineteen".split()  # noqa: E501
_TENS = ["", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"]
_TOKEN_RE = re.compile(r"[0-9]+(?:\.[0-9]+)?|[A-Za-z]+(?:'[A-Za-z]+)?|[.,!?;:]")
_CODE_RE = re.compile(r"(?<![A-Za-z0-9])([A-Z]{1,3})-?([0-9]{1,8})(?![0-9])")
_TIME_RE = re.compile(r"(?<![0-9])([01]?[0-9]|2[0-3]):([0-5][0-9])(?![0-9])")
_PERCENT_RE = re.compile(r"([0-9]+(?:\.[0-9]+)?)\s*%")
_SYMBOLS = {
    "&": " and ", "+": " plus ", "@": " at ", "#": " number ", "℃": " degrees Celsius", "°C": " degrees Celsius",
}  # fmt: skip

_IGNORED = str.maketrans("", "", "'\"()-—…“”‘’")  # marks without a reading of their own

_lexicon: dict[str, Any] | None = None
_lexicon_lock = threading.Lock()


def lexicon() -> dict[str, Any]:
    """misaki's US lexicons (gold over silver), read once; ImportError naming the fix when missing."""
    global _lexicon
    with _lexicon_lock:
        if _lexicon is None:
            try:
                data = importlib.resources.files("misaki.data")
            except ModuleNotFoundError:
                raise ImportError(f"misaki is not installed; {INSTALL_HINT}") from None
            lex: dict[str, Any] = {}
            for name in ("us_silver.json", "us_gold.json"):  # gold wins
                with data.joinpath(name).open(encoding="utf-8") as f:
                    lex.update(json.load(f))
            _lexicon = lex
        return _lexicon


def number_words(n: int) -> list[str]:
    if n < 20:
        return [_ONES[n]]
    if n < 100:
        return [_TENS[n // 10]] + (number_words(n % 10) if n % 10 else [])
    if n < 1000:
        return number_words(n // 100) + ["hundred"] + (number_words(n % 100) if n % 100 else [])
    for size, name in ((10**9, "billion"), (10**6, "million"), (1000, "thousand")):
        if n >= size:
            return number_words(n // size) + [name] + (number_words(n % size) if n % size else [])
    return [_ONES[int(d)] for d in str(n)]  # pragma: no cover (n >= 10**12 is read digit by digit)


def _time(m: re.Match[str]) -> str:
    hour, minute = int(m[1]), int(m[2])
    if minute == 0:
        return " ".join(number_words(hour)) + " o'clock"
    tail = ("oh " if minute < 10 else "") + " ".join(number_words(minute))
    return " ".join(number_words(hour)) + " " + tail


def normalize_english(text: str) -> str:
    """Numbers and symbols as words (codes letter by letter, then digit by digit)."""
    text = _TIME_RE.sub(_time, text)
    text = _CODE_RE.sub(lambda m: " ".join(m[1]) + " " + " ".join(_ONES[int(d)] for d in m[2]), text)
    text = _PERCENT_RE.sub(r"\1 percent", text)
    for sym, words in _SYMBOLS.items():
        text = text.replace(sym, words)
    text = re.sub(r"(?<=[0-9]),(?=[0-9]{3})", "", text)
    return " ".join(text.split())


def clauses(text: str) -> list[str]:
    """Normalised English in clauses Kokoro can render one at a time."""
    return split_clauses(normalize_english(text), max_chars=MAX_CLAUSE_CHARS)


def _entry(word: str) -> str | None:
    lex = lexicon()
    for w in (word, word.lower(), word.capitalize()):
        v = lex.get(w)
        if isinstance(v, dict):
            v = v.get("DEFAULT") or next((x for x in v.values() if x), None)
        if v:
            return str(v)
    return None


def _voiceless_end(ps: str) -> bool:
    return ps[-1:] in ("p", "t", "k", "f", "θ")


def _suffixed(word: str) -> str | None:
    w = word.lower()
    if w.endswith("'s") and (stem := _entry(w[:-2])):
        return stem + ("ᵻz" if stem[-1:] in "szʃʒʧʤ" else "s" if _voiceless_end(stem) else "z")
    if w.endswith("ing") and len(w) > 5:
        for stem_w in (w[:-3], w[:-3] + "e", w[:-4] if w[-4:-3] == w[-5:-4] else None):
            if stem_w and (stem := _entry(stem_w)):
                return stem + "ɪŋ"
    if w.endswith("ed") and len(w) > 4:
        for stem_w in (w[:-2], w[:-1], w[:-3] if w[-3:-2] == w[-4:-3] else None):
            if stem_w and (stem := _entry(stem_w)):
                voiceless = _voiceless_end(stem) or stem[-1:] in "sʃʧ"
                return stem + ("ᵻd" if stem[-1:] in "td" else "t" if voiceless else "d")
    if w.endswith("s") and len(w) > 3:
        for stem_w, es in ((w[:-1], False), (w[:-2], True)):
            if stem := _entry(stem_w):
                if es or stem[-1:] in "szʃʒʧʤ":
                    return stem + "ᵻz"
                return stem + ("s" if _voiceless_end(stem) else "z")
    return None


def spell(word: str) -> str:
    """Letter names (``CT`` -> sˌitˈi), from the lexicon's capital-letter entries."""
    names = [(_entry(c.upper()) or "").replace("ˈ", "ˌ") for c in word if c.isalpha()]
    if names:
        names[-1] = names[-1].replace("ˌ", "ˈ")
    return "".join(names)


def word_phonemes(word: str) -> str:
    if len(word) > 1 and word.isupper() and _entry(word) is None:
        return spell(word)
    return _entry(word) or _suffixed(word) or spell(word)


def clause_phonemes(clause: str) -> str:
    """One normalised English clause -> Kokoro phonemes (punctuation kept for prosody)."""
    unread = _TOKEN_RE.sub("", clause).translate(_IGNORED)
    if unread.strip():
        _LOGGER.warning("english: no reading for %r in %r; not spoken", unread, clause)
    tokens: list[str] = []
    for tok in _TOKEN_RE.findall(clause):
        if tok[0].isdigit():
            whole, _, frac = tok.partition(".")
            tokens += number_words(int(whole)) if len(whole) <= 12 else [_ONES[int(d)] for d in whole]
            if frac:
                tokens += ["point"] + [_ONES[int(d)] for d in frac]
        else:
            tokens.append(tok)
    out: list[str] = []
    for i, tok in enumerate(tokens):
        if tok in PUNCT:
            if out:
                out[-1] += tok
            continue
        nxt = next((t for t in tokens[i + 1 :] if t not in PUNCT), "")
        nxt_vowel = (word_phonemes(nxt).lstrip("ˈˌ")[:1] in VOWELS) if nxt else False
        low = tok.lower()
        if low == "the":
            ps = "ði" if nxt_vowel else "ðə"
        elif low == "a" and tok != "A":
            ps = "ɐ"
        elif low == "to":
            ps = "tʊ" if nxt_vowel else "tə"
        else:
            ps = word_phonemes(tok)
        if ps:
            out.append(ps)
    return " ".join(out)
