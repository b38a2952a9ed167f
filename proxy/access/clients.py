"""Who may use the proxied API (``/v1/*``): the allow-list ``CLIENT_API_KEYS`` (and ``CLIENT_API_KEYS_FILE``).

With ``UPSTREAM_API_KEY`` the proxy spends the operator's key on every request, so on a reachable interface it
would be an open relay; settings refuse to start that way (:mod:`proxy.settings`). The list holds SHA-256
hashes of the keys, never the keys: a leaked config or ``/admin/config`` gives nothing to present. A client's
key (``Authorization: Bearer`` or ``api-key``) is hashed and looked up; the lookup is over the hash, so its
timing says nothing about the key.

The file has one hash per line (``<64 hex>`` or ``sha256:<64 hex>``); ``#`` starts a comment. It is read when
the access component starts; a line that is not a hash stops start-up naming the line (not its text: it is
most likely a key pasted by mistake).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from pathlib import Path

from proxy.errors import SettingsError
from proxy.setting_values import key_hash


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


class ClientKeys:
    def __init__(self, hashes: Iterable[str], file: str | None = None) -> None:
        self._hashes = frozenset(key_hash(entry) or entry for entry in hashes)  # as parse_key_hashes gives them
        self.file = file

    @property
    def enabled(self) -> bool:
        """Whether ``/v1`` asks for a listed key at all (else any key, or none, is let through)."""
        return bool(self._hashes) or self.file is not None

    def __len__(self) -> int:
        return len(self._hashes)

    def load(self) -> None:
        """Add the hashes of ``CLIENT_API_KEYS_FILE`` (I/O: called at start)."""
        if self.file is None:
            return
        path = Path(self.file)
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as exc:
            raise SettingsError(f"CLIENT_API_KEYS_FILE: cannot read {path}: {exc}", param="CLIENT_API_KEYS_FILE") \
                from None
        hashes = set()
        for number, line in enumerate(lines, start=1):
            entry = line.split("#", 1)[0].strip()
            if not entry:
                continue
            digest = key_hash(entry)
            if digest is None:
                raise SettingsError(f"CLIENT_API_KEYS_FILE: line {number} of {path} is not a SHA-256 hash (64 hex "
                                    "digits, optionally 'sha256:'); list hashes, never keys: printf %s \"$KEY\" | "
                                    "sha256sum", param="CLIENT_API_KEYS_FILE")
            hashes.add(digest)
        if not hashes and not self._hashes:
            raise SettingsError(f"CLIENT_API_KEYS_FILE: {path} holds no hashes, so no client could be let in.",
                                param="CLIENT_API_KEYS_FILE")
        self._hashes |= hashes

    def verified(self, key: str | None) -> str | None:
        """The hash of ``key`` when it is on the list, else ``None``."""
        if not key:
            return None
        digest = hash_key(key)
        return digest if digest in self._hashes else None
