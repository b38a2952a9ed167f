"""Request-log lines, application log formats and upstream debug redaction."""

from __future__ import annotations

import io
import json
import logging
from pathlib import Path

import pytest

from proxy.http.context import request_id_var
from proxy.monitoring.logs import configure_logging
from proxy.monitoring.request_log import RequestLog, format_line, line_tail
from proxy.monitoring.upstream_debug import redact_headers, redact_text
from proxy.settings import Settings

T = 1771668001.0  # 2026-02-21 10:00:01 UTC


def test_request_log_line_is_fixed_width() -> None:
    assert format_line(T, "EXACT_HIT", "llama-3.3-70b-versatile", 423, 0.00025) == (
        "2026-02-21 10:00:01 | EXACT_HIT     | llama-3.3-70b-versatile       |      423 tokens | $0.00025\n")
    assert format_line(T, "SEMANTIC_HIT", "m", 7, 1.5) == (
        "2026-02-21 10:00:01 | SEMANTIC_HIT  | m                             |        7 tokens | $1.50000\n")


async def test_request_log_appends_through_one_open_file(tmp_path: Path) -> None:
    log = RequestLog(str(tmp_path / "logs" / "requests.log"))
    await log.open()
    log.append((T, line_tail("MISS", "gpt-4o-mini", 10, 0.001)))
    await log.flush()
    log.append((T, line_tail("EXACT_HIT", "gpt-4o-mini", 10, 0.001)))
    log.append((T + 1.5, line_tail("EXACT_HIT", "gpt-4o-mini", 10, 0.001)))
    await log.close()
    lines = (tmp_path / "logs" / "requests.log").read_text().splitlines()
    assert [line.split(" | ")[1].strip() for line in lines] == ["MISS", "EXACT_HIT", "EXACT_HIT"]
    assert [line[:19] for line in lines] == ["2026-02-21 10:00:01"] * 2 + ["2026-02-21 10:00:02"]
    assert log.status()["written"] == 3


@pytest.fixture
def restore_logging() -> object:
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    yield None
    root.handlers[:], level = saved
    root.setLevel(level)


@pytest.mark.usefixtures("restore_logging")
def test_json_logs_carry_the_request_id() -> None:
    stream = io.StringIO()
    configure_logging(Settings(log_format="json", log_level="INFO"), stream=stream)
    token = request_id_var.set("req-123")
    try:
        logging.getLogger("cachegate.test").info("hello %s", "world", extra={"model": "gpt-4o"})
    finally:
        request_id_var.reset(token)
    logging.getLogger("cachegate.test").debug("not shown")
    line = json.loads(stream.getvalue().strip())
    assert {k: line[k] for k in ("level", "logger", "request_id", "message", "model")} == {
        "level": "INFO", "logger": "cachegate.test", "request_id": "req-123", "message": "hello world",
        "model": "gpt-4o"}
    assert line["ts"].endswith("Z")


@pytest.mark.usefixtures("restore_logging")
def test_text_logs_carry_the_request_id() -> None:
    stream = io.StringIO()
    configure_logging(Settings(log_format="text", log_level="WARNING"), stream=stream)
    token = request_id_var.set("req-9")
    try:
        logging.getLogger("cachegate.test").warning("careful")
    finally:
        request_id_var.reset(token)
    assert stream.getvalue().strip().endswith("WARNING cachegate.test [req-9] careful")


def test_upstream_debug_redacts_keys() -> None:
    headers = redact_headers([("Authorization", "Bearer sk-live-abcdefghijklmnop"), ("content-type", "json"),
                              ("api-key", "short")])
    assert headers == {"Authorization": "<redacted …mnop>", "content-type": "json", "api-key": "<redacted>"}
    text = redact_text(b'{"key": "sk-proj-abcdefghijklmnopqrstuvwxyz", "n": 1}')
    assert "abcdefghijklmnopqrstuv" not in text
    assert '"n": 1' in text
