"""`make demo`: a local Mosquitto, the daemon, and a few corpus announcements end to end.

Starts its own broker on a free port (nothing else on the machine is touched), runs
`announcer run -c config/demo.yaml`, publishes announcements from the public corpus with
`mosquitto_pub` (on the embedded voice), then one on Kokoro's Mandarin voice and one bilingual
one (Kokoro: Chinese, then English), prints every event as it arrives and, at the end, the WAV
files written.
When the machine has a sound card, a `room` speaker on the default device is added so
the announcements are also heard.
"""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from broker import Broker, find_mosquitto  # noqa: E402  (the test-suite's broker launcher)
from corpus import corpus_rows  # noqa: E402  (the public corpus, or its copy in tests/data)

from announcer.sinks.sounddevice_sink import list_output_devices  # noqa: E402


def corpus() -> list[tuple[str, str, str]]:
    """A varied handful of the public corpus: the first line of each emotion, in corpus order."""
    picked, seen = [], set()
    for row in corpus_rows():
        if row[0] not in seen:
            picked.append(row)
            seen.add(row[0])
    return picked


def main() -> int:
    out = ROOT / "demo-out"
    (out / "wav").mkdir(parents=True, exist_ok=True)
    binary = find_mosquitto()
    if binary is None:
        print("mosquitto is not installed: run scripts/install-system-deps.sh", file=sys.stderr)
        return 1
    broker = Broker(Path(tempfile.mkdtemp(prefix="announcer-demo-broker-")), binary).start()
    print(f"demo: Mosquitto on 127.0.0.1:{broker.port}")

    config_text = (ROOT / "config" / "demo.yaml").read_text(encoding="utf-8")
    devices = list_output_devices()
    if devices:
        config_text = config_text.replace("speakers:\n", "speakers:\n  room: {type: sounddevice, device: null}\n", 1)
        config_text = config_text.replace("everywhere: [wav]", "everywhere: [wav, room]")
        print(f"demo: sound device found ({devices[0]['name']}): you will hear the announcements too")
    else:
        print("demo: no sound device here: announcements go to WAV files only")
    config_path = out / "announcer.yaml"
    config_path.write_text(config_text, encoding="utf-8")
    env = dict(os.environ, DEMO_MQTT_PORT=str(broker.port), DEMO_DIR=str(out))

    announcer = (
        [str(ROOT / ".venv" / "bin" / "announcer")]
        if (ROOT / ".venv" / "bin" / "announcer").exists()
        else [sys.executable, "-m", "announcer"]
    )
    sub = subprocess.Popen(
        [
            "mosquitto_sub",
            "-p",
            str(broker.port),
            "-v",
            "-t",
            "announcer/events",
            "-t",
            "announcer/status",
            "-t",
            "announcer/availability",
        ],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    lines = Lines(sub)
    daemon = subprocess.Popen(announcer + ["run", "-c", str(config_path)], env=env)
    code = 0
    try:
        if not lines.wait_for(lambda line: line == "announcer/availability online", 120):
            print("demo: the daemon did not come online", file=sys.stderr)
            return 1
        items: list[dict[str, object]] = [
            {"text": text, "emotion": emotion, "priority": "high" if priority == "emergency" else priority}
            for emotion, priority, text in corpus()
        ]
        items.append({"text": "G1234次列车即将进站，请在B区检票。", "engine": "kokoro-zh"})
        items.append(
            {
                "text": "乘坐CA1301航班的旅客请到A12登机口。",
                "engine": "kokoro-zh",
                "translations": {"en": "Passengers on flight CA1301, please go to gate A12."},
            }
        )
        ids = []
        for i, item in enumerate(items):
            ann_id = f"demo-{int(time.time())}-{i}"
            ids.append(ann_id)
            payload = json.dumps({"id": ann_id, **item}, ensure_ascii=False)
            cmd = ["mosquitto_pub", "-p", str(broker.port), "-q", "1", "-t", "announcer/say", "-m", payload]
            print("$ mosquitto_pub -q 1 -t announcer/say -m '" + payload + "'")
            subprocess.run(cmd, check=True, env=env)
        finished: set[str] = set()

        def done(line: str) -> bool:
            if line.startswith("announcer/events "):
                ev = json.loads(line.split(" ", 1)[1])
                if ev["state"] in ("finished", "failed", "rejected", "expired", "cancelled") and ev["id"] in ids:
                    finished.add(ev["id"] + ev.get("speaker", ""))
            return len(finished) >= len(ids) * (2 if devices else 1)

        if not lines.wait_for(done, 120 + 20 * len(ids)):
            print("demo: not every announcement finished in time", file=sys.stderr)
            code = 1
    finally:
        daemon.send_signal(signal.SIGTERM)
        try:
            daemon.wait(20)
        except subprocess.TimeoutExpired:
            daemon.kill()
        time.sleep(0.3)
        sub.terminate()
        lines.drain()
        broker.close()
    wavs = sorted((out / "wav").glob("*.wav"), key=lambda p: p.stat().st_mtime)
    print(f"\ndemo: {len(wavs)} WAV file(s) in {out / 'wav'}:")
    for w in wavs[-10:]:
        print(f"  {w}  ({w.stat().st_size // 1024} KiB)")
    return code


class Lines:
    """The subscriber's output lines, read by a thread (a select() on a buffered pipe can miss
    lines already sitting in Python's buffer)."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.queue: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._read, args=(proc,), daemon=True).start()

    def _read(self, proc: subprocess.Popen[str]) -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            self.queue.put(line.rstrip("\n"))
        self.queue.put(None)

    def wait_for(self, predicate, timeout: float) -> bool:  # type: ignore[no-untyped-def]
        """Echo lines until ``predicate`` holds for one (False on timeout or end of output)."""
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            try:
                line = self.queue.get(timeout=left)
            except queue.Empty:
                return False
            if line is None:
                return False
            print("  " + line)
            if predicate(line):
                return True
        return False

    def drain(self, timeout: float = 2.0) -> None:
        self.wait_for(lambda _line: False, timeout)


if __name__ == "__main__":
    sys.exit(main())
