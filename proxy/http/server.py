"""How the proxy is served: uvicorn, on the protocol of :mod:`proxy.http.protocol` (one write per response,
and the exact hits the process holds answered before ASGI).

:class:`DrainingServer` is how ``cachegate serve`` stops on SIGTERM: readiness first, then a graceful drain.
:class:`WorkerServer` is the same for a worker of ``cachegate serve --workers N``, which listens on sockets of
its own made by :func:`listening_sockets` (``SO_REUSEPORT``: the kernel spreads connections over the workers).
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import signal
import socket
import time
from collections.abc import Callable, Iterator
from types import FrameType
from typing import Any

import uvicorn

from proxy.http.protocol import CoalescingHttpProtocol, EarlyAnswerProtocol, EarlyAnswers

logger = logging.getLogger("cachegate.server")


def uvicorn_options(early: EarlyAnswers | None = None) -> dict[str, Any]:
    """The uvicorn settings every way of serving the proxy shares (the CLI and the tests); with ``early``, the
    requests it can answer are answered before ASGI (:class:`~proxy.http.protocol.EarlyAnswerProtocol`)."""
    http: Any = CoalescingHttpProtocol if early is None else functools.partial(EarlyAnswerProtocol, early=early)
    return {"http": http, "loop": "auto", "access_log": False}


class DrainingServer(uvicorn.Server):
    """uvicorn, stopping cleanly behind a load balancer.

    On the first SIGTERM it calls ``on_drain`` (readiness turns 503) and goes on accepting for ``delay``
    seconds, so the balancer's health checks see the 503 and send new requests elsewhere; then uvicorn's
    own graceful shutdown runs: it stops accepting, lets the requests in flight (streams too) finish for up
    to ``timeout_graceful_shutdown`` (DRAIN_TIMEOUT), and the lifespan's shutdown flushes the ledger. SIGINT
    (Ctrl-C) and a second signal stop at once, as plain uvicorn does.
    """

    def __init__(self, config: uvicorn.Config, *, on_drain: Callable[[], None], delay: float) -> None:
        super().__init__(config)
        self.on_drain = on_drain
        self.delay = delay
        self.exit_at: float | None = None

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        if sig == signal.SIGTERM and self.exit_at is None and not self.should_exit:
            self._captured_signals.append(sig)  # re-raised after shutdown, as uvicorn does
            self.exit_at = time.monotonic() + self.delay
            self.on_drain()
            logger.info("SIGTERM: draining (readiness is 503); stopping in %gs", self.delay)
            return
        super().handle_exit(sig, frame)

    async def on_tick(self, counter: int) -> bool:
        if self.exit_at is not None and time.monotonic() >= self.exit_at:
            self.should_exit = True
        return await super().on_tick(counter)


class WorkerServer(DrainingServer):
    """A worker of ``cachegate serve --workers N``: drains on SIGTERM as :class:`DrainingServer` (its supervisor
    passes the signal on), and drains by itself once the supervisor is gone (killed with SIGKILL, say), so that
    no worker outlives it: gunicorn's workers watch their parent the same way."""

    def __init__(self, config: uvicorn.Config, *, on_drain: Callable[[], None], delay: float, parent: int) -> None:
        super().__init__(config, on_drain=on_drain, delay=delay)
        self.parent = parent

    async def on_tick(self, counter: int) -> bool:
        if self.exit_at is None and not self.should_exit and os.getppid() != self.parent:
            logger.warning("the supervisor (pid %d) is gone: stopping", self.parent)
            self.handle_exit(signal.SIGTERM, None)
        return await super().on_tick(counter)


def listening_sockets(host: str, port: int, *, reuse_port: bool) -> list[socket.socket]:
    """Sockets bound to every address ``host`` names, as ``asyncio``'s ``create_server`` (what uvicorn does with a
    host and port) binds them: ``SO_REUSEADDR``, IPv6 sockets IPv6 only; with ``reuse_port``, ``SO_REUSEPORT`` too,
    so the other workers (only processes of the same user) bind the same port. Raises ``OSError`` (the port
    is taken, the address is not this machine's) with nothing left open."""
    infos = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    sockets: list[socket.socket] = []
    try:
        for family, kind, proto, _, address in dict.fromkeys(infos):
            sock = socket.socket(family, kind, proto)
            sockets.append(sock)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if reuse_port:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            if family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            sock.bind(address)
    except OSError:
        for sock in sockets:
            sock.close()
        raise
    return sockets


class QuietServer(uvicorn.Server):
    """uvicorn that leaves the signals to another server of the same process (the metrics listener beside the
    public one: the public server drains on SIGTERM, and this one stops with it)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield
