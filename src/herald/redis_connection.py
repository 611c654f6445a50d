"""Redis connections from `REDIS_URL`: plain, TLS (`rediss://`) and Sentinel.

redis-py reads `redis://`, `rediss://` and `unix://` URLs itself but has no URL for a
Sentinel topology. Herald takes the form several libraries already share (Prefect's
`prefect_redis`, RedisVL, LangChain, `redis-sentinel-url`):

    redis+sentinel://[user:password@]host[:port][,host2[:port2]...]/service_name[/db][?options]
    rediss+sentinel://...   (TLS to the Sentinels and to the Redis servers alike)

Sentinels default to port 26379. The user and password are the Redis servers'; the
`sentinel_username` and `sentinel_password` options authenticate to the Sentinels. Every
other option is redis-py's own (`ssl_ca_certs`, `ssl_certfile`, `socket_timeout`...) and applies
to the Redis servers; on `rediss+sentinel` the `ssl_*` options apply to the Sentinels too, so
one private CA covers the whole topology. Over TLS the server's host name is checked unless the
URL says `ssl_check_hostname=false` (redis-py 5 does not check it by default).

Everything that talks to Redis (the queues, the workers' own pools, the event feed, the rate
limits, `herald check`) gets its client here, so every URL works everywhere.
"""

from __future__ import annotations

import inspect
from typing import Any
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit, urlunsplit

from redis.asyncio import ConnectionPool, Redis, SSLConnection
from redis.asyncio.connection import (
    URL_QUERY_ARGUMENT_PARSERS,
    AbstractConnection,
    Connection,
    UnixDomainSocketConnection,
)
from redis.asyncio.sentinel import Sentinel, SentinelConnectionPool

SENTINEL_SCHEMES = ("redis+sentinel", "rediss+sentinel")
SCHEMES = ("redis", "rediss", "unix", *SENTINEL_SCHEMES)
SENTINEL_PORT = 26379
_SENTINEL_AUTH = ("sentinel_username", "sentinel_password")
_SECRET_OPTIONS = ("password", "sentinel_password")


def _accepted(connection_class: type[AbstractConnection]) -> set[str]:
    names: set[str] = set()
    for klass in connection_class.__mro__:
        init = klass.__dict__.get("__init__")
        if init is not None:
            names |= {p for p in inspect.signature(init).parameters if p not in ("self", "kwargs")}
    return names


_PLAIN_OPTIONS = _accepted(Connection)
_TLS_OPTIONS = _accepted(SSLConnection)
_UNIX_OPTIONS = _accepted(UnixDomainSocketConnection)


def _options(query: str, allowed: set[str]) -> dict[str, Any]:
    options: dict[str, Any] = {}
    for name, raw in parse_qsl(query, keep_blank_values=True):
        if name not in allowed:
            raise ValueError(f"unknown option {name!r} in the URL")
        parser = URL_QUERY_ARGUMENT_PARSERS.get(name)
        try:
            options[name] = parser(raw) if parser else raw
        except (TypeError, ValueError):
            raise ValueError(f"invalid value {raw!r} for {name!r} in the URL") from None
    return options


def _sentinel_hosts(netloc: str) -> list[tuple[str, int]]:
    hosts = netloc.rpartition("@")[2]
    result: list[tuple[str, int]] = []
    for member in hosts.split(","):
        host, sep, port = member.strip().rpartition(":")
        if not sep:
            host, port = port, str(SENTINEL_PORT)
        if not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError(f"expected host:port for each Sentinel, got {member!r}")
        result.append((host, int(port)))
    return result


def _check_hostname(options: dict[str, Any]) -> dict[str, Any]:
    """Check the server's host name over TLS unless the URL says not to, or verifies nothing."""
    if "ssl_check_hostname" in options or options.get("ssl_cert_reqs") == "none":
        return {}
    return {"ssl_check_hostname": True}


class _SentinelPool(SentinelConnectionPool):
    """A Sentinel-backed pool that also closes its connections to the Sentinels when it is
    closed (redis-py leaves those open: they belong to the `Sentinel` object)."""

    async def disconnect(self, inuse_connections: bool = True) -> None:
        await super().disconnect(inuse_connections)
        if inuse_connections:  # the full close (a master change disconnects idle ones only)
            for sentinel in self.sentinel_manager.sentinels:
                await sentinel.aclose()


