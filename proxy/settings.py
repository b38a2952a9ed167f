"""Settings: read once from the environment, validated, frozen.

Each setting is declared once in :data:`SPECS` (name, parser, default, help); the dataclass, the
environment loader, the CLI flags (``cachegate serve --cache-ttl 60``) and the README table all derive
from it. A bad value raises :class:`SettingsError` naming the setting, which stops start-up.
"""

from __future__ import annotations

import dataclasses
import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from embedding_service import errors as service_errors
from embedding_service.envspec import (
    Parser,
    Spec,
    float_in,
    int_in,
    one_of,
    parse_bool,
    parse_list,
    parse_log_level,
    parse_optional_str,
    parse_range,
    parse_size,
    parse_str,
    parse_url,
    read_env,
    some_of,
)
from proxy.errors import SettingsError

__all__ = ["SPECS", "Parser", "Settings", "SettingsError", "Spec", "float_in", "int_in", "one_of", "parse_bool",
           "parse_list", "parse_log_level", "parse_optional_str", "parse_size", "parse_str", "parse_url", "read_env",
           "redact_url"]

_http = parse_url("http", "https")
#: the default CACHE_KEY_HEADERS (proxy.core.canonical's credential and routing headers)
CACHE_KEY_HEADERS = ("x-api-key", "x-portkey-api-key", "cf-aig-authorization", "helicone-auth", "openai-organization",
                     "openai-project", "x-portkey-provider", "x-portkey-config", "anthropic-version")
#: the probe's test types (proxy.probe.runner.TESTS; a unit test keeps the two equal)
PROBE_TESTS = ("basic", "hints", "sizes", "persistence", "partial", "stream", "latency", "ttl")
_redis = parse_url("redis", "rediss", "unix")


def parse_bind_address(raw: str) -> str:
    """``host:port`` (``[v6]:port`` for IPv6), port 1 to 65535; answered as given, stripped."""
    value = raw.strip()
    host, colon, port = value.rpartition(":")
    if not colon or not host or not port.isdigit() or not 1 <= int(port) <= 65535:
        raise ValueError("expected host:port, e.g. 127.0.0.1:9090 or [::1]:9090")
    if host.startswith("["):
        if not host.endswith("]"):
            raise ValueError("expected [address]:port for IPv6")
        try:
            ipaddress.IPv6Address(host[1:-1])
        except ValueError:
            raise ValueError(f"{host[1:-1]!r} is not an IPv6 address") from None
    elif ":" in host or any(c.isspace() for c in host):
        raise ValueError("expected host:port (an IPv6 address goes in brackets: [::1]:9090)")
    return value


def split_bind_address(value: str) -> tuple[str, int]:
    host, _, port = value.rpartition(":")
    return host.strip("[]"), int(port)


def _size_or_off(raw: str) -> int:
    """A size (``2GB``), or ``0`` for a level that is turned off."""
    return 0 if raw.strip() == "0" else parse_size(raw)


