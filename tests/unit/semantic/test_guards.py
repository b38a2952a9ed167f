"""The guards: each refuses the edit it is for, lets paraphrases through, and is symmetric."""

from __future__ import annotations

import pytest

from proxy.semantic import guards

HIGH = 0.99  # a similarity above every bar: only the guards decide


def refused(stored: str, asked: str, similarity: float = HIGH) -> str | None:
    forward = guards.refusal(stored, asked, similarity)
    backward = guards.refusal(asked, stored, similarity)
    assert (forward is None) == (backward is None), "guards must be symmetric"
    return forward


@pytest.mark.parametrize(("stored", "asked", "guard"), [
    ("How many minutes are in 2 days?", "How many minutes are in 3 days?", "numbers"),
    ("What is 15% of 80?", "What is 20% of 80?", "numbers"),
    ("Give me three tips for better sleep.", "Give me five tips for better sleep.", "numbers"),
    ("What is the 2nd law of thermodynamics?", "What is the third law of thermodynamics?", "numbers"),
    ("How much is 250 dollars in euros?", "How much is 2,500 dollars in euros?", "numbers"),
    ("Set an alarm for 6:30 am.", "Set an alarm for 7:30 am.", "numbers"),
    ("Is 5 bigger than 3?", "Is 3 bigger than 5?", "numbers"),
    ("Can dogs eat grapes?", "Can't dogs eat grapes?", "negation"),
    ("What can I bring on a plane?", "What can I not bring on a plane?", "negation"),
    ("How do I make pancakes with eggs?", "How do I make pancakes without eggs?", "negation"),
    ("Is it safe to drink tap water in Canada?", "Is it unsafe to drink tap water in Canada?", "negation"),
    ("Is it legal to record a call?", "Is it illegal to record a call?", "negation"),
    ("What is the capital of France?", "What is the capital of Germany?", "names"),
    ("what is the capital of australia", "What is the capital of Austria?", "names"),
    ("How do I call parse_config from main?", "How do I call load_config from main?", "names"),
    ("Why does myList.append() return None?", "Why does myList.sort() return None?", "names"),
    ('Translate "good morning" into Spanish.', 'Translate "good night" into Spanish.', "names"),
    ("What does `useEffect` do?", "What does `useMemo` do?", "names"),
    ("How do I enable dark mode?", "How do I disable dark mode?", "opposites"),
    ("How do I increase the font size?", "How do I decrease the font size?", "opposites"),
    ("What is the most expensive city?", "What is the cheapest city?", "opposites"),
    ("How do I sign in to my account?", "How do I sign out of my account?", "opposites"),
    ("Convert Celsius to Fahrenheit.", "Convert Fahrenheit to Celsius.", "order"),
    ("Is a whale bigger than a shark?", "Is the shark bigger than the whale?", "order"),
    ("Is a square a rectangle?", "Is a rectangle a square?", "order"),
    ("Does stress cause high blood pressure?", "Does high blood pressure cause stress?", "order"),
    ("Why do people who drink coffee sleep less?", "Why do people who sleep less drink coffee?", "order"),
    ("Should I sell my house before buying a new one?", "Should I buy a new house before selling mine?", "order"),
    ("How do I redirect from HTTP to HTTPS?", "How do I redirect from HTTPS to HTTP?", "order"),
    ("Can I freeze bread after it has been baked?", "Can I bake bread after it has been frozen?", "order"),
    ("How do I keep my laptop battery healthy?", "How do I keep my phone battery healthy?", "substitution"),
])
def test_each_guard_refuses_its_edit(stored: str, asked: str, guard: str) -> None:
    assert refused(stored, asked, 0.9) == guard


@pytest.mark.parametrize(("stored", "asked"), [
    ("What is the capital of France?", "Which city is the capital of France?"),
    ("What's the capital of France?", "France's capital is which city?"),
    ("What is the speed limit on German highways?", "What's the speed limit on highways in Germany?"),
    ("What are the 7 wonders of the world?", "What are the seven wonders of the world?"),
    ("What is 15% of 80?", "What's 15 percent of 80?"),
    ("How much is 10k in euros?", "How much is 10,000 in euros?"),
    ("Why doesn't my code compile?", "Why won't my code compile?"),
    ("What can't I bring on a plane?", "What am I not allowed to bring on a plane?"),
    ("What is the freezing point of water in Fahrenheit?", "In Fahrenheit, what is the freezing point of water?"),
    ("What happened in 1969 on the moon?", "What happened on the moon in 1969?"),
    ("I don't understand recursion, can you explain it?", "Can you explain recursion? I don't understand it."),
    ("How do I reset my password?", "How can my password be reset?"),
    ("What is the difference between affect and effect?", 'What is the difference between "affect" and "effect"?'),
    ("Compare salt and pepper.", "Compare pepper and salt."),
    ("HOW DO I RESET MY ROUTER", "How do I reset my router?"),
    ("How To Reset My Router", "how do i reset my router"),
    ("Which one is better, tea or coffee?", "Which is better, tea or coffee?"),
])
def test_paraphrases_pass(stored: str, asked: str) -> None:
    assert refused(stored, asked, 0.9) is None


def test_a_close_synonym_swap_passes_only_above_the_substitution_bar() -> None:
    stored, asked = "How do I exit vim?", "How can I quit vim?"
    assert refused(stored, asked, guards.SUBSTITUTION_SIMILARITY - 0.01) == "substitution"
    assert refused(stored, asked, guards.SUBSTITUTION_SIMILARITY) is None


def test_features_are_readable() -> None:
    described = guards.describe("Did Argentina beat France 3-3 in 2022? It wasn't close.")
    assert described["numbers"] == ["3", "3", "2022"]
    assert described["negations"] == 1
    assert {"argentina", "france"} <= set(described["names"])  # type: ignore[call-overload]


def test_refusals_lists_every_guard_that_fires() -> None:
    assert guards.refusals("Can 2 dogs eat grapes?", "Can't 3 dogs eat grapes?", HIGH) == ["numbers", "negation"]
    assert guards.refusal("Can 2 dogs eat grapes?", "Can't 3 dogs eat grapes?", HIGH, ["negation"]) == "negation"


@pytest.mark.parametrize(("stored", "asked", "guard"), [
    ("What were the biggest tech trends last year?", "What will be the biggest tech trends next year?", "opposites"),
    ("Plan a trip to Japan.", "Plan a trip to Japan on a tight budget.", "substitution"),
    ("Does the tenant or the landlord pay for repairs when the tenant breaks something?",
     "Does the tenant or the landlord pay for repairs when the landlord breaks something?", "order"),
])
def test_time_frames_added_constraints_and_reassigned_roles(stored: str, asked: str, guard: str) -> None:
    assert refused(stored, asked, 0.92) == guard


def test_one_as_a_pronoun_is_not_a_number() -> None:
    assert guards.features("What makes a good thesis and how do I write one?").numbers == ()
    assert guards.features("Give me one tip.").numbers == ("1",)
