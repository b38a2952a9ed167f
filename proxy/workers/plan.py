"""What ``cachegate serve --workers N`` decides, without processes:

- :func:`check`: the settings several processes on one machine need, refused naming the setting as every
  bad setting is: REDIS_URL (what replicas share goes through Redis), no embedded semantic store (one
  directory cannot be opened by several processes), a fixed PORT, the workers' metrics ports in range;
- :func:`child_environment` and :func:`worker_index`: how a worker is told it is one (``WORKERS=1`` and
  :data:`WORKER_INDEX`, its number from 0), and which one it is (``cachegate serve`` hands the number to the
  composition root, ``build(settings, worker=...)``, and its alerts name it);
- :func:`metrics_address`: worker *i*'s metrics listener, on METRICS_BIND_ADDRESS's port + *i*, so that
  Prometheus scrapes each process as a target of its own, exactly as separate replicas;
- :class:`Restarts`: when a worker that ended is started again, and when the supervisor gives up;
- :func:`exit_status`: the supervisor's exit code, from its workers'.
"""

from __future__ import annotations

import signal
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

# A worker that could not start at all exits with uvicorn's STARTUP_FAILURE (3, as gunicorn's WORKER_BOOT_ERROR):
# starting it again would fail the same way.
from uvicorn.config import STARTUP_FAILURE

from proxy.errors import SettingsError
from proxy.setting_values import split_bind_address
from proxy.settings import Settings

#: set by the supervisor for its workers only (not a setting): the worker's number, from 0
WORKER_INDEX = "CACHEGATE_WORKER_INDEX"
#: ``cachegate serve``'s exit code for a bad setting
BAD_SETTING = 2
__all__ = ["BAD_SETTING", "STARTUP_FAILURE", "WORKER_INDEX", "Restarts", "Verdict", "check", "child_environment",
           "describe", "exit_status", "metrics_address", "worker_index"]


def check(settings: Settings) -> None:
    """Raise :class:`SettingsError` naming the setting when ``settings.workers`` processes cannot serve together."""
    count = settings.workers
    if count == 1:
        return
    if not settings.redis_url:
        raise SettingsError("WORKERS: more than one process needs REDIS_URL: the exact cache, ledger, rate limits "
                            "and feedback are per process otherwise", param="WORKERS")
    if settings.semantic_mode != "off" and not settings.qdrant_url:
        raise SettingsError("WORKERS: more than one process cannot share the embedded semantic store under "
                            "DATA_DIR (each would open it on its own): set QDRANT_URL, or SEMANTIC_MODE=off",
                            param="WORKERS")
    if settings.port == 0:
        raise SettingsError("WORKERS: more than one process needs a fixed PORT: with PORT=0 each would listen on a "
                            "port of its own", param="WORKERS")
    if settings.metrics_bind_address:
        host, first = split_bind_address(settings.metrics_bind_address)
        last = first + count - 1
        taken = f"with WORKERS={count} the workers' metrics listeners take ports {first} to {last}"
        if last > 65535:
            raise SettingsError(f"METRICS_BIND_ADDRESS: {taken}, past 65535", param="METRICS_BIND_ADDRESS")
        if host == settings.host and first <= settings.port <= last:
            raise SettingsError(f"METRICS_BIND_ADDRESS: {taken}, which must not include PORT ({settings.port})",
                                param="METRICS_BIND_ADDRESS")


def metrics_address(bind_address: str, index: int) -> tuple[str, int]:
    """Worker ``index``'s metrics listener: METRICS_BIND_ADDRESS's host, its port + ``index``."""
    host, port = split_bind_address(bind_address)
    return host, port + index


def child_environment(environ: Mapping[str, str], overrides: Mapping[str, str], index: int) -> dict[str, str]:
    """Worker ``index``'s environment: the supervisor's, its flags as the settings they stand for (flags win
    over the environment, as in the supervisor), one process each, and the worker's number."""
    return {**environ, **overrides, "WORKERS": "1", WORKER_INDEX: str(index)}


def worker_index(environ: Mapping[str, str]) -> int | None:
    """This process's worker number, or ``None`` when it is not a worker of a supervisor."""
    raw = environ.get(WORKER_INDEX)
    if raw is None or raw == "":
        return None
    if not raw.strip().isdigit():
        raise SettingsError(f"{WORKER_INDEX}: expected a whole number (set by cachegate serve --workers for its "
                            f"workers, not by hand), got {raw!r}", param=WORKER_INDEX)
    return int(raw)


def describe(code: int) -> str:
    """A worker's end in words: ``exited with status 3``, ``was killed by SIGKILL``."""
    if code < 0:
        try:
            return f"was killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"was killed by signal {-code}"
    return f"exited with status {code}"


#: how a worker ends when it was told to stop: by itself, or by the signal it re-raises after its drain
_CLEAN = {0, -signal.SIGTERM, -signal.SIGINT}


def exit_status(codes: Iterable[int]) -> int:
    """The supervisor's exit code once its workers stopped: 0 when each stopped cleanly, else the first other
    worker's (a shell's 128 + N for one killed by signal N)."""
    for code in codes:
        if code not in _CLEAN:
            return code if code > 0 else 128 - code
    return 0


@dataclass(frozen=True)
class Verdict:
    """What to do about a worker that ended: start it again in ``restart_in`` seconds, or (``None``) give up; and
    why, in words."""

    restart_in: float | None
    reason: str


@dataclass
class Restarts:
    """A worker that ended while the supervisor was not stopping is started again after ``delay`` seconds, as
    gunicorn does. One that could not start at all (exit :data:`STARTUP_FAILURE`: its port, the app's start-up;
    or :data:`BAD_SETTING`) would fail the same way each time, so the supervisor gives up; and so it does when a
    worker dies ``limit`` times in a row within ``settle`` seconds of being started (a crash loop)."""

    delay: float = 1.0
    settle: float = 10.0
    limit: int = 5
    early: dict[int, int] = field(default_factory=dict)  # worker → deaths in a row soon after its start

    def after_exit(self, index: int, code: int, lived: float) -> Verdict:
        """What to do about worker ``index`` that ended with ``code`` after ``lived`` seconds; the reason reads
        after the worker's name (``worker 1 (pid 42) <reason>``)."""
        what = describe(code)
        if code in (STARTUP_FAILURE, BAD_SETTING):
            return Verdict(None, f"{what} before it started serving (its error is above)")
        if lived >= self.settle:
            self.early[index] = 0
            return Verdict(self.delay, f"{what} after {lived:.0f}s")
        self.early[index] = deaths = self.early.get(index, 0) + 1
        if deaths >= self.limit:
            return Verdict(None, f"{what}, {deaths} times in a row within {self.settle:g}s of its start")
        return Verdict(self.delay, f"{what} {lived:.1f}s after its start ({deaths} in a row)")
