"""proxy.settings: parsing, validation and redaction of the environment."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from embedding_service.envspec import (
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
from proxy.errors import CachegateError, SettingsError
from proxy.settings import SPECS, Settings

DEFAULTS_REDACTED = {
    "HOST": "127.0.0.1",
    "PORT": 3000,
    "WORKERS": 1,
    "UPSTREAM_BASE_URL": "https://api.openai.com/v1",
    "UPSTREAM_API_KEY": None,
    "UPSTREAM_TIMEOUT": 60.0,
    "UPSTREAM_STREAM_USAGE": True,
    "METRICS_BIND_ADDRESS": None,
    "MAX_BODY_BYTES": 10_000_000,
    "DRAIN_DELAY": 3.0,
    "DRAIN_TIMEOUT": None,
    "REDIS_URL": None,
    "REDIS_CLUSTER": False,
    "REDIS_TIMEOUT": 0.25,
    "REDIS_COOLDOWN": 1.0,
    "REDIS_CLIENT_CACHE_BYTES": 64 * 2**20,
    "CACHE_MAX_BYTES": 256_000_000,
    "CACHE_DISK_MAX_BYTES": 2_000_000_000,
    "CACHE_DISK_EVICTION": "lru",
    "CACHE_TTL": 86_400,
    "CACHE_TTL_CREATIVE": 3_600,
    "CACHE_CREATIVE_TEMPERATURE": 0.7,
    "CACHE_SHARED": False,
    "CACHE_KEY_PREFIX": "cachegate:",
    "CACHE_KEY_HEADERS": ["x-api-key", "x-portkey-api-key", "cf-aig-authorization", "helicone-auth",
                          "openai-organization", "openai-project", "x-portkey-provider", "x-portkey-config",
                          "anthropic-version"],
    "TENANT_SECRET": None,
    "CACHE_KEEP_EXPIRED": 600,
    "CACHE_STALE_IF_ERROR": 300,
    "CACHE_REFRESH_AHEAD": False,
    "CACHE_REFRESH_MIN_HITS": 3,
    "CACHE_REFRESH_AHEAD_FRACTION": 0.1,
    "CACHE_REFRESH_MAX_PER_MINUTE": 60,
    "CACHE_KEEP_REQUESTS": False,
    "CACHE_LOCK_TIMEOUT": 60.0,
    "DATA_DIR": "./data",
    "DATABASE_URL": None,
    "DATABASE_TIMEOUT": 5.0,
    "SEMANTIC_MODE": "serve",
    "SEMANTIC_THRESHOLD": None,
    "SEMANTIC_VERIFIER": "on",
    "SEMANTIC_VERIFIER_THRESHOLD": None,
    "SEMANTIC_VERIFIER_TIMEOUT": 0.25,
    "FEEDBACK_KEEP_TEXT": False,
    "SEMANTIC_FEEDBACK_TTL": 86_400,
    "EMBEDDING_URL": None,
    "EMBEDDING_TIMEOUT": 0.5,
    "EMBEDDING_ONNX_INT8": True,
    "QDRANT_URL": None,
    "QDRANT_API_KEY": None,
    "QDRANT_COLLECTION": "cachegate",
    "QDRANT_TIMEOUT": 1.0,
    "QDRANT_REPLICATION_FACTOR": 1,
    "METRICS_WINDOW_SECONDS": 300,
    "PRICING_FILE": None,
    "USAGE_RETENTION_DAYS": 30,
    "LOG_PATH": "logs/requests.log",
    "LOG_LEVEL": "INFO",
    "LOG_FORMAT": "text",
    "DEBUG_UPSTREAM": False,
    "ALERT_HIT_RATE_BELOW": 0.2,
    "ALERT_MIN_REQUESTS": 20,
    "ALERT_WINDOW_SECONDS": 600,
    "ALERT_EVICTIONS_PER_MINUTE": 100.0,
    "ALERT_STORE_FILL": 0.9,
    "ALERT_UPSTREAM_ERROR_RATE": 0.05,
    "ALERT_FAILOPEN_PER_MINUTE": 10.0,
    "ALERT_FALSE_HITS_PER_HOUR": 5.0,
    "ALERT_CHECK_SECONDS": 15.0,
    "ALERT_WEBHOOK_URL": None,
    "ADMIN_API_KEY": None,
    "MONITOR_API_KEY": None,
    "CLIENT_API_KEYS": [],
    "CLIENT_API_KEYS_FILE": None,
    "RATE_LIMIT_PER_MINUTE": 0,
    "ALLOWED_ORIGINS": [],
    "PROBE_UPSTREAM_URL": None,
    "PROBE_API_KEY": None,
    "VENICE_API_KEY": None,
    "PROBE_MODELS": ["all"],
    "PROBE_TESTS": ["basic", "hints", "sizes", "persistence", "partial", "stream", "latency", "ttl"],
    "PROBE_QUICK": False,
    "PROBE_TTL_RANGE": [5.0, 3600.0],
    "PROBE_REQUEST_TIMEOUT": 30.0,
    "PROBE_JSON": False,
    "PROBE_ENABLED": None,
    "PROBE_INTERVAL": 600.0,
    "PROBE_CONCURRENCY": 2,
    "PROBE_JITTER": 30.0,
    "PROBE_DAILY_TOKEN_BUDGET": None,
    "PROBE_DAILY_USD_BUDGET": None,
    "PROBE_BALANCE_FLOOR": None,
    "PROBE_LOCK_SECONDS": 30.0,
    "PROBE_RETENTION_DAYS": 30,
}


# -- defaults ---------------------------------------------------------------------------------------


def test_defaults() -> None:
    settings = Settings()
    assert settings.host == "127.0.0.1"
    assert settings.port == 3000
    assert settings.upstream_base_url == "https://api.openai.com/v1"
    assert settings.upstream_api_key is None
    assert settings.cache_ttl == 86_400
    assert settings.cache_ttl_creative == 3_600
    assert settings.cache_creative_temperature == 0.7
    assert settings.cache_max_bytes == 256_000_000
    assert settings.max_body_bytes == 10_000_000
    assert settings.cache_shared is False
    assert settings.semantic_mode == "serve"
    assert settings.semantic_threshold is None  # 0.85 with the verifier, 0.9 without (proxy.semantic.tier)
    assert settings.semantic_verifier == "on"
    assert settings.allowed_origins == ()
    assert settings.redacted() == DEFAULTS_REDACTED


def test_every_spec_default_matches_the_dataclass() -> None:
    settings = Settings()
    fields = {field.name for field in dataclasses.fields(Settings)}
    assert fields == {spec.attr for spec in SPECS}
    for spec in SPECS:
        assert getattr(settings, spec.attr) == spec.default, spec.env


def test_from_empty_environment_is_defaults() -> None:
    assert Settings.from_env({}) == Settings()


def test_from_env_reads_os_environ_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    for spec in SPECS:
        monkeypatch.delenv(spec.env, raising=False)
    monkeypatch.setenv("CACHE_TTL", "42")
    monkeypatch.setenv("SEMANTIC_MODE", "off")
    assert Settings.from_env() == Settings(cache_ttl=42, semantic_mode="off")


# -- parsers ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(("raw", "expected"), [
    ("1", True), ("true", True), ("TRUE", True), (" yes ", True), ("on", True),
    ("0", False), ("false", False), ("No", False), ("off", False), ("", False), ("  ", False),
])
def test_parse_bool(raw: str, expected: bool) -> None:
    assert parse_bool(raw) is expected


@pytest.mark.parametrize("raw", ["maybe", "2", "t", "enabled"])
def test_parse_bool_invalid(raw: str) -> None:
    with pytest.raises(ValueError, match=r"^expected true or false$"):
        parse_bool(raw)


@pytest.mark.parametrize(("raw", "expected"), [("1", 1), ("10", 10), (" 5 ", 5), ("+7", 7)])
def test_int_in_valid(raw: str, expected: int) -> None:
    assert int_in(1, 10)(raw) == expected


@pytest.mark.parametrize(("raw", "message"), [
    ("0", "expected a whole number from 1 to 10"),
    ("11", "expected a whole number from 1 to 10"),
    ("-3", "expected a whole number from 1 to 10"),
    ("abc", "expected a whole number"),
    ("1.5", "expected a whole number"),
    ("", "expected a whole number"),
])
def test_int_in_invalid(raw: str, message: str) -> None:
    with pytest.raises(ValueError) as caught:
        int_in(1, 10)(raw)
    assert str(caught.value) == message


def test_int_in_without_upper_bound() -> None:
    parse = int_in(0)
    assert parse("0") == 0
    assert parse("1000000000") == 1_000_000_000
    with pytest.raises(ValueError) as caught:
        parse("-1")
    assert str(caught.value) == "expected a whole number of at least 0"


@pytest.mark.parametrize(("raw", "expected"), [("0", 0.0), ("2", 2.0), ("0.7", 0.7), (" 1.25 ", 1.25)])
def test_float_in_valid(raw: str, expected: float) -> None:
    assert float_in(0, 2)(raw) == expected


@pytest.mark.parametrize(("raw", "message"), [
    ("-0.1", "expected a number at least 0 and at most 2"),
    ("2.01", "expected a number at least 0 and at most 2"),
    ("nan", "expected a number at least 0 and at most 2"),
    ("inf", "expected a number at least 0 and at most 2"),
    ("warm", "expected a number"),
])
def test_float_in_invalid(raw: str, message: str) -> None:
    with pytest.raises(ValueError) as caught:
        float_in(0, 2)(raw)
    assert str(caught.value) == message


def test_float_in_low_open() -> None:
    parse = float_in(0, low_open=True)
    assert parse("0.001") == 0.001
    for raw in ("0", "-1", "nan"):
        with pytest.raises(ValueError) as caught:
            parse(raw)
        assert str(caught.value) == "expected a number above 0"


@pytest.mark.parametrize(("raw", "expected"), [
    ("1024", 1024),
    ("268435456", 268_435_456),
    ("256MB", 256_000_000),
    ("256mb", 256_000_000),
    ("256M", 256_000_000),
    ("64MiB", 64 * 2**20),
    ("64mib", 64 * 2**20),
    ("1KiB", 1024),
    ("2k", 2000),
    ("2kb", 2000),
    ("1.5MB", 1_500_000),
    (" 10 GB ", 10_000_000_000),
    ("1GiB", 2**30),
    ("1TB", 10**12),
    ("1TiB", 2**40),
    ("2048B", 2048),
])
def test_parse_size(raw: str, expected: int) -> None:
    assert parse_size(raw) == expected


@pytest.mark.parametrize("raw", ["1k", "1023", "1000B", "0", "0.5KiB"])
def test_parse_size_below_one_kib(raw: str) -> None:
    with pytest.raises(ValueError) as caught:
        parse_size(raw)
    assert str(caught.value) == "expected a size of at least 1KiB"


@pytest.mark.parametrize("raw", ["", "abc", "MB", "-5MB", "5 XB", "5ib", "5i", "1e6", "5 M B", "1,000"])
def test_parse_size_invalid(raw: str) -> None:
    with pytest.raises(ValueError) as caught:
        parse_size(raw)
    assert str(caught.value) == "expected a size such as 268435456, 256MB or 256MiB"


@pytest.mark.parametrize(("raw", "expected"), [
    ("https://api.openai.com/v1", "https://api.openai.com/v1"),
    ("https://api.openai.com/v1/", "https://api.openai.com/v1"),
    (" http://localhost:8000/v1// ", "http://localhost:8000/v1"),
])
def test_parse_url_http(raw: str, expected: str) -> None:
    assert parse_url("http", "https")(raw) == expected


@pytest.mark.parametrize("raw", ["ftp://example.com", "localhost:8000", "api.openai.com/v1", "https://", "",
                                 "redis://localhost:6379"])
def test_parse_url_http_invalid(raw: str) -> None:
    with pytest.raises(ValueError) as caught:
        parse_url("http", "https")(raw)
    assert str(caught.value) == "expected a URL starting with http:// or https://"


def test_parse_url_redis_keeps_trailing_slash() -> None:
    parse = parse_url("redis", "rediss", "unix")
    assert parse("redis://localhost:6379/") == "redis://localhost:6379/"
    assert parse("rediss://:pw@cache.example.com:6380/0") == "rediss://:pw@cache.example.com:6380/0"
    with pytest.raises(ValueError) as caught:
        parse("http://localhost:6379")
    assert str(caught.value) == "expected a URL starting with redis:// or rediss:// or unix://"


def test_parse_url_redis_unix_socket() -> None:
    assert parse_url("redis", "rediss", "unix")("unix:///tmp/redis.sock") == "unix:///tmp/redis.sock"


def test_one_of() -> None:
    parse = one_of("serve", "shadow", "off")
    assert parse("SHADOW") == "shadow"
    assert parse(" off ") == "off"
    with pytest.raises(ValueError) as caught:
        parse("on")
    assert str(caught.value) == "expected one of serve, shadow, off"


def test_small_parsers() -> None:
    assert parse_str("  x  ") == "x"
    assert parse_optional_str("  ") is None
    assert parse_optional_str(" key ") == "key"
    assert parse_list(" https://a.test, ,https://b.test,, ") == ("https://a.test", "https://b.test")
    assert parse_list("") == ()
    assert parse_log_level("Debug") == "DEBUG"
    with pytest.raises(ValueError):
        parse_log_level("verbose")


# -- from_env ---------------------------------------------------------------------------------------


def test_from_env_parses_values() -> None:
    settings = Settings.from_env({
        "PORT": "8080",
        "UPSTREAM_BASE_URL": "http://localhost:9000/v1/",
        "UPSTREAM_API_KEY": " sk-upstream ",
        "CACHE_MAX_BYTES": "64MiB",
        "CACHE_TTL": "60",
        "CACHE_SHARED": "yes",
        "SEMANTIC_MODE": "Shadow",
        "SEMANTIC_THRESHOLD": "0.85",
        "REDIS_URL": "redis://localhost:6379/1",
        "LOG_LEVEL": "warning",
        "ALLOWED_ORIGINS": "https://a.test,https://b.test",
        "RATE_LIMIT_PER_MINUTE": "120",
    })
    assert settings == Settings(
        port=8080, upstream_base_url="http://localhost:9000/v1", upstream_api_key="sk-upstream",
        cache_max_bytes=64 * 2**20, cache_ttl=60, cache_shared=True, semantic_mode="shadow",
        semantic_threshold=0.85, redis_url="redis://localhost:6379/1", log_level="WARNING",
        allowed_origins=("https://a.test", "https://b.test"), rate_limit_per_minute=120,
    )


def test_from_env_empty_values_keep_defaults() -> None:
    assert Settings.from_env({"CACHE_TTL": "", "PORT": "   ", "SEMANTIC_MODE": ""}) == Settings()


def test_from_env_empty_log_path_turns_logging_off() -> None:
    assert Settings.from_env({"LOG_PATH": ""}).log_path == ""


def test_from_env_ignores_unknown_variables() -> None:
    assert Settings.from_env({"PATH": "/usr/bin", "CACHE_BOGUS": "1"}) == Settings()


@pytest.mark.parametrize(("env", "raw", "message"), [
    ("CACHE_TTL", "0", "CACHE_TTL: expected a whole number from 1 to 31536000, got '0'"),
    ("CACHE_TTL", "1d", "CACHE_TTL: expected a whole number, got '1d'"),
    ("PORT", "70000", "PORT: expected a whole number from 0 to 65535, got '70000'"),
    ("SEMANTIC_MODE", "maybe", "SEMANTIC_MODE: expected one of serve, shadow, off, got 'maybe'"),
    ("SEMANTIC_THRESHOLD", "1.5", "SEMANTIC_THRESHOLD: expected a number at least 0 and at most 1, got '1.5'"),
    ("CACHE_MAX_BYTES", "1k", "CACHE_MAX_BYTES: expected a size of at least 1KiB, got '1k'"),
    ("CACHE_DISK_MAX_BYTES", "10", "CACHE_DISK_MAX_BYTES: expected a size of at least 1KiB, got '10'"),
    ("CACHE_DISK_EVICTION", "fifo", "CACHE_DISK_EVICTION: expected one of lru, lfu, got 'fifo'"),
    ("UPSTREAM_TIMEOUT", "0", "UPSTREAM_TIMEOUT: expected a number above 0, got '0'"),
    ("UPSTREAM_BASE_URL", "ftp://x", "UPSTREAM_BASE_URL: expected a URL starting with http:// or https://, "
                                     "got 'ftp://x'"),
    ("CACHE_SHARED", "maybe", "CACHE_SHARED: expected true or false, got 'maybe'"),
    ("LOG_LEVEL", "verbose", "LOG_LEVEL: expected one of debug, info, warning, error, critical, got 'verbose'"),
    ("METRICS_WINDOW_SECONDS", "5", "METRICS_WINDOW_SECONDS: expected a whole number from 10 to 86400, got '5'"),
    ("RATE_LIMIT_PER_MINUTE", "-1", "RATE_LIMIT_PER_MINUTE: expected a whole number of at least 0, got '-1'"),
    ("REDIS_COOLDOWN", "-1", "REDIS_COOLDOWN: expected a number at least 0, got '-1'"),
    ("REDIS_CLIENT_CACHE_BYTES", "lots", "REDIS_CLIENT_CACHE_BYTES: expected a size such as 268435456, 256MB or "
                                         "256MiB, got 'lots'"),
    ("DRAIN_TIMEOUT", "soon", "DRAIN_TIMEOUT: expected a number, got 'soon'"),
    # a secret's value is never echoed: it may hold a password
    ("DATABASE_URL", "mysql://u:pw@db/x", "DATABASE_URL: expected a URL starting with postgresql:// or postgres://, "
                                          "got <redacted>"),
    ("DATABASE_TIMEOUT", "0", "DATABASE_TIMEOUT: expected a number above 0, got '0'"),
])
def test_from_env_bad_value(env: str, raw: str, message: str) -> None:
    with pytest.raises(SettingsError) as caught:
        Settings.from_env({env: raw})
    error = caught.value
    assert error.message.startswith(f"{env}:")
    assert error.message == message
    assert str(error) == message
    assert error.param == env
    assert error.code == "invalid_setting"


def test_settings_error_is_a_value_error() -> None:
    assert issubclass(SettingsError, ValueError)
    assert issubclass(SettingsError, CachegateError)


def test_from_env_hides_secret_in_error() -> None:
    with pytest.raises(SettingsError) as caught:
        Settings.from_env({"REDIS_URL": "http://admin:hunter2@cache.internal:6379"})
    assert caught.value.message == \
        "REDIS_URL: expected a URL starting with redis:// or rediss:// or unix:// or redis+cluster:// or " \
        "rediss+cluster:// or redis+sentinel:// or rediss+sentinel://, got <redacted>"
    assert "hunter2" not in str(caught.value)


def test_from_env_error_has_no_chained_cause() -> None:
    with pytest.raises(SettingsError) as caught:
        Settings.from_env({"REDIS_URL": "http://admin:hunter2@cache.internal:6379"})
    assert caught.value.__cause__ is None
    assert caught.value.__suppress_context__ is True


# -- redaction --------------------------------------------------------------------------------------


def test_redacted_hides_secrets() -> None:
    settings = Settings(upstream_api_key="sk-live-123", admin_api_key="admin-456", monitor_api_key="mon-789",
                        qdrant_api_key="qd-000", redis_url="redis://:s3cret@localhost:6379/0",
                        database_url="postgresql://cachegate:pg-pass@db.internal:5432/cachegate",
                        allowed_origins=("https://a.test",))
    out = settings.redacted()
    assert out == {**DEFAULTS_REDACTED, "UPSTREAM_API_KEY": "<redacted>", "ADMIN_API_KEY": "<redacted>",
                   "MONITOR_API_KEY": "<redacted>", "QDRANT_API_KEY": "<redacted>",
                   "REDIS_URL": "redis://:<redacted>@localhost:6379/0", "ALLOWED_ORIGINS": ["https://a.test"],
                   "DATABASE_URL": "postgresql://cachegate:<redacted>@db.internal:5432/cachegate"}
    text = repr(out)
    for secret in ("sk-live-123", "admin-456", "mon-789", "qd-000", "s3cret", "pg-pass"):
        assert secret not in text


def test_redacted_redis_url_without_password_shown() -> None:
    assert Settings(redis_url="redis://localhost:6379/0").redacted()["REDIS_URL"] == "redis://localhost:6379/0"


# -- immutability and helpers -------------------------------------------------------------------------


def test_settings_are_frozen() -> None:
    settings = Settings()
    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.cache_ttl = 5  # type: ignore[misc]


def test_replace() -> None:
    settings = Settings()
    changed = settings.replace(cache_ttl=5, semantic_mode="off")
    assert (changed.cache_ttl, changed.semantic_mode) == (5, "off")
    assert settings.cache_ttl == 86_400


def test_replace_unknown_setting() -> None:
    with pytest.raises(TypeError) as caught:
        Settings().replace(cache_ttl=5, zeta=1, alpha=2)
    assert str(caught.value) == "unknown settings: alpha, zeta"


def test_data_path() -> None:
    assert Settings(data_dir="/var/lib/cachegate").data_path == Path("/var/lib/cachegate")


@pytest.mark.parametrize(("raw", "ok"), [("127.0.0.1:9090", True), ("metrics.internal:9090", True),
                                         ("[::1]:9090", True), ("0.0.0.0:1", True), ("9090", False),
                                         (":9090", False), ("host:0", False), ("host:70000", False),
                                         ("::1:9090", False), ("[nope]:9090", False), ("a b:9090", False)])
def test_metrics_bind_address(raw: str, ok: bool) -> None:
    if ok:
        assert Settings.from_env({"METRICS_BIND_ADDRESS": raw}).metrics_bind_address == raw
    else:
        with pytest.raises(SettingsError) as caught:
            Settings.from_env({"METRICS_BIND_ADDRESS": raw})
        assert caught.value.param == "METRICS_BIND_ADDRESS"


def test_the_disk_level_is_turned_off_by_zero() -> None:
    assert Settings.from_env({"CACHE_DISK_MAX_BYTES": "0"}).cache_disk_max_bytes == 0
    assert Settings.from_env({"CACHE_DISK_MAX_BYTES": "1GiB"}).cache_disk_max_bytes == 2**30


def test_secret_specs() -> None:
    assert {spec.env for spec in SPECS if spec.secret} == {
        "UPSTREAM_API_KEY", "REDIS_URL", "QDRANT_API_KEY", "ADMIN_API_KEY", "MONITOR_API_KEY", "PROBE_API_KEY",
        "VENICE_API_KEY", "TENANT_SECRET", "CLIENT_API_KEYS", "ALERT_WEBHOOK_URL", "DATABASE_URL"}


# -- client keys (issue 10.11) ---------------------------------------------------------------------------

HASH = "ab" * 32


def test_client_api_keys_are_hashes() -> None:
    settings = Settings.from_env({"CLIENT_API_KEYS": f"{HASH}, sha256:{'CD' * 32} ,"})
    assert settings.client_api_keys == (HASH, "cd" * 32)
    assert settings.redacted()["CLIENT_API_KEYS"] == "<redacted>"


@pytest.mark.parametrize("raw", ["sk-live-plain-key", f"{HASH},sk-live-plain-key", "ab" * 31, "md5:" + "ab" * 16])
def test_a_client_key_that_is_not_a_hash_is_refused_without_echoing_it(raw: str) -> None:
    with pytest.raises(SettingsError) as caught:
        Settings.from_env({"CLIENT_API_KEYS": raw})
    assert caught.value.param == "CLIENT_API_KEYS" and "SHA-256" in caught.value.message
    assert "sk-live-plain-key" not in caught.value.message


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "10.0.0.5", "proxy.internal"])
def test_the_upstream_key_on_a_reachable_host_needs_client_keys(host: str) -> None:
    with pytest.raises(SettingsError) as caught:
        Settings.from_env({"HOST": host, "UPSTREAM_API_KEY": "sk-up"})
    assert caught.value.param == "CLIENT_API_KEYS" and "UPSTREAM_API_KEY" in caught.value.message
    assert "sk-up" not in caught.value.message
    with pytest.raises(SettingsError):
        Settings(host=host, upstream_api_key="sk-up")  # built in code, the same rule
    assert Settings.from_env({"HOST": host, "UPSTREAM_API_KEY": "sk-up", "CLIENT_API_KEYS": HASH})
    assert Settings.from_env({"HOST": host, "UPSTREAM_API_KEY": "sk-up", "CLIENT_API_KEYS_FILE": "/k"})
    assert Settings.from_env({"HOST": host})  # no upstream key: the client's own key is spent


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.2", "::1", "localhost", "[::1]"])
def test_the_upstream_key_on_loopback_needs_none(host: str) -> None:
    assert Settings.from_env({"HOST": host, "UPSTREAM_API_KEY": "sk-up"}).client_api_keys == ()


# -- the probe's settings -------------------------------------------------------------------------------


def test_probe_settings_from_env() -> None:
    settings = Settings.from_env({"PROBE_UPSTREAM_URL": "https://api.venice.ai/api/v1/", "PROBE_MODELS": "a, b",
                                  "PROBE_TESTS": "basic,TTL", "PROBE_QUICK": "yes", "PROBE_TTL_RANGE": "1:30",
                                  "PROBE_REQUEST_TIMEOUT": "5"})
    assert settings.probe_upstream_url == "https://api.venice.ai/api/v1"
    assert settings.probe_models == ("a", "b")
    assert settings.probe_tests == ("basic", "ttl")
    assert settings.probe_quick is True
    assert settings.probe_ttl_range == (1.0, 30.0)
    assert settings.probe_request_timeout == 5.0


def test_venice_key_and_its_alias() -> None:
    assert Settings.from_env({"API_KEY_VENICE": "k1"}).venice_api_key == "k1"
    assert Settings.from_env({"VENICE_API_KEY": "k2", "API_KEY_VENICE": "k1"}).venice_api_key == "k2"
    assert Settings.from_env({"VENICE_API_KEY": "", "API_KEY_VENICE": "k1"}).venice_api_key == "k1"
    assert Settings.from_env({}).venice_api_key is None
    assert Settings.from_env({"VENICE_API_KEY": "k2"}).redacted()["VENICE_API_KEY"] == "<redacted>"


@pytest.mark.parametrize("raw", ["5", "a:b", "0:10", "10:5", "-1:3", "1:inf", ""])
def test_bad_ttl_range(raw: str) -> None:
    with pytest.raises(ValueError, match="MIN:MAX"):
        parse_range(raw)
    if raw:
        with pytest.raises(SettingsError, match="PROBE_TTL_RANGE"):
            Settings.from_env({"PROBE_TTL_RANGE": raw})


def test_probe_tests_must_be_known() -> None:
    assert some_of("a", "b")("b, a") == ("b", "a")
    with pytest.raises(SettingsError, match="PROBE_TESTS: expected a comma-separated list of basic"):
        Settings.from_env({"PROBE_TESTS": "basic,everything"})


def test_the_probe_monitors_settings() -> None:
    settings = Settings.from_env({"PROBE_INTERVAL": "60", "PROBE_CONCURRENCY": "3", "PROBE_JITTER": "0",
                                  "PROBE_DAILY_TOKEN_BUDGET": "100000", "PROBE_DAILY_USD_BUDGET": "2.5",
                                  "PROBE_BALANCE_FLOOR": "5diem", "PROBE_LOCK_SECONDS": "10",
                                  "PROBE_RETENTION_DAYS": "7", "PROBE_JSON": "true"})
    assert (settings.probe_interval, settings.probe_concurrency, settings.probe_jitter) == (60.0, 3, 0.0)
    assert (settings.probe_daily_token_budget, settings.probe_daily_usd_budget) == (100_000, 2.5)
    assert (settings.probe_balance_floor, settings.probe_lock_seconds, settings.probe_retention_days) == (
        (5.0, "diem"), 10.0, 7)
    assert settings.probe_json is True


@pytest.mark.parametrize(("env", "named"), [({"PROBE_LOCK_SECONDS": "61"}, "PROBE_LOCK_SECONDS"),
                                            ({"PROBE_LOCK_SECONDS": "0.5"}, "PROBE_LOCK_SECONDS"),
                                            ({"PROBE_CONCURRENCY": "0"}, "PROBE_CONCURRENCY"),
                                            ({"PROBE_INTERVAL": "0"}, "PROBE_INTERVAL"),
                                            ({"PROBE_DAILY_TOKEN_BUDGET": "0"}, "PROBE_DAILY_TOKEN_BUDGET"),
                                            ({"PROBE_ENABLED": "maybe"}, "PROBE_ENABLED")])
def test_bad_monitor_settings_stop_start_up(env: dict[str, str], named: str) -> None:
    with pytest.raises(SettingsError, match=f"^{named}: "):
        Settings.from_env(env)


@pytest.mark.parametrize(("env", "enabled"), [
    ({}, False), ({"PROBE_ENABLED": "true"}, True), ({"VENICE_API_KEY": "vk"}, True),
    ({"PROBE_API_KEY": "pk"}, True), ({"VENICE_API_KEY": "vk", "PROBE_ENABLED": "false"}, False),
    ({"UPSTREAM_API_KEY": "up"}, False),  # the proxy's own key is not a probe key
])
def test_the_monitor_is_on_when_enabled_or_a_probe_key_is_set(env: dict[str, str], enabled: bool) -> None:
    assert Settings.from_env(env).probe_monitor_enabled is enabled


def test_probe_test_names_are_the_probes() -> None:
    from proxy.probe.runner import TESTS
    from proxy.setting_specs import PROBE_TESTS

    assert PROBE_TESTS == TESTS
