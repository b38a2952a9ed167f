"""The request log: one fixed-width line per chat request, appended to ``LOG_PATH`` through aiofiles.

``2026-02-21 10:00:01 | EXACT_HIT     | llama-3.3-70b-versatile       |      423 tokens | $0.00025``

(UTC time; for a hit the tokens and dollars are what it saved, otherwise what the upstream charged.)
The observer only appends a tuple; a background task formats the lines and writes them in batches to a
file it keeps open.
"""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path
from typing import Any

import aiofiles
from aiofiles.threadpool.text import AsyncTextIOWrapper

logger = logging.getLogger("cachegate.request_log")

MAX_BUFFER = 100_000
Item = tuple[float, str]  # (unix time, the line after the time stamp: see :func:`line_tail`)
# Buffered as a flat list [time, tail, time, tail, ...]: no per-line objects for the garbage collector.


def line_tail(outcome: str, model: str, tokens: int, dollars: float) -> str:
    return f" | {outcome:<13} | {model:<29} | {tokens:>8} tokens | ${dollars:.5f}\n"


def stamp(ts: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(ts))


def format_line(ts: float, outcome: str, model: str, tokens: int, dollars: float) -> str:
    return stamp(ts) + line_tail(outcome, model, tokens, dollars)


def format_lines(flat: list[Any]) -> str:
    """The lines of a flat ``[time, tail, ...]`` list, formatting each second's time stamp once."""
    parts, last_second, last_stamp = [], -1, ""
    for ts, tail in zip(flat[::2], flat[1::2], strict=True):
        second = int(ts)
        if second != last_second:
            last_second, last_stamp = second, stamp(ts)
        parts.append(last_stamp)
        parts.append(tail)
    return "".join(parts)


class RequestLog:
    def __init__(self, path: str) -> None:
        self.path = Path(path)
        self._buffer: list[Any] = []
        self._file: AsyncTextIOWrapper | None = None
        self._lock = asyncio.Lock()
        self.dropped = 0
        self.written = 0

    def append(self, item: Item) -> None:
        if len(self._buffer) >= 2 * MAX_BUFFER:
            self.dropped += 1
            return
        self._buffer.extend(item)

    def append_flat(self, values: list[Any]) -> None:
        """Queue lines given as a flat ``[time, tail, time, tail, ...]`` list."""
        room = 2 * MAX_BUFFER - len(self._buffer)
        if len(values) > room:
            room -= room % 2
            self.dropped += (len(values) - room) // 2
            values = values[:room]
        self._buffer += values

    async def open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file = await aiofiles.open(self.path, "a", encoding="utf-8")

    async def flush(self) -> None:
        async with self._lock:
            if not self._buffer or self._file is None:
                return
            flat, self._buffer = self._buffer, []
            lines = len(flat) // 2
            try:
                await self._file.write(format_lines(flat))
                await self._file.flush()
            except Exception as exc:  # a full disk must not take requests down with it
                self.dropped += lines
                logger.warning("request log: writing %d lines to %s failed: %s", lines, self.path, exc)
                return
            self.written += lines

    async def close(self) -> None:
        await self.flush()
        if self._file is not None:
            await self._file.close()
            self._file = None

    def status(self) -> dict[str, Any]:
        return {"path": str(self.path), "written": self.written, "dropped": self.dropped}