def _sentinel_pool(url: str, defaults: dict[str, Any]) -> ConnectionPool:
    parts = urlsplit(url)
    tls = parts.scheme == "rediss+sentinel"
    path = [unquote(p) for p in parts.path.split("/") if p]
    if not path or len(path) > 2:
        raise ValueError("expected /service_name or /service_name/db after the Sentinel hosts")
    options = _options(parts.query, (_TLS_OPTIONS if tls else _PLAIN_OPTIONS) | set(_SENTINEL_AUTH))
    if len(path) == 2:
        if not path[1].isdigit():
            raise ValueError(f"expected a database number after the service name, got {path[1]!r}")
        options.setdefault("db", int(path[1]))
    userinfo = parts.netloc.rpartition("@")[0]
    user, _, password = userinfo.partition(":")
    if user:
        options["username"] = unquote(user)
    if password:
        options["password"] = unquote(password)
    connection = {**defaults, **options}
    sentinel_options = {k: connection.pop(k) for k in _SENTINEL_AUTH if k in connection}
    renamed = {k.removeprefix("sentinel_"): v for k, v in sentinel_options.items()}
    # The Sentinels: the same timeouts, and TLS (with the same CA) on rediss+sentinel.
    shared = ("socket_", "ssl_") if tls else ("socket_",)
    sentinel_kwargs = {k: v for k, v in connection.items() if k.startswith(shared)} | renamed
    if tls:
        connection |= _check_hostname(connection)
        sentinel_kwargs |= {"ssl": True, **_check_hostname(sentinel_kwargs)}
    # redis-py's Sentinel classes are untyped.
    manager = Sentinel(_sentinel_hosts(parts.netloc), sentinel_kwargs=sentinel_kwargs)  # type: ignore[no-untyped-call]
    return _SentinelPool(path[0], manager, ssl=tls, **connection)  # type: ignore[no-untyped-call]


def redis_pool(url: str, **defaults: Any) -> ConnectionPool:
    """A connection pool for `url`; `defaults` (client_name, timeouts) yield to the URL's own
    options. Raises ValueError for a URL Herald cannot use (nothing connects yet)."""
    scheme = urlsplit(url).scheme.lower()
    if scheme not in SCHEMES:
        raise ValueError(f"expected a URL starting with {', '.join(s + '://' for s in SCHEMES)}")
    if scheme in SENTINEL_SCHEMES:
        return _sentinel_pool(url, defaults)
    allowed = {"redis": _PLAIN_OPTIONS, "rediss": _TLS_OPTIONS, "unix": _UNIX_OPTIONS}[scheme]
    given = _options(urlsplit(url).query, allowed | {"db"})
    database = urlsplit(url).path.strip("/")
    if scheme != "unix" and database and not database.isdigit():  # redis-py would ignore it
        raise ValueError(f"expected a database number after the host, got {database!r}")
    if scheme == "rediss":
        defaults = {**defaults, **_check_hostname(given)}
    try:
        return ConnectionPool.from_url(url, **defaults)
    except ValueError as exc:  # a port that is not a number, and the like
        raise ValueError(str(exc)) from None


def redis_client(url: str, **defaults: Any) -> Redis:
    """A client that owns its pool (closing the client closes the pool)."""
    return Redis.from_pool(redis_pool(url, **defaults))


def check_redis_url(url: str) -> None:
    """Raise ValueError, saying what is wrong, if `url` is not one Herald can use."""
    redis_pool(url)


def redis_url_secrets(url: str) -> list[str]:
    """The passwords in `url` (the logs redact them)."""
    parts = urlsplit(url)
    secrets = [unquote(parts.netloc.rpartition("@")[0].partition(":")[2])]
    secrets += [value for name, value in parse_qsl(parts.query) if name in _SECRET_OPTIONS]
    return [secret for secret in secrets if secret]


def safe_redis_url(url: str) -> str:
    """`url` with its passwords masked, for messages and `herald check`."""
    parts = urlsplit(url)
    userinfo, at, hosts = parts.netloc.rpartition("@")
    user, colon, password = userinfo.partition(":")
    netloc = f"{user}{':***' if password else colon}{at}{hosts}"
    query = urlencode(
        [(n, "***" if n in _SECRET_OPTIONS else v) for n, v in parse_qsl(parts.query)],
        safe="/:*",
        quote_via=quote,
    )
    safe = urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))
    return safe if netloc else safe.replace(":", "://", 1)
