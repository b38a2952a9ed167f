"""Prompt templates for the generated pairs, written for this project.

A template is one question with slots. ``forms`` are wordings of the same question (any two of them make a
paraphrase pair, or a ``reorder_same`` pair when they use the same words in another order, e.g. active and
passive of the same fact); ``loose`` are looser, chattier wordings (``loose_duplicate`` pairs). ``swap``
names two slots whose exchange changes the answer (``order_roles``: who does what to whom, from/to, cause and
effect) or, when ``symmetric``, does not (``reorder_same``: ``X vs Y`` is ``Y vs X``). ``alts`` are other
questions over the same slots, each labelled with the family of edit that turns the base question into it
(tense/aspect, pronoun, and/or, negation, opposite, modifier, order/roles). ``narrow`` are phrases that
narrow the question where a form has ``{+}`` (``modifier`` pairs; both sides may also carry the same one,
which is a paraphrase pair).

Every template is kept whole in one split (``bench.verifier.generate``), so the test split measures wordings
the model never saw in training.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Template:
    id: str
    slots: dict[str, str]
    forms: tuple[str, ...]
    loose: tuple[str, ...] = ()
    swap: tuple[str, str] | None = None
    symmetric: bool = False
    alts: tuple[tuple[str, tuple[str, ...]], ...] = ()
    narrow: tuple[str, ...] = ()
    tags: tuple[str, ...] = field(default=())


def t(id: str, slots: str, forms: list[str], *, loose: list[str] | None = None, swap: str | None = None,
      symmetric: bool = False, alts: list[tuple[str, list[str]]] | None = None,
      narrow: list[str] | None = None) -> Template:
    """Shorthand: ``slots`` is ``"x:food y:food"``, ``swap`` is ``"x y"``."""
    slot_map = dict(item.split(":") for item in slots.split())
    pair = tuple(swap.split()) if swap else None
    return Template(id=id, slots=slot_map, forms=tuple(forms), loose=tuple(loose or ()),
                    swap=pair if pair is None else (pair[0], pair[1]), symmetric=symmetric,
                    alts=tuple((family, tuple(f)) for family, f in (alts or [])), narrow=tuple(narrow or ()))


TEMPLATES: tuple[Template, ...] = (
    # -- cause and effect, asymmetric relations ---------------------------------------------------------
    t("cause", "x:condition y:condition", [
        "Does {x} cause {y}{+}?", "Can {x} lead to {y}{+}?", "Is {y} caused by {x}{+}?",
        "Is {x} a cause of {y}{+}?", "Could {x} be causing {y}{+}?"],
        loose=["{x} causing {y}{+}?", "does {x} actually cause {y}{+} or is that a myth"],
        swap="x y", narrow=[" in children", " in older adults", " in women", " after surgery", " during pregnancy"],
        alts=[("negation", ["Does {x} not cause {y}{+}?", "Why doesn't {x} cause {y}{+}?"]),
              ("tense_aspect", ["Did {x} cause my {y}{+}?", "Will {x} cause {y}{+} later?"]),
              ("and_or", ["Do {x} and {y} cause each other{+}?"])]),
    t("convert_units", "n:num u:len_unit v:len_unit", [
        "Convert {n} {u} to {v}.", "How many {v} is {n} {u}?", "What is {n} {u} in {v}?",
        "Can you convert {n} {u} into {v}?", "{n} {u} equals how many {v}?"],
        loose=["{n} {u} to {v}", "{n} {u} -> {v} pls", "quick: {n} {u} in {v}?"], swap="u v"),
    t("convert_mass", "n:num u:mass_unit v:mass_unit", [
        "Convert {n} {u} to {v}.", "How many {v} are in {n} {u}?", "What is {n} {u} in {v}?",
        "Please turn {n} {u} into {v}."], loose=["{n} {u} in {v}", "{n} {u} to {v}?"], swap="u v"),
    t("convert_temp", "n:num u:temp_unit v:temp_unit", [
        "Convert {n} degrees {u} to {v}.", "What is {n} degrees {u} in {v}?", "How much is {n} {u} in {v}?",
        "Change {n} degrees {u} into {v}."], loose=["{n} {u} to {v}", "{n} deg {u} in {v}?"], swap="u v"),
    t("convert_currency", "n:num u:currency v:currency", [
        "How much is {n} {u} in {v}?", "Convert {n} {u} to {v}.", "What are {n} {u} worth in {v}?",
        "If I exchange {n} {u}, how many {v} do I get?"], loose=["{n} {u} to {v}", "{n} {u} in {v} today?"],
        swap="u v"),
    t("units_in", "u:time_unit v:time_unit", [
        "How many {u} are in one of the {v}?", "How many {u} does a single unit of {v} contain?"],
        swap="u v"),
    t("flight", "x:city y:city", [
        "How long is the flight from {x} to {y}{+}?", "How many hours does it take to fly from {x} to {y}{+}?",
        "What's the flying time from {x} to {y}{+}?", "If I fly from {x} to {y}{+}, how long will it take?"],
        loose=["{x} to {y} flight time{+}?", "flying {x} -> {y}{+}, how long"], swap="x y",
        narrow=[" nonstop", " with a layover", " in economy", " on a budget airline"],
        alts=[("and_or", ["How long is the flight from {x} to {y} and back{+}?"])]),
    t("time_diff", "x:city y:city n:num_small", [
        "If it is {n} pm in {x}, what time is it in {y}?", "What time is it in {y} when it's {n} pm in {x}?",
        "When it is {n} pm in {x}, what's the time in {y}?"],
        loose=["{n}pm {x} = what time in {y}?"], swap="x y"),
    t("bigger", "x:country y:country", [
        "Is {x} bigger than {y}?", "Is {x} larger than {y}?", "Is {y} smaller than {x}?",
        "Does {x} cover more area than {y}?"], loose=["{x} bigger than {y}??", "is {x} larger then {y}"],
        swap="x y", alts=[("opposite", ["Is {x} smaller than {y}?", "Is {y} bigger than {x} in area or not?"])]),
    t("richer", "x:country y:country", [
        "Why is {x} richer than {y}{+}?", "What makes {x} wealthier than {y}{+}?",
        "Why is {y} poorer than {x}{+}?"], swap="x y", narrow=[" today", " per person", " historically"],
        alts=[("tense_aspect", ["Why was {x} richer than {y}{+}?", "Will {x} become richer than {y}{+}?",
                                "Is {x} becoming richer than {y}{+}?"])]),
    t("beat", "x:team y:team", [
        "When did {x} last beat {y}?", "When was the last time {x} beat {y}?",
        "When was {y} last beaten by {x}?", "What was the most recent win of {x} over {y}?"],
        loose=["last time {x} won against {y}?"], swap="x y",
        alts=[("tense_aspect", ["Will {x} beat {y} next season?", "Can {x} beat {y} this year?"])]),
    t("war", "x:country y:country", [
        "Why did {x} invade {y}?", "What were the reasons for {x} invading {y}?",
        "Why was {y} invaded by {x}?"], swap="x y",
        alts=[("tense_aspect", ["Will {x} invade {y}?", "Is {x} going to invade {y}?"])]),
    t("famous_influence", "x:famous y:famous", [
        "How did {x} influence {y}?", "In what ways was {y} influenced by {x}?",
        "What influence did {x} have on {y}?"], loose=["{x} influence on {y}?"], swap="x y",
        alts=[("and_or", ["How did {x} and {y} influence each other?"])]),
    t("teach", "x:hlang y:hlang", [
        "What's the best way for a native {x} speaker to learn {y}{+}?",
        "How should someone who speaks {x} learn {y}{+}?",
        "I speak {x}. How do I learn {y}{+}?"], loose=["native {x} speaker learning {y}{+}, tips?"], swap="x y",
        narrow=[" fast", " for free", " as an adult", " for business"],
        alts=[("and_or", ["What's the best way to learn {x} and {y} at the same time{+}?",
                          "Should I learn {x} or {y}{+}?"])]),
    t("translate", "x:hlang y:hlang", [
        "Translate this from {x} to {y}: 'Where is the train station?'",
        "Please translate 'Where is the train station?' from {x} into {y}.",
        "How do you say 'Where is the train station?' in {y} if the original is in {x}?"],
        loose=["{x} -> {y}: Where is the train station?"], swap="x y"),
    t("port_code", "x:plang y:plang c:coding_task", [
        "Rewrite my {x} code that does this in {y}: {c}.", "Port a {x} function that can {c} to {y}.",
        "How do I translate {x} code to {c} into {y}?"], loose=["{x} -> {y}, code to {c}"], swap="x y"),
    t("roles_pay", "x:role y:role", [
        "Does the {x} have to pay the {y} if the contract is cancelled?",
        "If the contract is cancelled, must the {x} pay the {y}?",
        "Is the {x} required to pay the {y} when the contract gets cancelled?"],
        loose=["contract cancelled - does {x} owe the {y} money?"], swap="x y",
        alts=[("pronoun", ["Do I have to pay the {y} if the contract is cancelled?",
                           "Does the {y} have to pay me if the contract is cancelled?"])]),
    t("roles_sue", "x:role y:role", [
        "Can a {x} sue a {y}{+}?", "Is it possible for a {x} to sue a {y}{+}?",
        "Can a {y} be sued by a {x}{+}?", "Is a {x} allowed to take a {y} to court{+}?"],
        loose=["{x} suing {y}{+} - possible?"], swap="x y",
        narrow=[" for emotional distress", " in small claims court", " without a lawyer", " after a year"],
        alts=[("negation", ["Why can't a {x} sue a {y}{+}?"]),
              ("tense_aspect", ["Has a {x} ever successfully sued a {y}{+}?"])]),
    t("roles_trust", "x:role y:role", [
        "How can a {x} build trust with a {y}?", "What can a {x} do to earn the trust of a {y}?",
        "How does a {x} gain a {y}'s trust?"], swap="x y",
        alts=[("negation", ["Why doesn't a {x} trust a {y}?"])]),
    t("roles_email", "x:role y:role", [
        "Write an email from a {x} to a {y} about a late payment.",
        "Draft a message that a {x} sends to a {y} regarding a late payment.",
        "Compose an email to a {y}, written by a {x}, about a late payment."],
        loose=["email {x} -> {y}, late payment"], swap="x y",
        alts=[("tense_aspect", ["Write an email from a {x} to a {y} about a payment that will be late."])]),
    t("hire", "x:company y:company", [
        "Why did {x} buy a stake in {y}?", "What was the reason {x} bought a stake in {y}?",
        "Why did {x} acquire shares of {y}?"], swap="x y",
        alts=[("tense_aspect", ["Will {x} buy a stake in {y}?", "Is {x} buying a stake in {y}?"]),
              ("opposite", ["Why did {x} sell its stake in {y}?"])]),
    t("predator", "x:wild y:wild", [
        "Who would win in a fight, {x} or {y}?", "In a fight between {x} and {y}, which would win?",
        "Which wins a fight: {y} or {x}?"], loose=["{x} vs {y} fight who wins"], swap="x y", symmetric=True),
    t("eat", "x:wild y:wild", [
        "Can {x} eat {y}?", "Is {x} able to eat {y}?", "Would {x} eat {y}?"], swap="x y",
        alts=[("tense_aspect", ["Has {x} ever eaten {y}?"])]),
    t("if_then", "a:sport b:sport", [
        "If I'm good at {a}, will I be good at {b}{+}?", "Does being good at {a} mean I'll be good at {b}{+}?",
        "Will my skill at {a} make me good at {b}{+}?"], loose=["good at {a} -> good at {b}{+}?"], swap="a b",
        narrow=[" as a kid", " after 40", " without training"],
        alts=[("pronoun", ["If my son is good at {a}, will he be good at {b}{+}?",
                           "If you're good at {a}, will you be good at {b}{+}?"])]),
    t("switch_from", "x:plang y:plang", [
        "How hard is it to switch from {x} to {y}{+}?", "Is moving from {x} to {y} difficult{+}?",
        "How difficult is switching from {x} to {y}{+}?"], loose=["{x} dev moving to {y}{+}, hard?"],
        swap="x y", narrow=[" for web development", " for data science", " for a beginner", " for game development"],
        alts=[("and_or", ["How hard is it to learn {x} and {y}{+}?"])]),
    t("before_after", "a:food b:food", [
        "Should I eat {a} before {b}{+}?", "Is it better to eat {a} first and then {b}{+}?"], swap="a b",
        narrow=[" at dinner", " when dieting", " after a workout"],
        alts=[("opposite", ["Should I eat {a} after {b}{+}?"]),
              ("and_or", ["Should I eat {a} or {b}{+}?", "Can I eat {a} and {b} together{+}?"])]),
    t("drug_with", "x:drug y:drug", [
        "Can I take {x} with {y}{+}?", "Is it safe to take {x} and {y} together{+}?",
        "Is it OK to combine {x} and {y}{+}?", "Can {x} be taken together with {y}{+}?"],
        loose=["{x} + {y}{+} ok?", "taking {x} w/ {y}{+} safe?"], swap="x y", symmetric=True,
        narrow=[" while pregnant", " on an empty stomach", " for a child", " every day"],
        alts=[("and_or", ["Should I take {x} or {y}{+}?", "Which is better, {x} or {y}{+}?"]),
              ("tense_aspect", ["I took {x} yesterday; can I take {y} today{+}?"])]),
    t("vs_compare", "x:plang y:plang", [
        "What's the difference between {x} and {y}{+}?", "How do {x} and {y} differ{+}?",
        "Compare {x} and {y}{+}.", "{x} vs {y}: what are the differences{+}?"],
        loose=["{x} or {y} whats the diff{+}", "diff between {x} & {y}{+}?"], swap="x y", symmetric=True,
        narrow=[" for beginners", " for backend development", " for performance", " for machine learning"],
        alts=[("other_edit", ["Why is {x} faster than {y}{+}?", "Should I learn {x} before {y}{+}?"])]),
    t("healthier", "x:food y:food", [
        "Which is healthier, {x} or {y}{+}?", "Is {x} or {y} healthier{+}?", "What's healthier: {y} or {x}{+}?",
        "Between {x} and {y}, which one is better for your health{+}?"],
        loose=["{x} vs {y}{+} healthier?", "healthier {x} or {y}{+}"], swap="x y", symmetric=True,
        narrow=[" for weight loss", " for diabetics", " for kids", " for breakfast"],
        alts=[("other_edit", ["Why is {x} healthier than {y}{+}?"]),
              ("and_or", ["Are {x} and {y} healthy together{+}?"])]),
    t("pet_together", "x:animal y:animal", [
        "Can {x} and {y} live together{+}?", "Is it possible to keep {x} and {y} in the same house{+}?",
        "Do {y} and {x} get along{+}?"], loose=["{x} & {y} living together{+} - ok?"], swap="x y",
        symmetric=True, narrow=[" in a small apartment", " as kittens and puppies", " without supervision"],
        alts=[("other_edit", ["Are {x} afraid of {y}{+}?", "Do {x} attack {y}{+}?"]),
              ("and_or", ["Should I get {x} or {y}{+}?"])]),
    # -- who does what, reflexive and pronoun edits -----------------------------------------------------
    t("pronoun_likes", "x:person", [
        "How can I tell if {x} likes me?", "What are the signs that {x} likes me?",
        "How do I know whether {x} is into me?"], loose=["does {x} like me? how can i tell"],
        alts=[("order_roles", ["How can I tell if I like {x}?", "How do I know whether I'm into {x}?"]),
              ("pronoun", ["How can {x} tell if I like them?", "How can I tell if {x} likes you?"]),
              ("tense_aspect", ["How can I tell if {x} used to like me?",
                                "How can I tell if {x} is starting to like me?"])]),
    t("pronoun_boss", "r:profession", [
        "What should I do if my boss yells at me{+}?", "How do I handle my boss yelling at me{+}?",
        "My boss yells at me{+}. What should I do?"], loose=["boss yelling at me{+} what do i do"],
        narrow=[" in front of clients", " every day", " over email"],
        alts=[("order_roles", ["What should I do if I yell at my boss{+}?",
                               "I yelled at my boss{+}. What should I do?"]),
              ("pronoun", ["What should I do if my boss yells at her{+}?",
                           "What should my boss do if I yell at him{+}?"]),
              ("tense_aspect", ["What should I do if my boss starts yelling at me{+}?"])]),
    t("pronoun_partner", "x:person", [
        "How do I know if my partner {x} loves me?", "How can I tell whether {x}, my partner, loves me?",
        "What are signs that my partner {x} loves me?"],
        alts=[("order_roles", ["How do I know if I love my partner {x}?"]),
              ("tense_aspect", ["How do I know if my partner {x} still loves me?",
                                "How do I know if my partner {x} ever loved me?"]),
              ("pronoun", ["How does my partner {x} know if I love them?"])]),
    t("pronoun_help", "s:subject", [
        "How can I help my son with his {s} homework?", "What's the best way to help my son with his {s} homework?",
        "Tips for helping my son do his {s} homework?"], loose=["helping my son w/ his {s} homework"],
        alts=[("pronoun", ["How can I help my daughter with her {s} homework?",
                           "How can my son help me with my {s} homework?",
                           "How can I help my son with my {s} homework?"]),
              ("and_or", ["How can I help my son and daughter with their {s} homework?"])]),
    t("pronoun_gift", "x:person", [
        "What should I get my sister for her birthday? She loves {x}'s music.",
        "My sister loves {x}'s music. What birthday gift should I get her?"],
        alts=[("pronoun", ["What should I get my brother for his birthday? He loves {x}'s music.",
                           "What should my sister get me for my birthday? I love {x}'s music."])]),
    t("pronoun_you", "c:concept", [
        "What do you know about {c}?", "Tell me what you know about {c}.", "How much do you know about {c}?"],
        loose=["what do u know about {c}"],
        alts=[("pronoun", ["What do I need to know about {c}?", "What does everyone know about {c}?"]),
              ("tense_aspect", ["What did people know about {c} 100 years ago?"])]),
    t("pronoun_apology", "x:person", [
        "How do I apologize to {x} after I forgot her birthday?", "I forgot {x}'s birthday; how do I say sorry to her?",
        "What's a good way to apologize to {x} for forgetting her birthday?"],
        alts=[("pronoun", ["How do I apologize to {x} after she forgot my birthday?",
                           "How should {x} apologize to me after she forgot my birthday?",
                           "How do I apologize to {x} after I forgot his birthday?"]),
              ("order_roles", ["How should {x} apologize to me for forgetting my birthday?"])]),
    t("pronoun_we_they", "x:country", [
        "Why do they drive on the left in {x}?", "Why do people in {x} drive on the left?",
        "What's the reason they drive on the left side in {x}?"],
        alts=[("opposite", ["Why do they drive on the right in {x}?"]),
              ("tense_aspect", ["Why did they use to drive on the left in {x}?",
                                "Will they keep driving on the left in {x}?"])]),
    t("reflexive", "x:person", [
        "Why does {x} keep comparing herself to me?", "Why is {x} always comparing herself with me?"],
        alts=[("order_roles", ["Why do I keep comparing myself to {x}?"]),
              ("pronoun", ["Why does {x} keep comparing me to herself?",
                           "Why does {x} keep comparing himself to me?"])]),
    # -- tense and aspect ---------------------------------------------------------------------------------
    t("is_planet", "x:country", [
        "Is {x} a democracy{+}?", "Does {x} have a democratic government{+}?", "Is {x} democratic{+}?"],
        loose=["{x} democracy{+}?"], narrow=[" in practice", " according to most indexes"],
        alts=[("tense_aspect", ["Was {x} a democracy{+}?", "Is {x} becoming a democracy{+}?",
                                "Will {x} be a democracy{+}?", "Did {x} use to be a democracy{+}?",
                                "Has {x} always been a democracy{+}?"]),
              ("negation", ["Why is {x} not a democracy{+}?"])]),
    t("population", "x:city", [
        "What is the population of {x}{+}?", "How many people live in {x}{+}?", "What's {x}'s population{+}?",
        "How big is the population of {x}{+}?"], loose=["{x} population{+}", "how many ppl in {x}{+}"],
        narrow=[" metro area", " city proper", " including suburbs"],
        alts=[("tense_aspect", ["What was the population of {x} in the past{+}?",
                                "What will the population of {x} be{+}?",
                                "How fast is the population of {x} growing{+}?",
                                "How many people used to live in {x}{+}?"])]),
    t("company_money", "x:company", [
        "How does {x} make money{+}?", "What is {x}'s business model{+}?", "Where does {x}'s revenue come from{+}?",
        "How does {x} earn its money{+}?"], loose=["how {x} makes $${+}", "{x} revenue sources{+}?"],
        narrow=[" in Europe", " from advertising", " outside the US"],
        alts=[("tense_aspect", ["How did {x} make money at first{+}?", "How will {x} make money in the future{+}?",
                                "How is {x} starting to make money{+}?"]),
              ("negation", ["Why doesn't {x} make money{+}?"]),
              ("opposite", ["How does {x} lose money{+}?"])]),
    t("job_prospects", "p:profession x:country", [
        "Is {p} a good career in {x}{+}?", "Is being a {p} a good job in {x}{+}?",
        "In {x}, is working as a {p} a good career{+}?", "Should I become a {p} in {x}{+}?"],
        loose=["{p} career in {x}{+} worth it?", "being a {p} in {x}{+} - good idea?"],
        narrow=[" for women", " without a degree", " after 30", " for immigrants"],
        alts=[("tense_aspect", ["Was {p} a good career in {x}{+}?", "Will {p} still be a good career in {x}{+}?",
                                "Is {p} becoming a better career in {x}{+}?"]),
              ("negation", ["Why is {p} not a good career in {x}{+}?"]),
              ("and_or", ["Is {p} a good career in {x} and abroad{+}?"])]),
    t("still_open", "x:software", [
        "Is {x} free to use{+}?", "Can I use {x} for free{+}?", "Does {x} cost anything{+}?"],
        loose=["{x} free{+}?"], narrow=[" for students", " for commercial use", " on Mac"],
        alts=[("tense_aspect", ["Was {x} free to use{+}?", "Will {x} stay free to use{+}?",
                                "Is {x} becoming free to use{+}?"]),
              ("negation", ["Why is {x} not free to use{+}?"])]),
    t("learning_since", "i:instrument n:num_small", [
        "I have been learning {i} for {n} months. Is that enough to join a band?",
        "After {n} months of learning {i}, am I ready to join a band?"],
        alts=[("tense_aspect", ["I will learn {i} for {n} months. Will that be enough to join a band?",
                                "I learned {i} for {n} months years ago. Is that enough to join a band?"]),
              ("pronoun", ["My friend has been learning {i} for {n} months. Is that enough for him to join a band?"])]),
    t("best_when", "x:country s:season", [
        "Is {s} a good time to visit {x}{+}?", "Should I visit {x} in {s}{+}?", "Is it worth visiting {x} in {s}{+}?"],
        loose=["{x} in {s}{+} - good idea?"], narrow=[" with kids", " on a budget", " for hiking", " for a honeymoon"],
        alts=[("tense_aspect", ["Was {s} a good time to visit {x} in the past{+}?"]),
              ("negation", ["Why is {s} not a good time to visit {x}{+}?"]),
              ("and_or", ["Should I visit {x} in {s} and again later{+}?"])]),
    # -- and / or, narrowing modifiers ------------------------------------------------------------------
    t("border", "x:country y:country", [
        "Which countries border both {x} and {y}?", "What countries share a border with {x} and with {y}?",
        "List the countries that border {x} as well as {y}."],
        swap="x y", symmetric=True,
        alts=[("and_or", ["Which countries border {x} or {y}?", "Which countries border either {x} or {y}?"])]),
    t("recipe_with", "x:food y:food", [
        "Give me a recipe with {x} and {y}{+}.", "What can I cook with {x} and {y}{+}?",
        "Suggest a dish that uses {x} and {y}{+}.", "What's a good recipe that has {x} and {y}{+}?"],
        loose=["recipe: {x} + {y}{+}", "got {x} and {y}, what do i make{+}"], swap="x y", symmetric=True,
        narrow=[" for two people", " that is vegan", " in under 30 minutes", " for a slow cooker",
                " without an oven"],
        alts=[("and_or", ["Give me a recipe with {x} or {y}{+}.", "What can I cook with {x} but not {y}{+}?"]),
              ("negation", ["Give me a recipe without {x} and {y}{+}."])]),
    t("learn_both", "x:plang y:plang", [
        "Should I learn {x} and {y} at the same time{+}?", "Is it a good idea to learn {x} and {y} together{+}?",
        "Can I study {x} and {y} simultaneously{+}?"], swap="x y", symmetric=True,
        narrow=[" as a beginner", " for a job", " in college"],
        alts=[("and_or", ["Should I learn {x} or {y}{+}?", "Should I learn {x} or {y} first{+}?"]),
              ("other_edit", ["Should I learn {x} before {y}{+}?"])]),
    t("visit_or", "x:city y:city", [
        "Should I visit {x} or {y}{+}?", "Which is better to visit, {x} or {y}{+}?",
        "{x} or {y}: which should I visit{+}?"], loose=["{x} vs {y} for a trip{+}?"], swap="x y", symmetric=True,
        narrow=[" in winter", " for a weekend", " with kids", " for food", " on a budget"],
        alts=[("and_or", ["Can I visit {x} and {y} on one trip{+}?", "How do I visit both {x} and {y}{+}?"])]),
    t("best_gadget", "g:gadget", [
        "What is the best {g}{+}?", "Which {g} is the best{+}?", "Can you recommend the best {g}{+}?",
        "What {g} should I buy{+}?"], loose=["best {g}{+}?", "recommend a {g}{+}, need one"],
        narrow=[" for students", " under $300", " for gaming", " for photography", " for seniors", " for travel",
                " for working from home"],
        alts=[("opposite", ["What is the worst {g}{+}?"]),
              ("tense_aspect", ["What was the best {g} ten years ago{+}?",
                                "What will be the best {g} next year{+}?"])]),
    t("how_cook", "f:food", [
        "How do I cook {f}{+}?", "What's the best way to cook {f}{+}?", "How should I prepare {f}{+}?",
        "Can you tell me how to cook {f}{+}?"], loose=["cooking {f}{+}??", "how to make {f}{+}"],
        narrow=[" in a microwave", " in an air fryer", " without oil", " for a baby", " for meal prep",
                " on a camping stove"],
        alts=[("negation", ["How do I cook {f} without it getting mushy{+}?"]),
              ("tense_aspect", ["How did people cook {f} centuries ago{+}?"])]),
    t("grow_plant", "p:plant", [
        "How do I grow {p}{+}?", "What's the best way to grow {p}{+}?", "Any tips for growing {p}{+}?",
        "How can I successfully grow {p}{+}?"], loose=["growing {p}{+} tips", "how 2 grow {p}{+}"],
        narrow=[" indoors", " in pots", " from seed", " in a cold climate", " on a balcony", " hydroponically"],
        alts=[("negation", ["Why won't my {p} grow{+}?"]),
              ("tense_aspect", ["How did my grandmother grow {p}{+}?", "My {p} are growing{+}; what now?"])]),
    t("write_poem", "topic:topic", [
        "Write a poem about {topic}{+}.", "Can you write me a poem about {topic}{+}?",
        "Compose a poem on the subject of {topic}{+}.", "I'd like a poem about {topic}{+}."],
        loose=["poem about {topic}{+} pls", "write smth poetic about {topic}{+}"],
        narrow=[" that rhymes", " in four lines", " for a child", " in the style of a haiku", " with a sad ending"],
        alts=[("negation", ["Write a poem that is not about {topic}{+}."])]),
    t("explain_to", "c:concept a:audience", [
        "Explain {c} to {a}{+}.", "Can you explain {c} to {a}{+}?", "How would you explain {c} to {a}{+}?",
        "Describe {c} in a way {a} would understand{+}."],
        loose=["{c} explained for {a}{+}", "explain {c} like I'm {a}{+}"],
        narrow=[" using an analogy", " in two sentences", " with examples"],
        alts=[("negation", ["Explain what {c} is not, to {a}{+}."]),
              ("and_or", ["Explain {c} and its history to {a}{+}."])]),
    t("what_is", "c:concept", [
        "What is {c}{+}?", "Can you explain what {c} is{+}?", "What does {c} mean{+}?", "Define {c}{+}."],
        loose=["{c}{+}??", "so what is {c} exactly{+}", "eli5 {c}{+}"],
        narrow=[" in economics", " in simple terms", " in biology", " in computer science"],
        alts=[("tense_aspect", ["What was {c} originally{+}?", "What will {c} become{+}?",
                                "How is {c} changing{+}?"]),
              ("negation", ["What is not {c}{+}?"])]),
    t("code_task", "l:plang c:coding_task", [
        "How do I {c} in {l}{+}?", "In {l}, how can I {c}{+}?", "What's the {l} code to {c}{+}?",
        "Write {l} code to {c}{+}.", "Show me how to {c} using {l}{+}."],
        loose=["{l} {c}{+}", "{c} {l}{+}?? help", "how to {c} ({l}){+}"],
        narrow=[" without a library", " in one line", " efficiently", " recursively", " in place"],
        alts=[("negation", ["Why can't I {c} in {l}{+}?"]),
              ("tense_aspect", ["How did people {c} in old versions of {l}{+}?"])]),
    t("data_convert", "l:plang s:structure r:structure", [
        "How do I convert a {s} to a {r} in {l}?", "In {l}, how can I turn a {s} into a {r}?",
        "What's the {l} way to convert a {s} into a {r}?"],
        loose=["{l}: {s} -> {r}", "{s} to {r} {l}"], swap="s r"),
    t("document", "d:doc p:profession", [
        "Write a {d} for a {p}{+}.", "Can you draft a {d} for a {p}{+}?", "Help me write a {d} for a {p}{+}.",
        "I need a {d} for a {p}{+}."], loose=["{d} for {p}{+} pls", "draft {d} ({p}){+}"],
        narrow=[" that is formal", " under 200 words", " with a friendly tone", " for a first job"],
        alts=[("order_roles", ["Write a {d} from a {p}{+}.", "Write a {d} to a {p}{+}."]),
              ("tense_aspect", ["Write a {d} for a former {p}{+}.", "Write a {d} for someone becoming a {p}{+}."])]),
    t("software_howto", "s:software", [
        "How do I undo my last change in {s}{+}?", "How can I revert the last change in {s}{+}?",
        "What's the way to undo the most recent change in {s}{+}?"],
        loose=["undo last change {s}{+}", "{s}: undo{+}?"], narrow=[" on Mac", " without losing work",
                                                             " from the command line", " on mobile"],
        alts=[("opposite", ["How do I redo my last change in {s}{+}?"]),
              ("and_or", ["How do I undo and redo changes in {s}{+}?"]),
              ("negation", ["Why can't I undo my last change in {s}{+}?"])]),
    t("exercise_time", "s:sport n:num", [
        "How many calories do I burn doing {s} for {n} minutes?",
 "If I do {s} for {n} minutes, how many calories do I burn?",
        "What's the calorie burn of {n} minutes of {s}?"], loose=["{n} min {s} calories?"],
        alts=[("pronoun", ["How many calories does my dog burn doing {s} for {n} minutes?"])]),
    t("percent_of", "p:percent n:num", [
        "What is {p}% of {n}?", "How much is {p} percent of {n}?", "Calculate {p}% of {n}."],
        loose=["{p}% of {n}?", "{p} pct of {n}"],
        alts=[("order_roles", ["What percent of {n} is {p}?", "{p} is what percent of {n}?"])]),
    t("age_when", "x:famous n:num_small", [
        "How old was {x} when they wrote their first {n} works?",
 "At what age had {x} finished their first {n} works?"],
        alts=[("tense_aspect", ["How old would {x} be today?"])]),
    t("year_event", "y:year x:country", [
        "What happened in {x} in {y}?", "What were the major events in {x} in {y}?",
        "What went on in {x} during {y}?"], loose=["{x} {y} events?", "{x} in {y} what happened"],
        alts=[("opposite", ["What happened in {x} before {y}?", "What happened in {x} after {y}?"])]),
    t("budget_trip", "x:country n:num_small", [
        "Plan a {n}-day trip to {x}{+}.", "Can you plan a {n} day itinerary for {x}{+}?",
        "Make me an itinerary for {n} days in {x}{+}."], loose=["{n} days {x} itinerary{+}",
                                                                "{x} trip {n} days{+}, plan?"],
        narrow=[" on a tight budget", " with kids", " for food lovers", " by train", " in winter"],
        alts=[("and_or", ["Plan a {n}-day trip to {x} and its neighbours{+}."])]),
    t("material_vs", "m:material v:material", [
        "Is {m} stronger than {v}?", "Which is stronger, {m} or {v}?"], swap="m v",
        alts=[("opposite", ["Is {m} weaker than {v}?"])]),
    t("vehicle_buy", "v:vehicle", [
        "Should I buy a new or used {v}{+}?", "Is it better to buy a used {v} or a new one{+}?",
        "New vs used {v}{+}: which should I buy?"], loose=["new or used {v}{+}??"],
        narrow=[" as a student", " for a long commute", " if I live in a city"],
        alts=[("opposite", ["Should I sell my new or my used {v}{+}?"])]),
    t("live_where", "p:place x:country", [
        "Is it better to live in {p} in {x}{+}?", "Should I move to {p} in {x}{+}?",
        "Would living in {p} in {x} be a good idea{+}?"],
        narrow=[" when I retire", " with a family", " as a remote worker"],
        alts=[("tense_aspect", ["Was it better to live in {p} in {x} in the past{+}?"])]),
    t("subject_study", "s:subject", [
        "What is the best way to study {s}{+}?", "How should I study {s}{+}?", "How do I get better at {s}{+}?",
        "What are good strategies for studying {s}{+}?"], loose=["study tips {s}{+}", "how to get good at {s}{+}"],
        narrow=[" for an exam", " on my own", " in one week", " in college", " at night"],
        alts=[("negation", ["Why am I not getting better at {s}{+}?"]),
              ("tense_aspect", ["How did students study {s} before the internet{+}?"]),
              ("and_or", ["What is the best way to study {s} and work at the same time{+}?"])]),
    t("dish_recipe", "d:dish", [
        "How do I make {d}{+}?", "What's a good recipe for {d}{+}?", "Give me a recipe for {d}{+}.",
        "Can you share how to make {d}{+}?"], loose=["{d} recipe{+}", "easy {d}{+} recipe?"],
        narrow=[" without eggs", " that is gluten-free", " for a crowd", " in a slow cooker", " with no sugar"],
        alts=[("negation", ["Why does my {d} never turn out right{+}?"])]),
    t("pet_care", "a:animal", [
        "How often should I feed my {a}{+}?", "How many times a day do {a} need to eat{+}?",
        "What's the right feeding schedule for {a}{+}?"], loose=["feeding {a}{+} how often"],
        narrow=[" when they are old", " as babies", " in winter", " if they are overweight"],
        alts=[("pronoun", ["How often should my neighbour feed her {a}{+}?"]),
              ("negation", ["Why won't my {a} eat{+}?"])]),
    t("salary", "p:profession x:city", [
        "How much does a {p} earn in {x}{+}?", "What is the average salary of a {p} in {x}{+}?",
        "What do {p}s make in {x}{+}?"], loose=["{p} salary {x}{+}"],
        narrow=[" with five years of experience", " at entry level", " in the public sector", " part-time"],
        alts=[("tense_aspect", ["How much did a {p} earn in {x} in the past{+}?",
                                "How much will a {p} earn in {x}{+}?"])]),
    t("install", "s:software", [
        "How do I install {s}{+}?", "What are the steps to install {s}{+}?", "How can I set up {s}{+}?"],
        loose=["{s} install{+} help", "installing {s}{+}?"],
        narrow=[" on Ubuntu", " on a Mac", " without admin rights", " offline"],
        alts=[("opposite", ["How do I uninstall {s}{+}?"]),
              ("negation", ["Why won't {s} install{+}?"]),
              ("tense_aspect", ["I installed {s} yesterday; how do I update it{+}?"])]),
)
