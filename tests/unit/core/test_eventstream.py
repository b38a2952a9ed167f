"""proxy.core.eventstream: WHATWG event-stream parsing that keeps every byte, and the relay built on it.

The parsing cases are transcribed from the HTML standard's "Interpreting an event stream" section, the
web-platform-tests ``eventsource/format-*`` tests and Chromium's ``event_source_parser_unittest.cc``
(source named on each). Every case is run whole, byte by byte and cut at every position, because
bytes reach the proxy in pieces of any size.
"""

from __future__ import annotations

import random

import pytest

from proxy.core.eventstream import DONE, Event, EventRelay, EventStreamParser, Piece, encode_event


def splits(raw: bytes) -> list[list[bytes]]:
    """``raw`` whole, byte by byte, and cut in two at every position."""
    ways = [[raw], [raw[i:i + 1] for i in range(len(raw))]]
    ways += [[raw[:cut], raw[cut:]] for cut in range(1, len(raw))]
    return ways


def parse(pieces: list[bytes]) -> tuple[list[Event], EventStreamParser, list[Piece]]:
    parser = EventStreamParser()
    out: list[Piece] = []
    for piece in pieces:
        out.extend(parser.feed(piece))
    return [piece.event for piece in out if piece.event is not None], parser, out


def events_of(raw: bytes) -> list[Event]:
    """The events of ``raw``, checked to be the same however it is cut, and to cover every byte."""
    results = []
    for pieces in splits(raw):
        events, parser, out = parse(pieces)
        rest = parser.close()
        assert b"".join(piece.raw for piece in out) + (rest.raw if rest else b"") == raw, pieces
        results.append(events)
    assert all(result == results[0] for result in results)
    return results[0]


def datas(raw: bytes) -> list[str]:
    return [event.data for event in events_of(raw)]


# -- WHATWG cases -------------------------------------------------------------------------------------


@pytest.mark.parametrize(("raw", "expected"), [
    # HTML standard, the "stock" example: a comment, then an event of two data lines
    pytest.param(b": test stream\n\ndata: first event\nid: 1\n\ndata:second event\nid\n\ndata:  third event\n\n",
                 [Event("first event", "message", "1"), Event("second event", "message", ""),
                  Event(" third event", "message", "")], id="spec-example-ids"),
    # HTML standard: "data" alone and "data:" make empty lines; the last block has no blank line
    pytest.param(b"data\n\ndata\ndata\n\ndata:",
                 [Event(""), Event("\n")], id="spec-example-empty-data"),
    # HTML standard: the leading space is optional and stripped once
    pytest.param(b"data:test\n\ndata: test\n\n", [Event("test"), Event("test")], id="spec-example-space"),
    # HTML standard: lines of one event join with LF
    pytest.param(b"data: YHOO\ndata: +2\ndata: 10\n\n", [Event("YHOO\n+2\n10")], id="spec-example-multiline"),
])
def test_spec_examples(raw: bytes, expected: list[Event]) -> None:
    assert events_of(raw) == expected


def test_wpt_format_field_data() -> None:
    # wpt eventsource/format-field-data.js: "data:\n\ndata\ndata\n\ndata:test" + the server's "\n\n\n"
    assert datas(b"data:\n\ndata\ndata\n\ndata:test\n\n\n") == ["", "\n", "test"]


def test_wpt_format_comments() -> None:
    # wpt eventsource/format-comments.js: comments between data lines, every line ending, a NUL in one
    long = b"x" * 2048
    raw = b"data:1\r:\0\n:\r\ndata:2\n:" + long + b"\rdata:3\n:data:fail\r:" + long + b"\ndata:4\n\n"
    assert datas(raw) == ["1\n2\n3\n4"]


def test_wpt_format_bom() -> None:
    # wpt eventsource/format-bom.js: one BOM is skipped; a second, later one is part of a field name
    raw = b"\xef\xbb\xbfdata:1\n\n\xef\xbb\xbfdata:2\n\ndata:3\n\n\n"
    assert datas(raw) == ["1", "3"]


def test_wpt_format_bom_twice() -> None:
    # wpt eventsource/format-bom-2.any.js: of two BOMs only the first is skipped, so "data:1" is lost
    raw = b"\xef\xbb\xbf\xef\xbb\xbfdata:1\n\ndata:2\n\ndata:3\n\n\n"
    assert datas(raw) == ["2", "3"]


