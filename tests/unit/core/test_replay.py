"""proxy.core.replay: every field of a stored completion replayed as a stream, and fresh identities."""

from __future__ import annotations

import copy
from typing import Any

import orjson
import pytest

from proxy.core.assembly import StreamAssembler
from proxy.core.eventstream import EventStreamParser
from proxy.core.replay import refresh_identity, replay


def assemble_replay(completion: dict[str, Any], *, include_usage: bool = True, piece: int = 5,
                    **identity: Any) -> dict[str, Any] | None:
    raw = b"".join(replay(completion, include_usage=include_usage, **identity))
    parser, assembler = EventStreamParser(), StreamAssembler()
    for start in range(0, len(raw), piece):
        for part in parser.feed(raw[start:start + piece]):
            if part.event is not None:
                assembler.add(part.event.data)
    assert parser.pending is False
    result = assembler.result()
    assert result is not None, assembler.reason
    return result


def events(completion: dict[str, Any], **options: Any) -> list[Any]:
    raw = b"".join(replay(completion, include_usage=options.pop("include_usage", False), **options))
    parser = EventStreamParser()
    data = [piece.event.data for piece in parser.feed(raw) if piece.event is not None]
    return [orjson.loads(item) if item != "[DONE]" else item for item in data]


USAGE = {"prompt_tokens": 19, "completion_tokens": 10, "total_tokens": 29,
         "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
         "completion_tokens_details": {"reasoning_tokens": 4, "audio_tokens": 0}}


def completion_with(message: dict[str, Any], *, finish_reason: str = "stop", **extra: Any) -> dict[str, Any]:
    return {"id": "chatcmpl-B9MHDbslfkBeAs8l4bebGdFOJ6PeG", "object": "chat.completion", "created": 1741570283,
            "model": "gpt-4o-2024-08-06",
            "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": finish_reason}],
            "usage": USAGE, "service_tier": "default", "system_fingerprint": "fp_eb9dce56a8", **extra}


URL_CITATION = {"type": "url_citation", "url_citation": {"end_index": 50, "start_index": 10, "title": "Example",
                                                         "url": "https://example.com/?utm_source=openai"}}
LOGPROBS = {"content": [{"token": "Hi", "logprob": -0.01, "bytes": [72, 105], "top_logprobs": []}], "refusal": None}

