"""Early answers (proxy.http.protocol.EarlyAnswerProtocol) over real sockets, on uvicorn as the proxy runs it.

The answerer here answers a body of ``early`` on ``POST /early`` and nothing else; the app echoes what it
got. What is checked: who answered, that the responses come back in order and whole, and that the request
the answerer refuses reaches the app exactly as it would without it.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Iterator, MutableMapping
from typing import Any

import pytest

from proxy.http.protocol import HOLD_AT_MOST, EarlyReply
from proxy.http.server import uvicorn_options
from tests.support.servers import ServerThread


class Answerer:
    path = "/early"

    def __init__(self, *, fail: bool = False) -> None:
        self.fail = fail
        self.asked: list[bytes] = []
        self.done = 0

    def answer(self, scope: MutableMapping[str, Any], body: bytes) -> EarlyReply | None:
        self.asked.append(body)
        if self.fail:
            raise RuntimeError("broken answerer")
        if body != b"early":
            return None

        def done() -> None:
            self.done += 1

        return EarlyReply(200, [(b"content-length", b"5"), (b"x-answered", b"early")], b"EARLY", done)


class Echo:
    """The ASGI app: answers with the body it read (and what it saw), after ``delay`` seconds for ``/slow``."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, bytes, bool]] = []  # (path, body, disconnected)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while (message := await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        body, disconnected = b"", False
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                disconnected = True
                break
            body += message.get("body", b"")
            if not message.get("more_body", False):
                break
        self.calls.append((scope["path"], body, disconnected))
        if scope["path"] == "/slow":
            import asyncio

            await asyncio.sleep(1.6)
        answer = b"APP:" + body[:20]
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-length", str(len(answer)).encode()), (b"x-answered", b"app")]})
        await send({"type": "http.response.body", "body": answer})


@pytest.fixture
def served() -> Iterator[tuple[ServerThread, Answerer, Echo]]:
    answerer, app = Answerer(), Echo()
    with ServerThread(app, timeout_keep_alive=1, **uvicorn_options(answerer)) as server:
        yield server, answerer, app


def request(path: str, body: bytes, *extra: str) -> bytes:
    head = [f"POST {path} HTTP/1.1", "host: test", f"content-length: {len(body)}", *extra]
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


Response = tuple[bytes, dict[bytes, bytes], bytes]


def read_responses(sock: socket.socket, count: int, timeout: float = 5.0) -> list[Response]:
    """``count`` whole responses from ``sock``: (status line, headers, body) each."""
    sock.settimeout(timeout)
    buffer = b""
    out = []
    while len(out) < count:
        end = buffer.find(b"\r\n\r\n")
        if end >= 0:
            lines = buffer[:end].split(b"\r\n")
            if lines[0].startswith(b"HTTP/1.1 1"):  # an interim response (100 Continue): no body
                buffer = buffer[end + 4:]
                continue
            headers = dict(line.split(b": ", 1) for line in lines[1:])
            length = int(headers[b"content-length"])
            if len(buffer) >= end + 4 + length:
                out.append((lines[0], headers, buffer[end + 4:end + 4 + length]))
                buffer = buffer[end + 4 + length:]
                continue
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError(f"closed after {len(out)} responses")
        buffer += chunk
    return out


def connect(server: ServerThread) -> socket.socket:
    return socket.create_connection(("127.0.0.1", server.port))


def test_the_answerer_answers_what_it_can_and_the_app_the_rest(served: Any) -> None:
    server, answerer, app = served
    with connect(server) as sock:
        sock.sendall(request("/early", b"early"))
        (status, headers, body), = read_responses(sock, 1)
        sock.sendall(request("/early", b"not for it"))
        (_, app_headers, app_body), = read_responses(sock, 1)
    assert (status, body, headers[b"x-answered"]) == (b"HTTP/1.1 200 OK", b"EARLY", b"early")
    assert headers[b"server"] == b"uvicorn" and b"date" in headers  # uvicorn's own headers, as on every answer
    assert answerer.done == 1
    assert (app_headers[b"x-answered"], app_body) == (b"app", b"APP:not for it")
    assert app.calls == [("/early", b"not for it", False)]  # the early answer never reached the app
    assert answerer.asked == [b"early", b"not for it"]


def test_other_paths_and_methods_are_not_held(served: Any) -> None:
    server, answerer, _app = served
    with connect(server) as sock:
        sock.sendall(request("/other", b"early") + b"GET /early HTTP/1.1\r\nhost: t\r\ncontent-length: 0\r\n\r\n")
        responses = read_responses(sock, 2)
    assert [body for _, _, body in responses] == [b"APP:early", b"APP:"]
    assert answerer.asked == []


