"""Server-sent events for chat completions, as the chat path uses them. Pure: no I/O.

The parts live in their own modules: :mod:`~proxy.core.eventstream` parses the event-stream format
(WHATWG) keeping every byte and relays it minus chosen events, :mod:`~proxy.core.assembly` folds
``chat.completion.chunk`` events into the ``chat.completion`` a plain request would have got, and
:mod:`~proxy.core.replay` does the reverse so one cache entry serves both forms.

A relay that must hide the usage event cachegate asked for itself::

    relay = EventRelay(drop=is_usage_only_event)   # EventRelay() when nothing is hidden
    out, events = relay.feed(chunk)                # send ``out``; hand ``events`` to the assembler
    ...
    rest = relay.close()                           # at the end: an unfinished event's bytes
"""

from __future__ import annotations

from proxy.core.assembly import StreamAssembler, is_usage_only, is_usage_only_event
from proxy.core.eventstream import DONE, Event, EventRelay, EventStreamParser, Piece, encode_event
from proxy.core.replay import refresh_identity, replay

__all__ = ["DONE", "Event", "EventRelay", "EventStreamParser", "Piece", "SSEParser", "StreamAssembler",
           "encode_event", "is_usage_only", "is_usage_only_event", "refresh_identity", "replay"]


class SSEParser:
    """The ``data`` of each complete event, for callers that need nothing else (WHATWG parsing)."""

    def __init__(self) -> None:
        self._parser = EventStreamParser()

    def feed(self, chunk: bytes) -> list[str]:
        return [piece.event.data for piece in self._parser.feed(chunk) if piece.event is not None]

    @property
    def pending(self) -> bool:
        """Bytes or data lines that did not form a complete event (a cut-off stream)."""
        return self._parser.pending
