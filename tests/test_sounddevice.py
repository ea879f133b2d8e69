"""The sounddevice speaker on real PortAudio/ALSA devices that capture to files (see tests/alsa.py)."""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
from alsa import AlsaDevices  # noqa: F401

from announcer.audio.chimes import ChimeLibrary
from announcer.audio.dsp import PEAK_CEILING, resample
from announcer.audio.loudness import LoudnessState, integrated_loudness
from announcer.engines.base import Style, create_engine
from announcer.engines.embedded_zh import Config as ZhConfig
from announcer.playback.speaker_chain import DEFAULT_TARGET_LUFS, SpeakerChain, emotion_level_db
from announcer.playback.synthesizer import Synthesizer
from announcer.sinks.base import SinkError
from announcer.sinks.sounddevice_sink import Config, SoundDeviceSink, list_output_devices

TEXT = "各位旅客请注意，开往北京的列车即将进站。"
LSB = 1.0 / 32768  # the capture is S16_LE


@pytest.fixture(scope="module")
def synth(tmp_path_factory: pytest.TempPathFactory) -> Synthesizer:
    eng = create_engine("zh", ZhConfig(type="embedded-zh"), tmp_path_factory.mktemp("sd-cache"))
    eng.load()
    return Synthesizer({"zh": eng})


def speaker(device: str | int, **kw: object) -> tuple[SoundDeviceSink, SpeakerChain]:
    cfg = Config(type="sounddevice", device=device, **kw)  # type: ignore[arg-type]
    return SoundDeviceSink("test", cfg), SpeakerChain(cfg, ChimeLibrary())


def announce(
    sink: SoundDeviceSink,
    chain: SpeakerChain,
    synth: Synthesizer,
    text: str = TEXT,
    emotion: str = "neutral",
    volume: float | None = None,
) -> tuple[np.ndarray, np.ndarray, int]:
    """What the player does for one announcement; returns (prelude, speech, rate) as written."""
    rate = sink.preferred_rate(24000)
    stream = sink.open("a1", rate)
    gain = chain.gain(volume)
    prelude = chain.prelude(True, "normal", rate, gain)
    stream.write(prelude)
    state = LoudnessState.starting_at(synth.reference_lufs("zh"), emotion_level_db(emotion))
    speech = []
    for chunk in synth.render(text, "zh", Style(emotion, 1.0, 1.0)):
        samples = resample(chunk.samples, chunk.sample_rate, rate)
        out = chain.process(samples, gain, rate=rate, level_db=emotion_level_db(emotion), state=state)
        stream.write(out)
        speech.append(out)
    assert stream.close() == {"device": sink.config.device}
    return prelude, np.concatenate(speech), rate


def first_sound(x: np.ndarray) -> int:
    return int(np.flatnonzero(np.abs(x) > 2 * LSB)[0])


@pytest.mark.parametrize("samplerate", [None, 48000])
def test_plays_lead_in_chime_and_speech_at_target_loudness(
    alsa_devices: AlsaDevices, synth: Synthesizer, samplerate: int | None
) -> None:
    sink, chain = speaker("annspeaker1", lead_in_ms=300, samplerate=samplerate)
    _, speech, rate = announce(sink, chain, synth, emotion="angry")
    assert rate == (samplerate or 24000)

    cap = alsa_devices.capture(1)
    assert cap.rate == rate and cap.channels == 2
    np.testing.assert_array_equal(cap.samples[:, 0], cap.samples[:, 1])  # mono spread to both channels
    x = cap.mono
    assert np.max(np.abs(x)) <= PEAK_CEILING + LSB

    onset = first_sound(x)
    assert abs(onset / rate - 0.300) <= 0.010, f"lead-in {onset / rate * 1000:.1f} ms"
    lead = int(0.300 * rate)
    chime = ChimeLibrary().get("ding-dong", rate)
    np.testing.assert_allclose(x[lead : lead + len(chime)], chime, atol=2 * LSB)

    heard = x[lead + len(chime) :]
    assert len(heard) == len(speech)
    np.testing.assert_allclose(heard, speech, atol=2 * LSB)
    expected = DEFAULT_TARGET_LUFS + emotion_level_db("angry")
    assert integrated_loudness(heard, rate) == pytest.approx(expected, abs=1.0)


