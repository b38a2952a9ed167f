"""Parameters a route declares, and the 400 for any other: a destructive call must never do more than it
was asked because a narrowing parameter it did not know (``?pattern=``, a typo) was silently ignored.

A route declares the names it reads (``RouteSpec.params``); the admin guard checks the query string against
them before the route runs (:func:`check_query`), and a route that also reads a JSON body checks its keys with
:func:`check_names`. A name given twice (``?model=a&model=b``, or in the query and the body) is refused too:
which one would win is a guess.
"""

from __future__ import annotations

from collections.abc import Iterable
from urllib.parse import parse_qsl

from proxy.errors import BadRequestError


def _takes(declared: frozenset[str]) -> str:
    return "it takes " + (", ".join(sorted(declared)) if declared else "none")


def check_names(given: Iterable[str], declared: frozenset[str], where: str) -> None:
    """A :class:`BadRequestError` naming every name of ``given`` that is not ``declared``."""
    unknown = sorted(set(given) - declared)
    if unknown:
        names = ", ".join(repr(name) for name in unknown)
        raise BadRequestError(f"Unknown parameter{'s' if len(unknown) > 1 else ''} {names} for {where}; "
                              f"{_takes(declared)}.", param=unknown[0], code="unknown_parameter")


def check_query(query_string: bytes, declared: frozenset[str], where: str) -> dict[str, str]:
    """The query's parameters, once each and all ``declared`` (else a :class:`BadRequestError`)."""
    pairs = parse_qsl(query_string.decode("latin-1"), keep_blank_values=True)
    check_names((name for name, _ in pairs), declared, where)
    out: dict[str, str] = {}
    for name, value in pairs:
        if name in out:
            raise repeated(name, where)
        out[name] = value
    return out


def repeated(name: str, where: str) -> BadRequestError:
    return BadRequestError(f"Parameter {name!r} is given more than once for {where}.", param=name,
                           code="repeated_parameter")
