"""A lean HTTP/1.1 keep-alive client for the load generator.

httpx spent about 2 ms of CPU per request here, so on this 2-core machine the generator took
a whole core and was what limited every server it measured (Herald and the baseline app
alike, at 300-500 requests/s). This client does only what the generator needs: requests
written as prepared bytes on an asyncio protocol, responses parsed by httptools (the C parser
uvicorn uses, so chunked bodies and every header form are handled), one request at a time
per connection. It costs a few tens of microseconds per request.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from urllib.parse import urlsplit

import httptools


@dataclass(slots=True)
class Response:
    status_code: int
    content: bytes

    @property
    def text(self) -> str:
        return self.content.decode(errors="replace")


class _Protocol(asyncio.Protocol):
    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.waiter: asyncio.Future[Response] | None = None
        self.chunks: list[bytes] = []
        self.closed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's is no subclass

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as error:
            self._fail(ConnectionError(f"bad response: {error}"))

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._fail(exc or ConnectionError("connection closed"))

    def _fail(self, error: BaseException) -> None:
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(error)

    # httptools callbacks
    def on_body(self, body: bytes) -> None:
        self.chunks.append(body)

    def on_message_complete(self) -> None:
        response = Response(self.parser.get_status_code(), b"".join(self.chunks))
        self.chunks = []
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(response)


class Connection:
    """One keep-alive connection; one request at a time."""

    def __init__(self, host: str, port: int, headers: dict[str, str]) -> None:
        self.host, self.port = host, port
        self._head = "".join(f"{k}: {v}\r\n" for k, v in {"Host": host, **headers}.items())
        self._protocol: _Protocol | None = None

    async def _open(self) -> _Protocol:
        loop = asyncio.get_running_loop()
        transport, protocol = await loop.create_connection(_Protocol, self.host, self.port)
        protocol.transport = transport  # uvloop calls connection_made a little later
        return protocol

    def prepare(self, method: str, path: str, body: bytes = b"", content_type: str = "") -> bytes:
        """The request's bytes, built once (before the clock starts, where that matters)."""
        head = f"{method} {path} HTTP/1.1\r\n{self._head}"
        if content_type:
            head += f"Content-Type: {content_type}\r\n"
        if body or method in ("POST", "PUT", "PATCH"):
            head += f"Content-Length: {len(body)}\r\n"
        return head.encode() + b"\r\n" + body

    async def send(self, request: bytes, timeout: float = 60.0) -> Response:
        if self._protocol is None or self._protocol.closed:
            self._protocol = await self._open()
        protocol = self._protocol
        assert protocol.transport is not None
        protocol.waiter = asyncio.get_running_loop().create_future()
        protocol.transport.write(request)
        return await asyncio.wait_for(protocol.waiter, timeout)

    def close(self) -> None:
        if self._protocol is not None and self._protocol.transport is not None:
            self._protocol.transport.close()


class Pool:
    """`size` connections to one server, handed out one request at a time."""

    def __init__(self, url: str, size: int, headers: dict[str, str]) -> None:
        parts = urlsplit(url)
        assert parts.hostname is not None
        assert parts.port is not None
        self.connections = [Connection(parts.hostname, parts.port, headers) for _ in range(size)]
        self._idle: asyncio.Queue[Connection] = asyncio.Queue()
        for connection in self.connections:
            self._idle.put_nowait(connection)

    async def open(self) -> None:
        """Open every connection (with `GET /health/live`) before the clock starts."""
        for response in await asyncio.gather(
            *(c.send(c.prepare("GET", "/health/live")) for c in self.connections)
        ):
            if response.status_code != 200:
                raise RuntimeError(f"/health/live answered {response.status_code}")

    async def request(self, method: str, path: str, body: bytes = b"") -> Response:
        connection = await self._idle.get()
        try:
            content_type = "application/json" if body else ""
            return await connection.send(connection.prepare(method, path, body, content_type))
        finally:
            self._idle.put_nowait(connection)

    def close(self) -> None:
        for connection in self.connections:
            connection.close()
