"""Settings: read once from the environment, validated, frozen.

Each setting is declared once in :data:`SPECS` (:mod:`proxy.setting_specs`: name, parser, default, help;
the parsers of cachegate's own kinds of value are in :mod:`proxy.setting_values`); the dataclass here, the
environment loader, the CLI flags (``cachegate serve --cache-ttl 60``) and the README table all derive
from it. A bad value raises :class:`SettingsError` naming the setting, which stops start-up.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from embedding_service import errors as service_errors
from embedding_service.envspec import read_env
from proxy.errors import SettingsError
from proxy.redaction import redact_url
from proxy.setting_specs import CACHE_KEY_HEADERS, PROBE_TESTS, SPECS
from proxy.setting_values import is_loopback_host

# SPECS and SettingsError belong to this module's interface (the declarations Settings is built from, the error a
# bad value raises); the parsers do not: import them from embedding_service.envspec or proxy.setting_values.
__all__ = ["SPECS", "Settings", "SettingsError"]

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
    embedding_onnx_int8: bool = True
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
