"""Settings declared once as :class:`Spec` s and read from the environment: the machinery both services share.

It lives here, in the embedding service, so that the service ships on its own; the proxy's
:mod:`proxy.settings` builds on it. A bad value raises :class:`~embedding_service.errors.SettingsError`
naming the variable (secrets are not echoed).
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from .errors import SettingsError

Parser = Callable[[str], Any]


def parse_bool(raw: str) -> bool:
    value = raw.strip().lower()
    if value in {"1", "true", "yes", "on"}:
        return True
    if value in {"0", "false", "no", "off", ""}:
        return False
    raise ValueError("expected true or false")


def int_in(low: int, high: int | None = None) -> Parser:
    def parse(raw: str) -> int:
        try:
            value = int(raw.strip())
        except ValueError:
            raise ValueError("expected a whole number") from None
        if value < low or (high is not None and value > high):
            raise ValueError(f"expected a whole number from {low} to {high}" if high is not None
                             else f"expected a whole number of at least {low}")
        return value
    return parse


def float_in(low: float, high: float | None = None, *, low_open: bool = False) -> Parser:
    def parse(raw: str) -> float:
        try:
            value = float(raw.strip())
        except ValueError:
            raise ValueError("expected a number") from None
        too_low = value <= low if low_open else value < low
        if too_low or (high is not None and value > high) or not math.isfinite(value):
            bound = f"above {low}" if low_open else f"at least {low}"
            raise ValueError(f"expected a number {bound}" + (f" and at most {high}" if high is not None else ""))
        return value
    return parse


_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]?i?b?)?\s*$", re.IGNORECASE)
_UNITS = {"": 1, "b": 1, "k": 10**3, "kb": 10**3, "kib": 2**10, "m": 10**6, "mb": 10**6, "mib": 2**20,
          "g": 10**9, "gb": 10**9, "gib": 2**30, "t": 10**12, "tb": 10**12, "tib": 2**40}


def parse_size(raw: str) -> int:
    """``256MB``, ``64MiB``, ``1048576`` → bytes."""
    match = _SIZE.match(raw)
    unit = (match.group(2) or "").lower() if match else None
    if match is None or unit not in _UNITS:
        raise ValueError("expected a size such as 268435456, 256MB or 256MiB")
    value = int(float(match.group(1)) * _UNITS[unit])
    if value < 1024:
        raise ValueError("expected a size of at least 1KiB")
    return value


def parse_url(*schemes: str) -> Parser:
    def parse(raw: str) -> str:
        value = raw.strip()
        parts = urlsplit(value)
        if parts.scheme not in schemes or not (parts.netloc or (parts.scheme == "unix" and parts.path)):
            raise ValueError(f"expected a URL starting with {' or '.join(s + '://' for s in schemes)}")
        return value.rstrip("/") if parts.scheme in {"http", "https"} else value
    return parse


def one_of(*choices: str) -> Parser:
    def parse(raw: str) -> str:
        value = raw.strip().lower()
        if value not in choices:
            raise ValueError(f"expected one of {', '.join(choices)}")
        return value
    return parse


def parse_str(raw: str) -> str:
    return raw.strip()


def parse_optional_str(raw: str) -> str | None:
    return raw.strip() or None


def parse_list(raw: str) -> tuple[str, ...]:
    return tuple(item.strip() for item in raw.split(",") if item.strip())


def some_of(*choices: str) -> Parser:
    """A comma-separated list of ``choices`` (at least one)."""
    def parse(raw: str) -> tuple[str, ...]:
        items = parse_list(raw.lower())
        unknown = [item for item in items if item not in choices]
        if unknown or not items:
            raise ValueError(f"expected a comma-separated list of {', '.join(choices)}")
        return items
    return parse


def parse_range(raw: str) -> tuple[float, float]:
    """``MIN:MAX`` seconds, ``0 < MIN <= MAX``."""
    low, sep, high = raw.strip().partition(":")
    try:
        bounds = (float(low), float(high)) if sep else None
    except ValueError:
        bounds = None
    if bounds is None or not (0 < bounds[0] <= bounds[1]) or not all(map(math.isfinite, bounds)):
        raise ValueError("expected MIN:MAX seconds with 0 < MIN <= MAX, such as 5:3600")
    return bounds


def parse_log_level(raw: str) -> str:
    return one_of("debug", "info", "warning", "error", "critical")(raw).upper()


@dataclass(frozen=True)
class Spec:
    env: str
    parse: Parser
    default: Any
    help: str
    secret: bool = False
    aliases: tuple[str, ...] = ()  # other names read when ``env`` is unset

    @property
    def attr(self) -> str:
        return self.env.lower()


def read_env(specs: tuple[Spec, ...], environ: Mapping[str, str] | None = None, *,
             attr: Callable[[Spec], str] = lambda spec: spec.attr,
             keep_empty: frozenset[str] | set[str] = frozenset()) -> dict[str, Any]:
    """Parse the ``specs`` found in ``environ`` (unset or empty: left to the defaults) into field values;
    a bad value raises :class:`SettingsError` naming the setting (secrets are not echoed)."""
    environ = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    for spec in specs:
        raw = environ.get(spec.env)
        for alias in spec.aliases:
            raw = environ.get(alias) if raw is None or raw.strip() == "" else raw
        if raw is None or (raw.strip() == "" and spec.env not in keep_empty):
            continue
        try:
            values[attr(spec)] = spec.parse(raw)
        except ValueError as exc:
            shown = "<redacted>" if spec.secret else repr(raw)
            raise SettingsError(f"{spec.env}: {exc}, got {shown}", param=spec.env) from None
    return values
