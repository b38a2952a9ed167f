"""Who makes a model: from the upstream's own field where it has one, else from the model id. Pure.

1. The ``/models`` entry's own field: ``provider`` (or ``model_spec.provider``), else the organisation of a
   Hugging Face source URL (Venice's ``model_spec.modelSource``), looked up in the table below.
2. The model id: an organisation prefix (``deepseek/deepseek-chat``, ``zai-org/GLM-4.6``), then the id's start
   (``grok-41-fast``), then a word of it (``sim-deepseek``), each looked up in :data:`PREFIXES`.
3. ``owned_by``, unless it names the upstream rather than a maker (``system``, ``venice.ai``, ...).

The table (first match wins) is the documented mapping: ``zai-org``/``glm`` → Zhipu, ``deepseek`` → DeepSeek,
``grok``/``x-ai`` → xAI, ``kimi``/``moonshot`` → Moonshot, ``qwen``/``qwq`` → Qwen, ``llama``/``meta`` → Meta,
``mistral`` and its families → Mistral, ``gemma``/``gemini``/``google`` → Google, ``gpt``/``o1``/``o3``/``o4``/
``openai`` → OpenAI, ``claude``/``anthropic`` → Anthropic, ``hermes``/``nous`` → Nous Research, ``command``/
``cohere`` → Cohere, ``phi`` → Microsoft, ``nova`` → Amazon, ``minimax`` → MiniMax, ``venice`` → Venice.
"""

from __future__ import annotations

import re
from typing import Any

PREFIXES: tuple[tuple[str, str], ...] = (
    ("zai-org", "Zhipu"), ("zhipu", "Zhipu"), ("glm", "Zhipu"), ("chatglm", "Zhipu"),
    ("deepseek", "DeepSeek"),
    ("grok", "xAI"), ("x-ai", "xAI"), ("xai", "xAI"),
    ("kimi", "Moonshot"), ("moonshot", "Moonshot"),
    ("qwen", "Qwen"), ("qwq", "Qwen"),
    ("hermes", "Nous Research"), ("nous", "Nous Research"),
    ("meta-llama", "Meta"), ("llama", "Meta"), ("meta", "Meta"),
    ("mistral", "Mistral"), ("mixtral", "Mistral"), ("codestral", "Mistral"), ("devstral", "Mistral"),
    ("magistral", "Mistral"), ("ministral", "Mistral"), ("pixtral", "Mistral"),
    ("gemma", "Google"), ("gemini", "Google"), ("google", "Google"),
    ("openai", "OpenAI"), ("gpt", "OpenAI"), ("chatgpt", "OpenAI"), ("o1", "OpenAI"), ("o3", "OpenAI"),
    ("o4", "OpenAI"),
    ("claude", "Anthropic"), ("anthropic", "Anthropic"),
    ("command", "Cohere"), ("cohere", "Cohere"),
    ("phi", "Microsoft"), ("microsoft", "Microsoft"),
    ("nova", "Amazon"), ("amazon", "Amazon"),
    ("minimax", "MiniMax"),
    ("venice", "Venice"),
)
#: ``owned_by`` values that name the upstream (or nobody), not a model's maker
GENERIC_OWNERS = frozenset({"system", "openai-internal", "organization-owner", "user", "library", "venice",
                            "venice.ai", "cachegate-sim", "vllm", "sglang", "ollama", "local", "custom"})
_WORD = re.compile(r"[^a-z0-9]+")
_HF = re.compile(r"huggingface\.co/([^/]+)/", re.IGNORECASE)


def _lookup(name: str, *, anywhere: bool = False) -> str | None:
    name = name.lower()
    for prefix, maker in PREFIXES:
        if name == prefix or name.startswith(prefix + "-") or name.startswith(prefix + "/") or (
                name.startswith(prefix) and not name[len(prefix):len(prefix) + 1].isalpha()):
            return maker
    if anywhere:
        words = [word for word in _WORD.split(name) if word]
        for word in words[1:]:
            found = _lookup(word)
            if found is not None:
                return found
    return None


def own_field(entry: dict[str, Any] | None) -> str | None:
    """The maker the upstream names itself, if it does."""
    if not isinstance(entry, dict):
        return None
    found = entry.get("model_spec")
    spec: dict[str, Any] = found if isinstance(found, dict) else {}
    for value in (entry.get("provider"), spec.get("provider")):
        if isinstance(value, str) and value.strip():
            return _lookup(value) or value.strip()
    source = spec.get("modelSource")
    match = _HF.search(source) if isinstance(source, str) else None
    return _lookup(match.group(1)) if match else None


def provider_of(model: str, entry: dict[str, Any] | None = None) -> str | None:
    """The model's maker, or ``None`` when nothing names one."""
    found = own_field(entry)
    if found is not None:
        return found
    org, _, name = model.rpartition("/")
    found = (_lookup(org) if org else None) or _lookup(name) or _lookup(name, anywhere=True)
    if found is not None:
        return found
    owner = entry.get("owned_by") if isinstance(entry, dict) else None
    if isinstance(owner, str) and owner.strip() and owner.strip().lower() not in GENERIC_OWNERS:
        return owner.strip()
    return None
