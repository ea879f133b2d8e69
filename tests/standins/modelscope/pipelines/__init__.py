"""STAND-IN for ``modelscope.pipelines`` (tests only, see tests/standins/README.md).

``pipeline(Tasks.text_to_speech, model=DIR)`` loads a stand-in ``SambertHifigan`` the
way the real one loads (reads configuration.json and voices/voices.json, unzips
resource.zip into DIR, initialises ttsfrd) and calling the pipeline returns
``{"output_wav": WAV bytes}``: per symbol line, a sine tone at ``VOICE_HZ[voice]``
lasting ``EMOTION_SECONDS[emotion]``, the emotion read from the symbols' tags, as the
real acoustic model reads them.

Test knobs (environment): ``SAMBERT_STANDIN_LOAD_SECONDS`` (slow model load),
``SAMBERT_STANDIN_FAIL_ON`` (a text that makes synthesis raise), ``SAMBERT_STANDIN_LOG``.
"""

import io
import json
import math
import os
import re
import struct
import time
import wave
import zipfile

from ..utils.constant import Tasks

VOICE_HZ = {"zhitian_emo": 200.0, "zhiyan_emo": 300.0, "zhizhe_emo": 400.0, "zhibei_emo": 500.0}
EMOTION_SECONDS = {"neutral": 0.10, "happy": 0.15, "sad": 0.20, "angry": 0.25, "fear": 0.30, "surprise": 0.35}
_TAG = re.compile(r"\$emotion_([a-z]+)\$")


def _log(record):
    path = os.environ.get("SAMBERT_STANDIN_LOG")
    if path:
        with open(path, "a", encoding="utf-8") as f:
            f.write(json.dumps(record, ensure_ascii=False) + "\n")


def _tone(hz, seconds, rate):
    n = int(round(seconds * rate))
    frames = b"".join(struct.pack("<h", int(12000 * math.sin(2 * math.pi * hz * i / rate))) for i in range(n))
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(frames)
    return buf.getvalue()


class SambertHifigan:
    def __init__(self, model_dir, **kwargs):
        import ttsfrd

        delay = float(os.environ.get("SAMBERT_STANDIN_LOAD_SECONDS", "0") or 0)
        if delay:
            time.sleep(delay)
        with open(os.path.join(model_dir, "configuration.json"), encoding="utf-8") as f:
            config = json.load(f)
        self.__sample_rate = config.get("model", {}).get("sample_rate", 16000)
        frontend = ttsfrd.TtsFrontendEngine()
        with zipfile.ZipFile(os.path.join(model_dir, "resource.zip")) as z:
            z.extractall(model_dir)  # the real model does this at every start too
        if not frontend.initialize(os.path.join(model_dir, "resource")):
            raise RuntimeError("modelscope error: resource invalid")
        frontend.set_lang_type("zhcn")
        self.__frontend = frontend
        with open(os.path.join(model_dir, "voices", "voices.json"), encoding="utf-8") as f:
            self.__voices = json.load(f)["voices"]

    def forward(self, text, voice_name=None):
        voice = voice_name or self.__voices[0]
        if voice not in self.__voices:
            raise KeyError("modelscope error: Voice %s not exists" % voice)
        fail_on = os.environ.get("SAMBERT_STANDIN_FAIL_ON")
        if fail_on and fail_on in text:
            raise RuntimeError("stand-in synthesis failure")
        result = self.__frontend.gen_tacotron_symbols(text)
        frames = b""
        for line in [s for s in result.splitlines() if s != ""]:
            symbols = line.strip().split("\t")[1]
            tags = _TAG.findall(symbols)
            emotion = max(set(tags), key=tags.count) if tags else "neutral"
            _log({"event": "synth", "voice": voice, "emotion": emotion, "symbols": symbols})
            wav = _tone(VOICE_HZ.get(voice, 100.0), EMOTION_SECONDS.get(emotion, 0.5), self.__sample_rate)
            with wave.open(io.BytesIO(wav)) as w:
                frames += w.readframes(w.getnframes())
        buf = io.BytesIO()
        with wave.open(buf, "wb") as w:
            w.setnchannels(1)
            w.setsampwidth(2)
            w.setframerate(self.__sample_rate)
            w.writeframes(frames)
        return buf.getvalue()


class TextToSpeechSambertHifiganPipeline:
    def __init__(self, model):
        self.model = model

    def __call__(self, input, voice=None, **kwargs):
        return {"output_wav": self.model.forward(input, voice)}


def pipeline(task=None, model=None, **kwargs):
    if task != Tasks.text_to_speech:
        raise ValueError("stand-in modelscope supports only text-to-speech")
    return TextToSpeechSambertHifiganPipeline(SambertHifigan(model, **kwargs))
