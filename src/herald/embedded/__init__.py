"""Embedded mode: with no DATABASE_URL / REDIS_URL, Herald runs a real Postgres and Valkey.

For development, demos and a single small host: nothing to install first. The servers are
children of the Herald process that starts them, with their data in HERALD_DATA_DIR, kept
across restarts. Explicit URLs always win (each one separately).

Who runs them: one process per data folder, holding its lock (see `folder`). `herald serve`
owns them for its lifetime, and a second `herald serve` on the same folder is refused. Other
commands (`herald migrate`, `keys`, `check`) use the servers of the running `herald serve`
when there is one, and otherwise start them for the command's duration (waiting for another
command that holds them). The owner stops them when it exits: after the drain, for serve.
"""

from __future__ import annotations

import atexit
import os
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from herald.config import Settings
from herald.embedded.children import EmbeddedError
from herald.embedded.folder import DataFolder, State, data_dir

__all__ = ["Embedded", "EmbeddedError", "active", "describe", "use_embedded"]

Report = Callable[..., None]
"""`report(level, event, message, **fields)`: how start-up and shutdown are announced."""

_COMMAND_WAIT_SECONDS = 120


@dataclass
class Embedded:
    """The embedded servers this process uses, and whether it runs them itself."""

    folder: Path
    owner_pid: int
    owned: bool
    postgres_port: int
    valkey_port: int


_active: Embedded | None = None


def active() -> Embedded | None:
    """The embedded servers in use by this process, if any."""
    return _active


def describe() -> list[str]:
    """Lines for `herald check`: empty unless embedded mode is in use."""
    if _active is None:
        return []
    servers = [
        f"{name} on 127.0.0.1:{port}"
        for name, port in (("Postgres", _active.postgres_port), ("Valkey", _active.valkey_port))
        if port
    ]
    whose = "started for this command" if _active.owned else f"of herald pid {_active.owner_pid}"
    return [
        f"embedded mode: {' and '.join(servers)} ({whose}), data in {_active.folder}",
        "embedded mode is for development, demos and a single small host: in production set"
        " DATABASE_URL and REDIS_URL",
    ]


def use_embedded(settings: Settings, *, role: str, report: Report, redis: bool = True) -> Settings:
    """Settings with the embedded servers' URLs where DATABASE_URL / REDIS_URL are empty.

    `redis=False` for a command that needs Postgres only (`migrate`, `keys`): it then never
    starts a Valkey of its own.

    Starts the servers (stopped at exit) or joins those of the running `herald serve`.
    Call it from the main thread, before an event loop runs: it blocks for their start-up.
    Raises `EmbeddedError` with a message to show as it is.
    """
    global _active
    postgres, valkey = not settings.database_url, redis and not settings.redis_url
    if not (postgres or valkey):
        return settings
    if sys.platform == "win32":
        raise EmbeddedError(
            "the embedded Postgres and Valkey are not available on Windows: set DATABASE_URL"
            " and REDIS_URL"
        )
    folder = DataFolder(data_dir(settings.herald_data_dir))
    folder.prepare()
    state = _join_or_lock(folder, role)
    secret = folder.secret()
    if state is not None:  # the running herald serve's servers
        missing = (postgres and not state.postgres_port) or (valkey and not state.valkey_port)
        if missing:
            raise EmbeddedError(
                f"the herald serve running on {folder.path} (pid {state.pid}) has no embedded"
                " server for what this command needs: set DATABASE_URL and REDIS_URL as it does"
            )
        _active = Embedded(folder.path, state.pid, False, state.postgres_port, state.valkey_port)
    else:
        _active = _start(folder, secret, role, postgres=postgres, valkey=valkey, report=report)
    update: dict[str, Any] = {}
    if postgres:
        update["database_url"] = (
            f"postgresql+asyncpg://postgres:{secret}@127.0.0.1:{_active.postgres_port}/herald"
        )
    if valkey:
        update["redis_url"] = f"redis://:{secret}@127.0.0.1:{_active.valkey_port}/0"
    return settings.model_copy(update=update)


