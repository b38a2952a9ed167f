"""Query parameters of ``/probe/api/*``, checked: every problem is collected, then answered at once with a
400 that names each parameter (``param`` lists them), and an unknown parameter is a problem too (a typo
would otherwise silently widen the answer)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from proxy.errors import BadRequestError
from proxy.monitoring.routes import parse_time


class Query:
    def __init__(self, params: Mapping[str, str], known: Sequence[str]) -> None:
        self.params = params
        self.problems: dict[str, str] = {}
        for name in params:
            if name not in known:
                self.problems[name] = (f"unknown query parameter '{name}'" + (f" (known: {', '.join(known)})"
                                                                              if known else " (none is taken)"))

    def _raw(self, name: str) -> str | None:
        raw = self.params.get(name)
        return None if raw is None or raw.strip() == "" else raw.strip()

    def text(self, name: str) -> str | None:
        return self._raw(name)

    def time(self, name: str) -> float | None:
        raw = self._raw(name)
        if raw is None:
            return None
        try:
            return parse_time(raw)
        except ValueError:
            self.problems[name] = f"'{name}' must be an ISO 8601 date or date-time, or Unix seconds; got {raw!r}"
            return None

    def choice(self, name: str, choices: Sequence[str], default: str | None = None) -> str | None:
        raw = self._raw(name)
        if raw is None:
            return default
        if raw not in choices:
            self.problems[name] = f"'{name}' must be one of {', '.join(choices)}; got {raw!r}"
            return default
        return raw

    def integer(self, name: str, low: int, high: int, default: int) -> int:
        raw = self._raw(name)
        if raw is None:
            return default
        try:
            value = int(raw)
        except ValueError:
            value = low - 1
        if not low <= value <= high:
            self.problems[name] = f"'{name}' must be a whole number from {low} to {high}; got {raw!r}"
            return default
        return value

    def window(self, now: float, default_seconds: float) -> tuple[float, float | None]:
        """``from`` and ``to``: by default from ``default_seconds`` before ``to`` (or now), and without an end
        (``None``: up to now, this very moment included)."""
        start, end = self.time("from"), self.time("to")
        start = (now if end is None else end) - default_seconds if start is None else start
        if end is not None and "from" not in self.problems and start > end:
            self.problems["from"] = "'from' must not be later than 'to'"
        return start, end

    def check(self) -> None:
        if self.problems:
            raise BadRequestError("; ".join(self.problems.values()), param=",".join(self.problems),
                                  code="invalid_query")