SPECS: tuple[Spec, ...] = (
    # -- serving
    Spec("HOST", parse_str, "127.0.0.1", "Interface to listen on."),
    Spec("PORT", int_in(0, 65535), 3000, "Port to listen on."),
    Spec("UPSTREAM_BASE_URL", _http, "https://api.openai.com/v1",
         "Base URL of the OpenAI-compatible upstream, including its /v1."),
    Spec("UPSTREAM_API_KEY", parse_optional_str, None,
         "When set, replaces the client's key towards the upstream.", secret=True),
    Spec("UPSTREAM_TIMEOUT", float_in(0, low_open=True), 60.0, "Seconds to wait for the upstream."),
    Spec("UPSTREAM_STREAM_USAGE", parse_bool, True,
         "Ask the upstream for usage on streams (stream_options.include_usage) so streamed answers are counted and "
         "cached with their usage; the extra event is hidden from clients that did not ask for it."),
    Spec("METRICS_BIND_ADDRESS", parse_bind_address, None,
         "host:port of a second listener for /metrics*, /kv-cache-metrics, /health* and /dashboard, which the "
         "public HOST:PORT then no longer serves; unset: everything on HOST:PORT."),
    Spec("MAX_BODY_BYTES", parse_size, 10 * 10**6, "Largest request body accepted (413 above it)."),
    # -- exact tier
    Spec("REDIS_URL", _redis, None, "Redis for the exact tier and shared counters; unset: in-process store.",
         secret=True),
    Spec("REDIS_TIMEOUT", float_in(0, low_open=True), 0.25,
         "Seconds a Redis call may take before the cache fails open."),
    Spec("CACHE_MAX_BYTES", parse_size, 256 * 10**6, "Bound of the in-process exact store (the memory level)."),
    Spec("CACHE_DISK_MAX_BYTES", _size_or_off, 2 * 10**9,
         "Bound of the exact tier's disk level under DATA_DIR (without REDIS_URL: answers survive a restart); "
         "0 turns the level off."),
    Spec("CACHE_DISK_EVICTION", one_of("lru", "lfu"), "lru",
         "What the disk level drops first when full: least recently used (lru) or least often used (lfu)."),
    Spec("CACHE_TTL", int_in(1, 31_536_000), 86_400, "Seconds an answer is kept."),
    Spec("CACHE_TTL_CREATIVE", int_in(1, 31_536_000), 3_600,
         "Seconds an answer is kept when temperature is above CACHE_CREATIVE_TEMPERATURE."),
    Spec("CACHE_CREATIVE_TEMPERATURE", float_in(0, 2), 0.7, "Temperature above which CACHE_TTL_CREATIVE applies."),
    Spec("CACHE_SHARED", parse_bool, False, "Share one cache namespace between all API keys."),
    Spec("CACHE_KEY_PREFIX", parse_str, "cachegate:", "Prefix of every key cachegate writes to Redis."),
    Spec("CACHE_KEY_HEADERS", parse_list, CACHE_KEY_HEADERS,
         "Request headers that change who asks or what the answer is: credential headers (x-api-key, "
         "x-portkey-api-key, cf-aig-authorization, helicone-auth) are part of the tenant, the others of the key."),
    Spec("TENANT_SECRET", parse_optional_str, None,
         "Secret the tenant hash (HMAC-SHA256 of the API key) is keyed with; unset: one is made on first start "
         "and kept in Redis (shared by replicas) or DATA_DIR/tenant.secret.", secret=True),
    Spec("CACHE_KEEP_EXPIRED", int_in(0, 31_536_000), 600,
         "Seconds an exact entry is kept past its TTL: the most a request's Cache-Control: "
         "stale-while-revalidate=N can be served stale (while it is refreshed); 0: none."),
    Spec("CACHE_REFRESH_AHEAD", parse_bool, False,
         "Refresh popular entries in the background before they expire (the client is answered from the cache)."),
    Spec("CACHE_REFRESH_MIN_HITS", int_in(1), 3, "Hits an entry needs since it was stored to be refreshed ahead."),
    Spec("CACHE_REFRESH_AHEAD_FRACTION", float_in(0, 1, low_open=True), 0.1,
         "Refresh ahead once less than this share of the entry's TTL is left."),
    Spec("CACHE_REFRESH_MAX_PER_MINUTE", int_in(1), 60,
         "Most background refreshes (refresh-ahead and stale-while-revalidate) started in any minute."),
    Spec("CACHE_KEEP_REQUESTS", parse_bool, False,
         "Keep each stored answer's request (body, namespace and routing headers; never keys) and its hit count in "
         "DATA_DIR/cache-history.sqlite3 until a day after it expires, for POST /admin/cache/warm "
         "{\"from\": \"popular\"}. Privacy cost: prompts are kept on disk in plain text."),
    Spec("CACHE_LOCK_TIMEOUT", float_in(0, low_open=True), 60.0,
         "Seconds an identical request waits for the one already asking the upstream before asking itself."),
    Spec("DATA_DIR", parse_str, "./data", "Directory for the embedded semantic store and SQLite files."),
    # -- semantic tier
    Spec("SEMANTIC_MODE", one_of("serve", "shadow", "off"), "serve",
         "serve: answer semantic hits; shadow: only count them; off: no semantic tier."),
    Spec("SEMANTIC_THRESHOLD", float_in(0, 1), 0.9,
         "Cosine similarity a semantic match needs (0.9: measured by bench/semantic_eval.py; guards apply too)."),
    Spec("EMBEDDING_URL", _http, None, "Embedding service; unset: embed in-process."),
    Spec("EMBEDDING_TIMEOUT", float_in(0, low_open=True), 0.5, "Seconds an embedding may take."),
    Spec("QDRANT_URL", _http, None, "Qdrant server; unset: embedded store under DATA_DIR."),
    Spec("QDRANT_API_KEY", parse_optional_str, None, "API key of the Qdrant server.", secret=True),
    Spec("QDRANT_COLLECTION", parse_str, "cachegate", "Qdrant collection name."),
    Spec("QDRANT_TIMEOUT", float_in(0, low_open=True), 1.0, "Seconds a Qdrant call may take."),
    # -- monitoring
    Spec("METRICS_WINDOW_SECONDS", int_in(10, 86_400), 300, "Window of the latency percentiles."),
    Spec("PRICING_FILE", parse_optional_str, None, "JSON file that overrides or adds model prices."),
    Spec("USAGE_RETENTION_DAYS", int_in(1, 3650), 30, "Days of usage history kept."),
    Spec("LOG_PATH", parse_str, "logs/requests.log", "Request log file; empty string turns it off."),
    Spec("LOG_LEVEL", parse_log_level, "INFO", "debug, info, warning, error or critical."),
    Spec("LOG_FORMAT", one_of("text", "json"), "text", "Application log format."),
    Spec("DEBUG_UPSTREAM", parse_bool, False, "Log upstream requests and responses (keys redacted)."),
    # -- warnings (GET /health/detailed, ALERT_WEBHOOK_URL; the same thresholds as deploy/prometheus/alerts.yml)
    Spec("ALERT_HIT_RATE_BELOW", float_in(0, 1), 0.2,
         "Warn when the hit rate over ALERT_WINDOW_SECONDS is below this share; 0: off."),
    Spec("ALERT_MIN_REQUESTS", int_in(1), 20, "Fewest chat requests in the window for a hit-rate warning."),
    Spec("ALERT_WINDOW_SECONDS", int_in(60, 86_400), 600, "Window of the hit-rate warning."),
    Spec("ALERT_EVICTIONS_PER_MINUTE", float_in(0), 100.0,
         "Warn when a cache level evicts more entries a minute than this for room (over 5 minutes); 0: off."),
    Spec("ALERT_STORE_FILL", float_in(0, 1), 0.9, "Warn when a cache level holds more than this share of its bound."),
    Spec("ALERT_UPSTREAM_ERROR_RATE", float_in(0, 1), 0.05,
         "Warn when more than this share of proxied answers are 5xx (over 5 minutes); 0: off."),
    Spec("ALERT_FAILOPEN_PER_MINUTE", float_in(0), 10.0,
         "Warn when a dependency fails (served without it) more often a minute than this (over 5 minutes); 0: off."),
    Spec("ALERT_FALSE_HITS_PER_HOUR", float_in(0), 5.0,
         "Warn when more semantic hits than this were reported wrong in the last hour; 0: off."),
    Spec("ALERT_CHECK_SECONDS", float_in(0.1, 3600), 15.0, "How often the warnings are evaluated."),
    Spec("ALERT_WEBHOOK_URL", _http, None, "Receives a JSON POST when a warning starts and when it ends.",
         secret=True),
    # -- operator surface
    Spec("ADMIN_API_KEY", parse_optional_str, None, "Key for /admin/*; unset: loopback clients only.",
         secret=True),
    Spec("MONITOR_API_KEY", parse_optional_str, None, "Key for /metrics* and /dashboard; unset: open.",
         secret=True),
    Spec("RATE_LIMIT_PER_MINUTE", int_in(0), 0, "Requests per minute per API key or client IP; 0: off."),
    Spec("ALLOWED_ORIGINS", parse_list, (), "Comma-separated CORS origins."),
    # -- prompt-cache probe (cachegate probe)
    Spec("PROBE_UPSTREAM_URL", _http, None, "Upstream the probe measures; unset: UPSTREAM_BASE_URL."),
    Spec("PROBE_API_KEY", parse_optional_str, None,
         "Key the probe sends; unset: VENICE_API_KEY for Venice, else UPSTREAM_API_KEY.", secret=True),
    Spec("VENICE_API_KEY", parse_optional_str, None, "Venice API key (also read as API_KEY_VENICE).",
         secret=True, aliases=("API_KEY_VENICE",)),
    Spec("PROBE_MODELS", parse_list, ("all",), "Models to probe: all (the text models of GET /models) or a list."),
    Spec("PROBE_TESTS", some_of(*PROBE_TESTS), PROBE_TESTS, "Probe tests to run (comma-separated)."),
    Spec("PROBE_QUICK", parse_bool, False, "Fewer repeats and sizes, no TTL search unless asked."),
    Spec("PROBE_TTL_RANGE", parse_range, (5.0, 3600.0), "MIN:MAX seconds the TTL search brackets."),
    Spec("PROBE_REQUEST_TIMEOUT", float_in(0, low_open=True), 30.0, "Seconds a probe request may take."),
)

