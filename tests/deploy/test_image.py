"""The real image: the Dockerfile built with podman and run against the machine's Postgres and Redis.

The base image is a local debootstrap of Debian bookworm (tests/deploy/image.py: no registry is
reachable here), cached in podman's storage under a tag that hashes its inputs; Herald's image
is built on it with `--build-arg BASE_IMAGE`, podman's layer cache and pip's cache mount. The
container runs with `--network host` so that it reaches the loopback Postgres
(HERALD_IMAGE_TEST_DATABASE_URL, default database herald_image_test) and Redis
(HERALD_IMAGE_TEST_REDIS_URL, default db 14), and podman uses the containers.conf in
tests/deploy/podman/.

Skipped, with the reason, where podman is missing, where no base image can be made (no cached
one and no debootstrap as root), or where that Postgres or Redis does not answer;
HERALD_IMAGE_TEST_REQUIRED=1 (set by .ci/run) turns each skip into a failure.

Cost on the CI machine (2 shared cores, measured 2026-12-02 with the three tests here): cold
(no base image, no layers, no pip cache) 3 min 19 s, of which debootstrap and import about 60 s
and the build about 110 s; warm (base and dependency layers cached, Herald's source changed, so
its wheel and the runtime stage are rebuilt) 50 s, of which the build 26 s. pip's cache mount
is in place, but on this machine pip caches no downloads at all (neither does the host's pip),
so after a requirements.lock change the dependency layer downloads everything again.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
import yaml

from tests.deploy.image import base_tag, build_image, ensure_base, podman, podman_env
from tests.deploy.support import ROOT
from tests.support.process import free_port

pytestmark = [pytest.mark.slow, pytest.mark.image, pytest.mark.timeout(1800)]

DATABASE_URL = os.environ.get(
    "HERALD_IMAGE_TEST_DATABASE_URL",
    "postgresql+asyncpg://postgres@127.0.0.1:5432/herald_image_test",
)
REDIS_URL = os.environ.get("HERALD_IMAGE_TEST_REDIS_URL", "redis://127.0.0.1:6379/14")
GRACE_SECONDS = 20  # SHUTDOWN_GRACE_SECONDS in the container
STOP_TIMEOUT = 40  # podman stop's -t: SIGKILL only after this


def skip(reason: str) -> None:
    if os.environ.get("HERALD_IMAGE_TEST_REQUIRED") == "1":
        pytest.fail(f"HERALD_IMAGE_TEST_REQUIRED=1 but: {reason}")
    pytest.skip(reason)


def answers(url: str, default_port: int) -> bool:
    parts = urlsplit(url)
    try:
        with socket.create_connection((parts.hostname, parts.port or default_port), timeout=3):
            return True
    except OSError:
        return False


@pytest.fixture(scope="module")
def image() -> str:
    if shutil.which("podman") is None:
        skip("podman is not installed (.ci/run installs it from Debian: apt-get install podman)")
    if podman("image", "exists", base_tag(), check=False).returncode != 0 and not (
        shutil.which("debootstrap") and os.geteuid() == 0
    ):
        skip(f"no {base_tag()} and no debootstrap run as root to make it")
    return build_image(ensure_base())


@pytest.fixture(scope="module")
def services() -> dict[str, str]:
    if not answers(DATABASE_URL, 5432):
        skip(f"no Postgres at {DATABASE_URL}")
    if not answers(REDIS_URL, 6379):
        skip(f"no Redis at {REDIS_URL}")
    return {"DATABASE_URL": DATABASE_URL, "REDIS_URL": REDIS_URL}


def run_once(image: str, env: dict[str, str], *command: str) -> str:
    """`podman run --rm IMAGE COMMAND`: the image's own CLI, as an operator runs it."""
    flags = [arg for key, value in env.items() for arg in ("--env", f"{key}={value}")]
    return podman(
        "run", "--rm", "--no-healthcheck", "--network", "host", *flags, image, *command
    ).stdout


