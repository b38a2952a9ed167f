"""Issue 10.11: with UPSTREAM_API_KEY the proxy spends the operator's key, so clients must present one of
CLIENT_API_KEYS (kept as SHA-256 hashes); the rate limit is keyed on a verified key, else the address."""

from __future__ import annotations

import hashlib
import secrets
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from tests.support.servers import SimulatorServer

ALICE, BOB = "sk-client-alice", "sk-client-bob"
BODY = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "who may ask?"}]}


def sha(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def chat(proxy: Any, key: str | None) -> httpx.Response:
    headers = {"authorization": f"Bearer {key}"} if key else {}
    return httpx.post(proxy.base_url + "/chat/completions", json=BODY, headers=headers, timeout=10)


def test_only_allowed_keys_reach_the_upstream(start_proxy: Any, sim: SimulatorServer) -> None:
    proxy = start_proxy(upstream_api_key="sk-server", client_api_keys=(sha(ALICE), f"sha256:{sha(BOB).upper()}"))
    for key in (ALICE, BOB):
        client = proxy.client(api_key=key)
        assert client.chat.completions.create(**BODY).choices[0].message.content
        assert next(m.id for m in client.models.list()) == "sim-model"
    assert sim.state.last_headers["authorization"] == "Bearer sk-server"
    calls = len(sim.state.targets)
    with pytest.raises(openai.AuthenticationError) as caught:
        proxy.client(api_key="sk-guessed").chat.completions.create(**BODY)
    assert caught.value.status_code == 401
    for response in (chat(proxy, None), chat(proxy, "sk-guessed"),
                     httpx.get(proxy.base_url + "/models", headers={"authorization": f"Bearer {ALICE}x"})):
        assert response.status_code == 401
        error = response.json()["error"]
        assert error["code"] == "invalid_api_key" and error["type"] == "authentication_error"
        assert "CLIENT_API_KEYS" in error["message"] and "sk-guessed" not in response.text
        assert response.headers["www-authenticate"].startswith("Bearer")
    assert len(sim.state.targets) == calls  # nothing refused went upstream
    assert httpx.get(proxy.url + "/health").status_code == 200  # only /v1 is guarded


def test_keys_from_a_file_of_hashes(start_proxy: Any, tmp_path: Path) -> None:
    keys = tmp_path / "client-keys.txt"
    keys.write_text(f"# the team's keys\n{sha(ALICE)}  # alice\n\nsha256:{sha(BOB)}\n")
    proxy = start_proxy(upstream_api_key="sk-server", client_api_keys_file=str(keys))
    assert [chat(proxy, key).status_code for key in (ALICE, BOB, "sk-nope")] == [200, 200, 401]


async def test_a_bad_file_stops_start_up_naming_it(tmp_path: Path) -> None:
    from proxy.app import create_app
    from proxy.errors import SettingsError
    from tests.support.proxy import proxy_settings

    keys = tmp_path / "client-keys.txt"
    keys.write_text(f"{sha(ALICE)}\nsk-a-plain-key-by-mistake\n")
    app = create_app(proxy_settings("http://127.0.0.1:9/v1", tmp_path, client_api_keys_file=str(keys)))
    with pytest.raises(SettingsError) as caught:
        async with app.router.lifespan_context(app):
            pass
    assert caught.value.param == "CLIENT_API_KEYS_FILE" and "line 2" in caught.value.message
    assert "sk-a-plain-key-by-mistake" not in caught.value.message


def test_fresh_random_tokens_do_not_get_fresh_budgets(start_proxy: Any) -> None:
    proxy = start_proxy(rate_limit_per_minute=3)  # no allow-list: no key is verified, so the address counts
    answers = [chat(proxy, f"sk-{secrets.token_hex(8)}") for _ in range(4)]
    assert [a.status_code for a in answers] == [200, 200, 200, 429]
    counter = proxy.parts.access.limiter.counter  # type: ignore[union-attr]
    assert len(counter._counts) == 1  # one entry, not one per token


def test_verified_keys_have_their_own_budgets_and_guesses_spend_the_address(start_proxy: Any) -> None:
    proxy = start_proxy(rate_limit_per_minute=2, client_api_keys=(sha(ALICE), sha(BOB)))
    assert [chat(proxy, ALICE).status_code for _ in range(3)] == [200, 200, 429]
    assert chat(proxy, BOB).status_code == 200  # another verified caller, another budget
    guesses = [chat(proxy, f"sk-guess-{i}") for i in range(3)]
    assert [g.status_code for g in guesses] == [401, 401, 429]  # guessing is limited by the address
    assert guesses[0].headers["x-ratelimit-remaining"] == "1"
