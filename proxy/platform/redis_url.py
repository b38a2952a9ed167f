"""What ``REDIS_URL`` names: one server, a cluster, or a Sentinel-watched master. Pure: no I/O.

- ``redis://[user:password@]host[:port][/db]``, ``rediss://…`` (TLS), ``unix:///path/to.sock`` — one server
  (or, with ``REDIS_CLUSTER=true``, a cluster reached through that node);
- ``redis+cluster://[user:password@]host:port[,host:port…]`` (``rediss+cluster://`` with TLS) — a Redis
  Cluster; the nodes listed are only where the client starts, it learns the rest from them;
- ``redis+sentinel://[user:password@]host:port[,host:port…]/service[/db]`` (``rediss+sentinel://``) — the
  master that the listed sentinels name ``service``; the credentials are the master's.

:func:`parse_redis_url` returns a :class:`RedisTarget` whose :attr:`~RedisTarget.kind` is the name the
registry chooses the Redis home by (``redis``, ``redis-cluster``, ``redis-sentinel``).
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

SINGLE, CLUSTER, SENTINEL = "redis", "redis-cluster", "redis-sentinel"
KINDS = (SINGLE, CLUSTER, SENTINEL)
REDIS_PORT = 6379
SENTINEL_PORT = 26379

_SCHEMES = {
    "redis": (SINGLE, False), "rediss": (SINGLE, True), "unix": (SINGLE, False),
    "redis+cluster": (CLUSTER, False), "rediss+cluster": (CLUSTER, True),
    "redis+sentinel": (SENTINEL, False), "rediss+sentinel": (SENTINEL, True),
}
SCHEMES = tuple(_SCHEMES)

Node = tuple[str, int]


@dataclass(frozen=True)
class RedisTarget:
    kind: str
    #: a URL redis-py's ``from_url`` takes for one server (the first node's, for a cluster or sentinels)
    url: str
    nodes: tuple[Node, ...] = ()
    tls: bool = False
    username: str | None = None
    password: str | None = None
    db: int = 0
    service: str | None = None  # the master's name, for Sentinel


def parse_redis_url(raw: str, *, cluster: bool = False) -> RedisTarget:
    """The target ``raw`` names; ``cluster`` (``REDIS_CLUSTER``) makes a plain ``redis://`` URL a cluster.

    Raises ``ValueError`` saying what is wrong (the settings turn it into an error naming REDIS_URL).
    """
    value = raw.strip()
    parts = urlsplit(value)
    if parts.scheme not in _SCHEMES:
        raise ValueError(f"expected a URL starting with {' or '.join(s + '://' for s in SCHEMES)}")
    kind, tls = _SCHEMES[parts.scheme]
    if parts.scheme == "unix":
        if not parts.path:
            raise ValueError("unix:// needs the socket's path, e.g. unix:///run/redis.sock")
        if cluster:
            raise ValueError("REDIS_CLUSTER needs a TCP address: a cluster cannot be reached over a unix socket")
        return RedisTarget(SINGLE, value)
    userinfo, _, hosts = parts.netloc.rpartition("@")
    username, password = _credentials(userinfo)
    if kind == SINGLE and cluster:
        kind = CLUSTER
    default_port = SENTINEL_PORT if kind == SENTINEL else REDIS_PORT
    nodes = tuple(_node(text, default_port) for text in hosts.split(","))
    if kind == SINGLE and len(nodes) > 1:
        raise ValueError("several hosts need redis+cluster:// (or redis+sentinel://)")
    path = [segment for segment in parts.path.split("/") if segment]
    service = None
    if kind == SENTINEL:
        if not path:
            raise ValueError("redis+sentinel:// needs the master's name: redis+sentinel://host:26379/mymaster")
        service, path = unquote(path[0]), path[1:]
    db = _db(path)
    if kind == CLUSTER and db:
        raise ValueError("a Redis Cluster has database 0 only")
    host, port = nodes[0]
    netloc = f"{parts.netloc.rpartition('@')[0] + '@' if userinfo else ''}{_host_text(host)}:{port}"
    url = f"{'rediss' if tls else 'redis'}://{netloc}/{db}"
    if kind == SINGLE:
        url = f"{parts.scheme}://{parts.netloc}{parts.path or '/0'}" + (f"?{parts.query}" if parts.query else "")
    return RedisTarget(kind, url, nodes, tls, username, password, db, service)


def _credentials(userinfo: str) -> tuple[str | None, str | None]:
    if not userinfo:
        return None, None
    user, colon, password = userinfo.partition(":")
    return (unquote(user) or None), (unquote(password) if colon else None)


def _node(text: str, default_port: int) -> Node:
    text = text.strip()
    if not text:
        raise ValueError("an empty host in the list of hosts")
    if text.startswith("["):  # [::1]:6379
        host, _, rest = text[1:].partition("]")
        port_text = rest[1:] if rest.startswith(":") else ""
    else:
        host, _, port_text = text.rpartition(":") if ":" in text else (text, "", "")
    if not host:
        raise ValueError(f"no host in {text!r}")
    if not port_text:
        return host, default_port
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise ValueError(f"bad port in {text!r}")
    return host, int(port_text)


def _db(path: list[str]) -> int:
    if not path:
        return 0
    if len(path) > 1 or not path[0].isdigit():
        raise ValueError(f"expected a database number after the host, got {'/'.join(path)!r}")
    return int(path[0])


def _host_text(host: str) -> str:
    return f"[{host}]" if ":" in host else host
