"""Who makes a model: the upstream's own field first, then the documented mapping of id prefixes."""

from __future__ import annotations

import pytest

from proxy.probe.provider import provider_of


@pytest.mark.parametrize(("model", "maker"), [
    ("zai-org-glm-4.6", "Zhipu"), ("zai-org/GLM-4.6", "Zhipu"), ("glm-4.5-air", "Zhipu"),
    ("deepseek-v3.2", "DeepSeek"), ("deepseek/deepseek-chat", "DeepSeek"),
    ("deepseek-r1-distill-llama-70b", "DeepSeek"), ("grok-41-fast", "xAI"), ("x-ai/grok-4", "xAI"),
    ("kimi-k2-thinking", "Moonshot"), ("moonshotai/kimi-k2", "Moonshot"),
    ("qwen3-235b", "Qwen"), ("llama-3.3-70b", "Meta"), ("meta-llama/llama-3.1-8b", "Meta"),
    ("hermes-3-llama-3.1-405b", "Nous Research"), ("mistral-31-24b", "Mistral"), ("mixtral-8x7b", "Mistral"),
    ("google-gemma-3-27b-it", "Google"), ("gemini-3-pro-preview", "Google"), ("gemma2-9b-it", "Google"),
    ("openai-gpt-oss-120b", "OpenAI"), ("gpt-4o-mini", "OpenAI"), ("o3-mini", "OpenAI"), ("o1", "OpenAI"),
    ("claude-opus-45", "Anthropic"), ("venice-uncensored", "Venice"),
    ("sim-deepseek", "DeepSeek"), ("sim-shape-openai", "OpenAI"),  # a word of the id, after the others failed
])
def test_the_id_names_the_maker(model: str, maker: str) -> None:
    assert provider_of(model) == maker


@pytest.mark.parametrize("model", ["sim-vllm", "metadata-model", "text-embedding-3-small", "novalike"])
def test_nothing_known_is_none(model: str) -> None:
    assert provider_of(model) is None


def test_the_upstreams_own_field_wins() -> None:
    assert provider_of("llama-3.3-70b", {"id": "llama-3.3-70b", "provider": "Groq Cloud"}) == "Groq Cloud"
    assert provider_of("x", {"id": "x", "model_spec": {"provider": "deepseek"}}) == "DeepSeek"
    # Venice names the weights' Hugging Face source: its organisation is the maker
    venice = {"id": "venice-uncensored", "model_spec": {"modelSource": "https://huggingface.co/zai-org/GLM-4.6"}}
    assert provider_of("venice-uncensored", venice) == "Zhipu"


def test_owned_by_counts_only_when_it_is_not_the_upstream() -> None:
    assert provider_of("some-model", {"id": "some-model", "owned_by": "Alibaba Cloud"}) == "Alibaba Cloud"
    assert provider_of("some-model", {"id": "some-model", "owned_by": "system"}) is None
    assert provider_of("sim-vllm", {"id": "sim-vllm", "owned_by": "cachegate-sim"}) is None
