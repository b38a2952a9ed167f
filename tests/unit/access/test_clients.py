"""proxy.access.clients: the allow-list of /v1, held and compared as SHA-256 hashes (issue 10.11)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from proxy.access.clients import ClientKeys, hash_key
from proxy.errors import SettingsError


def sha(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def test_a_listed_key_is_verified_as_its_hash() -> None:
    keys = ClientKeys([sha("sk-a"), "sha256:" + sha("sk-b").upper()])
    assert keys.enabled and len(keys) == 2
    assert keys.verified("sk-a") == sha("sk-a") == hash_key("sk-a")
    assert keys.verified("sk-b") == sha("sk-b")
    assert keys.verified("sk-c") is None and keys.verified("") is None and keys.verified(None) is None
    assert not ClientKeys([]).enabled


def test_a_file_of_hashes_with_comments(tmp_path: Path) -> None:
    path = tmp_path / "keys"
    path.write_text(f"# team\n{sha('sk-a')}   # alice\n\n  sha256:{sha('sk-b')}\n")
    keys = ClientKeys([sha("sk-c")], str(path))
    assert keys.enabled and keys.verified("sk-a") is None  # read at start, not before
    keys.load()
    assert [keys.verified(k) is not None for k in ("sk-a", "sk-b", "sk-c", "sk-d")] == [True, True, True, False]


@pytest.mark.parametrize(("text", "named"), [
    (f"{sha('sk-a')}\nsk-plain-key\n", "line 2"), ("# nothing\n\n", "holds no hashes"),
])
def test_a_bad_file_stops_start_up(tmp_path: Path, text: str, named: str) -> None:
    path = tmp_path / "keys"
    path.write_text(text)
    with pytest.raises(SettingsError) as caught:
        ClientKeys([], str(path)).load()
    assert caught.value.param == "CLIENT_API_KEYS_FILE" and named in caught.value.message
    assert "sk-plain-key" not in caught.value.message


def test_a_missing_file_stops_start_up(tmp_path: Path) -> None:
    with pytest.raises(SettingsError) as caught:
        ClientKeys([], str(tmp_path / "absent")).load()
    assert caught.value.param == "CLIENT_API_KEYS_FILE"
