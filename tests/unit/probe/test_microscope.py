"""The microscope's curl command: the exact body, the key as a shell variable, every header quoted."""

from __future__ import annotations

import shlex

from proxy.probe.microscope import curl_command

REQUEST = {"method": "POST", "url": "https://api.venice.ai/api/v1/chat/completions",
           "headers": [["content-type", "application/json"], ["authorization", "Bearer <redacted>"],
                       ["x-grok-conv-id", "probe-1"]],
           "body": {"model": "m", "messages": [{"role": "user", "content": "it's \"quoted\" $HOME"}]}}


def test_curl_command_sends_the_same_request() -> None:
    command = curl_command(REQUEST)
    assert "<redacted>" not in command
    assert '-H "authorization: Bearer $PROBE_API_KEY"' in command
    words = shlex.split(command.replace("\\\n", " "))
    assert words[:5] == ["curl", "-sS", "-X", "POST", "https://api.venice.ai/api/v1/chat/completions"]
    assert words[words.index("--data-raw") + 1] == (
        '{"model":"m","messages":[{"role":"user","content":"it\'s \\"quoted\\" $HOME"}]}')
    assert words[words.index("x-grok-conv-id: probe-1") - 1:][:2] == ["-H", "x-grok-conv-id: probe-1"]
