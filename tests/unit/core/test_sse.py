"""proxy.core.sse: incremental SSE parsing, stream assembly and replay."""

from __future__ import annotations

import copy
from typing import Any

import orjson
import pytest

from proxy.core.sse import DONE, EventRelay, SSEParser, StreamAssembler, encode_event, is_usage_only_event, replay

HEAD = ('"id":"chatcmpl-AbC123","object":"chat.completion.chunk","created":1732291200,'
        '"model":"gpt-4o-mini-2024-07-18","service_tier":"default","system_fingerprint":"fp_0ba0d124f1"')

# The data payloads of a realistic OpenAI stream with stream_options.include_usage, including non-ASCII
# text so that splits fall inside multi-byte characters.
STREAM_EVENTS = [
    '{' + HEAD + ',"choices":[{"index":0,"delta":{"role":"assistant","content":"","refusal":null},'
                 '"logprobs":null,"finish_reason":null}],"usage":null}',
    '{' + HEAD + ',"choices":[{"index":0,"delta":{"content":"H\u00e9llo"},"logprobs":null,'
                 '"finish_reason":null}],"usage":null}',
    '{' + HEAD + ',"choices":[{"index":0,"delta":{"content":" \U0001f44b there"},"logprobs":null,'
                 '"finish_reason":null}],"usage":null}',
    '{' + HEAD + ',"choices":[{"index":0,"delta":{},"logprobs":null,"finish_reason":"stop"}],"usage":null}',
    '{' + HEAD + ',"choices":[],"usage":{"prompt_tokens":9,"completion_tokens":4,"total_tokens":13,'
                 '"prompt_tokens_details":{"cached_tokens":0,"audio_tokens":0},'
                 '"completion_tokens_details":{"reasoning_tokens":0,"audio_tokens":0,'
                 '"accepted_prediction_tokens":0,"rejected_prediction_tokens":0}}}',
    "[DONE]",
]
STREAM = "".join(f"data: {event}\n\n" for event in STREAM_EVENTS).encode()

STREAM_COMPLETION = {
    "id": "chatcmpl-AbC123",
    "object": "chat.completion",
    "created": 1732291200,
    "model": "gpt-4o-mini-2024-07-18",
    # "refusal": null came in the first delta, and a plain answer has it too
    "choices": [{"index": 0, "message": {"role": "assistant", "content": "H\u00e9llo \U0001f44b there",
                                         "refusal": None},
                 "logprobs": None, "finish_reason": "stop"}],
    "usage": {"prompt_tokens": 9, "completion_tokens": 4, "total_tokens": 13,
              "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
              "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0,
                                            "accepted_prediction_tokens": 0, "rejected_prediction_tokens": 0}},
    "system_fingerprint": "fp_0ba0d124f1",
    "service_tier": "default",
}


def parse_all(pieces: list[bytes]) -> tuple[list[str], SSEParser]:
    parser = SSEParser()
    events: list[str] = []
    for piece in pieces:
        events.extend(parser.feed(piece))
    return events, parser


def assemble(events: list[str]) -> StreamAssembler:
    assembler = StreamAssembler()
    for event in events:
        assembler.add(event)
    return assembler


def chunk(choices: list[dict[str, Any]], **extra: Any) -> str:
    return orjson.dumps({"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1700000000,
                         "model": "gpt-4o-mini", "system_fingerprint": "fp_1", "choices": choices,
                         **extra}).decode()


def delta(index: int, finish_reason: str | None = None, logprobs: Any = None, **fields: Any) -> dict[str, Any]:
    return {"index": index, "delta": fields, "logprobs": logprobs, "finish_reason": finish_reason}


# -- SSEParser --------------------------------------------------------------------------------------


def test_parser_whole_stream() -> None:
    events, parser = parse_all([STREAM])
    assert events == STREAM_EVENTS
    assert parser.pending is False


