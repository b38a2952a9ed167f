"""``partial``, ``stream`` parity and ``latency``: what a shared prefix, a stream and a hit look like.

- partial: one long system prompt A with three different user turns (A+B, A+C, A+D). A prefix cache hits
  on A from the second request; a cache that keeps a prefix only once it was seen twice ("units", as
  DeepSeek's) misses on the second and hits on the third: unit semantics, not "no caching".
- stream: the usage in a streamed answer's final chunk equals the plain answer's for the same cache state.
- latency: time to first token of fresh prompts vs their cached repeats (streamed), medians, as a speed-up.
"""

from __future__ import annotations

from proxy.probe.exchange import CheckResult
from proxy.probe.session import ModelSession, median

TURNS = ("B: Name one colour of the sea in this story.", "C: Which bird waits by the breakwater?",
         "D: What does the keeper wipe every morning?")


async def partial(session: ModelSession) -> CheckResult:
    base = session.prompt(session.cheap_size)
    evidence = []
    for i, turn in enumerate(TURNS):
        if i:
            await session.clock.sleep(session.recipe.settle)
        prompt = session.prompt(0, user=turn, nonce=base.nonce, words=base.words)
        evidence.append(await session.ask(prompt, test="partial", step="A+" + turn[0],
                                          role="repeat" if i else "prime"))
    second, third = evidence[1], evidence[2]
    if "cache_control" in session.recipe.hints and (second.hit or third.hit):
        semantics = "marks"
    elif second.hit:
        semantics = "prefix"
    elif third.hit:
        semantics = "units"
    else:
        semantics = None
    answered = [ex.cached for ex in evidence[1:] if ex.cached is not None]
    figures = {"shared_tokens": max(answered) if answered else None, "second_hit": second.hit,
               "third_hit": third.hit, "unit_semantics": semantics, "cached_tokens": [ex.cached for ex in evidence]}
    return CheckResult("partial", figures, evidence)


async def stream_parity(session: ModelSession) -> CheckResult:
    prompt = session.prompt(session.cheap_size)
    prime = await session.ask(prompt, test="stream", step="prime", role="prime")
    await session.clock.sleep(session.recipe.settle)
    plain = await session.ask(prompt, test="stream", step="plain", role="repeat")
    await session.clock.sleep(session.config.repeat_pause)
    streamed = await session.ask(prompt, test="stream", step="stream", role="repeat", stream=True)
    same = (plain.ok and streamed.ok and streamed.usage.shape != "absent"
            and (plain.usage.prompt_tokens, plain.usage.cached_tokens)
            == (streamed.usage.prompt_tokens, streamed.usage.cached_tokens))
    figures = {"parity": same if plain.ok and streamed.ok else None,
               "stream_usage_reported": streamed.usage.shape != "absent",
               "plain": plain.usage.as_dict(), "stream": streamed.usage.as_dict()}
    return CheckResult("stream", figures, [prime, plain, streamed])


async def latency(session: ModelSession) -> CheckResult:
    evidence, cold, warm = [], [], []
    for i in range(max(1, session.config.latency_samples)):
        prompt = session.prompt(session.recipe.size)
        first = await session.ask(prompt, test="latency", step=f"cold{i}", role="prime", stream=True)
        await session.clock.sleep(session.recipe.settle)
        again = await session.ask(prompt, test="latency", step=f"cached{i}", role="repeat", stream=True)
        evidence += [first, again]
        if first.ok and first.ttft is not None and not first.hit:
            cold.append(first.ttft)
        # where the upstream reports no cache field, every repeat counts: a speed-up then hints at a cache
        if again.ttft is not None and (again.hit or (again.ok and again.cached is None)):
            warm.append(again.ttft)
    cold_median, warm_median = median(cold), median(warm)
    speedup = cold_median / warm_median if cold_median and warm_median else None
    figures = {"ttft_cold": cold, "ttft_cached": warm, "ttft_cold_median": cold_median,
               "ttft_cached_median": warm_median, "speedup": round(speedup, 3) if speedup else None}
    return CheckResult("latency", figures, evidence)