@pytest.fixture
def container(services: dict[str, str], image: str) -> Iterator[dict[str, Any]]:
    run_once(image, services, "migrate")  # creates the database if needed, then migrates
    key = (
        run_once(image, services, "keys", "create", f"image-test-{uuid.uuid4().hex[:8]}")
        .strip()
        .splitlines()[-1]
    )
    port, grpc_port = free_port(), free_port()
    env = {
        **services,
        "HOST": "127.0.0.1",  # --network host: the host's loopback only
        "PORT": str(port),
        "GRPC_HOST": "127.0.0.1",
        "GRPC_PORT": str(grpc_port),
        "AUTO_MIGRATE": "false",
        "SHUTDOWN_GRACE_SECONDS": str(GRACE_SECONDS),
    }
    name = f"herald-image-test-{uuid.uuid4().hex[:8]}"
    flags = [arg for k, v in env.items() for arg in ("--env", f"{k}={v}")]
    # No systemd here, so no timer runs the HEALTHCHECK: the test runs it (podman healthcheck run).
    podman("run", "--detach", "--name", name, "--network", "host", "--health-interval", "disable",
           *flags, image)  # fmt: skip
    try:
        yield {"name": name, "url": f"http://127.0.0.1:{port}", "key": key}
    finally:
        podman("rm", "--force", "--time", "0", name, check=False)


def inspect(name: str) -> dict[str, Any]:
    state: dict[str, Any] = json.loads(podman("inspect", name).stdout)[0]["State"]
    return state