def test_parser_split_at_every_byte_boundary() -> None:
    assert len(STREAM) != len(STREAM.decode())  # there are multi-byte characters to cut through
    for cut in range(len(STREAM) + 1):
        events, parser = parse_all([STREAM[:cut], STREAM[cut:]])
        assert events == STREAM_EVENTS, cut
        assert parser.pending is False, cut


def test_parser_split_at_every_pair_of_boundaries_in_one_event() -> None:
    first = STREAM.index(b"\n\n") + 2
    second = STREAM.index(b"\n\n", first) + 2
    for a in range(first, second):
        for b in range(a, second + 1):
            events, _ = parse_all([STREAM[:a], STREAM[a:b], STREAM[b:]])
            assert events == STREAM_EVENTS, (a, b)


def test_parser_byte_by_byte() -> None:
    events, parser = parse_all([STREAM[i:i + 1] for i in range(len(STREAM))])
    assert events == STREAM_EVENTS
    assert parser.pending is False


def test_parser_returns_events_as_they_complete() -> None:
    parser = SSEParser()
    assert parser.feed(b"data: one\n") == []
    assert parser.feed(b"\ndata: tw") == ["one"]
    assert parser.feed(b"o\n\n") == ["two"]


def test_parser_crlf_line_endings() -> None:
    crlf = STREAM.replace(b"\n", b"\r\n")
    events, parser = parse_all([crlf])
    assert events == STREAM_EVENTS
    assert parser.pending is False
    for cut in range(len(crlf) + 1):
        assert parse_all([crlf[:cut], crlf[cut:]])[0] == STREAM_EVENTS, cut


def test_parser_ignores_comments_and_other_fields() -> None:
    raw = (b": keep-alive\n\n"
           b"event: message\ndata: {\"a\":1}\n\n"
           b"id: 7\nretry: 1000\ndata: two\n\n"
           b":comment only\n\n"
           b"data: [DONE]\n\n")
    events, parser = parse_all([raw])
    assert events == ['{"a":1}', "two", "[DONE]"]
    assert parser.pending is False


def test_parser_joins_multi_line_data() -> None:
    events, _ = parse_all([b"data: first\ndata: second\ndata:third\n\n"])
    assert events == ["first\nsecond\nthird"]


def test_parser_strips_exactly_one_leading_space() -> None:
    events, _ = parse_all([b"data:nospace\n\ndata:  two spaces\n\ndata:\n\n"])
    # the last event has one data line with an empty value
    assert events == ["nospace", " two spaces", ""]


def test_parser_blank_lines_without_data_make_no_event() -> None:
    events, parser = parse_all([b"\n\n\n"])
    assert events == []
    assert parser.pending is False


@pytest.mark.parametrize("cut", [1, 10, len(STREAM) // 2, len(STREAM) - 2, len(STREAM) - 1])
def test_parser_pending_for_cut_stream(cut: int) -> None:
    _, parser = parse_all([STREAM[:cut]])
    assert parser.pending is True


def test_parser_pending_for_data_line_without_blank_line() -> None:
    _, parser = parse_all([b"data: [DONE]\n"])
    assert parser.pending is True


def test_parser_not_pending_initially() -> None:
    assert SSEParser().pending is False


# -- StreamAssembler --------------------------------------------------------------------------------


def test_assembler_realistic_stream_exact() -> None:
    assembler = assemble(STREAM_EVENTS)
    assert assembler.done is True
    assert assembler.failed is False
    assert assembler.result() == STREAM_COMPLETION


def test_assembler_content_and_role() -> None:
    events = [
        chunk([delta(0, role="assistant", content="")]),
        chunk([delta(0, content="The answer")]),
        chunk([delta(0, content=" is ")]),
        chunk([delta(0, content="42.")]),
        chunk([delta(0, "stop")]),
        DONE,
    ]
    assert assemble(events).result() == {
        "id": "chatcmpl-1", "object": "chat.completion", "created": 1700000000, "model": "gpt-4o-mini",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "The answer is 42."},
                     "logprobs": None, "finish_reason": "stop"}],
        "system_fingerprint": "fp_1",
    }


