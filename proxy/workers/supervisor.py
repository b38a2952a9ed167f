"""The ``cachegate serve --workers N`` process: it starts N workers, passes signals on, starts again a worker
that died, and gives up when one cannot start.

It serves nothing itself and holds no socket: each worker binds ``HOST:PORT`` with ``SO_REUSEPORT``. Like
uvicorn's ``supervisors.Multiprocess`` it polls its children from one loop, but each child is a whole
``cachegate serve`` process (:func:`worker_command`) rather than a ``multiprocessing`` child, so it keeps
everything ``cachegate serve`` does on its own (the drain on SIGTERM, its metrics listener), and a restart
loads the code afresh.

- SIGTERM / SIGINT: passed on to every worker (each drains, or stops at once, as a single ``cachegate serve``
  does); the supervisor waits for all of them and exits 0 when each stopped cleanly (:func:`exit_status`). A
  second signal is passed on too (a second SIGTERM stops a drain's wait; a second SIGINT forces).
- A worker that died is started again after :attr:`Restarts.delay` (logged); one that could not start, or
  that keeps dying right after its start, stops the others and the supervisor exits non-zero naming it.
- Workers run in a process group of their own, so a terminal's Ctrl-C reaches the supervisor only and each
  worker sees one SIGINT; a worker whose supervisor is gone stops by itself (:class:`WorkerServer`).
"""

from __future__ import annotations

import contextlib
import logging
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import FrameType

from proxy.workers.plan import WORKER_INDEX, Restarts, describe, exit_status

logger = logging.getLogger("cachegate.workers")

SIGNALS = (signal.SIGTERM, signal.SIGINT)


def worker_command() -> list[str]:
    """How a worker is started: this interpreter running ``cachegate serve`` (its settings in its environment)."""
    return [sys.executable, "-m", "proxy.cli", "serve"]


@dataclass
class Worker:
    index: int
    process: subprocess.Popen[bytes] | None = None
    started_at: float = 0.0
    restart_at: float | None = None  # when a worker that died is started again


class Supervisor:
    def __init__(self, count: int, command: Sequence[str], environ: Mapping[str, str], *,
                 restarts: Restarts | None = None, poll: float = 0.1) -> None:
        self.workers = [Worker(index) for index in range(count)]
        self.command = list(command)
        self.environ = dict(environ)
        self.restarts = restarts or Restarts()
        self.poll = poll
        self.stopping: signal.Signals | None = None  # the signal the workers were told to stop with
        self.failure: int | None = None  # the exit code when the supervisor gave up
        self._received: list[int] = []

    def run(self) -> int:
        previous = {sig: signal.signal(sig, self._receive) for sig in SIGNALS}
        try:
            for worker in self.workers:
                self._start(worker)
            return self._loop()
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            self._end_leftovers()

    def _receive(self, sig: int, frame: FrameType | None) -> None:
        self._received.append(sig)  # handled by the loop: nothing but this in a signal handler

    def _loop(self) -> int:
        final: list[int] = []  # how each worker ended once they were told to stop
        while True:
            while self._received:
                self._stop(signal.Signals(self._received.pop(0)))
            now = time.monotonic()
            for worker in self.workers:
                code = worker.process.poll() if worker.process is not None else None
                if worker.process is not None and code is not None:
                    pid, worker.process = worker.process.pid, None
                    if self.stopping is not None:
                        final.append(code)
                        logger.info("worker %d (pid %d) %s", worker.index, pid,
                                    "stopped" if exit_status([code]) == 0 else describe(code))
                    else:
                        self._ended(worker, pid, code, now)
                elif worker.restart_at is not None and now >= worker.restart_at and self.stopping is None:
                    self._start(worker)
            if self.stopping is not None and all(worker.process is None for worker in self.workers):
                break
            time.sleep(self.poll)
        if self.failure is not None:
            return self.failure
        status = exit_status(final)
        logger.info("all %d workers stopped%s", len(self.workers), "" if status == 0 else f" (exit {status})")
        return status

    def _start(self, worker: Worker) -> None:
        env = {**self.environ, WORKER_INDEX: str(worker.index)}
        worker.process = subprocess.Popen(self.command, env=env, process_group=0)
        worker.started_at, worker.restart_at = time.monotonic(), None
        logger.info("worker %d started (pid %d)", worker.index, worker.process.pid)

    def _ended(self, worker: Worker, pid: int, code: int, now: float) -> None:
        verdict = self.restarts.after_exit(worker.index, code, now - worker.started_at)
        if verdict.restart_in is None:
            logger.error("worker %d (pid %d) %s: stopping the other workers", worker.index, pid, verdict.reason)
            self.failure = exit_status([code]) or 1
            # SIGTERM, not SIGINT: a worker still starting (importing) dies of it quietly, where SIGINT would print
            # a KeyboardInterrupt traceback; one that serves drains as on any stop.
            self._stop(signal.SIGTERM)
            return
        worker.restart_at = now + verdict.restart_in
        logger.warning("worker %d (pid %d) %s: starting it again in %gs", worker.index, pid, verdict.reason,
                       verdict.restart_in)

    def _stop(self, sig: signal.Signals) -> None:
        if self.stopping is None:
            logger.info("%s: stopping %d workers", sig.name, len(self.workers))
        self.stopping = sig
        for worker in self.workers:
            worker.restart_at = None
            if worker.process is not None:
                with contextlib.suppress(ProcessLookupError):
                    worker.process.send_signal(sig)

    def _end_leftovers(self) -> None:
        """Only after an error in the loop itself: no worker may outlive the supervisor."""
        for worker in self.workers:
            if worker.process is not None and worker.process.poll() is None:
                worker.process.terminate()
                try:
                    worker.process.wait(30)
                except subprocess.TimeoutExpired:
                    worker.process.kill()
                    worker.process.wait()
