"""Mandarin tone sandhi over one run of syllables (no punctuation inside a run).

pypinyin gives citation tones, word by word; what a listener hears also depends on the
neighbours: 一 and 不 change before a fourth tone, two third tones in a row become
rising + third, and a few common words end in 儿化.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace

_LOGGER = logging.getLogger(__name__)

# Characters that make 一 part of a number, where it keeps tone 1 (十一, 一一零, 一点五).
_NUMERALS = set("零〇一二两三四五六七八九十")
_NUMBER_CONTEXT = _NUMERALS | set("百千万亿第点")
# 一 as an ordinal keeps tone 1: 一号, 一月一日, 一楼, 一等奖.
_ORDINAL_AFTER = set("号月日楼栋等")
# 一点 after these is a clock time (下午一点), not "a little".
_TIME_OF_DAY = set("午晨晚早夜")
# 儿 after these is 儿化 (哪儿, 一点儿, 一会儿), unless it starts a word (这儿童).
_ERHUA_AFTER = set("哪这那玩点会块事空")
_ERHUA_NOT_BEFORE = set("童子女科歌孙媳")


@dataclass(frozen=True)
class Syllable:
    """One spoken syllable: its character, toneless pinyin (``"zhong"``) and tone 1-5."""

    char: str
    pinyin: str
    tone: int
    erhua: bool = False  # a 儿 to merge into the previous syllable


def _yi_tone(prev: Syllable | None, nxt: Syllable | None, after_next: Syllable | None) -> int:
    if nxt is None:
        return 1  # 统一, 第一 at the end
    if prev is not None and prev.char == nxt.char and prev.char != "一":
        return 5  # 看一看
    if prev is not None and prev.char in _NUMBER_CONTEXT:
        return 1  # 第一, 十一, 一百一十
    if nxt.char in _NUMERALS:
        return 1  # 一一零, 一十
    if nxt.char in _ORDINAL_AFTER:
        return 1  # 一号生产线, 一月一日
    if nxt.char == "点" and (
        (after_next is not None and after_next.char in _NUMERALS) or (prev is not None and prev.char in _TIME_OF_DAY)
    ):
        return 1  # 一点五, 一点三十分, 下午一点
    return 2 if nxt.tone in (4, 5) else 4  # 一下 yi2, 一天 yi4


def _bu_tone(current: Syllable, prev: Syllable | None, nxt: Syllable | None) -> int:
    if current.tone == 5:
        return 5  # 对不起 when the dictionary says neutral
    if prev is not None and nxt is not None and prev.char == nxt.char:
        return 5  # 好不好
    return 2 if nxt is not None and nxt.tone == 4 else 4


def _third_tones(run: list[Syllable]) -> list[Syllable]:
    """In a stretch of third tones all but the last become second (你好, 展览馆).

    A 儿化 儿 belongs to the syllable before it and does not break the stretch.
    """
    out = list(run)
    spoken = [i for i, syllable in enumerate(out) if not syllable.erhua]
    for position, index in enumerate(spoken[:-1]):
        if out[index].tone == 3 and out[spoken[position + 1]].tone == 3:
            out[index] = replace(out[index], tone=2)
    return out


def apply_sandhi(run: list[Syllable]) -> list[Syllable]:
    """Tones as spoken for one run of consecutive Chinese syllables."""
    out: list[Syllable] = []
    for index, syllable in enumerate(run):
        prev = run[index - 1] if index > 0 else None
        nxt = run[index + 1] if index + 1 < len(run) else None
        after_next = run[index + 2] if index + 2 < len(run) else None
        if syllable.char == "一" and syllable.pinyin == "yi":
            syllable = replace(syllable, tone=_yi_tone(prev, nxt, after_next))
        elif syllable.char == "不" and syllable.pinyin == "bu":
            syllable = replace(syllable, tone=_bu_tone(syllable, prev, nxt))
        elif (
            syllable.char == "儿"
            and prev is not None
            and prev.char in _ERHUA_AFTER
            and (nxt is None or nxt.char not in _ERHUA_NOT_BEFORE)
        ):
            syllable = replace(syllable, erhua=True)
        out.append(syllable)
    return _third_tones(out)
