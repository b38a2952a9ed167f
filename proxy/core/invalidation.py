"""What ``POST /admin/cache/clear`` may be narrowed by, checked before anything is deleted. Pure: no I/O.

- ``pattern``: a glob over the exact tier's key layout, ``<prefix>exact:<owner>:<namespace>:<model>:{<digest>}``
  (:func:`proxy.core.canonical.exact_key`; every hit names its key in ``x-cache-key``). It must start with
  ``<prefix>exact:`` and may use ``*`` (any run of characters) and ``?`` (one character) besides the
  characters keys are made of (letters, digits, ``:``, ``-``, ``_``, ``.``, and the braces of the digest's
  hash tag, which every store reads literally). Nothing else: ``[...]`` and
  ``\\`` mean different things to Redis, SQLite and Python's ``fnmatch``, so a pattern that one store would
  read more widely than another is refused rather than guessed at.
- ``older_than``: seconds; entries stored longer ago than that go. A whole or decimal number from 0 to
  :data:`MAX_AGE`.

A bad value raises :class:`~proxy.errors.BadRequestError` naming the parameter: a malformed narrowing is a
400, never a wider clear.
"""

from __future__ import annotations

import math
import re
from typing import Any

from proxy.errors import BadRequestError

MAX_PATTERN = 512
MAX_AGE = 10 * 365 * 86400.0
_PATTERN = re.compile(r"[A-Za-z0-9:_.*?{}-]+")
_NUMBER = re.compile(r"\d+(\.\d+)?")


def parse_pattern(raw: Any, prefix: str) -> str:
    layout = f"{prefix}exact:<owner>:<namespace>:<model>:{{<digest>}}"
    if not isinstance(raw, str):
        raise BadRequestError("pattern must be a string.", param="pattern", code="invalid_type")
    if not raw or len(raw) > MAX_PATTERN:
        raise BadRequestError(f"pattern must be 1 to {MAX_PATTERN} characters.", param="pattern",
                              code="invalid_value")
    if not raw.startswith(f"{prefix}exact:"):
        raise BadRequestError(f"pattern must start with {prefix}exact: (keys are {layout}).", param="pattern",
                              code="invalid_value")
    if not _PATTERN.fullmatch(raw):  # fullmatch: a trailing newline is refused too
        raise BadRequestError(f"pattern may use * and ? besides letters, digits, ':', '-', '_', '.', '{{' and '}}' "
                              f"(keys are {layout}).", param="pattern", code="invalid_value")
    return raw


def parse_older_than(raw: Any) -> float:
    if isinstance(raw, bool) or not isinstance(raw, int | float | str):
        raise BadRequestError("older_than must be a number of seconds.", param="older_than", code="invalid_type")
    if isinstance(raw, str):
        text = raw.strip()
        if not _NUMBER.fullmatch(text):
            raise BadRequestError(f"older_than must be a number of seconds, got {raw[:40]!r}.", param="older_than",
                                  code="invalid_value")
        value = float(text)
    else:
        value = float(raw)
    if not math.isfinite(value) or not 0 <= value <= MAX_AGE:
        raise BadRequestError(f"older_than must be from 0 to {MAX_AGE:.0f} seconds.", param="older_than",
                              code="invalid_value")
    return value
