"""The ``text/event-stream`` format, parsed as the WHATWG HTML standard says, keeping every byte. Pure: no I/O.

:class:`EventStreamParser` follows "Interpreting an event stream" (HTML §9.2.6): lines end at CRLF, CR or
LF (a CR that ends one chunk and an LF that starts the next are one line end); one leading BOM is
skipped; lines starting with ``:`` are comments; a line without a colon is a field with an empty value;
one space after the colon is stripped; ``data`` lines are joined with LF; ``event`` sets the type,
``id`` the last event ID (unless it holds NUL), ``retry`` the reconnection time (ASCII digits only); a
blank line dispatches the event, unless no ``data`` line came; an unfinished event at the end is
dropped. The UTF-8 decoding is per line, which gives what decoding the whole stream gives: CR and LF
never occur inside a multi-byte sequence.

Unlike a browser it also keeps the bytes: :meth:`EventStreamParser.feed` returns :class:`Piece` s that
cover every byte it was given, in order, so :class:`EventRelay` can pass a stream through byte for byte
and leave out exactly the events it is told to (cachegate hides the usage event it asked for itself).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import orjson

#: The data of the event OpenAI-style streams end with.
DONE = "[DONE]"

_BOM = b"\xef\xbb\xbf"
_LINE_END = re.compile(rb"\r\n?|\n")
_LINE_END_BYTES = (0x0A, 0x0D)


@dataclass(frozen=True, slots=True)
class Event:
    """A dispatched event: ``type`` is ``message`` unless an ``event`` field said otherwise; ``id`` is the
    last event ID when it was dispatched (it carries over from earlier events, as the standard says)."""

    data: str
    type: str = "message"
    id: str = ""


@dataclass(frozen=True, slots=True)
class Piece:
    """Bytes of the stream, in order: an event's block (its lines up to and including the blank line
    that dispatched it, ``event`` set) or bytes that dispatch nothing (comments, blank lines, blocks of
    fields without ``data``). ``follows`` marks the LF of a CRLF cut between two chunks: it belongs with
    the piece before it."""

    raw: bytes
    event: Event | None = None
    follows: bool = False


class EventStreamParser:
    """Incremental: :meth:`feed` bytes as they arrive, :meth:`close` at the end."""

    def __init__(self) -> None:
        self.last_event_id = ""
        self.retry: int | None = None  # the reconnection time (ms) the stream set last, if any
        self._partial: list[bytes] = []  # an unfinished line
        self._after_cr = False  # the last chunk ended in CR: an LF starting the next one ends nothing
        self._first_line = True
        self._held: list[bytes] | None = None  # lines of a block that has fields, until its blank line
        self._data: list[str] = []
        self._type = ""

    def feed(self, chunk: bytes) -> list[Piece]:
        pieces: list[Piece] = []
        if self._after_cr and chunk:
            self._after_cr = False
            if chunk[:1] == b"\n":
                if self._held is not None:
                    self._held.append(b"\n")
                else:
                    pieces.append(Piece(b"\n", follows=True))
                chunk = chunk[1:]
        # bytes.splitlines ends lines at exactly CRLF, CR and LF, as the standard does
        lines = chunk.splitlines(keepends=True)
        tail = lines.pop() if lines and lines[-1][-1] not in _LINE_END_BYTES else None
        if lines:
            if self._partial:
                lines[0] = b"".join(self._partial) + lines[0]
                self._partial = []
            for raw in lines:
                self._line(raw[:-2] if raw.endswith(b"\r\n") else raw[:-1], raw, pieces)
            self._after_cr = tail is None and lines[-1][-1] == 0x0D  # a CR that ends the chunk
        if tail is not None:
            self._partial.append(tail)
        return pieces

    def close(self) -> Piece | None:
        """The bytes of an unfinished event or line, dispatching nothing (as the standard says)."""
        rest = b"".join([*(self._held or ()), *self._partial])
        self._held, self._partial, self._data, self._type = None, [], [], ""
        return Piece(rest) if rest else None

    @property
    def pending(self) -> bool:
        """``data`` lines or a non-blank unfinished line that no blank line ended: a cut-off stream."""
        return bool(self._data) or bool(b"".join(self._partial).strip())

    def _line(self, text: bytes, raw: bytes, pieces: list[Piece]) -> None:
        if self._first_line:
            self._first_line = False
            if text.startswith(_BOM):
                text = text[len(_BOM):]
        if not text:
            event = self._dispatch()
            if self._held is not None:
                raw = b"".join(self._held) + raw
                self._held = None
            pieces.append(Piece(raw, event))
            return
        if text[0] == 0x3A:  # ":" a comment: passed on at once unless it sits inside a block
            if self._held is None:
                pieces.append(Piece(raw))
            else:
                self._held.append(raw)
            return
        if self._held is None:
            self._held = [raw]
        else:
            self._held.append(raw)
        name, colon, value = text.decode("utf-8", "replace").partition(":")
        if colon and value.startswith(" "):
            value = value[1:]
        if name == "data":
            self._data.append(value)
        elif name == "event":
            self._type = value
        elif name == "id":
            if "\0" not in value:
                self.last_event_id = value
        elif name == "retry" and value.isascii() and value.isdigit():
            self.retry = int(value)
        # any other field is ignored

    def _dispatch(self) -> Event | None:
        data, kind = self._data, self._type
        self._data, self._type = [], ""
        if not data:
            return None
        return Event("\n".join(data), kind or "message", self.last_event_id)


class EventRelay:
    """Passes an event stream on byte for byte, leaving out the events ``drop`` selects.

    Without ``drop`` every chunk goes on as it came, at once; with it, a block that has fields is held
    until its blank line (the event it makes must be known before it can be left out), while comments
    outside blocks (``: keep-alive``) go on at once. :meth:`feed` also returns every event of the
    chunk, the dropped ones too, for whoever observes the stream. It never raises.
    """

    def __init__(self, drop: Callable[[Event], bool] | None = None) -> None:
        self._parser = EventStreamParser()
        self._drop = drop
        self._kept = True

    def feed(self, chunk: bytes) -> tuple[bytes, list[Event]]:
        pieces = self._parser.feed(chunk)
        events = [piece.event for piece in pieces if piece.event is not None]
        if self._drop is None:
            return chunk, events
        out: list[bytes] = []
        for piece in pieces:
            if not piece.follows:
                self._kept = piece.event is None or not self._drop(piece.event)
            if self._kept:
                out.append(piece.raw)
        return b"".join(out), events

    def close(self) -> bytes:
        """Whatever an unfinished event left (already passed on when nothing is dropped)."""
        rest = self._parser.close()
        return rest.raw if rest is not None and self._drop is not None else b""

    @property
    def pending(self) -> bool:
        return self._parser.pending


def encode_event(payload: Mapping[str, object] | str) -> bytes:
    """One event whose data is ``payload`` (JSON-encoded unless a string); a line break in the data
    becomes a second ``data`` line, which is how the format carries one."""
    data = payload if isinstance(payload, str) else orjson.dumps(payload).decode()
    if "\n" not in data and "\r" not in data:  # always so for JSON from orjson: one line
        return f"data: {data}\n\n".encode()
    lines = _LINE_END.split(data.encode())
    return b"".join(b"data: " + line + b"\n" for line in lines) + b"\n"