def test_assembler_role_defaults_to_assistant() -> None:
    result = assemble([chunk([delta(0, content="x")]), chunk([delta(0, "stop")]), DONE]).result()
    assert result is not None
    assert result["choices"][0]["message"] == {"role": "assistant", "content": "x"}


def test_assembler_empty_string_content_stays_empty_string() -> None:
    result = assemble([chunk([delta(0, role="assistant", content="")]), chunk([delta(0, "length")]), DONE]).result()
    assert result is not None
    assert result["choices"][0]["message"] == {"role": "assistant", "content": ""}
    assert result["choices"][0]["finish_reason"] == "length"


def test_assembler_no_content_key_is_none() -> None:
    result = assemble([chunk([delta(0, role="assistant")]), chunk([delta(0, "stop")]), DONE]).result()
    assert result is not None
    assert result["choices"][0]["message"] == {"role": "assistant", "content": None}


def test_assembler_usage_chunk() -> None:
    usage = {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4}
    events = [
        chunk([delta(0, role="assistant", content="ok")], usage=None),
        chunk([delta(0, "stop")], usage=None),
        chunk([], usage=usage),
        DONE,
    ]
    result = assemble(events).result()
    assert result is not None
    assert result["usage"] == usage
    assert result["choices"] == [{"index": 0, "message": {"role": "assistant", "content": "ok"},
                                  "logprobs": None, "finish_reason": "stop"}]


def test_assembler_without_usage_chunk_has_no_usage_key() -> None:
    result = assemble([chunk([delta(0, content="ok", role="assistant")]), chunk([delta(0, "stop")]), DONE]).result()
    assert result is not None
    assert "usage" not in result


TOOL_CALL_EVENTS = [
    chunk([delta(0, role="assistant", content=None, tool_calls=[
        {"index": 0, "id": "call_abc", "type": "function", "function": {"name": "get_weather", "arguments": ""}}],
        refusal=None)]),
    chunk([delta(0, tool_calls=[{"index": 0, "function": {"arguments": "{\"loc"}}])]),
    chunk([delta(0, tool_calls=[{"index": 0, "function": {"arguments": "ation\": \"Par"}}])]),
    chunk([delta(0, tool_calls=[{"index": 0, "function": {"arguments": "is\"}"}}])]),
    chunk([delta(0, tool_calls=[
        {"index": 1, "id": "call_def", "type": "function", "function": {"name": "get_time", "arguments": ""}}])]),
    chunk([delta(0, tool_calls=[{"index": 1, "function": {"arguments": "{}"}}])]),
    chunk([delta(0, "tool_calls")]),
    DONE,
]


