"""The HTTP protocol the proxy is served on: uvicorn's httptools protocol, with two changes.

**One write per response.** uvicorn writes a response's head as soon as the app sends ``http.response.start``
and its body at the next ``send``: two ``write`` calls, each a trip through the kernel's TCP stack. For a
cached answer those two writes cost about as much as the rest of the request. :class:`CoalescingTransport`
holds a write until the next one (and sends both in one call) or until the end of the current event-loop
step, so a head and the body sent right after it leave together; nothing waits longer than one turn of the
loop, so streams stay streamed. Measured with wrk at 32 connections, a bare Starlette POST endpoint went from
19.5k to 25.8k requests/s.

**Early answers.** :class:`EarlyAnswerProtocol` holds a request for the one path an :class:`EarlyAnswers`
serves (``POST /v1/chat/completions``) until its body is in, and asks it first; only what it does not answer
becomes an ASGI task, as uvicorn would have started it. An exact hit the process holds in memory is then
answered in the callback that read it: no task, no ASGI messages, no middleware, no header checks (the
answerer's headers are safe by construction), and its one write at the end of the loop step. Under load that
took a hit from ~70 to ~44 µs (issue 16; the figures are in the README). It relies on uvicorn's protocol
internals (``_start_asgi_task``, the cycle's fields), so ``pyproject.toml`` pins uvicorn's minor version, and
tests/unit/http/test_protocol_early.py runs it over real sockets.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, MutableMapping
from dataclasses import dataclass
from typing import Any, Protocol, cast

from uvicorn._types import ASGI3Application
from uvicorn.protocols.http.flow_control import HIGH_WATER_LIMIT
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol, RequestResponseCycle

logger = logging.getLogger("cachegate.server")


@dataclass(slots=True)
class EarlyReply:
    """A whole response: its headers (every one safe to send as it is: uvicorn's checks are skipped) and
    body; ``done`` is called once it is written."""

    status: int
    headers: list[tuple[bytes, bytes]]
    body: bytes
    done: Callable[[], None]


class EarlyAnswers(Protocol):
    """What answers some requests of one path without ASGI."""

    path: str  # the one path (with the method POST) whose requests are held for it

    def answer(self, scope: MutableMapping[str, Any], body: bytes) -> EarlyReply | None:
        """The response to this request (its uvicorn scope and whole body), or ``None``: the app answers it,
        and nothing was counted or changed."""
        ...


#: A body larger than this is not held: the request goes to the app at once, which reads the rest as it comes
#: (uvicorn pauses reading past the same size until the app reads).
HOLD_AT_MOST = HIGH_WATER_LIMIT


class CoalescingTransport:
    """An asyncio transport that writes a lone write at the end of the loop step, and two writes in a row
    (a response head, then its body) together at once."""

    __slots__ = ("_held", "_loop", "_scheduled", "_transport")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._held: bytes | None = None
        self._scheduled = False

    def write(self, data: bytes) -> None:
        if not data:
            return
        held = self._held
        if held is None:
            self._held = data
            if not self._scheduled:
                self._scheduled = True
                self._loop.call_soon(self._end_of_step)
            return
        # The second write: send both now rather than after whatever else is queued in this step (a
        # background store, say), so a finished response is never held up.
        self._held = None
        if not self._transport.is_closing():
            self._transport.write(held + data)

    def _end_of_step(self) -> None:
        self._scheduled = False
        self.flush()

    def flush(self) -> None:
        held = self._held
        if held is None:
            return
        self._held = None
        if not self._transport.is_closing():
            self._transport.write(held)

    def close(self) -> None:
        self.flush()  # what was written before close() still goes out, as with a plain transport
        self._transport.close()

    def abort(self) -> None:
        self._held = None
        self._transport.abort()

    # The calls uvicorn makes on every request, spelled out to skip __getattr__.
    def is_closing(self) -> bool:
        return self._transport.is_closing()

    def pause_reading(self) -> None:
        self._transport.pause_reading()

    def resume_reading(self) -> None:
        self._transport.resume_reading()

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self._transport.get_extra_info(name, default)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


class CoalescingHttpProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol on a :class:`CoalescingTransport`."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        wrapped = CoalescingTransport(cast(asyncio.Transport, transport), self.loop)
        super().connection_made(cast(asyncio.Transport, wrapped))


class EarlyAnswerProtocol(CoalescingHttpProtocol):
    """:class:`CoalescingHttpProtocol` that asks ``early`` first (see the module's docstring). A request is
    held only when it would have started at once (not pipelined behind another, not over the concurrency
    limit), keeps its connection alive, does not wait for ``100 Continue`` and finds the connection's writes
    flowing; the app gets every other request, a held one whose body grows past :data:`HOLD_AT_MOST`, one the
    server starts to drain before its body is in, and one whose client goes away first (so it is recorded as
    it always was)."""

    def __init__(self, *args: Any, early: EarlyAnswers, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.early = early
        self._heading = False  # in on_headers_complete: a task it starts is a new request's, not a pipelined one
        self._held: tuple[RequestResponseCycle, ASGI3Application] | None = None

    def on_message_begin(self) -> None:
        # A request parsed in the same read as an early answer: the keep-alive timer that answer armed is
        # not for it (uvicorn disarms it only when data arrives).
        self._unset_keepalive_if_required()
        super().on_message_begin()

    def on_headers_complete(self) -> None:
        self._heading = True
        try:
            super().on_headers_complete()
        finally:
            self._heading = False

    def _start_asgi_task(self, cycle: RequestResponseCycle, app: ASGI3Application) -> None:
        scope = cycle.scope
        if (self._heading and app is self.app and cycle.keep_alive and not cycle.waiting_for_100_continue
                and not self.flow.write_paused and scope["method"] == "POST" and scope["path"] == self.early.path):
            self._held = (cycle, app)
            return
        super()._start_asgi_task(cycle, app)

    def on_body(self, body: bytes) -> None:
        super().on_body(body)
        if self._held is not None and len(self._held[0].body) > HOLD_AT_MOST:
            self._release()

    def on_message_complete(self) -> None:
        super().on_message_complete()
        if self._held is None:
            return
        cycle = self._held[0]
        reply = None
        # Not when the server began to drain meanwhile (the app's answer closes), nor while the client reads
        # slower than it asks: the app's send waits for the transport to drain, an early write would not, and
        # a client that pipelines without reading would fill the process's memory with its answers.
        if cycle.keep_alive and not self.flow.write_paused:
            try:
                reply = self.early.answer(cast(MutableMapping[str, Any], cycle.scope), bytes(cycle.body))
            except Exception:
                logger.exception("an early answer failed; the app answers the request")
        if reply is None:
            self._release()
            return
        self._held = None
        head = [STATUS_LINE[reply.status]]
        for name, value in (*self.server_state.default_headers, *reply.headers):
            head += (name, b": ", value, b"\r\n")
        head += (b"\r\n", reply.body)
        # Written at the end of the loop step, as every response is (CoalescingTransport), not at once: the
        # answers to all the connections read in this step then leave together, and a client asleep in its
        # poll is woken once for them, not once each. Written at once, the wake-ups cost ~11 µs a hit in the
        # kernel, and hits ran at 0.36 of the ceiling instead of 0.46 (issue 16, the README).
        self.transport.write(b"".join(head))
        cycle.response_complete = True  # as uvicorn's send marks it: shutdown() and connection_lost() read it
        reply.done()
        self.on_response_complete()  # counts the request; the keep-alive timer, or the next pipelined request

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)
        if self._held is not None:
            self._release()  # the app sees the disconnect and records the request, as it always did

    def _release(self) -> None:
        assert self._held is not None
        cycle, app = self._held
        self._held = None
        super()._start_asgi_task(cycle, app)
