"""The data folder of the embedded servers: where it is, who holds it, what is running there.

One process at a time owns a data folder and its servers: it holds an exclusive `flock` on
`herald.lock` for as long as the servers run (the kernel releases it when the process dies,
however it dies, so a killed run never leaves a stale lock). The owner writes
`embedded.json` (its pid, role and the servers' ports and pids) once the servers answer;
other Herald commands read it to reach the servers of a running `herald serve`, and the
next owner reads it to find servers a killed run may have left.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import platformdirs

from herald.embedded.children import EmbeddedError

ROOT_DEFAULT = Path("/var/lib/herald")


def data_dir(configured: str) -> Path:
    """HERALD_DATA_DIR, else the user data folder (for root, /var/lib/herald: Postgres runs as
    an unprivileged user there, who cannot enter root's home)."""
    if configured:
        return Path(configured).expanduser().resolve()
    if os.geteuid() == 0:
        return ROOT_DEFAULT
    return Path(platformdirs.user_data_dir("herald", appauthor=False))


@dataclass
class State:
    """What the owner of a data folder runs, as written to `embedded.json`."""

    pid: int
    role: str
    postgres_port: int = 0
    postgres_pid: int = 0
    valkey_port: int = 0
    valkey_pid: int = 0


class DataFolder:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock: int | None = None

    @property
    def state_file(self) -> Path:
        return self.path / "embedded.json"

    def prepare(self) -> None:
        try:
            self.path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise EmbeddedError(
                f"cannot create the data folder {self.path} ({exc.strerror}): set"
                " HERALD_DATA_DIR to a folder Herald may write, or set DATABASE_URL and REDIS_URL"
            ) from None

    def try_lock(self) -> bool:
        """Take the folder's lock if nobody holds it; True if this process now owns it."""
        import fcntl  # POSIX only, as embedded mode is

        fd = os.open(self.path / "herald.lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        self._lock = fd
        return True

    def unlock(self) -> None:
        if self._lock is not None:
            with contextlib.suppress(FileNotFoundError):
                self.state_file.unlink()
            os.close(self._lock)
            self._lock = None

    def secret(self) -> str:
        """The password of both servers, made on first use and kept (0600) in the folder."""
        path = self.path / "secret"
        with contextlib.suppress(FileNotFoundError):
            return path.read_text().strip()
        if (self.path / "postgres" / "PG_VERSION").exists():
            raise EmbeddedError(
                f"{path} is missing but the embedded Postgres in {self.path} was made with it:"
                " restore it, or move the folder away to start afresh"
            )
        value = secrets.token_hex(24)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(value)
        return value

    def read_state(self) -> State | None:
        try:
            raw: dict[str, Any] = json.loads(self.state_file.read_text())
            return State(**raw)
        except (OSError, ValueError, TypeError):
            return None

    def write_state(self, state: State) -> None:
        staging = self.state_file.with_suffix(".tmp")
        staging.write_text(json.dumps(asdict(state)))
        staging.chmod(0o600)
        staging.replace(self.state_file)

    def wait_for_owner(self, timeout: float) -> State | None:
        """The state of the process holding the lock, once it is written (None: lock freed)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.try_lock():
                return None
            state = self.read_state()
            if state is not None and _alive(state.pid):
                return state
            time.sleep(0.05)
        raise EmbeddedError(
            f"the data folder {self.path} is locked by another process that has not started"
            f" its servers within {timeout:.0f} s"
        )


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