def wait_until_ready(container: dict[str, Any], timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    last: object = None
    while time.monotonic() < deadline:
        state = inspect(container["name"])
        if not state["Running"]:
            logs = podman("logs", container["name"]).stderr
            raise AssertionError(f"container exited {state['ExitCode']}:\n{logs[-4000:]}")
        try:
            response = httpx.get(container["url"] + "/health/ready", timeout=3)
            if response.status_code == 200:
                return
            last = response.text
        except httpx.HTTPError as exc:
            last = exc
        time.sleep(0.2)
    raise AssertionError(f"/health/ready never answered 200: {last}")


def wait_sent(container: dict[str, Any], notification_id: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    body: dict[str, Any] = {}
    headers = {"Authorization": f"Bearer {container['key']}"}
    while time.monotonic() < deadline:
        url = f"{container['url']}/v1/notifications/{notification_id}"
        body = httpx.get(url, headers=headers, timeout=10).json()
        if body["status"] == "sent":
            return
        time.sleep(0.2)
    raise AssertionError(f"never sent: {body}")


def pid1_status(name: str) -> dict[str, str]:
    """/proc/1/status of the container: PID 1 is Herald itself (exec-form ENTRYPOINT)."""
    text = podman("exec", name, "cat", "/proc/1/status").stdout
    return dict(line.split(":\t", 1) for line in text.splitlines() if ":\t" in line)


def test_the_image_serves_sends_reports_healthy_and_drains_on_stop(
    container: dict[str, Any],
) -> None:
    name = container["name"]
    wait_until_ready(container)

    status = pid1_status(name)
    assert status["Name"].strip() == "herald", status
    real, effective = status["Uid"].split()[:2]
    assert real == effective == "10001", f"runs as {status['Uid']}, not the image's user"

    accepted = httpx.post(
        container["url"] + "/v1/notifications",
        json={"channel": "sms", "to": "+447911123456", "body": "from the image"},
        headers={"Authorization": f"Bearer {container['key']}"},
        timeout=10,
    )
    assert accepted.status_code == 202, accepted.text
    wait_sent(container, accepted.json()["id"])

    # The image's own HEALTHCHECK (kept only with --format docker), run now, not on a timer.
    checked = podman("healthcheck", "run", name, check=False)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    health = inspect(name).get("Health") or inspect(name)["Healthcheck"]
    assert health["Status"] == "healthy", health

    # SIGTERM (the image's STOPSIGNAL); podman SIGKILLs only after STOP_TIMEOUT, which would
    # show as exit status 137 and no herald.stopped line.
    started = time.monotonic()
    podman("stop", "--time", str(STOP_TIMEOUT), name, timeout=STOP_TIMEOUT + 30)
    took = time.monotonic() - started
    state = inspect(name)
    logs = podman("logs", name).stdout + podman("logs", name).stderr
    assert state["ExitCode"] == 0, f"exit {state['ExitCode']} after {took:.1f}s:\n{logs[-4000:]}"
    events = [json.loads(line).get("event") for line in logs.splitlines() if line.startswith("{")]
    draining = next(json.loads(line) for line in logs.splitlines() if '"workers.draining"' in line)
    assert draining["running_jobs"] == 0, "nothing was running: the drain needs none of the grace"
    assert events.index("workers.draining") < events.index("workers.stopped")
    assert "herald.stopped" in events
    assert events[-1] == "Finished server process [1]", events[-5:]  # uvicorn's last word
    print(f"podman stop took {took:.1f}s (grace {GRACE_SECONDS}s, SIGKILL after {STOP_TIMEOUT}s)")


# -- docker-compose.yml, with podman-compose ---------------------------------------------------

COMPOSE_HOST = ROOT / "tests" / "deploy" / "podman" / "compose.host.yml"


def podman_compose() -> list[str]:
    """podman-compose >= 1.6 (the dev extra; Debian's 1.0.3 cannot do network_mode: host)."""
    found = shutil.which(
        "podman-compose", path=f"{Path(sys.executable).parent}:{os.environ['PATH']}"
    )
    if found is None or shutil.which("podman") is None:
        skip("podman or podman-compose is not installed (pip install 'podman-compose>=1.6')")
    assert found is not None
    version = subprocess.run([found, "--version"], capture_output=True, text=True, timeout=60)
    number = re.search(r"podman-compose version (\d+)\.(\d+)", version.stdout)
    if number is None or tuple(map(int, number.groups())) < (1, 6):
        skip(f"podman-compose >= 1.6 needed, found: {version.stdout.strip()}")
    return [found]


def compose(*args: str, env: dict[str, str], files: tuple[Path, ...] = ()) -> str:
    flags = [arg for path in (ROOT / "docker-compose.yml", *files) for arg in ("-f", str(path))]
    result = subprocess.run(
        [*podman_compose(), "-p", "herald-image-test", *flags, *args],
        env={**podman_env(), **env}, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert result.returncode == 0, f"podman-compose {args}:\n{result.stdout[-3000:]}{result.stderr}"
    return result.stdout


def test_podman_compose_validates_the_compose_file() -> None:
    config = yaml.safe_load(compose("config", env={}))
    assert {"postgres", "redis", "migrate", "herald"} <= set(config["services"])
    assert config["services"]["herald"]["stop_grace_period"] == "30s"


def test_podman_compose_brings_herald_up_on_the_built_image(
    services: dict[str, str], image: str
) -> None:
    port = free_port()
    env = {
        "HERALD_IMAGE": image,
        "HERALD_DATABASE_URL": services["DATABASE_URL"],
        "HERALD_REDIS_URL": services["REDIS_URL"],
        "HERALD_PORT": str(port),
        "HERALD_GRPC_PORT": str(free_port()),
    }
    files = (COMPOSE_HOST,)
    try:
        compose("run", "--rm", "migrate", env=env, files=files)
        compose("up", "--detach", "herald", env=env, files=files)
        deadline = time.monotonic() + 90
        status: object = None
        while time.monotonic() < deadline and status != 200:
            try:
                status = httpx.get(f"http://127.0.0.1:{port}/health/ready", timeout=3).status_code
            except httpx.HTTPError as exc:
                status = exc
            time.sleep(0.2)
        assert status == 200, f"/health/ready: {status}"
    finally:
        compose("down", env=env, files=files)