def test_assembler_tool_calls_from_split_arguments() -> None:
    result = assemble(TOOL_CALL_EVENTS).result()
    assert result is not None
    choice = result["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    assert choice["message"]["role"] == "assistant"
    assert choice["message"]["tool_calls"] == [
        {"id": "call_abc", "type": "function",
         "function": {"name": "get_weather", "arguments": "{\"location\": \"Paris\"}"}},
        {"id": "call_def", "type": "function", "function": {"name": "get_time", "arguments": "{}"}},
    ]
    assert choice["message"]["refusal"] is None  # sent as null, kept as null


def test_assembler_tool_calls_out_of_order_indices_sorted() -> None:
    events = [
        chunk([delta(0, role="assistant", tool_calls=[
            {"index": 1, "id": "call_b", "type": "function", "function": {"name": "b", "arguments": "{}"}}])]),
        chunk([delta(0, tool_calls=[
            {"index": 0, "id": "call_a", "type": "function", "function": {"name": "a", "arguments": "{}"}}])]),
        chunk([delta(0, "tool_calls")]),
        DONE,
    ]
    result = assemble(events).result()
    assert result is not None
    assert [call["id"] for call in result["choices"][0]["message"]["tool_calls"]] == ["call_a", "call_b"]


REFUSAL_EVENTS = [
    chunk([delta(0, role="assistant", content=None, refusal="")]),
    chunk([delta(0, refusal="I'm sorry")]),
    chunk([delta(0, refusal=", I can't help with that.")]),
    chunk([delta(0, "stop")]),
    DONE,
]


def test_assembler_refusal() -> None:
    result = assemble(REFUSAL_EVENTS).result()
    assert result is not None
    assert result["choices"][0]["message"]["refusal"] == "I'm sorry, I can't help with that."
    assert result["choices"][0]["finish_reason"] == "stop"


@pytest.mark.parametrize("events", [pytest.param(TOOL_CALL_EVENTS, id="tool-calls"),
                                    pytest.param(REFUSAL_EVENTS, id="refusal")])
def test_assembler_null_content_stays_null(events: list[str]) -> None:
    result = assemble(events).result()
    assert result is not None
    assert result["choices"][0]["message"]["content"] is None


def test_assembler_two_interleaved_choices() -> None:
    events = [
        chunk([delta(0, role="assistant", content="")]),
        chunk([delta(1, role="assistant", content="")]),
        chunk([delta(1, content="Bonjour")]),
        chunk([delta(0, content="Hello")]),
        chunk([delta(0, content=" world")]),
        chunk([delta(1, content=" le monde")]),
        chunk([delta(1, "stop")]),
        chunk([delta(0, "length")]),
        DONE,
    ]
    result = assemble(events).result()
    assert result is not None
    assert result["choices"] == [
        {"index": 0, "message": {"role": "assistant", "content": "Hello world"}, "logprobs": None,
         "finish_reason": "length"},
        {"index": 1, "message": {"role": "assistant", "content": "Bonjour le monde"}, "logprobs": None,
         "finish_reason": "stop"},
    ]


def test_assembler_two_choices_in_one_chunk() -> None:
    events = [chunk([delta(0, role="assistant", content="a"), delta(1, role="assistant", content="b")]),
              chunk([delta(0, "stop"), delta(1, "stop")]), DONE]
    result = assemble(events).result()
    assert result is not None
    assert [c["message"]["content"] for c in result["choices"]] == ["a", "b"]


LOGPROB_A = {"token": "Hi", "logprob": -0.01, "bytes": [72, 105], "top_logprobs": []}
LOGPROB_B = {"token": "!", "logprob": -0.5, "bytes": [33], "top_logprobs": []}


def test_assembler_logprobs_concatenated() -> None:
    events = [
        chunk([delta(0, role="assistant", content="")]),
        chunk([delta(0, content="Hi", logprobs={"content": [LOGPROB_A], "refusal": None})]),
        chunk([delta(0, content="!", logprobs={"content": [LOGPROB_B], "refusal": None})]),
        chunk([delta(0, "stop")]),
        DONE,
    ]
    result = assemble(events).result()
    assert result is not None
    assert result["choices"][0]["logprobs"] == {"content": [LOGPROB_A, LOGPROB_B], "refusal": None}
    assert result["choices"][0]["message"]["content"] == "Hi!"


def test_assembler_head_from_first_chunk_with_values() -> None:
    events = [
        orjson.dumps({"id": "x1", "object": "chat.completion.chunk", "created": 5, "model": "m",
                      "choices": [delta(0, role="assistant", content="a")]}).decode(),
        orjson.dumps({"id": "x1", "object": "chat.completion.chunk", "created": 5, "model": "m",
                      "system_fingerprint": None, "choices": [delta(0, "stop")]}).decode(),
        DONE,
    ]
    result = assemble(events).result()
    assert result == {"id": "x1", "object": "chat.completion", "created": 5, "model": "m",
                      "choices": [{"index": 0, "message": {"role": "assistant", "content": "a"},
                                   "logprobs": None, "finish_reason": "stop"}]}


def test_assembler_result_none_without_done() -> None:
    assembler = assemble(STREAM_EVENTS[:-1])
    assert assembler.done is False
    assert assembler.result() is None


def test_assembler_result_none_when_a_choice_is_unfinished() -> None:
    events = [chunk([delta(0, role="assistant", content="a")]), chunk([delta(1, role="assistant", content="b")]),
              chunk([delta(0, "stop")]), DONE]
    assert assemble(events).result() is None


def test_assembler_result_none_without_finish_reason() -> None:
    assert assemble([chunk([delta(0, role="assistant", content="a")]), DONE]).result() is None


def test_assembler_result_none_without_choices() -> None:
    assert assemble([DONE]).result() is None


def test_assembler_result_none_after_error_event() -> None:
    events = [chunk([delta(0, role="assistant", content="a")]),
              '{"error":{"message":"The server had an error","type":"server_error","param":null,"code":null}}',
              chunk([delta(0, "stop")]), DONE]
    assembler = assemble(events)
    assert assembler.failed is True
    assert assembler.result() is None


@pytest.mark.parametrize("bad", ["{not json", '["a list"]', '"a string"'])
def test_assembler_result_none_after_invalid_payload(bad: str) -> None:
    events = [chunk([delta(0, role="assistant", content="a")]), bad, chunk([delta(0, "stop")]), DONE]
    assembler = assemble(events)
    assert assembler.failed is True
    assert assembler.result() is None


def test_done_with_surrounding_whitespace() -> None:
    assembler = StreamAssembler()
    assembler.add(" [DONE] ")
    assert assembler.done is True


# -- encode_event / replay --------------------------------------------------------------------------


def test_encode_event() -> None:
    assert encode_event({"a": 1}) == b'data: {"a":1}\n\n'
    assert encode_event("[DONE]") == b"data: [DONE]\n\n"


SMALL = {
    "id": "chatcmpl-1", "object": "chat.completion", "created": 1700000000, "model": "gpt-4o-mini",
    "system_fingerprint": "fp_1",
    "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hi!"}, "logprobs": None,
                 "finish_reason": "stop"}],
    "usage": {"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7},
}
SMALL_HEAD = (b'{"id":"chatcmpl-1","object":"chat.completion.chunk","created":1700000000,"model":"gpt-4o-mini",'
              b'"system_fingerprint":"fp_1"')


