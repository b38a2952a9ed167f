"""The chat route: a request parsed once, the pipeline of tiers, and the ASGI endpoint in front of it."""

from proxy.chat.endpoint import ChatEndpoint
from proxy.chat.pipeline import PATH, Answer, ChatPipeline

__all__ = ["PATH", "Answer", "ChatEndpoint", "ChatPipeline"]
