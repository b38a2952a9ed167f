"""proxy.cache.exact: a repeated hit on an in-process backend reuses the decoded entry, never a stale one."""

from __future__ import annotations

from proxy.cache.entry import CachedResponse
from proxy.cache.exact import ExactCache
from proxy.cache.memory import MemoryBackend
from proxy.contracts import NullObserver
from proxy.platform.failopen import FailOpen


def entry(text: str) -> CachedResponse:
    completion = {"id": "chatcmpl-1", "created": 5, "object": "chat.completion", "model": "m",
                  "choices": [{"index": 0, "message": {"role": "assistant", "content": text},
                               "finish_reason": "stop"}], "usage": {"prompt_tokens": 2, "completion_tokens": 1}}
    return CachedResponse.from_completion(completion, model="m", stored_at=1e12, ttl=60,
                                          usage=completion["usage"], id="chatcmpl-1")


async def test_a_repeated_hit_reuses_the_decoded_entry_until_the_value_changes() -> None:
    cache = ExactCache(MemoryBackend(10**6), prefix="cg:", observer=NullObserver(), failopen=FailOpen(NullObserver()),
                       clock=lambda: 1e12)
    await cache.store("cg:exact:k", entry("one"))
    first = await cache.lookup("cg:exact:k")
    assert first is not None and await cache.lookup("cg:exact:k") is first
    await cache.store("cg:exact:k", entry("two"))  # a new value: the memo must not answer with the old one
    second = await cache.lookup("cg:exact:k")
    assert second is not None and second is not first
    assert second.completion["choices"][0]["message"]["content"] == "two"
    await cache.delete(["cg:exact:k"])
    assert await cache.lookup("cg:exact:k") is None


async def test_an_entry_gives_its_usage_and_a_fresh_identity_without_parsing_the_body() -> None:
    stored = CachedResponse.decode(entry("hi").encode())
    assert stored.usage == {"prompt_tokens": 2, "completion_tokens": 1} and stored._completion is None
    assert stored.tokens == (2, 1, 0)
    body, original = stored.with_fresh_identity("chatcmpl-new", 99)
    assert original == "chatcmpl-1" and stored._completion is None
    assert body == stored.body.replace(b'"chatcmpl-1"', b'"chatcmpl-new"').replace(b'"created":5', b'"created":99')