def test_pipelined_requests_are_answered_in_order(served: Any) -> None:
    # The third request arrives while the app answers the second: uvicorn queues it, and a queued request
    # goes to the app (only a request that would start at once is held).
    server, answerer, _app = served
    with connect(server) as sock:
        sock.sendall(request("/early", b"early") + request("/early", b"first for the app") + request("/early", b"early")
                     + request("/other", b"last"))
        responses = read_responses(sock, 4)
    assert [body for _, _, body in responses] == [b"EARLY", b"APP:first for the app", b"APP:early", b"APP:last"]
    assert answerer.done == 1
    with connect(server) as sock:  # two it can answer, back to back in one packet: both early, in order
        sock.sendall(request("/early", b"early") + request("/early", b"early") + request("/other", b"after"))
        responses = read_responses(sock, 3)
    assert [body for _, _, body in responses] == [b"EARLY", b"EARLY", b"APP:after"]
    assert answerer.done == 3


def test_a_request_read_with_an_early_answer_keeps_its_connection_past_the_keep_alive_timeout(served: Any) -> None:
    # The early answer arms uvicorn's keep-alive timer (1 s here) while the next request, read in the same
    # packet, is still being answered (1.6 s): the timer must not close the connection under it.
    server, _answerer, _app = served
    with connect(server) as sock:
        sock.sendall(request("/early", b"early") + request("/slow", b"slow"))
        responses = read_responses(sock, 2)
    assert [body for _, _, body in responses] == [b"EARLY", b"APP:slow"]


def test_the_connection_is_kept_alive_after_an_early_answer_and_closed_when_idle(served: Any) -> None:
    server, _answerer, _app = served
    with connect(server) as sock:
        sock.sendall(request("/early", b"early"))
        read_responses(sock, 1)
        time.sleep(0.3)
        sock.sendall(request("/early", b"early"))
        read_responses(sock, 1)
        sock.settimeout(5)
        started = time.monotonic()
        assert sock.recv(10) == b""  # closed by the keep-alive timeout (1 s), not left open
        assert time.monotonic() - started < 4


@pytest.mark.parametrize("extra", ["expect: 100-continue", "connection: close"])
def test_a_request_that_waits_for_continue_or_closes_goes_to_the_app(served: Any, extra: str) -> None:
    server, answerer, _app = served
    with connect(server) as sock:
        sock.sendall(request("/early", b"early", extra))
        (_, _headers, body), = read_responses(sock, 1)
    assert body == b"APP:early"
    assert answerer.asked == []


def test_a_large_body_goes_to_the_app_whole(served: Any) -> None:
    server, answerer, app = served
    big = b"x" * (HOLD_AT_MOST * 3)
    with connect(server) as sock:
        sock.sendall(request("/early", big))
        (_, _, body), = read_responses(sock, 1)
    assert body == b"APP:" + big[:20]
    assert app.calls == [("/early", big, False)]
    assert answerer.asked == []


def test_a_client_gone_before_its_body_is_in_still_reaches_the_app(served: Any) -> None:
    server, answerer, app = served
    with connect(server) as sock:
        sock.sendall(request("/early", b"early")[:-2])  # the body's last two bytes never come
        time.sleep(0.2)
    deadline = time.monotonic() + 5
    while not app.calls and time.monotonic() < deadline:
        time.sleep(0.02)
    assert [(path, disconnected) for path, _, disconnected in app.calls] == [("/early", True)]  # as without them
    assert answerer.asked == []


def test_an_answerer_that_fails_leaves_the_request_to_the_app(caplog: pytest.LogCaptureFixture) -> None:
    answerer, app = Answerer(fail=True), Echo()
    with caplog.at_level(logging.ERROR, logger="cachegate.server"), \
            ServerThread(app, **uvicorn_options(answerer)) as server, connect(server) as sock:
        sock.sendall(request("/early", b"early"))
        (_, _, body), = read_responses(sock, 1)
    assert body == b"APP:early"
    assert "an early answer failed" in caplog.text


class BigAnswerer(Answerer):
    """Answers ``early`` with 16 KiB: a client that does not read fills the connection's buffers quickly."""

    BODY = b"E" * 16384

    def answer(self, scope: MutableMapping[str, Any], body: bytes) -> EarlyReply | None:
        reply = super().answer(scope, body)
        if reply is None:
            return None
        return EarlyReply(200, [(b"content-length", str(len(self.BODY)).encode())], self.BODY, reply.done)


def test_a_client_that_asks_faster_than_it_reads_gets_the_app_s_backpressure() -> None:
    # Early answers do not wait for the transport to drain; the app's do. Once the connection's writes are
    # paused, requests go to the app, which waits, and uvicorn stops reading the queued ones: the process
    # does not buffer every answer of a client that pipelines without reading.
    answerer, app = BigAnswerer(), Echo()
    count = 1500  # 24 MB of answers: more than the socket buffers hold
    with ServerThread(app, **uvicorn_options(answerer)) as server:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.connect(("127.0.0.1", server.port))
        with sock:
            sender = threading.Thread(target=sock.sendall, args=(request("/early", b"early") * count,), daemon=True)
            sender.start()
            time.sleep(1.0)  # not reading: the server's writes back up
            responses = read_responses(sock, count, timeout=30)
            sender.join(10)
    bodies = [body for _, _, body in responses]
    assert len(bodies) == count and set(bodies) <= {BigAnswerer.BODY, b"APP:early"}
    assert len(app.calls) > 0 and answerer.done + len(app.calls) == count
