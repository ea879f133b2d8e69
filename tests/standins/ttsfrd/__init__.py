"""STAND-IN for Alibaba's ttsfrd text front-end (tests only, see tests/standins/README.md).

Not the real ``ttsfrd`` wheel. ``TtsFrontendEngine.gen_tacotron_symbols`` returns one
line per call, ``"<n>\\t{sym$tone$syllable_flag$word_segment$emotion_<e>$F7} ..."``, in
the layout of the real front-end. The emotion tag is ``emotion_neutral`` unless the
input is Alibaba's SSML-like ``<emotion category="x" intensity="y">`` markup, in which
case it is ``emotion_x`` (that is what the real front-end is documented to do).
"""

import html
import json
import os
import re

_SSML = re.compile(r'<emotion\s+category="([a-z]+)"(?:\s+intensity="([0-9.]+)")?\s*>(.*?)</emotion>', re.S)
_TAGS = re.compile(r"<[^>]+>")


def log(record):
    path = os.environ.get("SAMBERT_STANDIN_LOG")
    if path:
        with open(path, "a", encoding="utf-8") as f:
            f.write(json.dumps(record, ensure_ascii=False) + "\n")


class TtsFrontendEngine:
    def __init__(self):
        self.resource = None
        self.lang = None

    def initialize(self, resource_dir):
        ok = os.path.isfile(os.path.join(resource_dir, "frontend.marker"))
        self.resource = resource_dir if ok else None
        return ok

    def set_lang_type(self, lang):
        self.lang = lang
        return lang == "zhcn"

    def gen_tacotron_symbols(self, text):
        if self.resource is None:
            raise RuntimeError("stand-in ttsfrd: not initialized")
        emotion, intensity, body = "neutral", None, text
        m = _SSML.search(text)
        if m:
            emotion, intensity, body = m.group(1), m.group(2), m.group(3)
        body = html.unescape(_TAGS.sub("", body))
        chars = [c for c in body if c.strip() and c not in "。！？；，、!?;,"]
        symbols = " ".join("{u%04x$tone1$s_begin$word_begin$emotion_%s$F7}" % (ord(c), emotion) for c in chars)
        log(
            {
                "event": "frontend",
                "input": text,
                "emotion": emotion,
                "intensity": float(intensity) if intensity else None,
                "symbols": symbols,
            }
        )
        return "1\t%s\n" % symbols