def test_replay_frames_without_usage() -> None:
    assert list(replay(SMALL, include_usage=False)) == [
        b"data: " + SMALL_HEAD + b',"choices":[{"index":0,"delta":{"role":"assistant","content":""},'
                                 b'"logprobs":null,"finish_reason":null}]}\n\n',
        b"data: " + SMALL_HEAD + b',"choices":[{"index":0,"delta":{"content":"Hi!"},'
                                 b'"logprobs":null,"finish_reason":null}]}\n\n',
        b"data: " + SMALL_HEAD + b',"choices":[{"index":0,"delta":{},"logprobs":null,"finish_reason":"stop"}]}\n\n',
        b"data: [DONE]\n\n",
    ]


def test_replay_frames_with_usage() -> None:
    head = SMALL_HEAD + b',"usage":null'
    assert list(replay(SMALL, include_usage=True)) == [
        b"data: " + head + b',"choices":[{"index":0,"delta":{"role":"assistant","content":""},'
                           b'"logprobs":null,"finish_reason":null}]}\n\n',
        b"data: " + head + b',"choices":[{"index":0,"delta":{"content":"Hi!"},'
                           b'"logprobs":null,"finish_reason":null}]}\n\n',
        b"data: " + head + b',"choices":[{"index":0,"delta":{},"logprobs":null,"finish_reason":"stop"}]}\n\n',
        b"data: " + SMALL_HEAD + b',"usage":{"prompt_tokens":5,"completion_tokens":2,"total_tokens":7},'
                                 b'"choices":[]}\n\n',
        b"data: [DONE]\n\n",
    ]


def test_replay_does_not_mutate_completion() -> None:
    before = copy.deepcopy(SMALL)
    list(replay(SMALL, include_usage=True))
    assert before == SMALL


# -- round trip: replay -> parser -> assembler -------------------------------------------------------


def round_trip(completion: dict[str, Any], *, include_usage: bool = True, piece: int = 7) -> dict[str, Any] | None:
    raw = b"".join(replay(completion, include_usage=include_usage))
    events, parser = parse_all([raw[i:i + piece] for i in range(0, len(raw), piece)])
    assert parser.pending is False
    return assemble(events).result()


