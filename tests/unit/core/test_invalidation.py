"""The clear's narrowing parameters, one value at a time."""

from __future__ import annotations

from typing import Any

import pytest

from proxy.core.invalidation import MAX_AGE, parse_older_than, parse_pattern
from proxy.errors import BadRequestError


@pytest.mark.parametrize("pattern", ["cg:exact:*", "cg:exact:*:-:*", "cg:exact:abc?:*:0123456789ab:*",
                                     "cg:exact:o1:ns:m1:d1", "cg:exact:o1:-:m1:{d1}"])
def test_patterns_over_the_key_layout(pattern: str) -> None:
    assert parse_pattern(pattern, "cg:") == pattern


@pytest.mark.parametrize(("pattern", "says"), [
    ("*", "must start with cg:exact:"),
    ("cg:semantic:*", "must start with cg:exact:"),
    ("other:exact:*", "must start with cg:exact:"),
    ("cg:exact:[a-z]*", "may use * and ?"),
    ("cg:exact:\\*", "may use * and ?"),
    ("cg:exact:* ", "may use * and ?"),
    ("cg:exact:é", "may use * and ?"),
    ("cg:exact:*\n", "may use * and ?"),  # a trailing newline: refused, not matched before it
    ("", "1 to 512"),
    ("cg:exact:" + "a" * 600, "1 to 512"),
    (5, "must be a string"),
    (None, "must be a string"),
])
def test_bad_patterns_are_refused_naming_the_parameter(pattern: Any, says: str) -> None:
    with pytest.raises(BadRequestError) as caught:
        parse_pattern(pattern, "cg:")
    assert caught.value.param == "pattern" and says in caught.value.message


@pytest.mark.parametrize(("raw", "seconds"), [("0", 0.0), ("3600", 3600.0), (" 1.5 ", 1.5), (60, 60.0), (2.5, 2.5)])
def test_older_than(raw: Any, seconds: float) -> None:
    assert parse_older_than(raw) == seconds


@pytest.mark.parametrize("raw", ["-1", "1e3", "abc", "", "nan", "inf", -5, float("inf"), float("nan"), True,
                                 None, [1], MAX_AGE + 1, "0x10"])
def test_bad_older_than_is_refused(raw: Any) -> None:
    with pytest.raises(BadRequestError) as caught:
        parse_older_than(raw)
    assert caught.value.param == "older_than"
