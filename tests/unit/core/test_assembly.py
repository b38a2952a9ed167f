"""proxy.core.assembly (with proxy.core.folding): every field of a streamed answer folded, or nothing stored."""

from __future__ import annotations

import random
from typing import Any

import orjson
import pytest

from proxy.core.assembly import StreamAssembler, is_usage_only, is_usage_only_event
from proxy.core.eventstream import DONE, Event


def chunk(choices: list[Any], **extra: Any) -> str:
    return orjson.dumps({"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1700000000,
                         "model": "m", "choices": choices, **extra}).decode()


def delta(index: Any = 0, finish_reason: str | None = None, **fields: Any) -> dict[str, Any]:
    return {"index": index, "delta": fields, "logprobs": None, "finish_reason": finish_reason}


def assemble(events: list[str]) -> StreamAssembler:
    assembler = StreamAssembler()
    for event in events:
        assembler.add(event)
    return assembler


def message_of(events: list[str]) -> dict[str, Any]:
    assembler = assemble(events)
    result = assembler.result()
    assert result is not None, assembler.reason
    message: dict[str, Any] = result["choices"][0]["message"]
    return message


def refused(events: list[str]) -> str | None:
    assembler = assemble(events)
    assert assembler.result() is None
    return assembler.reason


# -- every message field is kept ----------------------------------------------------------------------


def test_legacy_function_call() -> None:
    events = [chunk([delta(role="assistant", content=None, function_call={"name": "get_weather", "arguments": ""})]),
              chunk([delta(function_call={"arguments": '{"city":'})]),
              chunk([delta(function_call={"arguments": '"Paris"}'})]),
              chunk([delta(finish_reason="function_call")]), DONE]
    assert message_of(events) == {"role": "assistant", "content": None,
                                  "function_call": {"name": "get_weather", "arguments": '{"city":"Paris"}'}}


def test_reasoning_content_deepseek() -> None:
    events = [chunk([delta(role="assistant", content=None, reasoning_content="")]),
              chunk([delta(reasoning_content="Nine is ")]), chunk([delta(reasoning_content="three squared.")]),
              chunk([delta(content="3")]), chunk([delta(finish_reason="stop")]), DONE]
    assert message_of(events) == {"role": "assistant", "content": "3", "reasoning_content": "Nine is three squared."}


def test_reasoning_groq_and_openrouter() -> None:
    events = [chunk([delta(role="assistant", content="", reasoning="Think")]), chunk([delta(reasoning="ing.")]),
              chunk([delta(content="Done.")]), chunk([delta(finish_reason="stop")]), DONE]
    assert message_of(events) == {"role": "assistant", "content": "Done.", "reasoning": "Thinking."}


URL_CITATION = {"type": "url_citation", "url_citation": {"start_index": 0, "end_index": 5, "title": "Ex",
                                                         "url": "https://example.com/"}}


def test_annotations_append() -> None:
    second = {**URL_CITATION, "url_citation": {**URL_CITATION["url_citation"], "url": "https://example.org/"}}
    events = [chunk([delta(role="assistant", content="", refusal=None, annotations=[])]),
              chunk([delta(content="Hello")]), chunk([delta(annotations=[URL_CITATION])]),
              chunk([delta(annotations=[second])]), chunk([delta(finish_reason="stop")]), DONE]
    assert message_of(events) == {"role": "assistant", "content": "Hello", "refusal": None,
                                  "annotations": [URL_CITATION, second]}


def test_audio() -> None:
    events = [chunk([delta(role="assistant", content=None, audio={"id": "audio_1", "transcript": "Hel"})]),
              chunk([delta(audio={"transcript": "lo", "data": "AAAA"})]),
              chunk([delta(audio={"id": "audio_1", "data": "BBB="})]),
              chunk([delta(audio={"expires_at": 1700003600})]), chunk([delta(finish_reason="stop")]), DONE]
    assert message_of(events) == {"role": "assistant", "content": None,
                                  "audio": {"id": "audio_1", "transcript": "Hello", "data": "AAAABBB=",
                                            "expires_at": 1700003600}}


