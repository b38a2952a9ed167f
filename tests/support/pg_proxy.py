"""A TCP proxy between a PostgreSQL client and server that can lose the answer to a ``COMMIT``.

The case it makes is the one a timeout makes by chance: the server applied the transaction, the client never
heard so. :meth:`LostAnswerProxy.lose_next_commit` arms it; the next ``COMMIT`` (a simple query, as asyncpg sends
it) is forwarded, the server's whole answer to it is read up to its ``ReadyForQuery`` (so the commit is done,
not racing the cut) and then both sides are closed instead of passing it on. Nothing depends on timing.

It speaks just enough of the protocol to find message boundaries: after the untyped startup message every
message is a type byte and a length. Connect with ``sslmode=disable`` (:meth:`url`): the proxy does not relay an
SSL or GSS encryption request.
"""

from __future__ import annotations

import asyncio
import contextlib
import struct

_PROTOCOL_3 = 196608
_READY_FOR_QUERY = b"Z"


async def _message(reader: asyncio.StreamReader) -> tuple[bytes, bytes]:
    """One typed message: (its type byte, the whole message as sent)."""
    head = await reader.readexactly(5)
    (length,) = struct.unpack("!i", head[1:])
    return head[:1], head + await reader.readexactly(length - 4)


def _is_commit(kind: bytes, message: bytes) -> bool:
    return kind == b"Q" and message[5:].rstrip(b"\0").strip().rstrip(b";").strip().upper() == b"COMMIT"


class LostAnswerProxy:
    def __init__(self, host: str, port: int) -> None:
        self.target = (host, port)
        self.lost = 0  # answers to a COMMIT lost so far
        self._armed = False
        self._server: asyncio.Server | None = None
        self._links: set[asyncio.Task[None]] = set()

    @property
    def port(self) -> int:
        assert self._server is not None, "the proxy is not started"
        port: int = self._server.sockets[0].getsockname()[1]
        return port

    def url(self, database: str, user: str = "postgres") -> str:
        return f"postgresql://{user}@127.0.0.1:{self.port}/{database}?sslmode=disable"

    def lose_next_commit(self) -> None:
        self._armed = True

    async def start(self) -> LostAnswerProxy:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        return self

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        for link in list(self._links):
            link.cancel()
        await asyncio.gather(*self._links, return_exceptions=True)

    async def __aenter__(self) -> LostAnswerProxy:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def _accept(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._links.add(task)
        server_reader, server_writer = await asyncio.open_connection(*self.target)
        commit_sent = asyncio.Event()  # this connection's client sent the COMMIT whose answer is to be lost
        pumps = {asyncio.ensure_future(self._upstream(client_reader, server_writer, commit_sent)),
                 asyncio.ensure_future(self._downstream(server_reader, client_writer, commit_sent))}
        try:
            # either side going away (or the lost answer) ends both
            await asyncio.wait(pumps, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for pump in pumps:
                pump.cancel()
            await asyncio.gather(*pumps, return_exceptions=True)
            for writer in (client_writer, server_writer):
                writer.close()
                with contextlib.suppress(ConnectionError):
                    await writer.wait_closed()
            self._links.discard(task)

    async def _upstream(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                        commit_sent: asyncio.Event) -> None:
        (length,) = struct.unpack("!i", head := await reader.readexactly(4))
        startup = head + await reader.readexactly(length - 4)
        (protocol,) = struct.unpack("!i", startup[4:8])
        if protocol != _PROTOCOL_3:
            raise ConnectionError(f"not a plain startup message (code {protocol}): connect with sslmode=disable")
        writer.write(startup)
        while True:
            kind, message = await _message(reader)
            if self._armed and _is_commit(kind, message):
                self._armed = False
                commit_sent.set()  # before the server can answer it: the answer is not forwarded
            writer.write(message)
            await writer.drain()

    async def _downstream(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                          commit_sent: asyncio.Event) -> None:
        while True:
            kind, message = await _message(reader)
            if commit_sent.is_set():
                if kind == _READY_FOR_QUERY:  # the server has answered the COMMIT in full: it is applied
                    self.lost += 1
                    raise ConnectionError("the answer to the COMMIT is lost")
                continue
            writer.write(message)
            await writer.drain()
