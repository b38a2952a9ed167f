"""The proxied API as a component: ``POST /v1/chat/completions`` (the chat endpoint) and every other
``/v1/*`` route (passthrough), both ``Guard.CLIENT``. It owns the upstream client and closes it last."""

from __future__ import annotations

from proxy.chat.endpoint import ChatEndpoint
from proxy.component import Contribution, Guard, RouteSpec
from proxy.contracts import Upstream
from proxy.passthrough import PassthroughHandler

CHAT_ROUTE = "/v1/chat/completions"


class ProxiedApi:
    def __init__(self, chat: ChatEndpoint, passthrough: PassthroughHandler, upstream: Upstream) -> None:
        self.chat = chat
        self.passthrough = passthrough
        self.upstream = upstream

    def contribution(self) -> Contribution:
        # The chat route first: the router tries routes in order, and /v1/{path} would match it too.
        chat = RouteSpec(CHAT_ROUTE, self.chat, ("POST",), Guard.CLIENT)
        return Contribution(routes=[chat, *self.passthrough.routes()])

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        await self.upstream.aclose()
