"""The proxy's side of the SQLite writer process (:mod:`proxy.platform.sqlite_child`, which says why it exists).

:class:`WriterProcess` starts the child when the first batch comes, sends each batch over its stdin from the
event loop itself (no thread of ours takes the GIL for it), one batch at a time, and reads the answer. The
rows are marshalled one statement's worth at a time, with a turn of the loop between: a 100,000-row batch
never holds the loop for more than one chunk (~0.3 ms).

A child that cannot start, dies, or falls out of step (a batch cancelled half-way) is killed and started
afresh at the next batch; the batch fails with ``sqlite3.OperationalError``, which the caller treats as any
failed write (the usage history keeps its rows and tries again under the same id, so a batch the child had
committed is not written twice). An error the child met is raised as the same ``sqlite3`` class.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import marshal
import sqlite3
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from proxy.platform import sqlite_child
from proxy.platform.sql import Statement

logger = logging.getLogger("cachegate.sqlite")

#: seconds the child may take to start, and to end once its input is closed, before it is killed
START_TIMEOUT = 30.0
STOP_TIMEOUT = 10.0
_ERRORS: dict[str, type[sqlite3.Error]] = {cls.__name__: cls for cls in (
    sqlite3.Error, sqlite3.DatabaseError, sqlite3.OperationalError, sqlite3.IntegrityError,
    sqlite3.ProgrammingError, sqlite3.DataError, sqlite3.InternalError, sqlite3.NotSupportedError)}


def _statement(statement: Statement) -> sqlite_child.Statement:
    return statement.sql, list(statement.params) if statement.many else tuple(statement.params), statement.many


class WriterProcess:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._proc: asyncio.subprocess.Process | None = None
        self._step = 0  # values a statement binds, from the child's greeting
        self._lock = asyncio.Lock()
        self.starts = 0

    async def insert(self, table: str, columns: Sequence[str], flat: list[Any], then: Sequence[Statement],
                     once: Statement | None) -> bool:
        async with self._lock:
            try:
                proc = await self._running()
                return await self._send(proc, table, columns, flat, then, once)
            except sqlite3.Error as exc:
                if type(exc) is sqlite3.DatabaseError:  # a damaged file (its subclasses are not damage):
                    await self._discard()  # the next batch opens the path afresh
                raise
            except (OSError, EOFError, ValueError, TimeoutError) as exc:  # IncompleteReadError is an EOFError
                await self._discard()
                raise sqlite3.OperationalError(f"the SQLite writer process for {self.path} failed: "
                                               f"{type(exc).__name__}: {exc}") from exc
            except BaseException:
                await self._discard()  # cancelled half-way: the stream is out of step
                raise

    async def _running(self) -> asyncio.subprocess.Process:
        if self._proc is not None and self._proc.returncode is None:
            return self._proc
        self._proc = None
        # start_new_session: a terminal's Ctrl-C goes to the proxy's group, not to the child; the proxy
        # closes the child's input once its last batch is written
        proc = await asyncio.create_subprocess_exec(
            sys.executable, sqlite_child.__file__, str(self.path), stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE, start_new_session=True)
        self._proc = proc
        self.starts += 1
        kind, step = await asyncio.wait_for(self._read(proc), START_TIMEOUT)
        if kind != "ready":
            raise ValueError(f"unexpected greeting {kind!r}")
        self._step = int(step)
        return proc

    async def _send(self, proc: asyncio.subprocess.Process, table: str, columns: Sequence[str], flat: list[Any],
                    then: Sequence[Statement], once: Statement | None) -> bool:
        assert proc.stdin is not None
        step = max(1, self._step // len(columns)) * len(columns)
        starts = range(0, len(flat), step)
        self._write(proc, ("insert", table, tuple(columns), [_statement(one) for one in then],
                           _statement(once) if once is not None else None, len(starts)))
        for start in starts:
            self._write(proc, flat[start:start + step])
            await proc.stdin.drain()  # waits only when the pipe is full
            await asyncio.sleep(0)  # a turn of the loop between chunks: requests go on while a batch is sent
        reply = await self._read(proc)
        if reply[0] == "ok":
            return bool(reply[1])
        _, name, message = reply
        raise _ERRORS.get(name, sqlite3.Error)(message)

    @staticmethod
    def _write(proc: asyncio.subprocess.Process, value: Any) -> None:
        assert proc.stdin is not None
        data = marshal.dumps(value)
        proc.stdin.write(len(data).to_bytes(4, "little") + data)

    @staticmethod
    async def _read(proc: asyncio.subprocess.Process) -> Any:
        assert proc.stdout is not None
        size = int.from_bytes(await proc.stdout.readexactly(4), "little")
        return marshal.loads(await proc.stdout.readexactly(size))

    async def stop(self) -> None:
        """End the child: its input closed (it ends once the batch in hand is written), killed if it does not."""
        proc, self._proc = self._proc, None
        if proc is None or proc.returncode is not None:
            return
        if proc.stdin is not None:
            proc.stdin.close()
        try:
            await asyncio.wait_for(proc.wait(), STOP_TIMEOUT)
        except TimeoutError:
            logger.warning("the SQLite writer process for %s did not end in %.0f s: killed", self.path, STOP_TIMEOUT)
            await self._kill(proc)

    async def _discard(self) -> None:
        """Kill the child at once: its stream is out of step, or its file damaged; the next batch starts one."""
        proc, self._proc = self._proc, None
        if proc is not None:
            await self._kill(proc)

    @staticmethod
    async def _kill(proc: asyncio.subprocess.Process) -> None:
        if proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
        await proc.wait()
