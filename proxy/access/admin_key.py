"""The admin key: ``ADMIN_API_KEY``, or one cachegate generates on first start into ``DATA_DIR/admin_api_key``.

Why not trust loopback clients instead, as before: a reverse proxy on the same host that adds no
``X-Forwarded-For`` made every client a loopback one, and DNS rebinding lets a web page reach
``127.0.0.1`` under its own name. A key only the operator can read (the file is mode 0600) has neither
problem. Where it is, never what it is, is logged at start; ``cat DATA_DIR/admin_api_key`` reads it, and the
dashboard asks for it before an admin action.
"""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass
from pathlib import Path

from proxy.platform.secretfile import read_or_create
from proxy.settings import Settings

logger = logging.getLogger("cachegate.access")
FILENAME = "admin_api_key"


@dataclass(frozen=True)
class AdminKey:
    value: str
    source: str  # "ADMIN_API_KEY" or "generated"
    path: Path | None = None  # the file it was read from or written to


def resolve(settings: Settings) -> AdminKey:
    """``ADMIN_API_KEY``, else the key in ``DATA_DIR/admin_api_key`` (written now if there is none)."""
    if settings.admin_api_key is not None:
        return AdminKey(settings.admin_api_key, "ADMIN_API_KEY")
    path = settings.data_path / FILENAME
    value, created = read_or_create(path, lambda: secrets.token_urlsafe(32), setting="ADMIN_API_KEY")
    if created:
        logger.warning("ADMIN_API_KEY is not set: generated an admin key into %s (mode 0600). /admin/* need it as "
                       "'X-API-Key: <key>'; read it with: cat %s", path, path)
    else:
        logger.info("ADMIN_API_KEY is not set: /admin/* need the admin key in %s (cat %s)", path, path)
    return AdminKey(value, "generated", path)
