"""Looking at a ``cachegate serve --workers N`` from outside, through the operating system (psutil): which
children of the supervisor listen on the port, and which worker holds a given client connection.

Nothing in cachegate says which process answered a request (and nothing new is exposed for the tests): a
client's connection is matched to the worker whose socket table holds its other end.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import socket
import time
from typing import Any

import psutil

from tests.support.servers import free_port


def free_ports(count: int) -> int:
    """The first of ``count`` consecutive ports free on 127.0.0.1 now (a metrics listener for each worker):
    ``free_port`` checks one, and the next may be a connection's of another program on this shared machine."""
    while True:
        first = free_port()
        with contextlib.ExitStack() as held:
            try:
                for port in range(first + 1, first + count):
                    sock = held.enter_context(socket.socket())
                    sock.bind(("127.0.0.1", port))
            except OSError:
                continue
        return first


def listening(pid: int, port: int) -> bool:
    try:
        connections = psutil.Process(pid).net_connections(kind="tcp")
    except (psutil.NoSuchProcess, psutil.ZombieProcess):
        return False
    return any(c.status == psutil.CONN_LISTEN and c.laddr.port == port for c in connections)


def workers_listening(supervisor: int, port: int, count: int, *, timeout: float = 90.0) -> list[int]:
    """The pids of the supervisor's children listening on ``port``, once there are ``count`` of them (a worker
    listens only once its app has started)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            children = [child.pid for child in psutil.Process(supervisor).children()]
        except psutil.NoSuchProcess:
            children = []
        pids = sorted(pid for pid in children if listening(pid, port))
        if len(pids) == count:
            return pids
        if time.monotonic() > deadline:
            raise TimeoutError(f"{len(pids)} of {count} workers listening on {port} (children: {children})")
        time.sleep(0.1)


def owner(pids: list[int], port: int, client_port: int) -> int | None:
    """Which of ``pids`` holds the accepted end of the connection from ``client_port`` to ``port``."""
    for pid in pids:
        try:
            connections = psutil.Process(pid).net_connections(kind="tcp")
        except psutil.NoSuchProcess:
            continue
        if any(c.laddr.port == port and c.raddr and c.raddr.port == client_port for c in connections):
            return pid
    return None


def request(conn: http.client.HTTPConnection, method: str, path: str, body: Any = None,
            headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], Any]:
    """One request on a kept-alive connection: (status, lower-cased headers, JSON body or text)."""
    payload = json.dumps(body).encode() if body is not None else None
    conn.request(method, path, body=payload, headers={"content-type": "application/json", **(headers or {})})
    response = conn.getresponse()
    raw = response.read()
    head = {name.lower(): value for name, value in response.getheaders()}
    try:
        return response.status, head, json.loads(raw)
    except ValueError:
        return response.status, head, raw.decode(errors="replace")


def connections_to_each(pids: list[int], port: int, *, tries: int = 200) -> dict[int, http.client.HTTPConnection]:
    """A kept-alive connection to each worker: connections are opened (and the kernel spreads them) until every
    worker holds one; the others are closed."""
    found: dict[int, http.client.HTTPConnection] = {}
    for _ in range(tries):
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        request(conn, "GET", "/health/live")  # answered: the worker has accepted it
        assert conn.sock is not None
        pid = owner(pids, port, conn.sock.getsockname()[1])
        if pid is not None and pid not in found:
            found[pid] = conn
            if len(found) == len(pids):
                return found
        else:
            conn.close()
    for conn in found.values():
        conn.close()
    raise AssertionError(f"{tries} connections reached only {sorted(found)} of the workers {pids}")
