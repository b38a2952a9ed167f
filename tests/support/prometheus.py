"""Debian's ``prometheus`` package for the alert tests: ``promtool`` and a real Prometheus server.

Tests call :func:`require` for a binary: without it they skip on a developer's machine and fail in CI
(``CI=true``), as the browser tests do; ``make test`` installs the package when missing and root.
:class:`PrometheusServer` runs ``prometheus`` on a free port with a throw-away data directory and the
config it is given (short scrape and evaluation intervals for tests).
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.support.browser import in_ci
from tests.support.servers import SubprocessServer, free_port

RULES = Path(__file__).resolve().parents[2] / "deploy" / "prometheus" / "alerts.yml"


def require(binary: str) -> str:
    found = shutil.which(binary)
    if found:
        return found
    message = f"{binary} is not installed (make test installs Debian's prometheus package; apt-get install prometheus)"
    if in_ci():
        pytest.fail(message + ": the alert tests must run in CI", pytrace=False)
    pytest.skip(message)


class PrometheusServer(SubprocessServer):
    """``prometheus`` scraping ``targets`` every ``interval`` with the rules of ``rule_files``."""

    def __init__(self, targets: list[str], *, rule_files: list[Path], interval: str = "1s",
                 scrape: dict[str, Any] | None = None) -> None:
        self._dir = tempfile.mkdtemp(prefix="cachegate-prometheus-")
        config = {"global": {"scrape_interval": interval, "evaluation_interval": interval},
                  "rule_files": [str(path) for path in rule_files],
                  "scrape_configs": [{"job_name": "cachegate", "metrics_path": "/metrics",
                                      "static_configs": [{"targets": targets}], **(scrape or {})}]}
        path = Path(self._dir) / "prometheus.yml"
        path.write_text(yaml.safe_dump(config))
        port = free_port()
        super().__init__([require("prometheus"), f"--config.file={path}", f"--storage.tsdb.path={self._dir}/data",
                          f"--web.listen-address=127.0.0.1:{port}"], port=port, health_path="/-/ready",
                         startup_timeout=60)

    def api(self, path: str, **params: Any) -> Any:
        response = httpx.get(f"{self.url}/api/v1/{path}", params=params, timeout=10)
        response.raise_for_status()
        return response.json()["data"]

    def stop(self) -> None:
        super().stop()
        shutil.rmtree(self._dir, ignore_errors=True)
