"""Chinese text normalisation: digits, symbols and Latin letters become Chinese characters.

``normalize`` runs an ordered list of rewrite rules; the more specific readings (dates,
phone numbers, times, temperatures, percentages) go before the generic number reading.
Punctuation is kept so clauses can be split afterwards; any other symbol is read by a
small table or dropped, never allowed to reach the phonemiser.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable

from .letters import read_code, read_words, spell_letters
from .numbers import read_cardinal, read_decimal, read_digits, read_fraction, read_year

_LOGGER = logging.getLogger(__name__)

Rule = tuple["re.Pattern[str]", "str | Callable[[re.Match[str]], str]"]

NUM = r"[0-9]+(?:\.[0-9]+)?"
CJK = "\u3007\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0003134f"
# Punctuation survives normalisation (clauses are split on it); everything else is read or dropped.
PUNCTUATION = "，。！？；：、,.!?;:…“”‘’\"'（）()《》〈〉「」『』【】[]·—"
_CJK_NUMERAL = "零〇一二两三四五六七八九十百千万亿"

# Full-width digits, letters and the symbols that rules below read.
_FULLWIDTH = {ord(c): ord(c) - 0xFEE0 for c in "０１２３４５６７８９％＃＠＆＊／～＋－．＜＞＝＄"}
_FULLWIDTH.update({ord(c): ord(c) - 0xFEE0 for c in map(chr, range(0xFF21, 0xFF3B))})
_FULLWIDTH.update({ord(c): ord(c) - 0xFEE0 for c in map(chr, range(0xFF41, 0xFF5B))})
_FULLWIDTH.update({0x3000: 0x20, 0xA0: 0x20, 0x2212: ord("-"), 0x2013: ord("-")})

# Measure words after which a bare 2 reads 两 (两个, 两天); 2月/2号/2楼 keep 二.
_LIANG_MEASURES = (
    "个|位|名|只|条|台|辆|次|件|张|本|部|家|间|天|周|年|小时|分钟|秒钟|种|样|份|层|遍|趟|"
    "杯|瓶|盒|箱|排|组|双|对|片|块|把|支|根|袋|点钟|点(?![0-9])|百|千|万|亿"
)
# Service numbers that are read digit by digit when the context says they are phone numbers.
_SERVICE = r"110|119|120|122|999|12345|12315|12320|12348|12369|95[0-9]{3}"
_PHONE_BEFORE = (
    r"拨打|致电|电话|热线|号码|手机号?|呼叫|联系|编号|单号|工号|尾号|验证码|"
    r"密码|账号|卡号|车次|航班|房号|学号|订单号?"
)
_PHONE_AFTER = r"报警|急救|火警|求助|热线|电话|救援|中心|指挥"
# Units written in Latin letters, case-sensitive (5G is a network, 5g is grams).
_UNITS = {
    "km/h": "千米每小时", "km": "千米", "kg": "千克", "mg": "毫克", "ml": "毫升",
    "mL": "毫升", "cm": "厘米", "mm": "毫米", "m²": "平方米", "m³": "立方米",
    "m": "米", "g": "克", "kWh": "千瓦时", "kW": "千瓦", "min": "分钟", "h": "小时", "L": "升",
}  # fmt: skip
_SYMBOLS = {
    "&": "和", "@": "艾特", "#": "井号", "*": "星号", "+": "加", "=": "等于",
    "°": "度", "℃": "摄氏度", "℉": "华氏度", "%": "", "‰": "", "№": "号",
    "¥": "元", "￥": "元", "$": "美元", "€": "欧元", "£": "英镑", "×": "乘", "÷": "除以",
}  # fmt: skip


def _time(match: re.Match[str]) -> str:
    hour, minute, second = int(match[1]), int(match[2]), int(match[3] or 0)
    out = ("两" if hour == 2 else read_cardinal(hour)) + "点"
    if minute or second:
        out += ("零" if minute < 10 else "") + read_cardinal(minute) + "分"
    if second:
        out += ("零" if second < 10 else "") + read_cardinal(second) + "秒"
    return out


def _date(match: re.Match[str]) -> str:
    year, month, day = match[1], int(match[2]), int(match[3])
    if not (1 <= month <= 12 and 1 <= day <= 31):
        return match[0].replace("-", " ").replace("/", " ")
    return f"{read_year(year)}年{read_cardinal(month)}月{read_cardinal(day)}日"


def _signed(sign: str | None, number: str, negative: str) -> str:
    return (negative if sign and sign != "零下" else sign or "") + read_decimal(number)


def _temperature(match: re.Match[str]) -> str:
    unit = {"℉": "华氏度", "°F": "华氏度", "°": "度", "度": "度"}.get(match[4], "摄氏度")
    return _signed(match[1] or match[2], match[3], "零下") + unit


def _number(match: re.Match[str]) -> str:
    text = match[0]
    if "." not in text and len(text) > 1 and text.startswith("0"):
        return read_digits(text)  # 007, 0571: an id, not a quantity
    return read_decimal(text)


def _phone(match: re.Match[str]) -> str:
    return " ".join(read_digits(group, one="幺") for group in match.groups() if group)


def _keyword_phone(match: re.Match[str]) -> str:
    return match[1] + match[2] + read_digits(match[3], one="幺")


def _unit(match: re.Match[str]) -> str:
    return match[1] + _UNITS[match[2]]


def _compile(rules: list[tuple[str, str | Callable[[re.Match[str]], str]]]) -> list[Rule]:
    return [(re.compile(pattern), repl) for pattern, repl in rules]


# A code: 1-3 Latin letters, then digits (G1234 train, CA1301 flight, A12 gate, B2 ward): the letters, then
# the digits one by one (1 as 幺, as in phone numbers). The letters stay Latin here; the letter pass reads them.
CODE_RE = re.compile(r"(?<![A-Za-z])([A-Za-z]{1,3})-?([0-9]{1,8})(?![0-9]|\.[0-9])")

_RULES: list[Rule] = _compile([
    # 1,200 -> 1200 (only well-formed thousands groups)
    (r"(?<![0-9.,])([0-9]{1,3}(?:,[0-9]{3})+)(?![0-9]|,[0-9])", lambda m: m[1].replace(",", "")),
    # www.example.com: a dot inside a name is read
    (r"(?<=[A-Za-z0-9])\.(?=[A-Za-z])", "点"),
    # codes: G1234 -> G幺二三四 (before any number reading)
    (CODE_RE.pattern, lambda m: read_code(m[1], m[2])),
    # dates: 2026-11-23, 2026/11/23, 2026.11.23, then 2026年
    (r"(?<![0-9])([0-9]{4})[-/.]([0-9]{1,2})[-/.]([0-9]{1,2})日?(?![0-9])", _date),
    (r"(?<![0-9])([0-9]{4})(?=\s*年)", lambda m: read_year(m[1])),
    (r"(?<![0-9])0([1-9])(?=[月日号时])", r"\1"),
    # phone numbers, digit by digit with 幺
    (r"(?<![0-9])(?:\+?86[- ]?)?(1[3-9][0-9])[- ]?([0-9]{4})[- ]?([0-9]{4})(?![0-9])", _phone),
    (r"(?<![0-9])(0[0-9]{2,3})[- ]([0-9]{7,8})(?:[- ]([0-9]{1,5}))?(?![0-9])", _phone),
    (r"(?<![0-9])(400|800)[- ]?([0-9]{3})[- ]?([0-9]{4})(?![0-9])", _phone),
    (rf"({_PHONE_BEFORE})([是为:：\s]*)([0-9]{{3,12}})(?![0-9.])", _keyword_phone),
    (rf"(拨|打)(\s*)({_SERVICE})(?![0-9.])", _keyword_phone),
    (rf"(?<![0-9.])({_SERVICE})(?=\s*(?:{_PHONE_AFTER}))", lambda m: read_digits(m[1], one="幺")),
    # clock times 下午3:30, 09:00, 14:05:30
    (r"(?<![0-9])([01]?[0-9]|2[0-4])[:：]([0-5][0-9])(?:[:：]([0-5][0-9]))?(?![0-9])", _time),
    (rf"({NUM})\s*[:：]\s*(?=[0-9])", r"\1比"),
    # ranges 3-5天, 20~25℃
    (rf"({NUM})\s*(?:[-~～—]+|至)\s*(?=[0-9])", r"\1到"),
    # temperatures, percentages, money
    (rf"(?:(?<![0-9])([-－−])|(零下))?\s*({NUM})\s*(℃|°C|°c|℉|°F|°|度)",
     _temperature),
    (rf"(?<![0-9])([-−])?({NUM})\s*%", lambda m: "百分之" + _signed(m[1], m[2], "负")),
    (rf"(?<![0-9])([-−])?({NUM})\s*‰", lambda m: "千分之" + _signed(m[1], m[2], "负")),
    (rf"[¥￥]\s*({NUM})", r"\1元"),
    (rf"\$\s*({NUM})", r"\1美元"),
    (rf"€\s*({NUM})", r"\1欧元"),
    (rf"£\s*({NUM})", r"\1英镑"),
    # 3#楼 and #3: 号
    (r"([0-9]+)\s*#", r"\1号"),
    (r"#\s*([0-9]+)(?:\s*号)?", r"\1号"),  # #3号 is 三号, not 三号号
    # arithmetic and fractions
    (rf"({NUM})\s*[*×]\s*(?=[0-9])", r"\1乘"),
    (rf"({NUM})\s*\+\s*(?=[0-9])", r"\1加"),
    (rf"({NUM})\s*=\s*(?=[0-9])", r"\1等于"),
    (rf"({NUM})\s*<\s*(?=[0-9])", r"\1小于"),
    (rf"({NUM})\s*>\s*(?=[0-9])", r"\1大于"),
    (r"(?<![0-9./])([0-9]+)/([0-9]+)(?![0-9./])", lambda m: read_fraction(m[1], m[2])),
    # units written in letters, then 5元/斤 -> 五元每斤
    (rf"({NUM})\s*({'|'.join(re.escape(u) for u in sorted(_UNITS, key=len, reverse=True))})(?![A-Za-z])",
     _unit),
    (rf"({NUM}\s*[{CJK}A-Za-z]{{1,3}})\s*/\s*(?=[{CJK}A-Za-z])", r"\1每"),
    # negative numbers, 两 before measure words, then every remaining number
    (r"(?<![0-9A-Za-z])[-－](?=[0-9])", "负"),
    (rf"(?<![0-9.])2(?=\s*(?:{_LIANG_MEASURES}))", "两"),
    (NUM, _number),
])  # fmt: skip


_KEEP_RE = re.compile(rf"[{CJK}{re.escape(PUNCTUATION)}\s]")
_KEEP_LATIN_RE = re.compile(rf"[{CJK}{re.escape(PUNCTUATION)}\sA-Z]")
_SPACE_RE = re.compile(r"\s+")
_BETWEEN_NUMERALS_RE = re.compile(rf"(?<=[{_CJK_NUMERAL}])\s*[~～-]\s*(?=[{_CJK_NUMERAL}])")


def _symbols(text: str, keep: re.Pattern[str] = _KEEP_RE) -> str:
    text = _BETWEEN_NUMERALS_RE.sub("到", text)
    out: list[str] = []
    for char in text:
        if keep.match(char):
            out.append(char)
        elif char in _SYMBOLS:
            out.append(_SYMBOLS[char])
        else:
            _LOGGER.debug("Dropping unreadable character %r (U+%04X)", char, ord(char))
    return "".join(out)


def normalize(text: str, keep_letters: bool = False) -> str:
    """Rewrite ``text`` so every character is Chinese, punctuation or a space.

    ``下午3:30`` -> 下午三点三十分, ``1,200元`` -> 一千二百元, ``-3.5℃`` -> 零下三点五摄氏度,
    ``50%`` -> 百分之五十, ``CT室`` -> 西替室, ``13812345678`` -> 幺三八幺二三四五六七八,
    ``G1234次`` -> 吉幺二三四次, ``#3号`` -> 三号.

    ``keep_letters``: Latin letters stay, as capitals (``CT室`` -> CT室, ``G1234`` -> G幺二三四), for an
    engine that says letter names itself (``kokoro``: English letter names, so C区 is not 西区).
    """
    text = text.translate(_FULLWIDTH)
    text = read_words(text)
    for pattern, repl in _RULES:
        text = pattern.sub(repl, text)
    if keep_letters:
        text = _symbols(text.upper(), _KEEP_LATIN_RE)
    else:
        text = _symbols(spell_letters(text))
    return _SPACE_RE.sub(" ", text).strip()