def test_two_speakers_play_in_parallel(alsa_devices: AlsaDevices, synth: Synthesizer) -> None:
    written: dict[int, np.ndarray] = {}
    errors: list[BaseException] = []

    def run(i: int, text: str, emotion: str, volume: float) -> None:
        try:
            sink, chain = speaker(alsa_devices.name(i), samplerate=48000 if i == 2 else None)
            prelude, speech, _ = announce(sink, chain, synth, text, emotion, volume)
            written[i] = np.concatenate([prelude, speech])
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)

    threads = [
        threading.Thread(target=run, args=(1, TEXT, "sad", 1.0)),
        threading.Thread(target=run, args=(2, "今天下午三点开会。", "happy", 0.5)),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors, errors
    for i, rate in ((1, 24000), (2, 48000)):
        cap = alsa_devices.capture(i)
        assert cap.rate == rate
        assert len(cap.mono) == len(written[i])
        np.testing.assert_allclose(cap.mono, written[i], atol=2 * LSB)
    sad = integrated_loudness(
        alsa_devices.capture(1).mono[int(0.15 * 24000) + len(ChimeLibrary().get("ding-dong", 24000)) :], 24000
    )
    assert sad == pytest.approx(DEFAULT_TARGET_LUFS + emotion_level_db("sad"), abs=1.0)


def test_missing_device_fails_by_name_while_another_speaker_plays(alsa_devices: AlsaDevices) -> None:
    good, _ = speaker(alsa_devices.name(1))
    stream = good.open("a1", 24000)
    tone = (0.3 * np.sin(2 * np.pi * 440 * np.arange(24000) / 24000)).astype(np.float32)
    stream.write(tone)

    missing, _ = speaker("no-such-device")
    assert missing.preferred_rate(24000) == 24000  # the failure is reported by open()
    with pytest.raises(SinkError, match="no-such-device"):
        missing.open("a2", 24000)  # looks again (re-scan) before failing

    stream.write(tone)  # the playing speaker is not disturbed by the failed lookup
    stream.close()
    np.testing.assert_allclose(alsa_devices.capture(1).mono, np.concatenate([tone, tone]), atol=2 * LSB)


def test_device_by_index_and_listing(alsa_devices: AlsaDevices) -> None:
    devices = {d["name"]: d for d in list_output_devices()}
    assert {"annspeaker1", "annspeaker2"} <= set(devices)
    sink, _ = speaker(devices["annspeaker2"]["index"])
    stream = sink.open("a1", 16000)
    stream.write(np.full(1600, 0.25, np.float32))
    assert stream.close()["device"] == "annspeaker2"
    cap = alsa_devices.capture(2)
    assert cap.rate == 16000 and len(cap.mono) == 1600 and np.all(cap.mono == 0.25)


def test_abort_stops_without_error(alsa_devices: AlsaDevices) -> None:
    sink, _ = speaker(alsa_devices.name(1))
    stream = sink.open("a1", 24000)
    stream.write(np.full(2400, 0.1, np.float32))
    stream.abort()
    stream.write(np.full(2400, 0.1, np.float32))  # ignored after an abort


def test_cli_lists_the_alsa_devices(alsa_devices: AlsaDevices, tmp_path: Path) -> None:
    exe = Path(sys.executable).with_name("announcer")
    proc = subprocess.run(
        [str(exe), "devices"], env=alsa_devices.env, cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    for i in (1, 2):
        assert any(f"  {alsa_devices.name(i)}  (" in line for line in lines), proc.stdout


def test_a_device_that_appears_later_is_found_without_a_restart(alsa_devices: AlsaDevices) -> None:
    sink, _ = speaker("annspeaker3")
    with pytest.raises(SinkError, match="annspeaker3"):
        sink.open("a1", 24000)
    alsa_devices.set_count(3)  # "plugged in"
    stream = sink.open("a2", 24000)  # the failed lookup re-scans (no other stream is open)
    stream.write(np.full(480, 0.5, np.float32))
    stream.close()
    assert np.all(alsa_devices.capture(3).mono == 0.5)
