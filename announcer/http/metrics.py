"""Prometheus metrics from the event stream, in the text exposition format (version 0.0.4).

``Metrics`` is an ``EventBus`` listener; ``/metrics`` calls ``render``. Exposed:

* ``announcer_events_total{state}`` — every event by state (``started``, ``finished``,
  ``interrupted`` and ``failed`` count once per speaker);
* ``announcer_start_latency_seconds`` — histogram of the ``started`` events' latency
  (receipt to first sample handed to a speaker);
* ``announcer_queue_depth{speaker}`` — announcements waiting per speaker (not the one playing),
  and ``announcer_speaking{speaker}`` (1 while that speaker plays);
* ``announcer_tts_*`` — ``/tts`` syntheses: count, synthesis and audio seconds, and the
  real-time factor of the last one (``announcer_tts_rtf``);
* ``announcer_info{version}``.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable
from typing import Any

from ..core.announcement import Announcement
from ..core.events import STATES, TERMINAL, Event

LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
_SPEAKER_DONE = TERMINAL | {"started"}


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _num(value: float) -> str:
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(float(value)) if not float(value).is_integer() else str(int(value))


class Metrics:
    def __init__(
        self, speakers: Callable[[], list[str]], version: str, status: Callable[[], dict[str, Any]] | None = None
    ) -> None:
        self._lock = threading.Lock()
        self._version = version
        self._status = status
        self._speakers = speakers  # the configured speakers, now (they change on a reload)
        self._states = {s: 0 for s in STATES}
        self._buckets = [0] * len(LATENCY_BUCKETS)
        self._latency_sum = 0.0
        self._latency_count = 0
        self._waiting: dict[str, set[str]] = {}
        self._tts_count = 0
        self._tts_synth_seconds = 0.0
        self._tts_audio_seconds = 0.0
        self._tts_rtf: float | None = None

    # ---- inputs ------------------------------------------------------------------------
    def on_event(self, ev: Event, ann: Announcement | None) -> None:
        event = ev.to_wire()
        state = ev.state
        speaker = event.get("speaker")
        with self._lock:
            if state in self._states:
                self._states[state] += 1
            if state == "queued":
                for s in event.get("speakers") or (ann.speakers if ann is not None else ()):
                    self._waiting.setdefault(s, set()).add(str(event.get("id")))
            elif state == "interrupted" and speaker and not event.get("reason"):
                self._waiting.setdefault(speaker, set()).add(str(event.get("id")))  # requeued after an emergency
            elif state in _SPEAKER_DONE and speaker or state == "interrupted" and speaker:
                self._waiting.setdefault(speaker, set()).discard(str(event.get("id")))
            if state == "started" and isinstance(event.get("latency_ms"), (int, float)):
                seconds = event["latency_ms"] / 1000.0
                self._latency_sum += seconds
                self._latency_count += 1
                for i, bound in enumerate(LATENCY_BUCKETS):
                    if seconds <= bound:
                        self._buckets[i] += 1

    def observe_tts(self, synth_seconds: float, audio_seconds: float) -> None:
        with self._lock:
            self._tts_count += 1
            self._tts_synth_seconds += synth_seconds
            self._tts_audio_seconds += audio_seconds
            if audio_seconds > 0:
                self._tts_rtf = synth_seconds / audio_seconds

    # ---- output ------------------------------------------------------------------------
    def render(self) -> str:
        status = self._status() if self._status is not None else {"speaking": []}
        speaking = set(status.get("speaking") or ())
        speakers = set(self._speakers()) | speaking
        out: list[str] = []

        def family(name: str, kind: str, help_text: str) -> None:
            out.append(f"# HELP {name} {help_text}")
            out.append(f"# TYPE {name} {kind}")

        with self._lock:
            family("announcer_info", "gauge", "Version of the running announcer.")
            out.append(f'announcer_info{{version="{_escape(self._version)}"}} 1')
            family(
                "announcer_events_total",
                "counter",
                "Announcement events by state (per speaker for started/finished/interrupted/failed).",
            )
            for state, n in self._states.items():
                out.append(f'announcer_events_total{{state="{state}"}} {n}')
            family(
                "announcer_start_latency_seconds",
                "histogram",
                "From receipt to the first audio sample handed to a speaker (started events).",
            )
            for bound, n in zip(LATENCY_BUCKETS, self._buckets):
                out.append(f'announcer_start_latency_seconds_bucket{{le="{_num(bound)}"}} {n}')
            out.append(f'announcer_start_latency_seconds_bucket{{le="+Inf"}} {self._latency_count}')
            out.append(f"announcer_start_latency_seconds_sum {_num(self._latency_sum)}")
            out.append(f"announcer_start_latency_seconds_count {self._latency_count}")
            family(
                "announcer_queue_depth", "gauge", "Announcements waiting for a speaker (not counting the one playing)."
            )
            for s in sorted(speakers | {k for k, v in self._waiting.items() if v}):
                out.append(f'announcer_queue_depth{{speaker="{_escape(s)}"}} {len(self._waiting.get(s, ()))}')
            family("announcer_speaking", "gauge", "1 while the speaker plays an announcement.")
            for s in sorted(speakers):
                out.append(f'announcer_speaking{{speaker="{_escape(s)}"}} {int(s in speaking)}')
            family("announcer_tts_requests_total", "counter", "Syntheses served by POST /tts.")
            out.append(f"announcer_tts_requests_total {self._tts_count}")
            family("announcer_tts_synthesis_seconds_total", "counter", "Engine time spent on POST /tts.")
            out.append(f"announcer_tts_synthesis_seconds_total {_num(self._tts_synth_seconds)}")
            family("announcer_tts_audio_seconds_total", "counter", "Seconds of speech produced by POST /tts.")
            out.append(f"announcer_tts_audio_seconds_total {_num(self._tts_audio_seconds)}")
            if self._tts_rtf is not None:
                family(
                    "announcer_tts_rtf",
                    "gauge",
                    "Real-time factor (synthesis time / audio time) of the last POST /tts.",
                )
                out.append(f"announcer_tts_rtf {_num(self._tts_rtf)}")
        return "\n".join(out) + "\n"
