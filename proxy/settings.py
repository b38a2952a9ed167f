"""Settings: read once from the environment, validated, frozen.

Each setting is declared once in :data:`SPECS` (name, parser, default, help); the dataclass, the
environment loader, the CLI flags (``cachegate serve --cache-ttl 60``) and the README table all derive
from it. A bad value raises :class:`SettingsError` naming the setting, which stops start-up.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

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
from proxy.platform.redis_url import parse_redis_url

__all__ = ["SPECS", "Parser", "Settings", "SettingsError", "Spec", "float_in", "int_in", "one_of", "parse_bool",
           "parse_list", "parse_log_level", "parse_optional_str", "parse_size", "parse_str", "parse_url", "read_env",
           "redact_url", "scrub"]

_http = parse_url("http", "https")
#: the default CACHE_KEY_HEADERS (proxy.core.canonical's credential and routing headers)
CACHE_KEY_HEADERS = ("x-api-key", "x-portkey-api-key", "cf-aig-authorization", "helicone-auth", "openai-organization",
                     "openai-project", "x-portkey-provider", "x-portkey-config", "anthropic-version")
#: the probe's test types (proxy.probe.runner.TESTS; a unit test keeps the two equal)
PROBE_TESTS = ("basic", "hints", "sizes", "persistence", "partial", "stream", "latency", "ttl")
_postgres = parse_url("postgresql", "postgres")
BALANCE_UNITS = ("diem", "usd")


def parse_balance_floor(raw: str) -> tuple[float, str | None]:
    """``5`` (DIEM where the upstream reports it, else USD), ``5 diem`` or ``5usd`` → (amount, unit or None)."""
    text = raw.strip().lower()
    unit = next((u for u in BALANCE_UNITS if text.endswith(u)), None)
    number = text.removesuffix(unit).strip() if unit else text
    try:
        amount = float_in(0)(number)
    except ValueError:
        raise ValueError("expected an amount such as 5, 5diem or 5usd") from None
    return amount, unit


_SHA256_HEX = re.compile(r"(?:sha256:)?([0-9a-fA-F]{64})")


def key_hash(entry: str) -> str | None:
    """The SHA-256 hex digest an allow-list entry holds (``<64 hex>`` or ``sha256:<64 hex>``, any case),
    lower-cased; ``None`` if it is not one."""
    match = _SHA256_HEX.fullmatch(entry.strip())
    return match.group(1).lower() if match else None


def parse_key_hashes(raw: str) -> tuple[str, ...]:
    """Comma-separated SHA-256 hashes of client keys. A value that is not a hash is refused without being
    echoed: it is most likely a key pasted by mistake."""
    hashes = []
    for number, entry in enumerate((item for item in raw.split(",") if item.strip()), start=1):
        digest = key_hash(entry)
        if digest is None:
            raise ValueError(f"entry {number} is not a SHA-256 hash (64 hex digits, optionally 'sha256:'); list "
                             "hashes of the keys, never the keys: printf %s \"$KEY\" | sha256sum")
        hashes.append(digest)
    return tuple(hashes)


def is_loopback_host(host: str) -> bool:
    """Whether HOST only listens on loopback (``127.0.0.0/8``, ``::1``, ``localhost``)."""
    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip().strip("[]")).is_loopback
    except ValueError:
        return False



def _redis(raw: str) -> str:
    """A URL :func:`~proxy.platform.redis_url.parse_redis_url` understands (checked again with REDIS_CLUSTER)."""
    parse_redis_url(raw)
    return raw.strip()



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
    Spec("WORKERS", int_in(1, 256), 1,
         "Processes serving HOST:PORT (SO_REUSEPORT; one per core); more than 1 needs REDIS_URL."),
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
    Spec("DRAIN_DELAY", float_in(0), 3.0,
         "Seconds a replica told to stop (SIGTERM) keeps accepting with /health/ready at 503, for the load "
         "balancer to take it out, before it stops accepting."),
    Spec("DRAIN_TIMEOUT", float_in(0), None,
         "Seconds a stopping replica then lets requests in flight finish; unset: UPSTREAM_TIMEOUT + 5."),
    # -- exact tier
    Spec("REDIS_URL", _redis, None,
         "Redis for the exact tier and everything replicas share: redis://, rediss://, unix://, "
         "redis+cluster://host:port[,host:port...], redis+sentinel://host:port[,...]/master; unset: in-process.",
         secret=True),
    Spec("REDIS_CLUSTER", parse_bool, False, "Treat a redis:// REDIS_URL as a node of a Redis Cluster."),
    Spec("REDIS_TIMEOUT", float_in(0, low_open=True), 0.25,
         "Seconds a Redis call may take, from when it was asked, before the cache fails open."),
    Spec("REDIS_COOLDOWN", float_in(0), 1.0,
         "Seconds a Redis node is skipped (its keys are misses) after it failed to answer; then one call tries it."),
    Spec("REDIS_CLIENT_CACHE_BYTES", _size_or_off, 64 * 2**20,
         "Bound of the in-process copy of exact entries read from Redis (kept correct by Redis's invalidation "
         "messages: client-side caching); 0 turns it off."),
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
    Spec("CACHE_STALE_IF_ERROR", int_in(0, 31_536_000), 300,
         "Seconds past its TTL an entry may still answer when the upstream fails (5xx, timeout, unreachable), "
         "with x-cache: STALE; at most CACHE_KEEP_EXPIRED; 0: never."),
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
    Spec("DATABASE_URL", _postgres, None,
         "PostgreSQL (postgresql://) for the usage history, the probe's history and (without REDIS_URL) the savings "
         "ledger, shared by replicas; unset: SQLite files under DATA_DIR.", secret=True),
    Spec("DATABASE_TIMEOUT", float_in(0, low_open=True), 5.0,
         "Seconds a PostgreSQL call may take; writes that fail wait in memory and are tried again."),
    # -- semantic tier
    Spec("SEMANTIC_MODE", one_of("serve", "shadow", "off"), "serve",
         "serve: answer semantic hits; shadow: only count them; off: no semantic tier."),
    Spec("SEMANTIC_THRESHOLD", float_in(0, 1), None,
         "Cosine similarity a candidate needs to be considered; unset: 0.85 with the verifier (it decides), 0.9 "
         "without (the guards decide)."),
    Spec("SEMANTIC_VERIFIER", one_of("on", "off"), "on",
         "on: a cross-encoder reads the best candidate with the new prompt and serves it only above "
         "SEMANTIC_VERIFIER_THRESHOLD (fails closed); off: the cosine threshold and every guard decide."),
    Spec("SEMANTIC_VERIFIER_THRESHOLD", float_in(0, 1), None,
         "The verifier score a candidate needs; unset: the one the shipped model was tuned to."),
    Spec("SEMANTIC_VERIFIER_TIMEOUT", float_in(0, low_open=True), 0.25,
         "Seconds the verifier may take for a candidate before it counts as refused (a miss)."),
    Spec("FEEDBACK_KEEP_TEXT", parse_bool, False,
         "Keep the two prompts of every semantic feedback verdict in DATA_DIR/semantic-feedback.sqlite3, to export "
         "and retrain on (cachegate semantic export-feedback); false: only their hashes."),
    Spec("SEMANTIC_FEEDBACK_TTL", int_in(1, 31_536_000), 86_400,
         "Seconds a semantic hit can be given feedback (remembered in Redis with REDIS_URL, so on any replica)."),
    Spec("EMBEDDING_URL", _http, None, "Embedding service; unset: embed in-process."),
    Spec("EMBEDDING_TIMEOUT", float_in(0, low_open=True), 0.5, "Seconds an embedding may take."),
    Spec("QDRANT_URL", _http, None, "Qdrant server; unset: embedded store under DATA_DIR."),
    Spec("QDRANT_API_KEY", parse_optional_str, None, "API key of the Qdrant server.", secret=True),
    Spec("QDRANT_COLLECTION", parse_str, "cachegate", "Qdrant collection name."),
    Spec("QDRANT_TIMEOUT", float_in(0, low_open=True), 1.0, "Seconds a Qdrant call may take."),
    Spec("QDRANT_REPLICATION_FACTOR", int_in(1, 16), 1,
         "Copies of each shard when cachegate creates its collections on a Qdrant cluster (2: survives a node)."),
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
    Spec("ADMIN_API_KEY", parse_optional_str, None,
         "Key for /admin/*; unset: a key generated into DATA_DIR/admin_api_key on first start.", secret=True),
    Spec("MONITOR_API_KEY", parse_optional_str, None, "Key for /metrics* and /dashboard; unset: open.",
         secret=True),
    Spec("CLIENT_API_KEYS", parse_key_hashes, (),
         "Comma-separated SHA-256 hashes of the client keys /v1 accepts; unset (and no CLIENT_API_KEYS_FILE): any. "
         "Required when UPSTREAM_API_KEY is set and HOST is not loopback.", secret=True),
    Spec("CLIENT_API_KEYS_FILE", parse_optional_str, None,
         "File of more client key hashes, one per line (# starts a comment); read at start."),
    Spec("RATE_LIMIT_PER_MINUTE", int_in(0), 0, "Requests per minute per verified client key, else per client IP; "
         "0: off."),
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
    Spec("PROBE_JSON", parse_bool, False, "cachegate probe prints a JSON list instead of a table (--json)."),
    # -- the probe monitor (scheduled probes, history, /probe)
    Spec("PROBE_ENABLED", parse_bool, None,
         "Run the probe monitor in the proxy; unset: on when PROBE_API_KEY or VENICE_API_KEY is set."),
    Spec("PROBE_INTERVAL", float_in(1), 600.0, "Seconds from the start of one probe cycle to the next."),
    Spec("PROBE_CONCURRENCY", int_in(1, 32), 2, "Models probed at once in a cycle."),
    Spec("PROBE_JITTER", float_in(0), 30.0,
         "A cycle starts up to this many seconds late, and each model up to a tenth of it, at random."),
    Spec("PROBE_DAILY_TOKEN_BUDGET", int_in(1), None, "Tokens the probe may spend per UTC day; unset: no limit."),
    Spec("PROBE_DAILY_USD_BUDGET", float_in(0, low_open=True), None,
         "US dollars the probe may spend per UTC day (at the advertised prices); unset: no limit."),
    Spec("PROBE_BALANCE_FLOOR", parse_balance_floor, None,
         "No cycle runs while the upstream's balance header is below this (5, 5diem or 5usd); unset: no floor."),
    Spec("PROBE_LOCK_SECONDS", float_in(1, 60), 30.0,
         "Expiry of the scheduler's Redis lock: another replica takes over this long after the leader died."),
    Spec("PROBE_RETENTION_DAYS", int_in(1, 3650), 30, "Days of probe history kept."),
)

_SPEC_BY_ATTR = {spec.attr: spec for spec in SPECS}


@dataclass(frozen=True)
class Settings:
    host: str = "127.0.0.1"
    port: int = 3000
    workers: int = 1
    upstream_base_url: str = "https://api.openai.com/v1"
    upstream_api_key: str | None = None
    upstream_timeout: float = 60.0
    upstream_stream_usage: bool = True
    metrics_bind_address: str | None = None
    max_body_bytes: int = 10 * 10**6
    drain_delay: float = 3.0
    drain_timeout: float | None = None
    redis_url: str | None = None
    redis_cluster: bool = False
    redis_timeout: float = 0.25
    redis_cooldown: float = 1.0
    redis_client_cache_bytes: int = 64 * 2**20
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
    cache_stale_if_error: int = 300
    cache_refresh_ahead: bool = False
    cache_refresh_min_hits: int = 3
    cache_refresh_ahead_fraction: float = 0.1
    cache_refresh_max_per_minute: int = 60
    cache_keep_requests: bool = False
    cache_lock_timeout: float = 60.0
    data_dir: str = "./data"
    database_url: str | None = None
    database_timeout: float = 5.0
    semantic_mode: str = "serve"
    semantic_threshold: float | None = None
    semantic_verifier: str = "on"
    semantic_verifier_threshold: float | None = None
    semantic_verifier_timeout: float = 0.25
    feedback_keep_text: bool = False
    semantic_feedback_ttl: int = 86_400
    embedding_url: str | None = None
    embedding_timeout: float = 0.5
    qdrant_url: str | None = None
    qdrant_api_key: str | None = None
    qdrant_collection: str = "cachegate"
    qdrant_timeout: float = 1.0
    qdrant_replication_factor: int = 1
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
    client_api_keys: tuple[str, ...] = ()
    client_api_keys_file: str | None = None
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
    probe_json: bool = False
    probe_enabled: bool | None = None
    probe_interval: float = 600.0
    probe_concurrency: int = 2
    probe_jitter: float = 30.0
    probe_daily_token_budget: int | None = None
    probe_daily_usd_budget: float | None = None
    probe_balance_floor: tuple[float, str | None] | None = None
    probe_lock_seconds: float = 30.0
    probe_retention_days: int = 30

    def __post_init__(self) -> None:
        if self.upstream_api_key and not (self.client_api_keys or self.client_api_keys_file) \
                and not is_loopback_host(self.host):
            raise SettingsError(
                f"CLIENT_API_KEYS: required when UPSTREAM_API_KEY is set and HOST ({self.host}) is not loopback: "
                "anyone who can reach the proxy would spend that key. Set CLIENT_API_KEYS (or "
                "CLIENT_API_KEYS_FILE) to the SHA-256 hashes of the keys clients may send, or listen on 127.0.0.1.",
                param="CLIENT_API_KEYS")

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
    def probe_monitor_enabled(self) -> bool:
        """PROBE_ENABLED, or when unset: a probe key is configured."""
        if self.probe_enabled is not None:
            return self.probe_enabled
        return self.probe_api_key is not None or self.venice_api_key is not None

    @property
    def data_path(self) -> Path:
        return Path(self.data_dir)

    @property
    def drain_seconds(self) -> float:
        """How long a drain waits for requests in flight: DRAIN_TIMEOUT, else the longest an upstream call
        may take plus a little for the answer to be written."""
        return self.drain_timeout if self.drain_timeout is not None else self.upstream_timeout + 5.0

    def redacted(self) -> dict[str, Any]:
        """The effective settings with every secret (and credentials inside URLs) hidden."""
        out: dict[str, Any] = {}
        for spec in SPECS:
            value = getattr(self, spec.attr)
            if spec.secret and value is not None and value != ():
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


#: query parameters whose value is hidden by :func:`scrub` (``?key=``, ``?api_key=``, ``?token=``, ``?sig=`` …)
_SECRET_WORDS = ("key", "token", "secret", "password", "passwd", "auth", "signature", "sig")
#: a URL inside a text (an error message): a scheme, ``://`` and everything up to a space or a quote
_URL_IN_TEXT = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^\s'\"<>]+")


def _scrub_url(url: str) -> str:
    try:
        url = redact_url(url)
        parts = urlsplit(url)
    except ValueError:
        return "<redacted>"
    if parts.query:
        query = [(k, "<redacted>" if any(w in k.lower() for w in _SECRET_WORDS) else v)
                 for k, v in parse_qsl(parts.query, keep_blank_values=True)]
        url = parts._replace(query=urlencode(query, safe="<>")).geturl()
    return url


def scrub(value: Any) -> Any:
    """``value`` with credentials hidden in every URL it holds (``user:pw@`` and secret-looking query
    parameters), in dicts and lists too, and in URLs inside text: error messages name the URL they failed
    on, and they reach ``/health``, error bodies and logs."""
    if isinstance(value, dict):
        return {k: scrub(v) for k, v in value.items()}
    if isinstance(value, list):
        return [scrub(v) for v in value]
    if isinstance(value, str) and "://" in value:
        return _URL_IN_TEXT.sub(lambda match: _scrub_url(match.group()), value)
    return value
