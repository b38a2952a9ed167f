"""proxy.core.folding: the rules by which streamed values fold, one value at a time."""

from __future__ import annotations

from typing import Any

import pytest

from proxy.core.folding import ABSENT, Unfoldable, fold_delta, fold_same, plain


def fold(*deltas: Any, key: str | None = "x") -> Any:
    value = ABSENT
    for delta in deltas:
        value = fold_delta(value, delta, key, f"d.{key}", 1)
    return plain(value, key)


@pytest.mark.parametrize(("deltas", "key", "expected"), [
    (["a", "b", "", "c"], "content", "abc"),
    ([None], "content", None),
    ([None, "a"], "content", "a"),
    (["a", None], "content", "a"),
    ([""], "content", ""),
    ([[]], "annotations", []),
    ([{}], "audio", {}),
    (["call_1", "call_1", ""], "id", "call_1"),
    (["", "call_1"], "id", "call_1"),
    (["function", "function"], "type", "function"),
    ([3, 3], "n", 3),
    ([True, True], "flag", True),
    ([{"a": "1"}, {"a": "2", "b": {"c": "x"}}, {"b": {"c": "y"}}], "x", {"a": "12", "b": {"c": "xy"}}),
    ([[{"index": 1, "v": "b"}], [{"index": 0, "v": "a"}, {"index": 1, "v": "c"}]], "x",
     [{"index": 0, "v": "a"}, {"index": 1, "v": "bc"}]),
    ([[{"index": 0, "id": "c", "function": {"arguments": "{"}}], [{"index": 0, "function": {"arguments": "}"}}]],
     "tool_calls", [{"id": "c", "function": {"arguments": "{}"}}]),
    ([[], [{"index": 0, "v": "a"}]], "x", [{"index": 0, "v": "a"}]),
    ([[{"index": 0, "v": "a"}], []], "x", [{"index": 0, "v": "a"}]),
    ([[{"u": 1}], [{"u": 2}]], "annotations", [{"u": 1}, {"u": 2}]),
    ([[1, "a"], [2.5]], "x", [1, "a", 2.5]),
    ([[{"u": 1}]], "x", [{"u": 1}]),
    (["QUJD", "REVG"], "data", "QUJDREVG"),
])
def test_fold_delta(deltas: list[Any], key: str, expected: Any) -> None:
    assert fold(*deltas, key=key) == expected


@pytest.mark.parametrize(("deltas", "key", "message"), [
    (["call_1", "call_2"], "id", "d.id changed from 'call_1' to 'call_2'"),
    (["a", 1], "x", "d.x changed from 'a' to 1"),
    ([1, 2], "x", "d.x changed from 1 to 2"),
    ([1, 1.0], "x", "d.x changed from 1 to 1.0"),
    (["a", {"b": 1}], "x", "d.x is an object after a str"),
    (["a", "b", {"b": 1}], "x", "d.x is an object after a str"),
    ([{"b": 1}, "a"], "x", "d.x is a string after a dict"),
    (["a", [1]], "x", "d.x is a list without indices after a str"),
    ([[{"index": 0}], [{"u": 1}]], "x", "d.x is a list without indices after a list"),
    ([[{"u": 1}], [{"index": 0}]], "x", "d.x has indexed entries after a list"),
    ([[{"index": 0}, {"u": 1}]], "x", "d.x has an entry without an integer index"),
    ([[{"index": -1}]], "x", "d.x has an entry without an integer index"),
    ([[{"index": 1.0}]], "x", "d.x has an entry without an integer index"),
    ([[{"u": 1}], [{"u": 2}]], "x", "d.x came twice as a list without indices (items or pieces of one?)"),
])
def test_fold_delta_refuses(deltas: list[Any], key: str, message: str) -> None:
    with pytest.raises(Unfoldable) as caught:
        fold(*deltas, key=key)
    assert str(caught.value) == message


def test_base64_after_padding_is_refused_only_for_audio_data() -> None:
    value = fold_delta(ABSENT, {"data": "QQ=="}, "audio", "d.audio", 1)
    with pytest.raises(Unfoldable, match=r"d\.audio\.data goes on after base64 padding"):
        fold_delta(value, {"data": "QQ=="}, "audio", "d.audio", 1)
    assert fold("a=", "b", key="content") == "a=b"


def test_long_text_is_joined_once() -> None:
    pieces = [f"{i} " for i in range(10_000)]
    assert fold(*pieces, key="content") == "".join(pieces)


@pytest.mark.parametrize(("values", "expected"), [
    ([None], None),
    ([None, "stop"], "stop"),
    (["stop", None, "stop"], "stop"),
    ([{}, {"a": {"b": 1}}, {"a": {"b": 1, "c": 2}}], {"a": {"b": 1, "c": 2}}),
    ([[], ["u"], ["u"]], ["u"]),
    ([{"a": 1}, {}], {"a": 1}),
])
def test_fold_same(values: list[Any], expected: Any) -> None:
    value = ABSENT
    for item in values:
        value = fold_same(value, item, "w")
    assert value == expected


@pytest.mark.parametrize(("values", "message"), [
    (["stop", "length"], "w changed from 'stop' to 'length'"),
    ([["u1"], ["u2"]], "w changed from ['u1'] to ['u2']"),
    ([{"a": {"b": "safe"}}, {"a": {"b": "low"}}], "w.a.b changed from 'safe' to 'low'"),
    (["a", {"b": 1}], "w changed from 'a' to {'b': 1}"),
])
def test_fold_same_refuses(values: list[Any], message: str) -> None:
    value = ABSENT
    with pytest.raises(Unfoldable) as caught:
        for item in values:
            value = fold_same(value, item, "w")
    assert str(caught.value) == message


def test_depth_is_bounded() -> None:
    deep: Any = "x"
    for _ in range(40):
        deep = {"k": deep}
    with pytest.raises(Unfoldable, match="nested too deep"):
        fold_delta(ABSENT, deep, None, "d", 0)
    with pytest.raises(Unfoldable, match="nested too deep"):
        fold_same({"k": deep}, {"k": deep}, "w")


def test_plain_converts_only_folded_containers() -> None:
    assert plain({"a": [{"b": "c"}], "d": None}) == {"a": [{"b": "c"}], "d": None}