def test_wpt_format_data_before_final_empty_line() -> None:
    # wpt eventsource/format-data-before-final-empty-line.js: an event without its blank line is dropped
    raw = b"retry:1000\ndata:test1\n\nid:test\ndata:test2"
    assert events_of(raw) == [Event("test1")]


def test_wpt_format_field_event() -> None:
    # wpt eventsource/format-field-event.htm: the type applies to one event only
    assert events_of(b"event:test\ndata:x\n\ndata:x\n\n\n") == [Event("x", "test"), Event("x", "message")]


def test_wpt_format_null_character() -> None:
    # wpt eventsource/format-null-character.html
    assert datas(b"data:\x00\n\n\n") == ["\x00"]


def test_wpt_format_field_id_null_is_ignored() -> None:
    # wpt eventsource/format-field-id-null.htm: an id holding NUL does not set the last event ID
    assert events_of(b"id:\x00\x00\ndata:hello\n\n") == [Event("hello", "message", "")]


def test_wpt_format_field_retry_bogus() -> None:
    # wpt eventsource/format-field-retry-bogus.htm: "1000x" is not a number; 2000 stays
    parser = EventStreamParser()
    parser.feed(b"retry:2000\nretry:1000x\ndata:x\n\n")
    assert parser.retry == 2000


def test_wpt_event_data_lines() -> None:
    # the events wpt eventsource/event-data.js expects ("msg\nmsg", "", "end"), from a stream of our own
    # that mixes the three line endings
    raw = b"data:msg\ndata:msg\r\rdata:\r\n\r\ndata:end\n\n"
    assert datas(raw) == ["msg\nmsg", "", "end"]


# Chromium third_party/blink/renderer/modules/eventsource/event_source_parser_unittest.cc


def test_blink_empty_message_is_not_dispatched() -> None:
    assert events_of(b"\n") == []


def test_blink_last_event_id_carries_over_and_is_kept() -> None:
    parser = EventStreamParser()
    events = [p.event for p in parser.feed(b"id:99\ndata:hello\n\ndata:bye\n\n") if p.event]
    assert events == [Event("hello", "message", "99"), Event("bye", "message", "99")]
    assert parser.last_event_id == "99"


def test_blink_last_event_id_updated_without_data() -> None:
    parser = EventStreamParser()
    assert [p.event for p in parser.feed(b"id:99\n\n")] == [None]
    assert parser.last_event_id == "99"


def test_blink_event_type_is_reset_and_does_not_accumulate() -> None:
    assert events_of(b"event:foo\ndata:hello\n\ndata:bye\n\n") == [Event("hello", "foo"), Event("bye")]
    assert events_of(b"data:hello\nevent:a\nevent:b\n\n") == [Event("hello", "b")]


def test_blink_data_is_reset() -> None:
    assert datas(b"data:hello\n\n\n") == ["hello"]


def test_blink_various_new_lines() -> None:
    assert datas(b"data:hello\r\n\rdata:bye\r\r") == ["hello", "bye"]


def test_blink_retry() -> None:
    parser = EventStreamParser()
    parser.feed(b"retry:999\n")
    assert parser.retry == 999


@pytest.mark.parametrize("line", [b"retry:a0\n", b"retry:xi\n", b"retry:2a\n", b"retry:09a\n", b"retry:1\b\n",
                                  b"retry:  1234\n", b"retry:456 \n", b"retry\n", b"retry:\n",
                                  "retry:\u0661\n".encode()])
def test_blink_non_digit_retry_is_ignored(line: bytes) -> None:
    parser = EventStreamParser()
    parser.feed(line)
    assert parser.retry is None


def test_blink_unrecognised_fields_and_comments_are_ignored() -> None:
    assert events_of(b"data:hello\nhoge:fuga\npiyo\n\n") == [Event("hello")]
    assert events_of(b"data:hello\n:event:a\n\n") == [Event("hello")]


def test_blink_bom_only_at_the_start() -> None:
    assert datas(b"\xef\xbb\xbfdata:hello\n\xef\xbb\xbfdata:bye\n\n") == ["hello"]


def test_blink_colonless_line_is_a_field_with_empty_value() -> None:
    # "event" alone sets the type to "", so the event is a "message"
    assert events_of(b"data:hello\nevent:a\nevent\n\n") == [Event("hello", "message")]


def test_blink_at_most_one_leading_space_skipped() -> None:
    assert events_of(b"data:  hello  \nevent:  type \n\n") == [Event(" hello  ", " type ")]


