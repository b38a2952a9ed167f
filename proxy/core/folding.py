"""How the values of a streamed chat completion fold together. Pure: no I/O.

Inside a chunk's ``delta`` every key is folded by one rule, whether cachegate knows it or not
(``content``, ``refusal``, ``reasoning_content``, ``reasoning``, ``function_call``, ``tool_calls``,
``audio``, ``annotations``, …) — :func:`fold_delta`:

* strings concatenate, except identifying keys (``id``, ``type``, ``role``, ``name``, ``index``) that
  are sent once or repeated unchanged; a different value is a conflict;
* objects merge key by key; numbers and booleans must repeat unchanged;
* lists whose entries are objects with an integer ``index`` merge entry by entry at that index
  (``tool_calls``); ``annotations`` and lists of plain values append; any other list may come once
  (a second one could be more items or pieces of the first: nobody can tell);
* ``null``, ``[]`` and ``{}`` add nothing, but a key first seen with one of them is kept with it
  (``"refusal": null`` stays, as in a plain answer);
* base64 ``audio.data`` may not go on after a piece that ended in padding (the joined text would not
  be the audio).

Outside ``delta`` nothing is a delta (:func:`fold_same`): a value must repeat what it said before,
objects merging (``content_filter_results``, ``x_groq``, ``citations``, …).

A conflict raises :class:`Unfoldable`: the answer cannot be folded faithfully and must not be stored.
"""

from __future__ import annotations

from typing import Any

ABSENT: Any = object()  # no value yet (``None`` is a value: JSON null)
_IDENTIFYING = frozenset({"id", "type", "role", "name", "index"})
_ITEM_LISTS = frozenset({"annotations"})
_MAX_DEPTH = 32  # deltas are shallow (tool_calls[].function.arguments is 4); deeper is not a delta


class Unfoldable(Exception):
    """A chunk the assembler cannot fold faithfully; the message says where and why."""


class _Indexed(dict[int, Any]):
    """A list being merged by its entries' ``index``."""


class _Text(list[str]):
    """A string being concatenated, joined once when rendered (``+`` on every chunk would copy the
    whole answer each time: quadratic in its length)."""


def _kind(value: Any) -> str:
    return "str" if isinstance(value, _Text) else "list" if isinstance(value, _Indexed) else type(value).__name__


def fold_delta(old: Any, new: Any, key: str | None, where: str, depth: int) -> Any:
    """``old`` (or ``ABSENT``) with the delta ``new`` folded in."""
    if depth > _MAX_DEPTH:
        raise Unfoldable(f"{where} is nested too deep to be a delta")
    if new is None or (isinstance(new, list | dict) and not new):  # nothing new, but a first sight counts
        if old is not ABSENT:
            return old
        return None if new is None else type(new)()
    if old is None:
        old = ABSENT
    if isinstance(new, dict):
        if old is ABSENT:
            old = {}
        elif type(old) is not dict:
            raise Unfoldable(f"{where} is an object after a {_kind(old)}")
        for name, value in new.items():
            old[name] = fold_delta(old.get(name, ABSENT), value, name, f"{where}.{name}", depth + 1)
        return old
    if isinstance(new, list):
        return _delta_list(old, new, key, where, depth)
    if old is ABSENT:
        return new
    if isinstance(new, str):
        return _delta_text(old, new, key, where)
    if type(new) is type(old) and new == old:
        return old
    raise Unfoldable(f"{where} changed from {old!r} to {new!r}")


def _delta_text(old: Any, new: str, key: str | None, where: str) -> Any:
    if isinstance(old, _Text):
        last = old[-1]
    elif isinstance(old, str):
        last = old
        if key in _IDENTIFYING:
            if new in ("", old):
                return old
            if old == "":
                return new
            raise Unfoldable(f"{where} changed from {old!r} to {new!r}")
    else:
        raise Unfoldable(f"{where} is a string after a {_kind(old)}")
    if not new:
        return old
    if where.endswith("audio.data") and last.endswith("="):
        raise Unfoldable(f"{where} goes on after base64 padding")
    if isinstance(old, _Text):
        old.append(new)
        return old
    return _Text([old, new]) if old else new


def _delta_list(old: Any, new: list[Any], key: str | None, where: str, depth: int) -> Any:
    indexed = [isinstance(entry, dict) and "index" in entry for entry in new]
    if any(indexed):
        if not all(indexed) or not all(type(entry["index"]) is int and entry["index"] >= 0 for entry in new):
            raise Unfoldable(f"{where} has an entry without an integer index")
        if old is ABSENT or (type(old) is list and not old):
            old = _Indexed()
        elif not isinstance(old, _Indexed):
            raise Unfoldable(f"{where} has indexed entries after a {_kind(old)}")
        for entry in new:
            index = entry["index"]
            old[index] = fold_delta(old.get(index, ABSENT), entry, None, f"{where}[{index}]", depth + 1)
        return old
    if old is ABSENT:
        return list(new)
    if type(old) is not list:
        raise Unfoldable(f"{where} is a list without indices after a {_kind(old)}")
    if not old or key in _ITEM_LISTS or all(isinstance(item, str | int | float) for item in [*old, *new]):
        return [*old, *new]
    raise Unfoldable(f"{where} came twice as a list without indices (items or pieces of one?)")


def fold_same(old: Any, new: Any, where: str, depth: int = 0) -> Any:
    """``old`` merged with ``new`` where nothing is a delta: values repeat; objects merge."""
    if depth > _MAX_DEPTH:
        raise Unfoldable(f"{where} is nested too deep")
    if new is None or (isinstance(new, list | dict) and not new):
        return new if old is ABSENT else old
    if old is ABSENT or old is None or (isinstance(old, list | dict) and not old and type(old) is type(new)):
        return new
    if isinstance(new, dict) and isinstance(old, dict):
        merged = dict(old)
        for name, value in new.items():
            merged[name] = fold_same(old.get(name, ABSENT), value, f"{where}.{name}", depth + 1)
        return merged
    if type(new) is type(old) and new == old:
        return old
    raise Unfoldable(f"{where} changed from {old!r} to {new!r}")


def plain(value: Any, key: str | None = None) -> Any:
    """The folded value as JSON again: indexed lists in index order (``tool_calls`` without the index,
    which only places an entry in a stream)."""
    if isinstance(value, _Text):
        return "".join(value)
    if isinstance(value, _Indexed):
        entries = [plain(entry) for _, entry in sorted(value.items())]
        if key == "tool_calls":
            entries = [{k: v for k, v in entry.items() if k != "index"} if isinstance(entry, dict) else entry
                       for entry in entries]
        return entries
    if isinstance(value, dict):
        return {name: plain(item, name) for name, item in value.items()}
    if isinstance(value, list):
        return [plain(item) for item in value]
    return value


