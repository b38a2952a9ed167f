"""What one probe request spent, in tokens: the upstream's own count where its answer has one, else an
estimate. Pure.

An upstream that ignores ``stream_options.include_usage``, a stream cut short before its usage chunk, or a
plain answer without ``usage`` was still billed: counted as 0 tokens, the probe's daily budget could be
overrun without the probe knowing. Such a request is charged an estimate instead, and the estimate errs
high, so a budget stops the probe early, never late:

- the prompt: the larger of the model's :class:`~proxy.probe.prompts.TokenGauge` reading (learnt from the
  ``prompt_tokens`` of this model's answers that had them, overhead included) and
  :data:`CHARS_PER_TOKEN` characters a token of the messages' text (in case the gauge never learnt);
- the completion: the larger of the ``max_tokens`` cap sent (the upstream may have generated, and billed,
  tokens that never arrived: a stream cut short, hidden reasoning) and a token per
  :data:`CHARS_PER_TOKEN` characters of the text that did arrive.

A request is billed once the upstream answered ``200`` (it took the prompt), or when no answer came in time
to a request that was sent (it may have taken the prompt: charged the estimate, the full ``max_tokens``
included); an error status, or a connection never made, is charged only what its usage (if any) says.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from proxy.core.usage import CacheUsage

#: the usual rule of thumb for English text (OpenAI's own); a little above what tokenizers give for the
#: probe's prose (about 1.3 tokens a word, 5.6 characters a word), so it errs high
CHARS_PER_TOKEN = 4
#: the text an answer's message (plain) or delta (stream) carries that the upstream generated
TEXT_FIELDS = ("content", "reasoning_content", "reasoning", "refusal")


@dataclass(frozen=True)
class Charge:
    """The tokens one request is charged to the budget; ``estimated_tokens`` of them are an estimate."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    estimated_tokens: int = 0  # 0: the upstream counted every one

    @property
    def tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


def tokens_of_chars(chars: int) -> int:
    """Tokens for ``chars`` characters by the :data:`CHARS_PER_TOKEN` rule, rounded up."""
    return -(-max(0, chars) // CHARS_PER_TOKEN)


def prompt_chars(messages: Iterable[Any]) -> int:
    """Characters of the text in ``messages`` (string contents and the text of content blocks)."""
    total = 0
    for message in messages:
        content = message.get("content") if isinstance(message, dict) else None
        if isinstance(content, str):
            total += len(content)
        elif isinstance(content, list):
            total += sum(len(part["text"]) for part in content
                         if isinstance(part, dict) and isinstance(part.get("text"), str))
    return total


def generated_chars(choices: Any, key: str) -> int:
    """Characters of generated text in an answer's ``choices`` (``key``: ``message`` plain, ``delta`` streamed)."""
    if not isinstance(choices, list):
        return 0
    total = 0
    for choice in choices:
        part = choice.get(key) if isinstance(choice, dict) else None
        if isinstance(part, dict):
            total += sum(len(value) for name in TEXT_FIELDS if isinstance(value := part.get(name), str))
    return total


def completion_estimate(chars: int, max_tokens: int | None) -> int:
    """The completion's tokens, erring high: the cap sent (if one was) or the text that arrived, the larger."""
    return max(max_tokens or 0, tokens_of_chars(chars))


def charge(usage: CacheUsage, *, billed: bool, prompt_estimate: int, completion_estimate: int) -> Charge:
    """The upstream's counts where ``usage`` has them; for a ``billed`` request each missing count is the
    estimate (never below 0). A request that was not billed is charged its reported counts only."""
    prompt, completion = usage.prompt_tokens, usage.completion_tokens
    if not billed:
        return Charge(prompt or 0, completion or 0)
    guessed = 0
    if prompt is None:
        prompt = max(0, prompt_estimate)
        guessed += prompt
    if completion is None:
        completion = max(0, completion_estimate)
        guessed += completion
    return Charge(prompt, completion, guessed)