def test_blink_data_accumulates() -> None:
    assert datas(b"data\ndata:hello\ndata: world\ndata\n\n") == ["\nhello\nworld\n"]


def test_blink_feed_one_by_one() -> None:
    raw = b"data:hello\r\ndata:world\revent:a\revent:b\nid:4\n\nid:8\ndata:bye\r\n\r"
    assert events_of(raw) == [Event("hello\nworld", "b", "4"), Event("bye", "message", "8")]


def test_blink_invalid_utf8() -> None:
    assert datas(b"data:\xffhello\xc2\ndata:bye\n\n") == ["\ufffdhello\ufffd\nbye"]


def test_blink_id_with_null_is_ignored() -> None:
    raw = b"id:99\ndata:hello\n\nid:4\x0023\ndata:bye\n\n"
    assert events_of(raw) == [Event("hello", "message", "99"), Event("bye", "message", "99")]


# -- line endings across chunks -------------------------------------------------------------------------


def test_cr_at_the_end_of_a_chunk_and_lf_at_the_start_of_the_next_are_one_line_end() -> None:
    parser = EventStreamParser()
    first = parser.feed(b"data: a\r")
    second = parser.feed(b"\n\r")
    third = parser.feed(b"\ndata: b\r\n\r\n")
    assert first == []
    assert second == [Piece(b"data: a\r\n\r", Event("a"))]  # dispatched at once, at the CR
    assert third == [Piece(b"\n", follows=True), Piece(b"data: b\r\n\r\n", Event("b"))]


def test_cr_only_stream_parses() -> None:
    raw = b'data: {"a":1}\r\rdata: [DONE]\r\r'
    assert datas(raw) == ['{"a":1}', DONE]


def test_multi_byte_characters_cut_anywhere() -> None:
    assert datas("data: h\u00e9llo \U0001f44b\n\n".encode()) == ["h\u00e9llo \U0001f44b"]


def test_pending() -> None:
    parser = EventStreamParser()
    assert parser.pending is False
    parser.feed(b"data: [DONE]\n")
    assert parser.pending is True
    parser.feed(b"\n")
    assert parser.pending is False
    parser.feed(b"data: cut")
    assert parser.pending is True


def test_comment_without_blank_line_is_not_pending() -> None:
    parser = EventStreamParser()
    parser.feed(b": keep-alive\n")
    assert parser.pending is False


def test_close_returns_the_unfinished_bytes() -> None:
    parser = EventStreamParser()
    parser.feed(b"data: one\n\nevent: x\ndata: tw")
    assert parser.close() == Piece(b"event: x\ndata: tw")
    assert parser.close() is None


def test_pieces_cover_every_byte_of_random_input() -> None:
    rng = random.Random(7)
    alphabet = [b"\r", b"\n", b":", b" ", b"data", b"id", b"event", b"retry", b"x", b"\xef\xbb\xbf", b"\xff", b"1"]
    for _ in range(300):
        raw = b"".join(rng.choice(alphabet) for _ in range(rng.randrange(40)))
        cuts = sorted(rng.sample(range(len(raw) + 1), min(len(raw) + 1, 3)))
        pieces = [raw[a:b] for a, b in zip([0, *cuts], [*cuts, len(raw)], strict=True)]
        _, parser, out = parse(pieces)
        rest = parser.close()
        assert b"".join(p.raw for p in out) + (rest.raw if rest else b"") == raw


# -- EventRelay ------------------------------------------------------------------------------------------


def drop_x(event: Event) -> bool:
    return event.data == "x"


def relay_all(pieces: list[bytes], drop: object = drop_x) -> tuple[bytes, list[Event]]:
    relay = EventRelay(drop)  # type: ignore[arg-type]
    out, events = [], []
    for piece in pieces:
        sent, seen = relay.feed(piece)
        out.append(sent)
        events.extend(seen)
    out.append(relay.close())
    return b"".join(out), events


