"""Start `herald serve` as a subprocess on a free port and talk to it."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class HeraldProcess:
    env: dict[str, str]
    port: int = field(default_factory=free_port)
    # What runs `serve` (default: this interpreter's `-m herald`), e.g. another venv's herald.
    command: list[str] = field(default_factory=lambda: [sys.executable, "-m", "herald"])
    proc: subprocess.Popen[bytes] | None = None
    log_path: Path = field(
        default_factory=lambda: Path(tempfile.mkstemp(prefix="herald-", suffix=".log")[1])
    )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, *, wait_ready: bool = True, timeout: float = 20) -> HeraldProcess:
        env = {**os.environ, **self.env, "PORT": str(self.port), "HOST": "127.0.0.1"}
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
        env.setdefault("LOG_FORMAT", "json")
        self._log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            [*self.command, "serve"],
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            cwd=ROOT,
        )
        if wait_ready:
            self.wait_for("/health/live", timeout=timeout)
        return self

    def wait_for(self, path: str, status: int = 200, timeout: float = 20) -> httpx.Response:
        deadline = time.monotonic() + timeout
        last: object = None
        while time.monotonic() < deadline:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise AssertionError(f"herald exited with {self.proc.returncode}:\n{self.logs()}")
            try:
                response = httpx.get(self.url + path, timeout=2)
                if response.status_code == status:
                    return response
                last = response.status_code
            except httpx.HTTPError as exc:
                last = exc
            time.sleep(0.05)
        raise AssertionError(f"{path} never answered {status} (last: {last}):\n{self.logs()}")

    def get(self, path: str, **kwargs: object) -> httpx.Response:
        return httpx.get(self.url + path, timeout=5, **kwargs)  # type: ignore[arg-type]

    def signal(self, sig: int) -> None:
        assert self.proc is not None
        self.proc.send_signal(sig)

    def wait(self, timeout: float) -> int:
        assert self.proc is not None
        return self.proc.wait(timeout=timeout)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if hasattr(self, "_log"):
            self._log.close()

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait()
        self._log.close()

    def logs(self) -> str:
        return self.log_path.read_text(errors="replace")
