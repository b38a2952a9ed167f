"""A throw-away PostgreSQL cluster for the tests: ``initdb`` in a temp dir, ``pg_ctl`` on a free port.

Debian's ``postgresql`` package provides the binaries (``make test`` installs it when missing and it runs as
root). PostgreSQL refuses to run as root, so as root the cluster belongs to the ``postgres`` user and every
command runs through ``runuser``; as anyone else it runs as that user. The cluster trusts local connections,
listens on 127.0.0.1 only and skips every fsync: it holds nothing worth keeping.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import subprocess
import tempfile
import uuid
from pathlib import Path

import pytest

from tests.support.browser import in_ci
from tests.support.servers import _Managed, free_port

SUPERUSER = "postgres"
# durability is pointless here and costs most of a test's time on a loaded machine
FAST_CONFIG = ("fsync = off", "synchronous_commit = off", "full_page_writes = off", "max_connections = 200",
               "shared_buffers = 64MB", "log_min_messages = warning")


def find_bin_dir() -> Path | None:
    """Where ``initdb`` and ``pg_ctl`` are: on PATH (Debian's /usr/local symlinks), else the newest
    /usr/lib/postgresql/<n>/bin."""
    found = shutil.which("pg_ctl")
    if found and shutil.which("initdb"):
        return Path(os.path.realpath(found)).parent
    versions = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"), key=lambda p: int(Path(p).parts[4]))
    return Path(versions[-1]).parent if versions else None


def require_postgres() -> Path:
    """The binaries' directory; skip without them (fail in CI, where ``make test`` installs them)."""
    found = find_bin_dir()
    if found is not None:
        return found
    message = "PostgreSQL is not installed (make postgres, or apt-get install postgresql)"
    if in_ci():
        pytest.fail(message + ": the PostgreSQL tests must run in CI", pytrace=False)
    pytest.skip(message)


class PostgresServer(_Managed):
    """One cluster; :meth:`stop_server` / :meth:`start_server` stop and restart it in place (same port and
    data), :meth:`create_database` gives each test a database of its own."""

    def __init__(self, bin_dir: Path, port: int | None = None) -> None:
        self.bin_dir = bin_dir
        self.port = port or free_port()
        self._dir: Path | None = None
        self._as_postgres = os.geteuid() == 0

    @property
    def data_dir(self) -> Path:
        assert self._dir is not None, "the cluster is not created"
        return self._dir / "data"

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://{SUPERUSER}@127.0.0.1:{self.port}/{database}"

    def _run(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        cmd = [str(self.bin_dir / args[0]), *args[1:]]
        if self._as_postgres:
            cmd = ["runuser", "-u", SUPERUSER, "--", *cmd]
        result = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd="/")
        if result.returncode != 0:
            raise RuntimeError(f"{' '.join(args[:1])} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
        return result

    def start(self) -> None:
        self._dir = Path(tempfile.mkdtemp(prefix="cachegate-pg-"))
        if self._as_postgres:
            user = pwd.getpwnam(SUPERUSER)
            os.chown(self._dir, user.pw_uid, user.pw_gid)
        self._run("initdb", "-D", str(self.data_dir), "-U", SUPERUSER, "-A", "trust", "-E", "UTF8", "--no-sync",
                  "--no-instructions")
        with (self.data_dir / "postgresql.conf").open("a") as conf:
            conf.write("\n".join((f"port = {self.port}", "listen_addresses = '127.0.0.1'",
                                  f"unix_socket_directories = '{self._dir}'", *FAST_CONFIG)) + "\n")
        self.start_server()

    def start_server(self) -> None:
        self._run("pg_ctl", "-D", str(self.data_dir), "-l", str(self._dir / "server.log"), "-w", "-t", "120",
                  "start")

    def stop_server(self) -> None:
        """Stop the server (fast: connections are cut), keeping its data and port."""
        self._run("pg_ctl", "-D", str(self.data_dir), "-m", "fast", "-w", "stop")

    def stop(self) -> None:
        if self._dir is None:
            return
        with contextlib.suppress(Exception):
            self._run("pg_ctl", "-D", str(self.data_dir), "-m", "immediate", "-w", "stop", timeout=60)
        shutil.rmtree(self._dir, ignore_errors=True)
        self._dir = None

    def psql(self, sql: str, database: str = "postgres") -> str:
        return self._run("psql", "-h", "127.0.0.1", "-p", str(self.port), "-U", SUPERUSER, "-d", database, "-XAtq",
                         "-v", "ON_ERROR_STOP=1", "-c", sql).stdout

    def create_database(self) -> str:
        """A new, empty database; its URL."""
        name = "t_" + uuid.uuid4().hex[:12]
        self.psql(f"CREATE DATABASE {name}")
        return self.url(name)
