"""What Kokoro is given to say: announcer's Mandarin front end in Kokoro's phonemes, English, codes and letters.

No model runs here (``tests/test_kokoro.py`` runs it): these check the text a listener will
hear, including that no character of an input is silently dropped on the way.
"""

from __future__ import annotations

import logging
import re

import pytest
from corpus import corpus_rows

from announcer.engines.kokoro_assets import VOCAB
from announcer.text.clauses import split_clauses
from announcer.text.english import clause_phonemes as english_phonemes
from announcer.text.english import clauses as english_clauses
from announcer.text.kokoro_zh import LETTERS, clause_phonemes, pinyin_to_kokoro
from announcer.text.normalize import normalize

pytestmark = pytest.mark.unit

CJK_RE = re.compile(r"[\u3400-\u9fff]")
# codes, letters and numbers in the way announcements write them
CODES = (
    "B区禁止吸烟。",
    "请CT室的王医生到急诊科。",
    "G1234次列车即将进站。",
    "乘坐CA1301航班的旅客请到A12登机口。",
    "请#3号病房的家属到护士站。",
    "C区的车辆请挪车，车牌京A·12345。",
    "下午2:30在3#楼开会，温度-3.5℃，湿度50%。",
    "WiFi密码是8个8，客服电话400-123-4567。",
)


def _segment(text: str) -> list[str]:
    import jieba

    jieba.setLogLevel(logging.WARNING)
    return list(jieba.lcut(text))


@pytest.mark.parametrize(
    ("syllable", "tone", "expected"),
    [
        ("zhong", 1, "ꭧʊ→ŋ"),
        ("lv", 4, "ly↘"),
        ("xue", 2, "ɕɥe↗"),
        ("de", 5, "tɤ"),
        ("hao", 3, "xau↓"),
        ("shi", 4, "ʂɨ↘"),
        ("qu", 1, "ʨʰy→"),
        ("yuan", 2, "ɥɛ↗n"),
        ("wen", 1, "wə→n"),
        ("gui", 4, "kwei↘"),
        ("huar", 1, "xwa→ɚ"),
    ],
)
def test_pinyin_as_kokoro_was_trained(syllable: str, tone: int, expected: str) -> None:
    """misaki's mapping (Kokoro's training front end) for representative syllables."""
    assert pinyin_to_kokoro(syllable, tone) == expected


@pytest.mark.parametrize(
    ("text", "heard"),
    [
        ("G1234次列车", "G幺二三四次列车"),
        ("航班CA1301", "航班CA幺三零幺"),
        ("A12登机口", "A幺二登机口"),
        ("请#3号病房", "请三号病房"),
        ("请到#12号窗口", "请到十二号窗口"),
        ("C区", "C区"),
        ("CT室", "CT室"),
    ],
)
def test_codes_read_letter_then_digit_by_digit(text: str, heard: str) -> None:
    assert normalize(text, keep_letters=True).replace(" ", "") == heard


@pytest.mark.parametrize(
    ("text", "heard"),
    [("G1234次列车", "吉幺二三四次列车"), ("请#3号病房", "请三号病房"), ("A12登机口", "诶幺二登机口")],
)
def test_codes_for_the_embedded_voice(text: str, heard: str) -> None:
    """The embedded voice spells letters with Chinese syllables; codes read the same way."""
    assert normalize(text).replace(" ", "") == heard


def test_c_zone_is_the_letter_not_west() -> None:
    """C区 reads the English letter name C (sˈi), which no Mandarin syllable has: never 西区 (xī, west)."""
    c = clause_phonemes(normalize("C区", keep_letters=True)).phonemes
    west = clause_phonemes("西区").phonemes
    assert c.startswith(LETTERS["C"]) and c != west
    assert "ɕi" not in c


@pytest.mark.parametrize("text", [*CODES, *(row[2] for row in corpus_rows())])
def test_every_character_is_accounted_for(text: str, caplog: pytest.LogCaptureFixture) -> None:
    """Input -> normalised text: nothing dropped as unreadable; normalised text -> phonemes: every
    character has its reading (a Chinese character its syllable with a tone, a letter its name,
    punctuation its mark or a pause), and every phoneme is in Kokoro's vocabulary."""
    caplog.set_level(logging.DEBUG, logger="announcer.text")
    normalized = normalize(text, keep_letters=True)
    assert not [r for r in caplog.records if "Dropping" in r.getMessage()], caplog.text
    for clause in split_clauses(normalized):
        result = clause_phonemes(clause, _segment)
        assert result.dropped == [], f"{clause!r}: no reading for {result.dropped}"
        assert "".join(c for c, _ in result.spoken) == clause
        for char, ps in result.spoken:
            if CJK_RE.match(char):
                assert ps, char  # its syllable (the tone arrow is absent only for a neutral tone)
            elif char.isalpha():
                assert ps == LETTERS[char]
        syllables = sum(1 for c, ps in result.spoken if CJK_RE.match(c) and ps != "ɚ")
        assert syllables == len(CJK_RE.findall(clause)) - sum(1 for c, ps in result.spoken if ps == "ɚ")
        assert set(result.phonemes) <= set(VOCAB), set(result.phonemes) - set(VOCAB)


def test_sandhi_reaches_kokoro() -> None:
    """一 and 不 and third-tone sandhi are applied (misaki's own front end for v1.0 has none)."""
    ps = clause_phonemes("一天不对你好", _segment).phonemes
    assert ps.startswith("i↘tʰjɛ→n")  # 一天: yi4
    assert "pu↗ twei↘" in ps  # 不对: bu2
    assert "ni↗xau↓" in ps  # 你好: ni2 hao3


def test_word_spaces_follow_jieba() -> None:
    assert clause_phonemes("请三号病房的李医生到护士站。", _segment).phonemes == (
        "ʨʰi↓ŋ sa→nxau↘ pi↘ŋfa↗ŋ tɤ li↓i→ʂə→ŋ tau↘ xu↘ʂɨ↘ ꭧa↘n."
    )


@pytest.mark.parametrize(
    ("text", "contains"),
    [
        ("Attention please.", "ətˈɛnʧən plˈiz."),
        ("Flight CA1301 is now boarding at gate A12.", "sˈi ˈA wˈʌn θɹˈi zˈɪɹO wˈʌn"),
        ("The meeting starts at 2:30.", "tˈu θˈɜɹɾi"),
        ("Doctor Li, please come to ward 3.", "θɹˈi."),
    ],
)
def test_english_front_end(text: str, contains: str) -> None:
    ps = " ".join(english_phonemes(c) for c in english_clauses(text))
    assert contains in ps, ps
    assert set(ps) <= set(VOCAB), set(ps) - set(VOCAB)
