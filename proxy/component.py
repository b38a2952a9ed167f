"""What a part of the app contributes, declared as data, and the shape every part has.

The composition root (:mod:`proxy.app`) builds each part with the pieces it uses, asks it for its
:class:`Contribution` once, and wires every contribution the same way:

- **routes**, each with the :class:`Guard` that protects it; the root applies the guard per route, so who
  may call a route is written next to the route, not in a list of path prefixes elsewhere;
- **middleware** (outermost first) around every route, the chat route's short cut included;
- **health checks** for ``/health``: a ping for a dependency, or a description of an in-process part;
- **jobs**: periodic work, run by the one :class:`~proxy.platform.jobs.JobRunner`;
- **panels** the dashboard shows (:class:`Panel`: a kind of drawing from :data:`PANEL_KINDS` and the JSON
  it is drawn from); the dashboard, built last, is given every component's;
- **listeners** told about every finished request (after the observer).

A component is built without I/O; :meth:`Component.start` opens what it needs (in the order the root lists
the components) and :meth:`Component.stop` closes it (in reverse). This module sits at the bottom: it imports
nothing of cachegate's but the contracts.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Any, Protocol

from starlette.middleware import Middleware

from proxy.contracts import RequestRecord

#: A Starlette endpoint: ``async def endpoint(request) -> Response``.
Endpoint = Callable[..., Awaitable[Any]]


class Guard(Enum):
    """Who may call a route."""

    OPEN = "open"  # anyone: /health*, and the dashboard's login, which checks the key it is given
    CLIENT = "client"  # the proxied API (/v1/*): rate limits
    MONITOR = "monitor"  # MONITOR_API_KEY (or the admin key, or the dashboard's session)
    MONITOR_PAGE = "monitor_page"  # as MONITOR, but refused with the page itself, which asks for the key
    ADMIN = "admin"  # ADMIN_API_KEY, same-origin only; only the parameters the route declares


@dataclass(frozen=True)
class RouteSpec:
    path: str
    endpoint: Endpoint  # a Starlette endpoint, or a pure ASGI app
    methods: tuple[str, ...]
    guard: Guard
    locked: Any = None  # Guard.MONITOR_PAGE: the ASGI app that answers when the key is missing
    #: the query (and body) parameters the route reads; Guard.ADMIN routes refuse any other (none declared:
    #: none taken), see proxy.http.params
    params: frozenset[str] | None = None


@dataclass(frozen=True)
class HealthCheck:
    """A dependency ``/health`` pings (``ping`` raises when it is down), or an in-process part it only names."""

    name: str
    ping: Callable[[], Awaitable[Any]] | None = None
    embedded: str | None = None  # what runs in-process instead (``memory``, ``qdrant-edge at …``)
    details: Callable[[], dict[str, Any]] | None = None  # more to show beside the status (a writer's backlog)
    #: False for what no request needs (the history's database): failing, it is ``degraded``, never ``down``
    critical: bool = True


@dataclass(frozen=True)
class Job:
    """Work the job runner repeats every ``every`` seconds (and once at start when ``at_start``)."""

    name: str
    every: float
    run: Callable[[], Awaitable[Any]]
    at_start: bool = False


#: The kinds of panel ``dashboard.html`` draws (its ``KINDS``; a unit test keeps the two lists equal). All but
#: ``link`` draw the JSON their ``source`` answers; a ``link`` panel links to its ``source`` (a page of its own).
PANEL_KINDS = (
    "totals", "outcomes", "timeline", "tokens", "latency", "streaming", "models", "pricing", "exports",  # /metrics*
    "recent", "admin",  # the operator surface (/dashboard/data)
    "semantic",  # the semantic tier (/metrics/semantic)
    "levels",  # every cache level's statistics (/metrics: cache.levels)
    "warnings",  # the warnings that hold now (/health/detailed: warnings)
    "link",  # any component with a page of its own
)
_PANEL_ID = re.compile(r"^[a-z][a-z0-9-]{0,39}$")


@dataclass(frozen=True)
class Panel:
    """A section of the dashboard: the page draws panel ``kind`` from the JSON at ``source`` (a path on this
    origin; a ``link`` panel links to it instead), titled ``title``, with ``note`` beside the title (a
    ``link`` panel: under it). Panels are shown by ``order``, then in the order the components are listed."""

    id: str
    title: str
    kind: str
    source: str
    order: int = 100
    note: str = ""

    def __post_init__(self) -> None:
        if not _PANEL_ID.match(self.id):
            raise ValueError(f"panel id {self.id!r}: lower-case letters, digits and '-', starting with a letter")
        if self.kind not in PANEL_KINDS:
            raise ValueError(f"panel {self.id!r}: kind {self.kind!r} is not one of {', '.join(PANEL_KINDS)}")
        if not self.source.startswith("/") or self.source.startswith("//"):
            raise ValueError(f"panel {self.id!r}: source {self.source!r} must be a path on this origin ('/...')")
        if not self.title.strip():
            raise ValueError(f"panel {self.id!r} needs a title")


Listener = Callable[[RequestRecord], None]


@dataclass(frozen=True)
class Contribution:
    routes: Sequence[RouteSpec] = ()
    middleware: Sequence[Middleware] = ()
    checks: Sequence[HealthCheck] = ()
    jobs: Sequence[Job] = ()
    panels: Sequence[Panel] = ()
    listeners: Sequence[Listener] = ()


class Component(Protocol):
    def contribution(self) -> Contribution: ...

    async def start(self) -> None: ...

    async def stop(self) -> None: ...


def route(path: str, endpoint: Endpoint, *methods: str, guard: Guard, locked: Any = None,
          params: Iterable[str] | None = None) -> RouteSpec:
    """Shorthand for a :class:`RouteSpec` (``GET`` when no method is named)."""
    return RouteSpec(path, endpoint, methods or ("GET",), guard, locked,
                     frozenset(params) if params is not None else None)
