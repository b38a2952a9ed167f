"""The hot path's scope helpers: headers, the body with its limit, request ids."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from proxy.errors import ClientClosedError, PayloadTooLargeError
from proxy.http.asgi import RequestIds, headers_of, raw_header_items, receive_body

SCOPE = {"headers": [(b"Host", b"x"), (b"x-a", b"1"), (b"x-a", b"2"), (b"authorization", b"Bearer \xe9")]}


def receiver(*messages: dict[str, Any]) -> Any:
    queue = list(messages)

    async def receive() -> dict[str, Any]:
        return queue.pop(0)

    return receive


def test_headers_of_lower_cases_names_and_keeps_the_last_repeat() -> None:
    assert headers_of(SCOPE) == {"host": "x", "x-a": "2", "authorization": "Bearer é"}


def test_raw_header_items_keep_order_and_repeats() -> None:
    assert raw_header_items(SCOPE) == [("Host", "x"), ("x-a", "1"), ("x-a", "2"), ("authorization", "Bearer é")]


def test_body_in_one_message() -> None:
    body = asyncio.run(receive_body(receiver({"type": "http.request", "body": b"abc"}), "3", 10))
    assert body == b"abc"


def test_body_in_several_messages() -> None:
    receive = receiver({"type": "http.request", "body": b"ab", "more_body": True},
                       {"type": "http.request", "body": b"", "more_body": True},
                       {"type": "http.request", "body": b"cd"})
    assert asyncio.run(receive_body(receive, None, 10)) == b"abcd"


def test_declared_length_over_the_limit_is_refused_before_reading() -> None:
    async def never() -> dict[str, Any]:
        raise AssertionError("the body must not be read")

    with pytest.raises(PayloadTooLargeError, match="11 bytes; the limit is 10"):
        asyncio.run(receive_body(never, "11", 10))


@pytest.mark.parametrize("messages", [
    [{"type": "http.request", "body": b"x" * 11}],
    [{"type": "http.request", "body": b"x" * 6, "more_body": True}, {"type": "http.request", "body": b"x" * 5}],
])
def test_body_over_the_limit_without_a_declared_length(messages: list[dict[str, Any]]) -> None:
    with pytest.raises(PayloadTooLargeError) as caught:
        asyncio.run(receive_body(receiver(*messages), None, 10))
    assert caught.value.status_code == 413


def test_client_leaving_mid_body_is_499() -> None:
    receive = receiver({"type": "http.request", "body": b"ab", "more_body": True}, {"type": "http.disconnect"})
    with pytest.raises(ClientClosedError) as caught:
        asyncio.run(receive_body(receive, None, 10))
    assert caught.value.status_code == 499


def test_request_ids_are_32_hex_digits_and_do_not_repeat_across_batches() -> None:
    new_id = RequestIds()
    ids = [new_id() for _ in range(3 * RequestIds._BATCH + 5)]
    assert all(len(i) == 32 and int(i, 16) >= 0 for i in ids)
    assert len(set(ids)) == len(ids)
    assert RequestIds()() not in ids  # another generator draws its own randomness
