"""Read numbers aloud in Mandarin: cardinals, decimals, digit strings, years, fractions.

Pure string functions with no regular expressions; ``normalize`` decides which reading
a number in context needs and calls one of these.
"""

from __future__ import annotations

import logging

_LOGGER = logging.getLogger(__name__)

DIGITS = "零一二三四五六七八九"
_SMALL_UNITS = ("", "十", "百", "千")
_BIG_UNITS = ("", "万", "亿", "万亿")
# Cardinals above this are read digit by digit (ids, serial numbers).
MAX_CARDINAL_DIGITS = 16


def read_digits(digits: str, one: str = "一") -> str:
    """``"0571"`` -> ``零五七一``; ``one="幺"`` for phone numbers (``110`` -> 幺幺零)."""
    table = DIGITS[0] + one + DIGITS[2:]
    return "".join(table[int(d)] for d in digits if d.isdigit())


def _read_group(group: int) -> str:
    """0 < group < 10000, without leading-zero handling across groups."""
    out: list[str] = []
    text = f"{group:04d}"
    zero_pending = False
    for pos, char in enumerate(text):
        digit = int(char)
        unit = _SMALL_UNITS[3 - pos]
        if digit == 0:
            if out:
                zero_pending = True
            continue
        if zero_pending:
            out.append("零")
            zero_pending = False
        out.append(DIGITS[digit] + unit)
    return "".join(out)


def read_cardinal(number: str | int, liang: bool = True) -> str:
    """Integer as a cardinal: ``120`` -> 一百二十, ``10`` -> 十, ``1200`` -> 一千二百.

    ``liang``: a leading 2 before 千/万/亿 reads 两 (两千, 两万), as people say it.
    Numbers longer than MAX_CARDINAL_DIGITS are read digit by digit.
    """
    text = str(number).lstrip("0")
    if not text:
        return "零"
    if len(text) > MAX_CARDINAL_DIGITS:
        return read_digits(text)
    value = int(text)
    groups: list[int] = []
    while value:
        groups.append(value % 10000)
        value //= 10000
    parts: list[str] = []
    need_zero = False
    for index in range(len(groups) - 1, -1, -1):
        group = groups[index]
        if group == 0:
            need_zero = bool(parts)
            continue
        if parts and (need_zero or group < 1000):
            parts.append("零")
        parts.append(_read_group(group) + _BIG_UNITS[index])
        need_zero = False
    result = "".join(parts)
    if result.startswith("一十"):
        result = result[1:]  # 10-19: 十, 十五 (not 一十五)
    if liang and result.startswith("二") and len(result) > 1 and result[1] in "千万亿":
        result = "两" + result[1:]
    return result


def read_decimal(number: str) -> str:
    """``"3.5"`` -> 三点五, ``"0.05"`` -> 零点零五, ``"12"`` -> 十二."""
    whole, _, frac = number.partition(".")
    out = read_cardinal(whole or "0")
    if frac:
        out += "点" + read_digits(frac)
    return out


def read_year(digits: str) -> str:
    """Years are read digit by digit: ``2026`` -> 二零二六."""
    return read_digits(digits)


def read_fraction(numerator: str, denominator: str) -> str:
    """``1/2`` -> 二分之一."""
    return read_decimal(denominator) + "分之" + read_decimal(numerator)
