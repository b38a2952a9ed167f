"""proxy.upstream against a real HTTP/1.1 server on a socket that resets connections when told to: a request
that meets a pooled connection the upstream had closed is sent once more; one that fails on a new one is not."""

from __future__ import annotations

import asyncio
import socket
import struct
from collections.abc import AsyncIterator

import pytest

from proxy.errors import UpstreamUnreachableError
from proxy.upstream import HttpUpstream

ANSWER = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 2\r\n\r\n{}"


class Resetting:
    """Answers every request with 200 and keeps the connection, except the ones ``reset`` names (by their
    number, from 1): those it reads the head of and resets (RST), as a server that closed an idle connection
    at that moment does to the request sent on it."""

    def __init__(self, reset: set[int]) -> None:
        self.reset = reset
        self.requests = 0
        self.connections = 0
        self.server: asyncio.Server | None = None

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.sockets[0].getsockname()[1]}/v1"

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                self.requests += 1
                if self.requests in self.reset:
                    writer.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                                               struct.pack("ii", 1, 0))
                    writer.transport.abort()
                    return
                length = next(int(line.split(b":", 1)[1]) for line in head.split(b"\r\n")
                              if line.lower().startswith(b"content-length:"))
                await reader.readexactly(length)
                writer.write(ANSWER)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()


async def serving(reset: set[int]) -> Resetting:
    server = Resetting(reset)
    server.server = await asyncio.start_server(server.handle, "127.0.0.1", 0)
    return server


async def post(upstream: HttpUpstream, content: bytes | AsyncIterator[bytes] = b'{"model": "m"}') -> int:
    response = await upstream.send("POST", "/chat/completions", headers=[("content-type", "application/json")],
                                   content=content)
    await response.read()
    await response.aclose()
    return response.status_code


async def test_a_request_on_a_pooled_connection_the_upstream_dropped_is_sent_again_on_a_new_one() -> None:
    server = await serving(reset={2})
    upstream = HttpUpstream(server.url, timeout=5)
    try:
        assert await post(upstream) == 200  # connection 1, kept in the pool
        assert await post(upstream) == 200  # reused: reset before an answer, then sent on connection 2
        assert (server.requests, server.connections) == (3, 2)
    finally:
        await upstream.aclose()


async def test_a_request_that_fails_on_a_new_connection_is_not_sent_again() -> None:
    server = await serving(reset={1})
    upstream = HttpUpstream(server.url, timeout=5)
    try:
        with pytest.raises(UpstreamUnreachableError):
            await post(upstream)
        assert (server.requests, server.connections) == (1, 1)  # the upstream may have got it: not twice
    finally:
        await upstream.aclose()


async def test_a_streamed_body_is_not_sent_again() -> None:
    server = await serving(reset={2})
    upstream = HttpUpstream(server.url, timeout=5)

    async def body() -> AsyncIterator[bytes]:
        yield b'{"model": "m"}'

    try:
        assert await post(upstream) == 200
        with pytest.raises(UpstreamUnreachableError):
            await post(upstream, body())  # consumed by the first try: nothing to send again
        assert server.requests == 2
    finally:
        await upstream.aclose()