USAGE = {"prompt_tokens": 19, "completion_tokens": 10, "total_tokens": 29,
         "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
         "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0, "accepted_prediction_tokens": 0,
                                       "rejected_prediction_tokens": 0}}


def openai_completion(choices: list[dict[str, Any]]) -> dict[str, Any]:
    return {"id": "chatcmpl-B9MHDbslfkBeAs8l4bebGdFOJ6PeG", "object": "chat.completion", "created": 1741570283,
            "model": "gpt-4o-2024-08-06", "choices": choices, "usage": USAGE, "service_tier": "default",
            "system_fingerprint": "fp_eb9dce56a8"}


PLAIN = openai_completion([{"index": 0, "message": {"role": "assistant", "content": "The sky is blue \u2600\ufe0f.\n\n"
                                                    "Because of Rayleigh scattering."},
                            "logprobs": None, "finish_reason": "stop"}])
TOOL_CALLS_WITH_TEXT = openai_completion([{"index": 0, "message": {
    "role": "assistant", "content": "Let me check.",
    "tool_calls": [
        {"id": "call_FthC9qRpsL5kBpwwyw6c7j4k", "type": "function",
         "function": {"name": "get_weather", "arguments": "{\"location\":\"Paris, France\"}"}},
        {"id": "call_x2", "type": "function", "function": {"name": "get_time", "arguments": "{}"}},
    ]}, "logprobs": None, "finish_reason": "tool_calls"}])
TOOL_CALLS = openai_completion([{"index": 0, "message": {
    "role": "assistant", "content": None,
    "tool_calls": [{"id": "call_FthC9qRpsL5kBpwwyw6c7j4k", "type": "function",
                    "function": {"name": "get_weather", "arguments": "{\"location\":\"Paris, France\"}"}}]},
    "logprobs": None, "finish_reason": "tool_calls"}])
TWO_CHOICES = openai_completion([
    {"index": 0, "message": {"role": "assistant", "content": "Heads."}, "logprobs": None, "finish_reason": "stop"},
    {"index": 1, "message": {"role": "assistant", "content": "Tails, after a long and careful throw."},
     "logprobs": None, "finish_reason": "length"},
])
WITH_LOGPROBS = openai_completion([{"index": 0, "message": {"role": "assistant", "content": "Hi!"},
                                    "logprobs": {"content": [LOGPROB_A, LOGPROB_B]}, "finish_reason": "stop"}])


@pytest.mark.parametrize("completion", [
    pytest.param(PLAIN, id="plain"),
    pytest.param(TOOL_CALLS_WITH_TEXT, id="tool-calls-with-text"),
    pytest.param(TWO_CHOICES, id="n=2"),
    pytest.param(WITH_LOGPROBS, id="logprobs"),
])
@pytest.mark.parametrize("piece", [1, 7, 4096])
def test_round_trip(completion: dict[str, Any], piece: int) -> None:
    assert round_trip(completion, piece=piece) == completion


def test_round_trip_tool_calls_with_null_content() -> None:
    assert round_trip(TOOL_CALLS) == TOOL_CALLS


def test_round_trip_tool_calls_with_null_content_keeps_the_calls() -> None:
    result = round_trip(TOOL_CALLS)
    assert result is not None
    assert result["choices"][0]["message"]["tool_calls"] == TOOL_CALLS["choices"][0]["message"]["tool_calls"]
    assert result["choices"][0]["finish_reason"] == "tool_calls"


def test_round_trip_without_usage_chunk_drops_usage() -> None:
    expected = {key: value for key, value in PLAIN.items() if key != "usage"}
    assert round_trip(PLAIN, include_usage=False) == expected


# -- issue 10, items 1-3, through the names the chat path imports ----------------------------------------


