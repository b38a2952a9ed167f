"""What a probe request is charged: the upstream's counts where it gave them, else an estimate that errs high.
Exact values; the exchanges here are built by hand, as the client leaves them after an answer."""

from __future__ import annotations

from proxy.core.usage import ABSENT, normalize_usage
from proxy.probe.charge import (
    Charge,
    charge,
    completion_estimate,
    generated_chars,
    prompt_chars,
    tokens_of_chars,
)
from proxy.probe.exchange import Exchange
from proxy.probe.prompts import USER_TURN, messages

REPORTED = normalize_usage({"prompt_tokens": 2000, "completion_tokens": 1,
                            "prompt_tokens_details": {"cached_tokens": 1024}})


def test_characters_to_tokens_round_up() -> None:
    assert [tokens_of_chars(n) for n in (0, 1, 4, 5, 8, 9, -3)] == [0, 1, 1, 2, 2, 3, 0]


def test_the_prompts_text_is_counted_plain_or_in_content_blocks() -> None:
    nonce = "probe-0123456789abcdef"  # 22 characters, as new_nonce makes them
    plain = messages(nonce, 3)  # "<nonce> The harbour town": 39 characters, then the user turn
    assert prompt_chars(plain) == 39 + len(USER_TURN) == 69
    assert prompt_chars(messages(nonce, 3, cache_control=True)) == 69  # the marks are not text
    assert prompt_chars([{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x"}}]},
                         {"role": "user"}, "junk"]) == 0


def test_generated_text_of_a_message_or_a_delta() -> None:
    assert generated_chars([{"message": {"role": "assistant", "content": "OK"}}], "message") == 2
    assert generated_chars([{"delta": {"reasoning_content": "hmm", "content": "OK!"}},
                            {"delta": {"content": None}}], "delta") == 6
    assert generated_chars([{"delta": {"content": "OK"}}], "message") == 0  # the other key
    assert generated_chars(None, "delta") == generated_chars([1, "x"], "delta") == 0


def test_the_completion_estimate_is_the_cap_or_what_arrived() -> None:
    assert completion_estimate(2, 16) == 16  # a stream may be cut after "OK": the cap is what it may have cost
    assert completion_estimate(100, 16) == 25  # an upstream that ignored the cap
    assert completion_estimate(9, None) == 3  # no cap sent (the model rejected max_tokens)


def test_reported_counts_are_charged_as_they_are() -> None:
    assert charge(REPORTED, billed=True, prompt_estimate=9999, completion_estimate=16) == Charge(2000, 1, 0)


def test_a_billed_answer_without_usage_is_charged_the_estimate() -> None:
    spent = charge(ABSENT, billed=True, prompt_estimate=2100, completion_estimate=16)
    assert spent == Charge(2100, 16, 2116)
    assert spent.tokens == 2116


def test_only_the_missing_count_is_estimated() -> None:
    prompt_only = normalize_usage({"prompt_tokens": 2000})
    assert charge(prompt_only, billed=True, prompt_estimate=2100, completion_estimate=16) == Charge(2000, 16, 16)


def test_a_request_that_was_not_billed_is_charged_what_it_reported_only() -> None:
    assert charge(ABSENT, billed=False, prompt_estimate=2100, completion_estimate=16) == Charge(0, 0, 0)
    assert charge(REPORTED, billed=False, prompt_estimate=2100, completion_estimate=16) == Charge(2000, 1, 0)


def _exchange(status: int, *, error: str | None = None) -> Exchange:
    return Exchange("m", "stream", "stream", "repeat", "run-1", 100.0, stream=True, status=status, error=error,
                    prompt_estimate=2100, completion_chars=2, max_tokens=16)


def test_an_exchange_is_charged_from_what_it_recorded() -> None:
    assert _exchange(200).charge == Charge(2100, 16, 2116)  # a stream that ignored include_usage
    cut = _exchange(200, error="The upstream closed the connection mid-stream")
    assert (cut.ok, cut.tokens, cut.as_dict()["estimated_tokens"]) == (False, 2116, 2116)  # cut short: billed
    refused = _exchange(429, error="rate limited")
    assert (refused.billed, refused.tokens, refused.as_dict()["estimated_tokens"]) == (False, 0, 0)
    answered = _exchange(200)
    answered.usage = REPORTED
    assert (answered.tokens, answered.charge.estimated_tokens) == (2001, 0)
