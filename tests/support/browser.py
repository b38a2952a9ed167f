"""Headless Chromium driven over the DevTools protocol, for tests that look at a page as a person would.

Debian's ``chromium`` is started with its own throw-away profile and ``--remote-debugging-port=0``; the
port it picked is read from ``DevToolsActivePort`` in the profile (no race for a free port). Each
:class:`Page` is one tab with its own websocket (the synchronous ``websockets`` client, already installed
with uvicorn[standard]). A page collects what would show in the browser's console as an error: uncaught
exceptions, ``console.error`` calls, and the browser's own error log (failed loads, CSP violations).

Tests that need the browser call :func:`require_chromium`: without one they skip on a developer's
machine but fail in CI (``CI=true``), so a missing browser never passes silently there.
"""

from __future__ import annotations

import base64
import contextlib
import itertools
import json
import os
import shutil
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from websockets.sync.client import ClientConnection, connect

from tests.support.servers import _Managed

CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"


def find_chromium() -> str | None:
    """``CHROMIUM`` from the environment, else the first of :data:`CANDIDATES` on the PATH."""
    override = os.environ.get("CHROMIUM")
    if override:
        return override if shutil.which(override) else None
    for name in CANDIDATES:
        found = shutil.which(name)
        if found:
            return found
    return None


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in {"1", "true", "yes"}


def require_chromium() -> str:
    """The browser's path; skip without one (fail in CI, where it must be installed: ``make browser``)."""
    found = find_chromium()
    if found:
        return found
    message = "chromium is not installed (make browser, or apt-get install chromium)"
    if in_ci():
        pytest.fail(message + ": browser tests must run in CI", pytrace=False)
    pytest.skip(message)


class BrowserError(RuntimeError):
    pass


class Page:
    """One tab. ``errors`` lists everything the console would show as an error."""

    def __init__(self, ws_url: str, target_id: str, browser: Chromium) -> None:
        self.target_id = target_id
        self.browser = browser
        self._stack = contextlib.ExitStack()
        self._ws: ClientConnection = self._stack.enter_context(connect(ws_url, max_size=None, open_timeout=10))
        self._ids = itertools.count(1)
        self._events: list[dict[str, Any]] = []
        self.errors: list[str] = []
        self.console: list[str] = []
        for domain in ("Page", "Runtime", "Log"):
            self.call(f"{domain}.enable")

    # -- protocol plumbing --------------------------------------------------------------------------

    def _on_event(self, message: dict[str, Any]) -> None:
        method, params = message.get("method"), message.get("params", {})
        if method == "Runtime.consoleAPICalled":
            text = " ".join(str(arg.get("value", arg.get("description", ""))) for arg in params.get("args", []))
            self.console.append(f"{params.get('type')}: {text}")
            if params.get("type") in {"error", "assert"}:
                self.errors.append(f"console.{params.get('type')}: {text}")
        elif method == "Runtime.exceptionThrown":
            details = params.get("exceptionDetails", {})
            description = details.get("exception", {}).get("description") or details.get("text")
            self.errors.append(f"uncaught: {description}")
        elif method == "Log.entryAdded":
            entry = params.get("entry", {})
            self.console.append(f"{entry.get('level')}: {entry.get('text')}")
            if entry.get("level") == "error":
                self.errors.append(f"{entry.get('source')}: {entry.get('text')} {entry.get('url', '')}".strip())
        self._events.append(message)

    def call(self, method: str, timeout: float = 30.0, **params: Any) -> dict[str, Any]:
        call_id = next(self._ids)
        self._ws.send(json.dumps({"id": call_id, "method": method, "params": params}))
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"{method} got no answer in {timeout}s")
            message = json.loads(self._ws.recv(timeout=left))
            if message.get("id") == call_id:
                if "error" in message:
                    raise BrowserError(f"{method}: {message['error']}")
                result: dict[str, Any] = message.get("result", {})
                return result
            if "method" in message:
                self._on_event(message)

    def pump(self, seconds: float) -> None:
        """Read events for ``seconds`` (console messages arrive on their own)."""
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            try:
                message = json.loads(self._ws.recv(timeout=left))
            except TimeoutError:
                return
            if "method" in message:
                self._on_event(message)

    def _wait_event(self, method: str, timeout: float) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            for index, event in enumerate(self._events):
                if event.get("method") == method:
                    del self._events[: index + 1]
                    return event
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"no {method} in {timeout}s")
            message = json.loads(self._ws.recv(timeout=left))
            if "method" in message:
                self._on_event(message)

    # -- what a test does ----------------------------------------------------------------------------

    def set_viewport(self, width: int, height: int, *, mobile: bool = False, scale: float = 1.0) -> None:
        self.call("Emulation.setDeviceMetricsOverride", width=width, height=height, deviceScaleFactor=scale,
                  mobile=mobile)

    def goto(self, url: str, timeout: float = 30.0) -> None:
        self._events.clear()
        result = self.call("Page.navigate", url=url)
        if result.get("errorText"):
            raise BrowserError(f"navigating to {url}: {result['errorText']}")
        self._wait_event("Page.loadEventFired", timeout)

    def evaluate(self, expression: str, *, await_promise: bool = True) -> Any:
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=await_promise)
        if "exceptionDetails" in result:
            details = result["exceptionDetails"]
            raise BrowserError(details.get("exception", {}).get("description") or details.get("text"))
        return result.get("result", {}).get("value")

    def wait_for(self, expression: str, timeout: float = 15.0, interval: float = 0.1) -> Any:
        """Evaluate ``expression`` until it is truthy; its last value is returned."""
        deadline = time.monotonic() + timeout
        while True:
            value = self.evaluate(expression)
            if value:
                return value
            if time.monotonic() > deadline:
                raise TimeoutError(f"{expression!r} still falsy after {timeout}s (last: {value!r})")
            self.pump(interval)

    def text(self, selector: str) -> str | None:
        value = self.evaluate(f"(function(){{var n=document.querySelector({json.dumps(selector)});"
                              "return n ? n.textContent : null;})()")
        return None if value is None else str(value)

    def screenshot(self, path: Path, *, full_page: bool = True) -> Path:
        params: dict[str, Any] = {"format": "png"}
        if full_page:
            metrics = self.call("Page.getLayoutMetrics")
            size = metrics.get("cssContentSize") or metrics["contentSize"]
            params.update(captureBeyondViewport=True,
                          clip={"x": 0, "y": 0, "width": size["width"], "height": size["height"], "scale": 1})
        data = self.call("Page.captureScreenshot", **params)["data"]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(data))
        return path

    def close(self) -> None:
        self.disconnect()
        self.browser.close_target(self.target_id)

    def disconnect(self) -> None:
        with contextlib.suppress(Exception):
            self._stack.close()


