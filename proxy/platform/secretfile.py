"""A secret kept in a file under ``DATA_DIR``: read if it is there, else made and written once, readable by
the owner only. Used for the admin key cachegate generates when ``ADMIN_API_KEY`` is not set (and fit for
any other per-install secret).

The file is written to a private temporary name first and then linked into place (``os.link`` fails if the
name exists), so two processes starting together on one ``DATA_DIR`` agree on one secret and no reader
ever sees a half-written file. A file that is empty, unreadable or cannot be written stops start-up with a
:class:`~proxy.errors.SettingsError` naming the setting that would replace it.
"""

from __future__ import annotations

import contextlib
import logging
import os
import stat
import uuid
from collections.abc import Callable
from pathlib import Path

from proxy.errors import SettingsError

logger = logging.getLogger("cachegate.secretfile")
MODE = 0o600


def _read(path: Path, setting: str) -> str | None:
    try:
        text = path.read_text(encoding="utf-8").strip()
        mode = stat.S_IMODE(path.stat().st_mode)
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as exc:
        raise SettingsError(f"{setting} is not set and {path} cannot be read ({exc}); fix the file or its "
                            f"directory (DATA_DIR), or set {setting}.", param=setting) from None
    if not text:
        raise SettingsError(f"{setting} is not set and {path} is empty; delete it to have a new one made, or set "
                            f"{setting}.", param=setting)
    if mode & 0o077:
        logger.warning("%s can be read by other users (mode %o); chmod 600 it", path, mode)
    return text


def read_or_create(path: Path, make: Callable[[], str], *, setting: str) -> tuple[str, bool]:
    """The secret in ``path``, or a new one from ``make()`` written there (mode 0600); and whether it was
    made now."""
    found = _read(path, setting)
    if found is not None:
        return found, False
    secret = make()
    # the pid and a random part: two apps of one process (replicas in a test) must not share the name either
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, MODE)
        with os.fdopen(descriptor, "w", encoding="utf-8") as file:
            file.write(secret + "\n")
        os.chmod(temporary, MODE)  # whatever the umask
        try:
            os.link(temporary, path)
        except FileExistsError:  # another process made it first: use theirs
            found = _read(path, setting)
            if found is not None:
                return found, False
            raise
    except OSError as exc:
        raise SettingsError(f"{setting} is not set and {path} cannot be written ({exc}); make the directory "
                            f"writable (DATA_DIR) or set {setting}.", param=setting) from None
    finally:
        with contextlib.suppress(OSError):
            temporary.unlink()
    return secret, True
