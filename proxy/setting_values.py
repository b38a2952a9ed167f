"""Parsers of the values some settings take, beyond the generic ones of :mod:`embedding_service.envspec`.

Each takes the raw text and answers the value or raises ``ValueError`` saying what was expected;
:mod:`proxy.settings` names the setting around it. :func:`key_hash` and :func:`split_bind_address` are also
used where the values are read (the client allow-list, the workers' listeners).
"""

from __future__ import annotations

import ipaddress
import re

from embedding_service.envspec import float_in, parse_size
from proxy.platform.redis_url import parse_redis_url

BALANCE_UNITS = ("diem", "usd")


def parse_balance_floor(raw: str) -> tuple[float, str | None]:
    """``5`` (DIEM where the upstream reports it, else USD), ``5 diem`` or ``5usd`` → (amount, unit or None)."""
    text = raw.strip().lower()
    unit = next((u for u in BALANCE_UNITS if text.endswith(u)), None)
    number = text.removesuffix(unit).strip() if unit else text
    try:
        amount = float_in(0)(number)
    except ValueError:
        raise ValueError("expected an amount such as 5, 5diem or 5usd") from None
    return amount, unit


_SHA256_HEX = re.compile(r"(?:sha256:)?([0-9a-fA-F]{64})")


def key_hash(entry: str) -> str | None:
    """The SHA-256 hex digest an allow-list entry holds (``<64 hex>`` or ``sha256:<64 hex>``, any case),
    lower-cased; ``None`` if it is not one."""
    match = _SHA256_HEX.fullmatch(entry.strip())
    return match.group(1).lower() if match else None


def parse_key_hashes(raw: str) -> tuple[str, ...]:
    """Comma-separated SHA-256 hashes of client keys. A value that is not a hash is refused without being
    echoed: it is most likely a key pasted by mistake."""
    hashes = []
    for number, entry in enumerate((item for item in raw.split(",") if item.strip()), start=1):
        digest = key_hash(entry)
        if digest is None:
            raise ValueError(f"entry {number} is not a SHA-256 hash (64 hex digits, optionally 'sha256:'); list "
                             "hashes of the keys, never the keys: printf %s \"$KEY\" | sha256sum")
        hashes.append(digest)
    return tuple(hashes)


def is_loopback_host(host: str) -> bool:
    """Whether HOST only listens on loopback (``127.0.0.0/8``, ``::1``, ``localhost``)."""
    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip().strip("[]")).is_loopback
    except ValueError:
        return False



def parse_redis_setting(raw: str) -> str:
    """A URL :func:`~proxy.platform.redis_url.parse_redis_url` understands (checked again with REDIS_CLUSTER)."""
    parse_redis_url(raw)
    return raw.strip()



def parse_bind_address(raw: str) -> str:
    """``host:port`` (``[v6]:port`` for IPv6), port 1 to 65535; answered as given, stripped."""
    value = raw.strip()
    host, colon, port = value.rpartition(":")
    if not colon or not host or not port.isdigit() or not 1 <= int(port) <= 65535:
        raise ValueError("expected host:port, e.g. 127.0.0.1:9090 or [::1]:9090")
    if host.startswith("["):
        if not host.endswith("]"):
            raise ValueError("expected [address]:port for IPv6")
        try:
            ipaddress.IPv6Address(host[1:-1])
        except ValueError:
            raise ValueError(f"{host[1:-1]!r} is not an IPv6 address") from None
    elif ":" in host or any(c.isspace() for c in host):
        raise ValueError("expected host:port (an IPv6 address goes in brackets: [::1]:9090)")
    return value


def split_bind_address(value: str) -> tuple[str, int]:
    host, _, port = value.rpartition(":")
    return host.strip("[]"), int(port)


def parse_size_or_off(raw: str) -> int:
    """A size (``2GB``), or ``0`` for a level that is turned off."""
    return 0 if raw.strip() == "0" else parse_size(raw)
