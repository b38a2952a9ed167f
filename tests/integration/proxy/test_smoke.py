from tests.support.proxy import ProxyServer
from tests.support.servers import SimulatorServer


def test_second_identical_request_is_a_hit(proxy: ProxyServer, sim: SimulatorServer) -> None:
    client = proxy.client()
    messages = [{"role": "user", "content": "hello there"}]
    first = client.chat.completions.with_raw_response.create(model="gpt-4o-mini", messages=messages)
    second = client.chat.completions.with_raw_response.create(model="gpt-4o-mini", messages=messages)
    assert first.headers["x-cache"] == "MISS"
    assert second.headers["x-cache"] == "HIT"
    assert second.headers["x-cache-tier"] == "exact"
    assert first.parse().choices[0].message.content == second.parse().choices[0].message.content
    assert sim.state.chat_calls == 1