_SPEC_BY_ATTR = {spec.attr: spec for spec in SPECS}


@dataclass(frozen=True)
class Settings:
    host: str = "127.0.0.1"
    port: int = 3000
    upstream_base_url: str = "https://api.openai.com/v1"
    upstream_api_key: str | None = None
    upstream_timeout: float = 60.0
    upstream_stream_usage: bool = True
    metrics_bind_address: str | None = None
    max_body_bytes: int = 10 * 10**6
    redis_url: str | None = None
    redis_timeout: float = 0.25
    cache_max_bytes: int = 256 * 10**6
    cache_disk_max_bytes: int = 2 * 10**9
    cache_disk_eviction: str = "lru"
    cache_ttl: int = 86_400
    cache_ttl_creative: int = 3_600
    cache_creative_temperature: float = 0.7
    cache_shared: bool = False
    cache_key_prefix: str = "cachegate:"
    cache_key_headers: tuple[str, ...] = CACHE_KEY_HEADERS
    tenant_secret: str | None = None
    cache_keep_expired: int = 600
    cache_refresh_ahead: bool = False
    cache_refresh_min_hits: int = 3
    cache_refresh_ahead_fraction: float = 0.1
    cache_refresh_max_per_minute: int = 60
    cache_keep_requests: bool = False
    cache_lock_timeout: float = 60.0
    data_dir: str = "./data"
    semantic_mode: str = "serve"
    semantic_threshold: float = 0.9
    embedding_url: str | None = None
    embedding_timeout: float = 0.5
    qdrant_url: str | None = None
    qdrant_api_key: str | None = None
    qdrant_collection: str = "cachegate"
    qdrant_timeout: float = 1.0
    metrics_window_seconds: int = 300
    pricing_file: str | None = None
    usage_retention_days: int = 30
    log_path: str = "logs/requests.log"
    log_level: str = "INFO"
    log_format: str = "text"
    debug_upstream: bool = False
    alert_hit_rate_below: float = 0.2
    alert_min_requests: int = 20
    alert_window_seconds: int = 600
    alert_evictions_per_minute: float = 100.0
    alert_store_fill: float = 0.9
    alert_upstream_error_rate: float = 0.05
    alert_failopen_per_minute: float = 10.0
    alert_false_hits_per_hour: float = 5.0
    alert_check_seconds: float = 15.0
    alert_webhook_url: str | None = None
    admin_api_key: str | None = None
    monitor_api_key: str | None = None
    rate_limit_per_minute: int = 0
    allowed_origins: tuple[str, ...] = ()
    probe_upstream_url: str | None = None
    probe_api_key: str | None = None
    venice_api_key: str | None = None
    probe_models: tuple[str, ...] = ("all",)
    probe_tests: tuple[str, ...] = PROBE_TESTS
    probe_quick: bool = False
    probe_ttl_range: tuple[float, float] = (5.0, 3600.0)
    probe_request_timeout: float = 30.0

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Build settings from ``environ`` (default ``os.environ``); unset or empty values keep defaults."""
        # LOG_PATH="" is meaningful: it turns the request log off
        try:
            return cls(**read_env(SPECS, environ, keep_empty={"LOG_PATH"}))
        except service_errors.SettingsError as exc:
            raise SettingsError(exc.message, param=exc.param) from None

    def replace(self, **changes: Any) -> Settings:
        unknown = set(changes) - set(_SPEC_BY_ATTR)
        if unknown:
            raise TypeError(f"unknown settings: {', '.join(sorted(unknown))}")
        return dataclasses.replace(self, **changes)

    @property
    def data_path(self) -> Path:
        return Path(self.data_dir)

    def redacted(self) -> dict[str, Any]:
        """The effective settings with every secret (and credentials inside URLs) hidden."""
        out: dict[str, Any] = {}
        for spec in SPECS:
            value = getattr(self, spec.attr)
            if spec.secret and value is not None:
                value = redact_url(value) if "://" in str(value) else "<redacted>"
            out[spec.env] = list(value) if isinstance(value, tuple) else value
        return out


def redact_url(url: str) -> str:
    """Hide the password of ``scheme://user:password@host`` URLs; other URLs are returned as they are."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = f"{parts.username or ''}:<redacted>@{parts.netloc.rpartition('@')[2]}"
    return parts._replace(netloc=netloc).geturl()
