"""Fixtures for the provider tests: a shared HTTP client, free ports, the stand-in server."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
from pytest_httpserver import HTTPServer


def free_port() -> int:
    """A loopback port nothing listens on (a refused connection, or a server's port)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=5) as http:
        yield http


@pytest.fixture
def server(httpserver: HTTPServer) -> Iterator[HTTPServer]:
    """The stand-in provider; fails the test if a request matched nothing or a handler broke."""
    yield httpserver
    httpserver.check_assertions()
    httpserver.check_handler_errors()