@pytest.mark.parametrize(("raw", "expected"), [
    pytest.param(b"data: one\r\rdata: [DONE]\r\r", ["one", "[DONE]"], id="cr-only-line-ends"),
    pytest.param(b"\xef\xbb\xbfdata: one\n\n", ["one"], id="bom"),
    pytest.param(b"data\n\n", [""], id="data-without-colon"),
    pytest.param(b"data: a\r", [], id="cr-is-a-line-end-at-once"),
])
def test_sse_parser_is_whatwg(raw: bytes, expected: list[str]) -> None:
    assert parse_all([raw])[0] == expected


def test_sse_parser_cr_then_lf_in_the_next_chunk() -> None:
    assert parse_all([b"data: a\r", b"\n\r", b"\n"])[0] == ["a"]


def test_assembler_keeps_a_legacy_function_call() -> None:
    events = [chunk([delta(0, role="assistant", content=None, function_call={"name": "f", "arguments": ""})]),
              chunk([delta(0, function_call={"arguments": "{}"})]), chunk([delta(0, "function_call")]), DONE]
    result = assemble(events).result()
    assert result is not None
    assert result["choices"][0]["message"] == {"role": "assistant", "content": None,
                                               "function_call": {"name": "f", "arguments": "{}"}}


def test_assembler_takes_a_null_choice_index_as_choice_zero() -> None:
    events = [chunk([{"index": None, "delta": {"content": "a"}, "finish_reason": "stop"}]), DONE]
    result = assemble(events).result()
    assert result is not None
    assert result["choices"][0]["index"] == 0
    assert result["choices"][0]["message"]["content"] == "a"


@pytest.mark.parametrize("events", [
    pytest.param([chunk([delta(0, tool_calls=[{"index": None, "id": "c"}])]), chunk([delta(0, "stop")]), DONE],
                 id="tool-call-index-null"),
    pytest.param([chunk([delta(0, content=[{"type": "text", "text": "a"}])]),
                  chunk([delta(0, content=[{"type": "text", "text": "b"}])]), chunk([delta(0, "stop")]), DONE],
                 id="list-content"),
    pytest.param([chunk([delta(0, content="a", tool_calls="x")]), chunk([delta(0, "stop")]), DONE],
                 id="tool-calls-string"),
])
def test_assembler_does_not_raise_and_does_not_store(events: list[str]) -> None:
    assembler = assemble(events)
    assert assembler.result() is None
    assert isinstance(assembler.reason, str)


def test_replay_keeps_a_legacy_function_call() -> None:
    completion = openai_completion([{"index": 0, "message": {"role": "assistant", "content": None,
                                                             "function_call": {"name": "f", "arguments": "{}"}},
                                     "logprobs": None, "finish_reason": "function_call"}])
    assert round_trip(completion) == completion


def test_hiding_usage_keeps_comments_fields_and_bytes() -> None:
    usage = b'data: {"id":"c","choices":[],"usage":{"total_tokens":3}}\r\n\r\n'
    upstream = (b": keep-alive\r\n\r\nevent: message\r\nid: 1\r\ndata: " + STREAM_EVENTS[0].encode() + b"\r\n\r\n"
                + usage + b"data: [DONE]\r\n\r\n")
    relay = EventRelay(drop=is_usage_only_event)
    sent = [relay.feed(upstream[i:i + 3])[0] for i in range(0, len(upstream), 3)]
    assert b"".join(sent) + relay.close() == upstream.replace(usage, b"")


def test_moonshot_streams_usage_inside_the_last_choice_is_kept() -> None:
    assembler = StreamAssembler()
    head = {"id": "c1", "object": "chat.completion.chunk", "created": 1, "model": "kimi"}
    assembler.add(orjson.dumps({**head, "choices": [{"index": 0, "delta": {"role": "assistant", "content": "hi"}}]})
                  .decode())
    usage = {"prompt_tokens": 9, "completion_tokens": 1, "total_tokens": 10, "cached_tokens": 8}
    assembler.add(orjson.dumps({**head, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop",
                                                     "usage": usage}]}).decode())
    assembler.add("[DONE]")
    result = assembler.result()
    assert result is not None
    assert result["usage"] == usage
    assert "usage" not in result["choices"][0]
