"""The directory the exported ONNX graphs are cached in: atomic writes, which files are ours, which are stale.

Graphs are named ``<model>-<key>[-<suffix>].onnx`` (see :func:`embedding_service.onnx_backend.cache_path`),
the key a hash of the model's files and the library versions. One directory may be shared by several
installs (venvs with other library versions, so other keys) running at the same time, so nothing here
removes a file another process may be about to load, and nothing that is not named like our graphs.
"""

from __future__ import annotations

import logging
import os
import re
import stat
import tempfile
import time
from pathlib import Path

logger = logging.getLogger(__name__)

#: Temporary files older than this were left by an export that died; newer ones may be another process's.
STALE_TMP_SECONDS = 3600.0
#: A graph under another key that no process has loaded or written for this long is removed at the next
#: export (see :func:`prune_stale_graphs` for why an age and not a count).
UNUSED_GRAPH_SECONDS = 7 * 86400.0
# model_key's length: 20 hex digits.
_KEY = re.compile(r"[0-9a-f]{20}")


def write_atomically(path: Path, data: bytes) -> None:
    """``data`` at ``path`` all at once: written under a temporary name in the same directory, then renamed."""
    path.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale_temporaries(path.parent)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(temporary, 0o644)  # mkstemp makes it private; a shared cache directory should stay usable
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def _remove_stale_temporaries(directory: Path) -> None:
    cutoff = time.time() - STALE_TMP_SECONDS
    for leftover in directory.glob(".*.onnx.*.tmp"):
        try:
            if leftover.stat().st_mtime < cutoff:
                leftover.unlink()
        except OSError:
            pass


def graph_key(model: str, name: str) -> str | None:
    """The key in the file name ``name`` if it names a cached graph of ``model``, else None."""
    match = re.fullmatch(re.escape(model) + rf"-({_KEY.pattern})((?:-[a-z0-9]+)*)\.onnx", name)
    if match is None:
        return None
    # A suffix part that is itself a key: the file belongs to a model named "<model>-<that key>".
    if any(_KEY.fullmatch(part) for part in match.group(2).split("-")):
        return None
    return match.group(1)


def mark_used(path: Path) -> None:
    """Note that the graph at ``path`` was just loaded, so that :func:`prune_stale_graphs` of another
    install keeps it: its access time is set to now (explicitly, as noatime mounts never update it),
    its modification time stays the time it was written. Best effort: a file owned by another user
    may refuse it, and then only the kernel's own access time (relatime: at most a day old) speaks."""
    try:
        with path.open("rb") as handle:  # the file loaded, even if an export replaces the name meanwhile
            os.utime(handle.fileno(), ns=(time.time_ns(), os.fstat(handle.fileno()).st_mtime_ns))
    except OSError as exc:
        logger.debug("cannot mark the ONNX graph %s as used (%s)", path, exc)


def prune_stale_graphs(written: Path, model: str) -> list[Path]:
    """Remove the graphs of ``model`` beside ``written`` (the graph just exported) that are cached under
    another key and were neither loaded nor written for :data:`UNUSED_GRAPH_SECONDS`; returns them.

    An age, not "keep the N newest": two installs alternating on one directory would then, once more
    than N keys are in use, remove each other's graph at every start and export it again (~2 s) for
    ever. Every process marks the graph it loads (:func:`mark_used`), so a graph some install started
    with in the last week stays; one that a process is about to load was marked when that install
    last started. If an install comes back after longer, its graph is exported again (~2 s), and a
    process that already opened a removed file keeps reading it. Graphs of the same key (the other
    precision of this very install) are kept, and so is every name :func:`graph_key` does not claim.
    Failures to remove are ignored: another process may have removed the file first.
    """
    keep = graph_key(model, written.name)
    if keep is None:  # not a name we understand: delete nothing rather than guess
        return []
    cutoff = time.time() - UNUSED_GRAPH_SECONDS
    removed: list[Path] = []
    try:
        entries = sorted(written.parent.iterdir())
    except OSError as exc:
        logger.debug("cannot list the ONNX cache %s (%s)", written.parent, exc)
        return removed
    for path in entries:
        if graph_key(model, path.name) in (None, keep):
            continue
        try:
            info = path.lstat()
            if not stat.S_ISREG(info.st_mode) or max(info.st_atime, info.st_mtime) >= cutoff:
                continue
            path.unlink()
        except OSError as exc:
            logger.debug("cannot remove the stale ONNX graph %s (%s)", path, exc)
            continue
        removed.append(path)
    if removed:
        logger.info("removed %d ONNX graph(s) of %s unused for %d days: %s", len(removed), model,
                    UNUSED_GRAPH_SECONDS // 86400, ", ".join(path.name for path in removed))
    return removed