class Chromium(_Managed):
    """A headless Chromium process; pages are opened with :meth:`new_page` and closed with the browser."""

    def __init__(self, binary: str | None = None, *, startup_timeout: float = 30.0) -> None:
        self.binary = binary or find_chromium()
        if self.binary is None:
            raise BrowserError("no chromium found")
        self.startup_timeout = startup_timeout
        self.port = 0
        self._profile: str | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._log: Any = None
        self._pages: list[Page] = []

    def start(self) -> None:
        self._profile = tempfile.mkdtemp(prefix="cachegate-chromium-")
        self._log = tempfile.TemporaryFile()  # noqa: SIM115 - lives until stop()
        cmd = [self.binary or "chromium", "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
               "--no-first-run", "--no-default-browser-check", "--disable-background-networking",
               "--disable-component-update", "--disable-sync", "--disable-extensions", "--disable-dev-shm-usage",
               "--mute-audio", "--hide-scrollbars", f"--user-data-dir={self._profile}",
               "--remote-debugging-address=127.0.0.1", "--remote-debugging-port=0", "about:blank"]
        self._proc = subprocess.Popen(cmd, stdout=self._log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        active = Path(self._profile) / "DevToolsActivePort"
        deadline = time.monotonic() + self.startup_timeout
        while True:
            if active.exists():
                lines = active.read_text().split()
                if lines and lines[0].isdigit():
                    self.port = int(lines[0])
                    break
            if self._proc.poll() is not None or time.monotonic() > deadline:
                output = self._output()
                self.stop()
                raise BrowserError(f"chromium did not start:\n{output}")
            time.sleep(0.05)

    def _output(self) -> str:
        if self._log is None:
            return ""
        self._log.seek(0)
        return str(self._log.read()[-4000:].decode(errors="replace"))

    def _http(self, path: str, method: str = "GET") -> Any:
        request = urllib.request.Request(f"http://127.0.0.1:{self.port}{path}", method=method)
        with urllib.request.urlopen(request, timeout=10) as response:
            body = response.read()
        return json.loads(body) if body.strip().startswith((b"{", b"[")) else body

    def new_page(self, width: int = 1366, height: int = 768, *, mobile: bool = False) -> Page:
        target = self._http("/json/new?about:blank", method="PUT")
        page = Page(target["webSocketDebuggerUrl"], target["id"], self)
        page.set_viewport(width, height, mobile=mobile)
        self._pages.append(page)
        return page

    def close_target(self, target_id: str) -> None:
        with contextlib.suppress(Exception):
            self._http(f"/json/close/{target_id}")

    def stop(self) -> None:
        for page in self._pages:
            page.disconnect()
        self._pages.clear()
        if self._proc is not None:
            if self._proc.poll() is None:
                self._proc.terminate()
                try:
                    self._proc.wait(10)
                except subprocess.TimeoutExpired:
                    self._proc.kill()
                    self._proc.wait(5)
            self._proc = None
        if self._log is not None:
            self._log.close()
            self._log = None
        if self._profile is not None:
            shutil.rmtree(self._profile, ignore_errors=True)
            self._profile = None
