"""Every setting cachegate reads, declared once: name, parser, default and the help the README table shows.

:mod:`proxy.settings` builds the :class:`~proxy.settings.Settings` dataclass, the environment loader and the
CLI flags (``cachegate serve --cache-ttl 60``) from :data:`SPECS`; the README's settings table is checked
against it (``tests/unit/test_readme.py``).
"""

from __future__ import annotations

from embedding_service.envspec import (
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
    some_of,
)
from proxy.setting_values import (
    parse_balance_floor,
    parse_bind_address,
    parse_key_hashes,
    parse_redis_setting,
    parse_size_or_off,
)

_http = parse_url("http", "https")
#: the default CACHE_KEY_HEADERS (proxy.core.canonical's credential and routing headers)
CACHE_KEY_HEADERS = ("x-api-key", "x-portkey-api-key", "cf-aig-authorization", "helicone-auth", "openai-organization",
                     "openai-project", "x-portkey-provider", "x-portkey-config", "anthropic-version")
#: the probe's test types (proxy.probe.runner.TESTS; a unit test keeps the two equal)
PROBE_TESTS = ("basic", "hints", "sizes", "persistence", "partial", "stream", "latency", "ttl")
_postgres = parse_url("postgresql", "postgres")


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
    Spec("REDIS_URL", parse_redis_setting, None,
         "Redis for the exact tier and everything replicas share: redis://, rediss://, unix://, "
         "redis+cluster://host:port[,host:port...], redis+sentinel://host:port[,...]/master; unset: in-process.",
         secret=True),
    Spec("REDIS_CLUSTER", parse_bool, False, "Treat a redis:// REDIS_URL as a node of a Redis Cluster."),
    Spec("REDIS_TIMEOUT", float_in(0, low_open=True), 0.25,
         "Seconds a Redis call may take, from when it was asked, before the cache fails open."),
    Spec("REDIS_COOLDOWN", float_in(0), 1.0,
         "Seconds a Redis node is skipped (its keys are misses) after it failed to answer; then one call tries it."),
    Spec("REDIS_CLIENT_CACHE_BYTES", parse_size_or_off, 64 * 2**20,
         "Bound of the in-process copy of exact entries read from Redis (kept correct by Redis's invalidation "
         "messages: client-side caching); 0 turns it off."),
    Spec("CACHE_MAX_BYTES", parse_size, 256 * 10**6, "Bound of the in-process exact store (the memory level)."),
    Spec("CACHE_DISK_MAX_BYTES", parse_size_or_off, 2 * 10**9,
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
    Spec("EMBEDDING_ONNX_INT8", parse_bool, True,
         "The in-process model runs int8 matrix products (~15% faster a prompt), used only if they agree with "
         "float32 to cosine >= 0.99 at load; off: float32. The embedding service has EMBED_ONNX_INT8."),
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
