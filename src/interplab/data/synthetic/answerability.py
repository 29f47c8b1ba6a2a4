"""Synthetic answerability sets with exact labels, balanced and seeded (after Heindrich et al. 2025).

Equations: some variables are defined, and the question asks for the value of an expression. It is
  answerable when every variable in the expression is defined. Unanswerable items use one undefined
  variable drawn from the same alphabet, with the same number of definitions and expression length, so
  surface statistics do not give the label away.
Celebrity: a short bio of a fictional person states some attributes (birth year, birthplace, profession,
  ...); the question asks for one attribute. It is answerable when that attribute is in the bio. Both
  classes use the same bio length and question templates.
"""

from __future__ import annotations

import random

from interplab.common import InterplabError
from interplab.data.qa_formats import QAExample

_VARIABLES = list("abcdefghjkmnpqrstuvwxyz")
_OPERATORS = ["+", "-", "*"]


def _balanced_labels(n: int, rng: random.Random) -> list[bool]:
    if n < 2:
        raise InterplabError(f"a balanced answerability set needs n >= 2, got {n}")
    labels = [i % 2 == 0 for i in range(n)]
    rng.shuffle(labels)
    return labels


def _equation(rng: random.Random, answerable: bool, n_defined: int, n_terms: int) -> QAExample:
    names = rng.sample(_VARIABLES, n_defined + 1)
    defined, spare = names[:n_defined], names[n_defined]
    terms = [rng.choice(defined) for _ in range(n_terms)]
    if not answerable:
        terms[rng.randrange(n_terms)] = spare  # exactly one term is never defined
    expression = terms[0]
    for term in terms[1:]:
        expression += f" {rng.choice(_OPERATORS)} {term}"
    context = "Let " + ", ".join(f"{v} = {rng.randint(1, 20)}" for v in defined) + "."
    return QAExample(context, f"What is the value of {expression}?", answerable, "equations")


def make_equations(n: int = 200, seed: int = 0, n_defined: int = 3, n_terms: int = 3) -> list[QAExample]:
    """`n` equation questions, half answerable (every variable defined), in a seeded random order."""
    if n_defined < 1 or n_terms < 1 or n_defined + 1 > len(_VARIABLES):
        raise InterplabError(f"equations need 1 <= n_defined < {len(_VARIABLES)} and n_terms >= 1")
    rng = random.Random(seed)
    return [_equation(rng, label, n_defined, n_terms) for label in _balanced_labels(n, rng)]


_FIRST = [
    "Amelia",
    "Jonas",
    "Priya",
    "Marco",
    "Elena",
    "Tobias",
    "Yuki",
    "Samuel",
    "Ingrid",
    "Omar",
    "Clara",
    "Felix",
    "Leila",
    "Nikolai",
    "Rosa",
    "Dmitri",
    "Hannah",
    "Mateo",
    "Sofia",
    "Kwame",
]
_LAST = [
    "Hartwell",
    "Okafor",
    "Lindqvist",
    "Moreau",
    "Castellano",
    "Whitaker",
    "Nakamura",
    "Brennan",
    "Vasquez",
    "Albrecht",
    "Delacroix",
    "Fairbanks",
    "Kowalski",
    "Ashworth",
    "Romano",
    "Sutherland",
]
_CITIES = [
    "Lisbon",
    "Toronto",
    "Nairobi",
    "Osaka",
    "Krakow",
    "Valparaiso",
    "Edinburgh",
    "Perth",
    "Lyon",
    "Austin",
]
_PROFESSIONS = [
    "violinist",
    "architect",
    "novelist",
    "marine biologist",
    "film director",
    "chess player",
    "chef",
    "astronomer",
    "photographer",
    "sculptor",
]
_INSTRUMENTS = ["the cello", "the piano", "the trumpet", "the harp", "the drums", "the flute"]
_AWARDS = ["the Golden Quill", "the Meridian Prize", "the Aurora Medal", "the Halcyon Award", "the Lumen Cup"]
_FOODS = ["lemon tart", "mushroom risotto", "spicy ramen", "apple crumble", "grilled sardines", "lentil soup"]

# attribute -> (sentence template for the bio, question template)
_ATTRIBUTES: dict[str, tuple[str, str]] = {
    "birth_year": ("{name} was born in {value}.", "In what year was {name} born?"),
    "birthplace": ("{name} grew up in {value}.", "In which city did {name} grow up?"),
    "profession": ("{name} works as a {value}.", "What does {name} do for a living?"),
    "instrument": ("In their spare time, {name} plays {value}.", "Which instrument does {name} play?"),
    "award": ("{name} once won {value}.", "Which award did {name} win?"),
    "food": ("{name}'s favourite dish is {value}.", "What is {name}'s favourite dish?"),
}


def _attribute_value(rng: random.Random, attribute: str) -> str:
    pools = {
        "birthplace": _CITIES,
        "profession": _PROFESSIONS,
        "instrument": _INSTRUMENTS,
        "award": _AWARDS,
        "food": _FOODS,
    }
    return str(rng.randint(1931, 2001)) if attribute == "birth_year" else rng.choice(pools[attribute])


def _celebrity(rng: random.Random, answerable: bool, n_facts: int) -> QAExample:
    name = f"{rng.choice(_FIRST)} {rng.choice(_LAST)}"
    attributes = rng.sample(list(_ATTRIBUTES), n_facts + 1)
    stated, missing = attributes[:n_facts], attributes[n_facts]
    asked = rng.choice(stated) if answerable else missing
    bio = " ".join(_ATTRIBUTES[a][0].format(name=name, value=_attribute_value(rng, a)) for a in stated)
    return QAExample(bio, _ATTRIBUTES[asked][1].format(name=name), answerable, "celebrity")


def make_celebrity(n: int = 200, seed: int = 0, n_facts: int = 3) -> list[QAExample]:
    """`n` bio questions about fictional people, half answerable from the bio, in a seeded random order."""
    if not 1 <= n_facts < len(_ATTRIBUTES):
        raise InterplabError(f"celebrity bios state 1..{len(_ATTRIBUTES) - 1} facts, got n_facts={n_facts}")
    rng = random.Random(seed)
    return [_celebrity(rng, label, n_facts) for label in _balanced_labels(n, rng)]