CASES = {
    # a plain OpenAI answer as it comes today: refusal null, annotations empty
    "plain-openai": completion_with({"role": "assistant", "content": "The sky is blue.", "refusal": None,
                                     "annotations": []}),
    "function-call": completion_with({"role": "assistant", "content": None, "function_call": {
        "name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}}, finish_reason="function_call"),
    "reasoning-content": completion_with({"role": "assistant", "content": "3",
                                          "reasoning_content": "Nine is three squared."}),
    "reasoning": completion_with({"role": "assistant", "content": "Done.", "reasoning": "Thinking."}),
    "annotations": completion_with({"role": "assistant", "content": "See example.com.", "refusal": None,
                                    "annotations": [URL_CITATION, URL_CITATION]}),
    "audio": completion_with({"role": "assistant", "content": None, "refusal": None, "audio": {
        "id": "audio_abc", "data": "UklGRiQAAABXQVZF", "expires_at": 1729018505, "transcript": "Hello!"}}),
    "refusal": completion_with({"role": "assistant", "content": None, "refusal": "I can't help with that."}),
    "tool-calls": completion_with({"role": "assistant", "content": None, "refusal": None, "tool_calls": [
        {"id": "call_1", "type": "function", "function": {"name": "a", "arguments": "{}"}},
        {"id": "call_2", "type": "function", "function": {"name": "b", "arguments": "{\"x\":1}"}}]},
        finish_reason="tool_calls"),
    "empty-content": completion_with({"role": "assistant", "content": ""}, finish_reason="length"),
    "list-content": completion_with({"role": "assistant", "content": [{"type": "text", "text": "Hi"}]}),
    "unknown-fields": completion_with({"role": "assistant", "content": "x", "x_note": "n", "x_obj": {"a": [1]}},
                                      x_groq={"id": "req_1"}, citations=["https://a.example/"]),
    "choice-extras": {**completion_with({"role": "assistant", "content": "x"}), "choices": [
        {"index": 0, "message": {"role": "assistant", "content": "x"}, "logprobs": None, "finish_reason": "stop",
         "content_filter_results": {"hate": {"filtered": False, "severity": "safe"}}, "stop_reason": None}]},
    "logprobs": {**completion_with({"role": "assistant", "content": "Hi"}), "choices": [
        {"index": 0, "message": {"role": "assistant", "content": "Hi"}, "logprobs": LOGPROBS,
         "finish_reason": "stop"}]},
    "logprobs-without-content": {**completion_with({"role": "assistant", "content": None, "refusal": "No"}),
                                 "choices": [{"index": 0, "message": {"role": "assistant", "content": None,
                                                                      "refusal": "No"},
                                              "logprobs": {"content": None, "refusal": LOGPROBS["content"]},
                                              "finish_reason": "stop"}]},
    "two-choices": {**completion_with({"role": "assistant", "content": "Heads."}), "choices": [
        {"index": 0, "message": {"role": "assistant", "content": "Heads.", "reasoning_content": "coin"},
         "logprobs": None, "finish_reason": "stop"},
        {"index": 1, "message": {"role": "assistant", "content": None, "function_call": {"name": "f",
                                                                                           "arguments": "{}"}},
         "logprobs": None, "finish_reason": "function_call"}]},
}


@pytest.mark.parametrize("name", list(CASES))
@pytest.mark.parametrize("piece", [1, 5, 4096])
def test_round_trip_every_field(name: str, piece: int) -> None:
    assert assemble_replay(CASES[name], piece=piece) == CASES[name]


def test_round_trip_without_usage_drops_only_usage() -> None:
    expected = {key: value for key, value in CASES["audio"].items() if key != "usage"}
    assert assemble_replay(CASES["audio"], include_usage=False) == expected


def test_replay_frames_of_a_reasoning_tool_call_answer() -> None:
    completion = completion_with({"role": "assistant", "content": "Let me check.", "refusal": None,
                                  "reasoning_content": "The user wants weather.",
                                  "tool_calls": [{"id": "call_1", "type": "function",
                                                  "function": {"name": "w", "arguments": "{}"}}]},
                                 finish_reason="tool_calls", x_groq={"id": "req_1"})
    frames = events(completion)
    head = {"id": "chatcmpl-B9MHDbslfkBeAs8l4bebGdFOJ6PeG", "object": "chat.completion.chunk",
            "created": 1741570283, "model": "gpt-4o-2024-08-06", "system_fingerprint": "fp_eb9dce56a8",
            "service_tier": "default"}

    def choice(delta: dict[str, Any], finish_reason: str | None = None) -> dict[str, Any]:
        return {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}

    assert frames == [
        {**head, "x_groq": {"id": "req_1"},
         "choices": [choice({"role": "assistant", "content": "", "refusal": None})]},
        {**head, "choices": [choice({"reasoning_content": "The user wants weather."})]},
        {**head, "choices": [choice({"content": "Let me check."})]},
        {**head, "choices": [choice({"tool_calls": [{"id": "call_1", "type": "function",
                                                     "function": {"name": "w", "arguments": "{}"}, "index": 0}]})]},
        {**head, "choices": [choice({}, "tool_calls")]},
        "[DONE]",
    ]


def test_replay_with_a_fresh_identity() -> None:
    completion = CASES["plain-openai"]
    frames = events(completion, include_usage=True, completion_id="chatcmpl-fresh", created=1800000000)
    assert {(frame["id"], frame["created"]) for frame in frames if frame != "[DONE]"} == {
        ("chatcmpl-fresh", 1800000000)}
    assert assemble_replay(completion, completion_id="chatcmpl-fresh", created=1800000000) == {
        **completion, "id": "chatcmpl-fresh", "created": 1800000000}


def test_replay_does_not_change_the_completion() -> None:
    for completion in CASES.values():
        before = copy.deepcopy(completion)
        list(replay(completion, include_usage=True, completion_id="x"))
        assert completion == before


def test_replay_of_garbage_choices_yields_only_the_end() -> None:
    assert list(replay({"id": "x", "choices": "nope"}, include_usage=False)) == [b"data: [DONE]\n\n"]
    assert list(replay({"id": "x", "choices": ["nope"]}, include_usage=False)) == [b"data: [DONE]\n\n"]


# -- refresh_identity ------------------------------------------------------------------------------------

OPENAI_BODY = (b'{\n  "id": "chatcmpl-old",\n  "object": "chat.completion",\n  "created": 1741570283,\n'
               b'  "model": "gpt-4o",\n  "choices": [{"index": 0, "message": {"role": "assistant", "content": '
               b'"id \\"created\\": 1.50e+1 \\u00e9"}, "finish_reason": "stop"}]\n}\n')


def test_refresh_identity_rewrites_only_id_and_created() -> None:
    body, original = refresh_identity(OPENAI_BODY, completion_id="chatcmpl-new", created=1800000000)
    assert original == "chatcmpl-old"
    assert body == OPENAI_BODY.replace(b'"chatcmpl-old"', b'"chatcmpl-new"').replace(b"1741570283", b"1800000000")


def test_refresh_identity_without_created_keeps_it() -> None:
    body, _ = refresh_identity(OPENAI_BODY, completion_id="chatcmpl-new")
    assert body == OPENAI_BODY.replace(b'"chatcmpl-old"', b'"chatcmpl-new"')


def test_refresh_identity_finds_members_after_nested_values() -> None:
    body = b'{"choices":[{"message":{"content":"x]}\\"","id":"inner"}}],"usage":{"id":1},"id":"c-1","created":5}'
    new, original = refresh_identity(body, completion_id="c-2", created=6)
    assert original == "c-1"
    assert new == body.replace(b'"id":"c-1","created":5', b'"id":"c-2","created":6')
    assert orjson.loads(new)["choices"][0]["message"]["id"] == "inner"


def test_refresh_identity_encodes_the_new_id_as_json() -> None:
    body, _ = refresh_identity(b'{"id":"a"}', completion_id='q"\\')
    assert orjson.loads(body) == {"id": 'q"\\'}


@pytest.mark.parametrize("body", [b"", b"[]", b'"id"', b"{", b'{"id":1}', b'{"id":null}', b'{"x":1}',
                                  b'{"id" "a"}', b'{"id":"a" "b":1}', b'{"a":[1,2}', b'{"id":"\\q"}', b"{}"])
def test_refresh_identity_leaves_bodies_it_cannot_read(body: bytes) -> None:
    assert refresh_identity(body, completion_id="new", created=1) == (body, None)


def test_refresh_identity_leaves_a_created_that_is_not_a_number() -> None:
    body = b'{"id":"a","created":null}'
    assert refresh_identity(body, completion_id="b", created=7) == (b'{"id":"b","created":null}', "a")