def test_audio_data_after_padding_is_not_stored() -> None:
    events = [chunk([delta(role="assistant", audio={"data": "QQ=="})]), chunk([delta(audio={"data": "QQ=="})]),
              chunk([delta(finish_reason="stop")]), DONE]
    assert refused(events) == "choices[0].delta.audio.data goes on after base64 padding"


def test_unknown_delta_keys_fold_generically() -> None:
    events = [chunk([delta(role="assistant", content="", x_note="a", x_obj={"k": "1", "n": 2},
                           x_calls=[{"index": 0, "v": "p"}])]),
              chunk([delta(x_note="b", x_obj={"k": "2", "m": {"deep": "x"}}, x_calls=[{"index": 1, "v": "q"},
                                                                                      {"index": 0, "v": "r"}])]),
              chunk([delta(x_obj={"m": {"deep": "y"}, "n": 2}, x_list=[1, 2])]), chunk([delta(x_list=[3])]),
              chunk([delta(finish_reason="stop")]), DONE]
    assert message_of(events) == {"role": "assistant", "content": "", "x_note": "ab",
                                  "x_obj": {"k": "12", "n": 2, "m": {"deep": "xy"}},
                                  "x_calls": [{"index": 0, "v": "pr"}, {"index": 1, "v": "q"}], "x_list": [1, 2, 3]}


def test_null_fields_are_kept_as_null() -> None:
    events = [chunk([delta(role="assistant", content="Hi", refusal=None, audio=None, function_call=None,
                           tool_calls=None)]), chunk([delta(finish_reason="stop")]), DONE]
    assert message_of(events) == {"role": "assistant", "content": "Hi", "refusal": None, "audio": None,
                                  "function_call": None, "tool_calls": None}


def test_null_after_a_value_changes_nothing() -> None:
    events = [chunk([delta(role="assistant", content="Hi", refusal="No")]),
              chunk([delta(content=None, refusal=None, role=None)]), chunk([delta(finish_reason="stop")]), DONE]
    assert message_of(events) == {"role": "assistant", "content": "Hi", "refusal": "No"}


def test_one_chunk_with_two_fragments_of_one_tool_call() -> None:
    events = [chunk([delta(role="assistant", tool_calls=[
        {"index": 0, "id": "call_1", "type": "function", "function": {"name": "f", "arguments": "{\"a\""}},
        {"index": 0, "function": {"arguments": ":1}"}}])]), chunk([delta(finish_reason="tool_calls")]), DONE]
    assert message_of(events)["tool_calls"] == [
        {"id": "call_1", "type": "function", "function": {"name": "f", "arguments": "{\"a\":1}"}}]


def test_identifying_fields_repeated_unchanged_are_not_concatenated() -> None:
    call = {"index": 0, "id": "call_1", "type": "function", "function": {"name": "f", "arguments": "{"}}
    events = [chunk([delta(role="assistant", tool_calls=[call])]),
              chunk([delta(role="assistant", tool_calls=[{**call, "id": "", "function": {"name": "f",
                                                                                        "arguments": "}"}}])]),
              chunk([delta(finish_reason="tool_calls")]), DONE]
    assert message_of(events)["tool_calls"] == [
        {"id": "call_1", "type": "function", "function": {"name": "f", "arguments": "{}"}}]


def test_tool_call_given_whole_without_index_is_kept() -> None:
    call = {"id": "call_1", "type": "function", "function": {"name": "f", "arguments": "{}"}}
    events = [chunk([delta(role="assistant", content=None, tool_calls=[call])]),
              chunk([delta(finish_reason="tool_calls")]), DONE]
    assert message_of(events)["tool_calls"] == [call]


# -- what the assembler will not guess ------------------------------------------------------------------


