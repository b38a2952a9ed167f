"""Where and what ``cachegate probe`` measures, resolved from the settings and the command's flags.

The key is needed only when the probe is asked to run: the plain proxy never asks for it. For Venice
(base URL on ``venice.ai``) it is ``PROBE_API_KEY``, else ``VENICE_API_KEY`` (alias ``API_KEY_VENICE``),
and a missing one stops the probe with the message operators know from the seed script; other upstreams
take ``PROBE_API_KEY``, else ``UPSTREAM_API_KEY`` when the probe measures the proxy's own upstream, and
may need none (a local vLLM, the simulator).

Where: ``PROBE_UPSTREAM_URL``; unset, Venice when ``VENICE_API_KEY`` is set (that key opens nothing else),
else the proxy's own ``UPSTREAM_BASE_URL``.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

from proxy.errors import SettingsError
from proxy.probe.session import ProbeConfig
from proxy.settings import Settings

VENICE_BASE_URL = "https://api.venice.ai/api/v1"
MISSING_VENICE_KEY = "VENICE_API_KEY environment variable is required. Get your key at https://venice.ai/api"


def is_venice(url: str) -> bool:
    host = (urlsplit(url).hostname or "").lower()
    return host == "venice.ai" or host.endswith(".venice.ai")


@dataclass(frozen=True)
class ProbeTarget:
    upstream_url: str
    api_key: str | None
    venice: bool
    models: tuple[str, ...]
    tests: tuple[str, ...]
    config: ProbeConfig
    timeout: float


def resolve(settings: Settings, *, models: tuple[str, ...] | None = None, tests: tuple[str, ...] | None = None,
            quick: bool | None = None, ttl_range: tuple[float, float] | None = None) -> ProbeTarget:
    """The probe's target; flags (when given) win over the settings. Raises :class:`SettingsError`."""
    url = settings.probe_upstream_url or (VENICE_BASE_URL if settings.venice_api_key else settings.upstream_base_url)
    venice = is_venice(url)
    key = settings.probe_api_key
    if key is None and venice:
        key = settings.venice_api_key
    if key is None and not venice and url == settings.upstream_base_url:
        key = settings.upstream_api_key
    if key is None and venice:
        raise SettingsError(MISSING_VENICE_KEY, param="VENICE_API_KEY")
    quick = settings.probe_quick if quick is None else quick
    ttl_range = ttl_range or settings.probe_ttl_range
    config = ProbeConfig.quick(ttl_range=ttl_range) if quick else ProbeConfig(ttl_range=ttl_range)
    if tests is None:
        from proxy.probe.runner import QUICK_TESTS, TESTS

        everything = settings.probe_tests == TESTS
        tests = QUICK_TESTS if quick and everything else settings.probe_tests
    return ProbeTarget(url, key, venice, models or settings.probe_models, tests, config,
                       settings.probe_request_timeout)
