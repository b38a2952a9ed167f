"""The coalescing transport: the writes of one loop step leave in one system call, and nothing is lost."""

from __future__ import annotations

import asyncio
from typing import Any

from proxy.http.protocol import CoalescingTransport


class FakeTransport:
    def __init__(self) -> None:
        self.writes: list[bytes] = []
        self.closing = False
        self.aborted = False
        self.extra = {"peername": ("127.0.0.1", 1)}

    def write(self, data: bytes) -> None:
        assert not self.closing, "write after close"
        self.writes.append(data)

    def is_closing(self) -> bool:
        return self.closing

    def close(self) -> None:
        self.closing = True

    def abort(self) -> None:
        self.closing = self.aborted = True

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self.extra.get(name, default)

    def get_write_buffer_size(self) -> int:
        return 7


def run(steps: Any) -> FakeTransport:
    async def main() -> FakeTransport:
        raw = FakeTransport()
        await steps(CoalescingTransport(raw, asyncio.get_running_loop()), raw)  # type: ignore[arg-type]
        return raw

    return asyncio.run(main())


def test_a_head_and_its_body_go_out_together_at_once() -> None:
    async def steps(transport: CoalescingTransport, raw: FakeTransport) -> None:
        transport.write(b"HTTP/1.1 200 OK\r\n\r\n")
        transport.write(b"")
        assert raw.writes == []  # the head waits for what follows
        transport.write(b"body")
        assert raw.writes == [b"HTTP/1.1 200 OK\r\n\r\nbody"]  # not held to the end of the step
        transport.write(b"chunk")
        assert raw.writes == [b"HTTP/1.1 200 OK\r\n\r\nbody"]
        await asyncio.sleep(0)  # a lone write goes at the end of the step
        assert raw.writes[-1] == b"chunk"
        transport.write(b"later")
        await asyncio.sleep(0)

    assert run(steps).writes == [b"HTTP/1.1 200 OK\r\n\r\nbody", b"chunk", b"later"]


def test_close_sends_what_was_written_first() -> None:
    async def steps(transport: CoalescingTransport, raw: FakeTransport) -> None:
        transport.write(b"last words")
        transport.close()
        await asyncio.sleep(0)  # the scheduled flush finds nothing left and writes nothing

    raw = run(steps)
    assert raw.writes == [b"last words"]
    assert raw.closing


def test_abort_and_a_peer_gone_drop_pending_bytes() -> None:
    async def aborts(transport: CoalescingTransport, raw: FakeTransport) -> None:
        transport.write(b"x")
        transport.abort()
        await asyncio.sleep(0)

    async def peer_gone(transport: CoalescingTransport, raw: FakeTransport) -> None:
        transport.write(b"x")
        raw.closing = True
        await asyncio.sleep(0)

    assert run(aborts).writes == [] and run(aborts).aborted
    assert run(peer_gone).writes == []


def test_everything_else_is_the_real_transport() -> None:
    async def steps(transport: CoalescingTransport, raw: FakeTransport) -> None:
        assert transport.get_extra_info("peername") == ("127.0.0.1", 1)
        assert transport.get_write_buffer_size() == 7
        assert transport.is_closing() is False

    run(steps)
