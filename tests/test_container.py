"""Slow lane: the container image (``container/Containerfile``), built and run with podman.

``scripts/build-container.sh`` makes the image from Debian packages only: the base with
mmdebstrap (its tarball cached in ``~/.cache/announcer/container``, the image kept in podman's
store, so only the first run pays for it), then ``podman build``, whose layer cache makes a
rebuild with unchanged dependencies take seconds. The image then runs rootful with
``--network host`` against the test's own Mosquitto on loopback, as the daemon's user
(uid 10001), with its state and cache in volumes (host directories of the test).

podman needs root here (rootful, runc, host networking): as anyone else the test fails with
the reason, it is never skipped.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import soundfile as sf
from broker import Broker, free_port

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1800)]

ROOT = Path(__file__).resolve().parents[1]
TAG = "localhost/announcer:test"
UID = 10001


def podman_env() -> dict[str, str]:
    return {**os.environ, "CONTAINERS_CONF": str(ROOT / "container" / "containers.conf")}


def podman(*args: str, check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        ["podman", *args], env=podman_env(), capture_output=True, text=True, timeout=timeout, check=False
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"podman {' '.join(args)} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}")
    return proc


@pytest.fixture(scope="module")
def image() -> str:
    """The image, built by the project's script (which installs podman & co. when missing)."""
    if os.geteuid() != 0:
        pytest.fail(
            "tests/test_container.py needs root: it installs podman (scripts/install-container-tools.sh) and "
            "runs it rootful with --network host; run the slow lane as root, as CI does",
            pytrace=False,
        )
    started = time.monotonic()
    proc = subprocess.run(
        ["sh", "scripts/build-container.sh", TAG], cwd=ROOT, capture_output=True, text=True, timeout=1500
    )
    if proc.returncode != 0:
        pytest.fail(
            f"sh scripts/build-container.sh {TAG} exited {proc.returncode}:\n"
            f"{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}",
            pytrace=False,
        )
    size = int(podman("image", "inspect", "--format", "{{.Size}}", TAG).stdout)
    print(f"\nimage {TAG}: built in {time.monotonic() - started:.0f} s, {size / 1e6:.0f} MB")
    assert shutil.which("podman")
    return TAG


class Container:
    """One ``podman run -d`` of the image; ``close()`` removes it whatever happened."""

    def __init__(self, image: str, *args: str) -> None:
        self.name = f"announcer-test-{uuid.uuid4().hex[:8]}"
        self.started = time.monotonic()
        podman("run", "-d", "--name", self.name, "--network", "host", *args, image)

    def logs(self) -> str:
        p = podman("logs", self.name, check=False)
        return p.stdout + p.stderr

    def healthcheck(self) -> subprocess.CompletedProcess[str]:
        return podman("healthcheck", "run", self.name, check=False, timeout=60)

    def stop(self, grace: int = 30) -> int:
        podman("stop", "-t", str(grace), self.name, timeout=grace + 30)
        return int(podman("inspect", "--format", "{{.State.ExitCode}}", self.name).stdout)

    def close(self) -> None:
        podman("rm", "--force", "--time", "5", self.name, check=False)


@pytest.fixture
def run_container(image: str) -> Iterator[Callable[..., Container]]:
    made: list[Container] = []

    def run(*args: str) -> Container:
        c = Container(image, *args)
        made.append(c)
        return c

    yield run
    for c in made:
        c.close()


def volumes(tmp_path: Path) -> tuple[Path, list[str]]:
    state, cache = tmp_path / "state", tmp_path / "cache"
    state.mkdir()
    cache.mkdir()
    # :U hands the host directories to the container's user (uid 10001)
    return state, ["-v", f"{state}:/var/lib/announcer:U", "-v", f"{cache}:/var/cache/announcer:U"]


def test_image_runs_the_daemon_non_root_and_writes_the_wav_into_the_state_volume(
    broker: Broker, run_container: Callable[..., Container], tmp_path: Path
) -> None:
    """The image's own config: broker and ports from the environment, WAVs in the state volume."""
    prefix = f"ctr{uuid.uuid4().hex[:6]}"
    watcher = broker.client()
    availability = watcher.collect(f"{prefix}/availability")
    events = watcher.collect(f"{prefix}/events")
    state, vols = volumes(tmp_path)
    ctr = run_container(
        *vols,
        "-e", f"ANNOUNCER_MQTT_PORT={broker.port}",
        "-e", f"ANNOUNCER_HTTP_PORT={free_port()}",
        "-e", f"ANNOUNCER_TOPIC_PREFIX={prefix}",
    )  # fmt: skip
    try:
        availability.wait_for(lambda m: m.text() == "online", timeout=180)
    except AssertionError:
        raise AssertionError(f"no 'online' from the container:\n{ctr.logs()}") from None
    ready_s = time.monotonic() - ctr.started

    assert podman("exec", ctr.name, "id", "-u").stdout.strip() == str(UID)
    health = ctr.healthcheck()
    assert health.returncode == 0, f"healthcheck failed: {health.stdout}{health.stderr}\n{ctr.logs()}"

    sent = time.monotonic()
    watcher.publish_json(f"{prefix}/say", {"text": "请3号病房的李医生到护士站", "id": "container-1"})
    done = events.wait_for(
        lambda m: m.json()["id"] == "container-1" and m.json()["state"] in ("finished", "failed", "rejected"),
        timeout=120,
    ).json()
    assert done["state"] == "finished", f"{done}\n{ctr.logs()}"
    wav = state / "wav" / "container-1.wav"
    info = sf.info(str(wav))
    assert info.samplerate == 24000 and info.duration > 1.5, info
    assert wav.stat().st_uid == UID
    print(f"\nonline {ready_s:.1f} s after podman run; publish -> finished {time.monotonic() - sent:.2f} s")

    assert ctr.stop() == 0, ctr.logs()  # SIGTERM through tini: a clean stop
    availability.wait_for(lambda m: m.text() == "offline", timeout=10)
    assert "stopped" in ctr.logs()


def test_healthcheck_follows_availability_when_http_is_off(
    broker: Broker, run_container: Callable[..., Container], tmp_path: Path
) -> None:
    """A config of the operator's own, mounted read-only: without HTTP the check asks the broker."""
    prefix = f"ctr{uuid.uuid4().hex[:6]}"
    conf = tmp_path / "conf"
    conf.mkdir()
    (conf / "announcer.yaml").write_text(
        json.dumps(
            {
                "mqtt": {"host": broker.host, "port": broker.port, "topic_prefix": prefix, "client_id": prefix},
                "speakers": {"archive": {"type": "file", "directory": "/var/lib/announcer/wav"}},
                "homeassistant": {"enabled": False},
            }
        ),
        encoding="utf-8",
    )
    conf.chmod(0o755)
    (conf / "announcer.yaml").chmod(0o644)
    availability = broker.client().collect(f"{prefix}/availability")
    _state, vols = volumes(tmp_path)
    ctr = run_container(*vols, "-v", f"{conf}:/etc/announcer:ro")
    try:
        availability.wait_for(lambda m: m.text() == "online", timeout=180)
    except AssertionError:
        raise AssertionError(f"no 'online' from the container:\n{ctr.logs()}") from None

    health = ctr.healthcheck()
    assert health.returncode == 0, f"{health.stdout}{health.stderr}\n{ctr.logs()}"

    broker.stop()  # no broker: the daemon cannot be reached, the check says so
    assert ctr.healthcheck().returncode != 0
    why = podman("exec", ctr.name, "python", "/opt/announcer/healthcheck.py", check=False)
    assert why.returncode == 1 and why.stdout.startswith(f"unhealthy: mqtt://{broker.host}:{broker.port}"), why


def test_home_assistant_addon_builds_and_speaks_with_the_supervisors_broker(
    image: str, broker: Broker, tmp_path: Path
) -> None:
    """The add-on folder as Home Assistant builds it (staged, Debian base), run as the Supervisor would.

    The Supervisor is a stand-in (tests/test_ha_addon.py's, answering ``/services/mqtt`` with the
    test broker); ``/data`` holds the options, ``/media`` receives the archive speaker's WAVs.
    """
    from test_ha_addon import TOKEN, Supervisor, addon_config

    stage = tmp_path / "addons"
    subprocess.run(["sh", "scripts/stage-ha-addon.sh", str(stage)], cwd=ROOT, check=True, capture_output=True)
    tag = "localhost/announcer-addon:test"
    started = time.monotonic()
    build = subprocess.run(
        ["podman", "build", "--format", "docker", "--build-arg", "BUILD_FROM=localhost/announcer-base:bookworm",
         "--volume", "/etc/ssl/certs/ca-certificates.crt:/run/build-ca.pem:ro",
         "--build-arg", "BUILD_CA=/run/build-ca.pem", "-t", tag, str(stage / "announcer")],
        env=podman_env(), capture_output=True, text=True, timeout=1200,
    )  # fmt: skip
    assert build.returncode == 0, build.stdout[-3000:] + build.stderr[-3000:]
    print(f"\nadd-on image built in {time.monotonic() - started:.0f} s")

    prefix = f"addon{uuid.uuid4().hex[:6]}"
    data, media = tmp_path / "data", tmp_path / "media"
    data.mkdir()
    media.mkdir()
    (data / "options.json").write_text(
        json.dumps({**addon_config()["options"], "topic_prefix": prefix, "device": "default"}), encoding="utf-8"
    )
    events = broker.client().collect(f"{prefix}/events")
    availability = broker.client().collect(f"{prefix}/availability")
    supervisor = Supervisor({"host": broker.host, "port": broker.port, "ssl": False, "username": None})
    name = f"announcer-addon-test-{uuid.uuid4().hex[:6]}"
    try:
        podman(
            "run", "-d", "--name", name, "--init", "--network", "host",
            "-e", f"SUPERVISOR_TOKEN={TOKEN}", "-e", f"ANNOUNCER_SUPERVISOR_URL={supervisor.url}",
            "-v", f"{data}:/data", "-v", f"{media}:/media", tag,
        )  # fmt: skip
        try:
            availability.wait_for(lambda m: m.text() == "online", timeout=180)
        except AssertionError:
            raise AssertionError(podman("logs", name, check=False).stderr) from None
        broker.client().publish_json(f"{prefix}/say/archive", {"text": "门铃响了", "id": "addon-1"})
        done = events.wait_for(
            lambda m: m.json()["id"] == "addon-1" and m.json()["state"] in ("finished", "failed", "rejected"),
            timeout=120,
        ).json()
        assert done["state"] == "finished", done
        assert sf.info(str(media / "announcer" / "addon-1.wav")).duration > 0.5
        assert (data / "spool.sqlite3").exists() and (data / "cache").is_dir()
        assert supervisor.requests == ["/services/mqtt"]
        podman("stop", "-t", "30", name, timeout=60)
        assert int(podman("inspect", "--format", "{{.State.ExitCode}}", name).stdout) == 0
    finally:
        podman("rm", "--force", "--time", "5", name, check=False)
        supervisor.close()