@pytest.mark.parametrize(("raw", "relayed"), [
    pytest.param(b"data: a\n\ndata: x\n\ndata: b\n\n", b"data: a\n\ndata: b\n\n", id="lf"),
    pytest.param(b"data: a\r\n\r\ndata: x\r\n\r\ndata: b\r\n\r\n", b"data: a\r\n\r\ndata: b\r\n\r\n", id="crlf"),
    pytest.param(b"data: a\r\rdata: x\r\rdata: b\r\r", b"data: a\r\rdata: b\r\r", id="cr"),
    pytest.param(b": keep-alive\n\nevent: delta\nid: 7\nretry: 500\ndata: a\n\n: ping\n\ndata: x\n\n",
                 b": keep-alive\n\nevent: delta\nid: 7\nretry: 500\ndata: a\n\n: ping\n\n", id="fields-kept"),
    pytest.param(b"data: first\ndata: second\n\ndata: x\n\n", b"data: first\ndata: second\n\n", id="multi-line"),
    pytest.param(b"event: usage\nid: 9\ndata: x\n\n", b"", id="fields-of-the-dropped-event-go-too"),
    pytest.param(b"\xef\xbb\xbfdata: a\n\n", b"\xef\xbb\xbfdata: a\n\n", id="bom"),
    pytest.param(b"data: a\n\ndata: cut", b"data: a\n\ndata: cut", id="unfinished-event-passed-on"),
    pytest.param(b"data: x\n\n", b"", id="only-the-dropped"),
])
def test_relay_drops_only_the_chosen_event(raw: bytes, relayed: bytes) -> None:
    for pieces in splits(raw):
        assert relay_all(pieces)[0] == relayed, pieces


def test_relay_reports_every_event_the_dropped_one_too() -> None:
    _, events = relay_all([b"data: a\n\n: c\n\ndata: x\n\n"])
    assert events == [Event("a"), Event("x")]


def test_relay_passes_comments_outside_events_on_at_once() -> None:
    relay = EventRelay(drop_x)
    assert relay.feed(b": keep-alive\n") == (b": keep-alive\n", [])
    assert relay.feed(b"data: a\n") == (b"", [])  # held: it may be the event to leave out
    assert relay.feed(b"\n") == (b"data: a\n\n", [Event("a")])


def test_relay_without_drop_passes_each_chunk_unchanged_at_once() -> None:
    relay = EventRelay()
    assert relay.feed(b"data: a\n") == (b"data: a\n", [])
    assert relay.feed(b"\ndata: x\n\nda") == (b"\ndata: x\n\nda", [Event("a"), Event("x")])
    assert relay.close() == b""


def test_relay_lf_of_a_split_crlf_follows_its_dropped_event() -> None:
    relay = EventRelay(drop_x)
    assert relay.feed(b"data: x\r\n\r") == (b"", [Event("x")])
    assert relay.feed(b"\ndata: a\r\n\r\n") == (b"data: a\r\n\r\n", [Event("a")])


def test_relay_lf_of_a_split_crlf_follows_its_kept_event() -> None:
    relay = EventRelay(drop_x)
    assert relay.feed(b"data: a\r\n\r") == (b"data: a\r\n\r", [Event("a")])
    assert relay.feed(b"\n") == (b"\n", [])


def test_relay_never_raises_and_keeps_bytes_on_random_input() -> None:
    rng = random.Random(11)
    alphabet = [b"\r", b"\n", b":", b" ", b"data: x", b"data: y", b"id", b"event", b"\xff", b"\xef\xbb\xbf"]
    for _ in range(300):
        raw = b"".join(rng.choice(alphabet) for _ in range(rng.randrange(40)))
        whole, _ = relay_all([raw], drop=None)
        assert whole == raw
        cut = rng.randrange(len(raw) + 1)
        assert relay_all([raw[:cut], raw[cut:]], drop=lambda event: False)[0] == raw


# -- encode_event ----------------------------------------------------------------------------------------


def test_encode_event() -> None:
    assert encode_event({"a": 1}) == b'data: {"a":1}\n\n'
    assert encode_event(DONE) == b"data: [DONE]\n\n"


@pytest.mark.parametrize("data", ["one\ntwo", "one\r\ntwo", "one\rtwo", "\n", " lead", ""])
def test_encode_event_round_trips_through_the_parser(data: str) -> None:
    expected = data.replace("\r\n", "\n").replace("\r", "\n")
    assert datas(encode_event(data)) == [expected]


def test_encode_event_multi_line_bytes() -> None:
    assert encode_event("one\ntwo") == b"data: one\ndata: two\n\n"


def test_only_cr_and_lf_end_lines() -> None:
    # vertical tab, form feed, the separators and NEL end lines for str.splitlines, not for the format
    assert datas(b"data: a\x0bb\x0cc\x1cd\x1ee\x85f\xc2\x85g\n\n") == ["a\x0bb\x0cc\x1cd\x1ee\ufffdf\x85g"]