def _join_or_lock(folder: DataFolder, role: str) -> State | None:
    """The running serve's state to join, or None once this process holds the lock."""
    deadline = time.monotonic() + _COMMAND_WAIT_SECONDS
    while not folder.try_lock():
        state = folder.wait_for_owner(timeout=30)
        if state is None:
            return None
        if state.role == "serve":
            if role != "serve":
                return state
            raise EmbeddedError(
                f"another herald serve (pid {state.pid}) runs the embedded servers of"
                f" {folder.path}: stop it, or give this one its own HERALD_DATA_DIR"
            )
        if time.monotonic() > deadline:
            raise EmbeddedError(
                f"`herald {state.role}` (pid {state.pid}) has held {folder.path} for over"
                f" {_COMMAND_WAIT_SECONDS} s"
            )
        time.sleep(0.1)
    return None


def _exit_cleanly_on(sig: signal.Signals) -> None:
    """Make `sig` exit through `atexit` (which stops the servers in order), not kill outright.

    uvicorn restores the previous handler after its own graceful shutdown and raises the
    signal again; with the default handler the process would die before `atexit`, leaving the
    servers to the parent-death signal and the state file behind.
    """
    if signal.getsignal(sig) is signal.SIG_DFL:

        def leave(signum: int, frame: object) -> None:
            sys.exit(128 + signum)

        signal.signal(sig, leave)


def _start(
    folder: DataFolder, secret: str, role: str, *, postgres: bool, valkey: bool, report: Report
) -> Embedded:
    """Start the servers this process owns; they stop when it exits (or dies)."""
    from herald.embedded.postgres import EmbeddedPostgres
    from herald.embedded.valkey import EmbeddedValkey

    previous = folder.read_state()  # left by a run that was killed
    pg = EmbeddedPostgres(folder.path, secret) if postgres else None
    left_pid = previous.valkey_pid if previous else 0
    vk = EmbeddedValkey(folder.path, secret, left_pid) if valkey else None

    def shutdown() -> None:
        for server in (vk, pg):
            if server is not None:
                server.stop()
        folder.unlock()
        report("info", "embedded.stopped", f"embedded servers stopped (data in {folder.path})")

    try:
        if pg is not None:
            if pg.run_as is not None:
                report(
                    "info",
                    "embedded.postgres_user",
                    f"Herald runs as root and Postgres refuses to: the embedded Postgres runs as"
                    f" user {pg.run_as.name}, who owns {pg.cluster}",
                    user=pg.run_as.name,
                )
            pg.start()
        if vk is not None:
            vk.start()
    except BaseException:
        for server in (vk, pg):
            if server is not None:
                server.stop()
        folder.unlock()
        raise
    atexit.register(shutdown)
    _exit_cleanly_on(signal.SIGTERM)
    state = State(
        pid=os.getpid(),
        role=role,
        postgres_port=pg.port if pg else 0,
        postgres_pid=pg.pid if pg else 0,
        valkey_port=vk.port if vk else 0,
        valkey_pid=vk.pid if vk else 0,
    )
    folder.write_state(state)
    servers = []
    if pg is not None:
        version = (pg.cluster / "PG_VERSION").read_text().strip()
        fresh = " (a new cluster)" if pg.initialised else ""
        servers.append(f"PostgreSQL {version}{fresh} on 127.0.0.1:{pg.port}")
    if vk is not None:
        servers.append(f"Valkey on 127.0.0.1:{vk.port}")
    report(
        "warning",
        "embedded.started",
        f"embedded mode: {' and '.join(servers)}, data in {folder.path}; for development, demos"
        " and a single small host; in production set DATABASE_URL and REDIS_URL",
        data_dir=str(folder.path),
        postgres_port=state.postgres_port,
        valkey_port=state.valkey_port,
    )
    return Embedded(folder.path, state.pid, True, state.postgres_port, state.valkey_port)