@pytest.mark.parametrize(("events", "reason"), [
    pytest.param([chunk([delta(role="assistant", tool_calls=[{"index": None, "id": "c", "function": {}}])])],
                 "choices[0].delta.tool_calls has an entry without an integer index", id="tool-call-index-null"),
    pytest.param([chunk([delta(role="assistant", tool_calls=[{"index": "0", "id": "c"}])])],
                 "choices[0].delta.tool_calls has an entry without an integer index", id="tool-call-index-string"),
    pytest.param([chunk([delta(content=[{"type": "text", "text": "Hel"}])]),
                  chunk([delta(content=[{"type": "text", "text": "lo"}])])],
                 "choices[0].delta.content came twice as a list without indices (items or pieces of one?)",
                 id="list-content-twice"),
    pytest.param([chunk([delta(content="a")]), chunk([delta(content=[{"type": "text", "text": "b"}])])],
                 "choices[0].delta.content is a list without indices after a str", id="list-after-string"),
    pytest.param([chunk([delta(content="a")]), chunk([delta(content=7)])],
                 "choices[0].delta.content is int, not str or list", id="content-number"),
    pytest.param([chunk([delta(content="a", tool_calls="x")])], "choices[0].delta.tool_calls is str, not list",
                 id="tool-calls-string"),
    pytest.param([chunk([delta(function_call="f")])], "choices[0].delta.function_call is str, not dict",
                 id="function-call-string"),
    pytest.param([chunk([delta(x_extra="a")]), chunk([delta(x_extra=7)])],
                 "choices[0].delta.x_extra changed from 'a' to 7", id="unknown-number-after-string"),
    pytest.param([chunk([delta(x_extra="a")]), chunk([delta(x_extra={"text": "b"})])],
                 "choices[0].delta.x_extra is an object after a str", id="object-after-string"),
    pytest.param([chunk([delta(role="assistant")]), chunk([delta(role="tool")])],
                 "choices[0].delta.role changed from 'assistant' to 'tool'", id="role-changed"),
    pytest.param([chunk([delta(tool_calls=[{"index": 0, "id": "call_a"}])]),
                  chunk([delta(tool_calls=[{"index": 0, "id": "call_b"}])])],
                 "choices[0].delta.tool_calls[0].id changed from 'call_a' to 'call_b'", id="tool-call-id-changed"),
    pytest.param([chunk([delta(tool_calls=[{"id": "a"}])]), chunk([delta(tool_calls=[{"id": "b"}])])],
                 "choices[0].delta.tool_calls came twice as a list without indices (items or pieces of one?)",
                 id="unindexed-tool-calls-twice"),
    pytest.param([chunk([delta(index=-1, content="a")])], "choice index -1 is not a whole number",
                 id="negative-choice-index"),
    pytest.param([chunk([delta(index="0", content="a")])], "choice index '0' is not a whole number",
                 id="string-choice-index"),
    pytest.param([chunk([delta(index=True, content="a")])], "choice index True is not a whole number",
                 id="bool-choice-index"),
    pytest.param([chunk("not a list")], "choices is not a list", id="choices-string"),
    pytest.param([chunk(["a choice?"])], "a choice is not an object", id="choice-string"),
    pytest.param([chunk([{"index": 0, "delta": "text"}])], "choices[0].delta is not an object",
                 id="delta-string"),
    pytest.param([chunk([{**delta(content="a"), "content_filter_results": {"hate": {"severity": "safe"}}}]),
                  chunk([{**delta(content="b"), "content_filter_results": {"hate": {"severity": "low"}}}])],
                 "choices[0].content_filter_results.hate.severity changed from 'safe' to 'low'",
                 id="choice-extra-changed"),
    pytest.param([chunk([delta(content="a", finish_reason="stop")]), chunk([delta(finish_reason="length")])],
                 "choices[0].finish_reason changed from 'stop' to 'length'", id="finish-reason-changed"),
    pytest.param([chunk([delta(content="a")], citations=["u1"]), chunk([delta()], citations=["u2"])],
                 "citations changed from ['u1'] to ['u2']", id="top-level-extra-changed"),
    pytest.param([chunk([{**delta(content="a"), "logprobs": "x"}])], "choices[0].logprobs is not an object",
                 id="logprobs-string"),
    pytest.param(["{not json"], "an event's data is not JSON", id="not-json"),
    pytest.param(['["a list"]'], "an event's data is not a JSON object", id="not-an-object"),
    pytest.param(['{"error":{"message":"overloaded"}}'], "the stream carried an error", id="error-event"),
])
def test_cannot_store(events: list[str], reason: str) -> None:
    finished = [*events, chunk([delta(finish_reason="stop")]), DONE]
    assert refused(finished) == reason


def test_deeply_nested_delta_is_not_stored_and_does_not_raise() -> None:
    deep = '{"k":' * 900 + '"x"' + "}" * 900  # orjson reads 1024 levels, more than Python recursion allows
    events = ['{"choices":[{"index":0,"delta":{"content":"a","x":' + deep + "}}]}",
              chunk([delta(finish_reason="stop")]), DONE]
    assert refused(events) == "choices[0].delta." + ".".join(["x", *["k"] * 32]) + " is nested too deep to be a delta"


@pytest.mark.parametrize(("events", "reason"), [
    pytest.param([chunk([delta(content="a", finish_reason="stop")])], "the stream did not end with [DONE]",
                 id="no-done"),
    pytest.param([DONE], "the stream had no choices", id="no-choices"),
    pytest.param([chunk([delta(content="a", finish_reason="stop"), delta(1, content="b")]), DONE],
                 "choice 1 has no finish_reason", id="unfinished-choice"),
])
def test_incomplete_streams(events: list[str], reason: str) -> None:
    assert refused(events) == reason


def test_choice_index_null_or_missing_is_choice_zero() -> None:
    events = [chunk([delta(index=None, role="assistant", content="Hel")]),
              chunk([{"delta": {"content": "lo"}, "finish_reason": None}]),
              chunk([delta(index=None, finish_reason="stop")]), DONE]
    result = assemble(events).result()
    assert result is not None
    assert result["choices"] == [{"index": 0, "message": {"role": "assistant", "content": "Hello"}, "logprobs": None,
                                  "finish_reason": "stop"}]


def test_first_reason_is_kept() -> None:
    assembler = assemble([chunk([delta(role="assistant")]), chunk([delta(role="user")]), "{bad", DONE])
    assert assembler.reason == "choices[0].delta.role changed from 'assistant' to 'user'"
    assert assembler.failed is True


def test_reason_is_none_when_stored() -> None:
    assembler = assemble([chunk([delta(content="a", finish_reason="stop")]), DONE])
    assert assembler.reason is None
    assert assembler.outcome()[1] is None


# -- outside the delta -------------------------------------------------------------------------------


def test_choice_and_chunk_extras_repeat_and_merge() -> None:
    filters = {"hate": {"filtered": False, "severity": "safe"}}
    events = [chunk([], prompt_filter_results=[{"prompt_index": 0, "content_filter_results": filters}]),
              chunk([{**delta(role="assistant", content="a"), "content_filter_results": {}}], x_groq={"id": "req_1"},
                    provider="OpenAI"),
              chunk([{**delta(content="b"), "content_filter_results": filters, "stop_reason": None}],
                    provider="OpenAI"),
              chunk([{**delta(finish_reason="stop"), "content_filter_results": filters}],
                    x_groq={"id": "req_1", "usage": {"queue_time": 0.01}}),
              DONE]
    assert assemble(events).result() == {
        "id": "chatcmpl-1", "object": "chat.completion", "created": 1700000000, "model": "m",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "ab"}, "logprobs": None,
                     "finish_reason": "stop", "content_filter_results": filters, "stop_reason": None}],
        "prompt_filter_results": [{"prompt_index": 0, "content_filter_results": filters}],
        "x_groq": {"id": "req_1", "usage": {"queue_time": 0.01}}, "provider": "OpenAI",
    }


def test_head_takes_the_last_value_sent() -> None:
    events = [orjson.dumps({"id": "a", "model": "m1", "created": 1, "choices": [delta(content="x")]}).decode(),
              orjson.dumps({"id": "b", "model": "m2", "created": None, "service_tier": "default",
                            "choices": [delta(finish_reason="stop")]}).decode(), DONE]
    result = assemble(events).result()
    assert result is not None
    assert (result["id"], result["model"], result["created"], result["service_tier"]) == ("b", "m2", 1, "default")


def test_logprobs_token_lists_concatenate_and_keep_nulls() -> None:
    a = {"token": "Hi", "logprob": -0.1, "bytes": [72, 105], "top_logprobs": []}
    b = {"token": "!", "logprob": -0.2, "bytes": [33], "top_logprobs": []}
    events = [chunk([{**delta(content="Hi"), "logprobs": {"content": [a], "refusal": None}}]),
              chunk([{**delta(content="!"), "logprobs": {"content": [b], "refusal": None}}]),
              chunk([delta(finish_reason="stop")]), DONE]
    result = assemble(events).result()
    assert result is not None
    assert result["choices"][0]["logprobs"] == {"content": [a, b], "refusal": None}


def test_events_after_failure_still_parse_and_done_is_seen() -> None:
    assembler = StreamAssembler()
    assembler.add("{bad")
    assert assembler.add(chunk([], usage={"total_tokens": 3})) == {
        "id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1700000000, "model": "m", "choices": [],
        "usage": {"total_tokens": 3}}
    assembler.add(DONE)
    assert assembler.done is True
    assert assembler.result() is None


def test_add_event() -> None:
    assembler = StreamAssembler()
    assembler.add_event(Event(chunk([delta(content="a", finish_reason="stop")])))
    assembler.add_event(Event(DONE))
    result = assembler.result()
    assert result is not None
    assert result["choices"][0]["message"] == {"role": "assistant", "content": "a"}


def test_never_raises_on_random_chunks() -> None:
    rng = random.Random(3)
    leaves: list[Any] = [None, "", "a", 0, 1, -1, 1.5, True, [], {}, [1], ["x"], {"index": 0}, {"index": None},
                         [{"index": 0, "a": "b"}], [{"index": "x"}], [{"no": "index"}], "=", "QQ=="]
    keys = ["index", "delta", "content", "role", "tool_calls", "function", "arguments", "name", "id", "type",
            "audio", "data", "logprobs", "finish_reason", "annotations", "refusal", "x"]

    def value(depth: int) -> Any:
        if depth > 3 or rng.random() < 0.4:
            return rng.choice(leaves)
        if rng.random() < 0.5:
            return [value(depth + 1) for _ in range(rng.randrange(3))]
        return {rng.choice(keys): value(depth + 1) for _ in range(rng.randrange(4))}

    stored = 0
    for _ in range(400):
        assembler = StreamAssembler()
        for _ in range(rng.randrange(1, 6)):
            fields = {rng.choice(keys): value(1) for _ in range(rng.randrange(4))}
            choice = {"index": rng.choice([0, 0, 1, None]), "delta": fields,
                      "finish_reason": rng.choice([None, "stop"])} if rng.random() < 0.9 else value(0)
            assembler.add(orjson.dumps({"choices": [choice] if rng.random() < 0.95 else value(0)}).decode())
        assembler.add(DONE)
        completion, reason = assembler.outcome()
        assert (completion is None) != (reason is None)
        assert reason is None or not reason.startswith("unexpected"), reason
        if completion is not None:
            stored += 1
            orjson.dumps(completion)  # what is stored can be written
    assert stored > 40  # the random streams reach the folding, not just the first check


# -- usage --------------------------------------------------------------------------------------------


def test_is_usage_only() -> None:
    assert is_usage_only({"choices": [], "usage": {"total_tokens": 1}}) is True
    assert is_usage_only({"choices": [delta()], "usage": {"total_tokens": 1}}) is False
    assert is_usage_only({"choices": [], "usage": None}) is False
    assert is_usage_only("text") is False


@pytest.mark.parametrize(("data", "expected"), [
    ('{"choices":[],"usage":{"total_tokens":1}}', True),
    ('{"choices": [], "usage": {"total_tokens": 1}}', True),
    ('{"choices":[{"index":0,"delta":{}}],"usage":{"total_tokens":1}}', False),
    ('{"choices":[],"usage":null}', False),
    ('{"choices":[]}', False),
    ('{"usage": broken', False),
    (DONE, False),
])
def test_is_usage_only_event(data: str, expected: bool) -> None:
    assert is_usage_only_event(Event(data)) is expected
