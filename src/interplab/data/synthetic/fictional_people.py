"""Fictional people with a home city, a job and a birth year: a fact set with known answers, for
knowledge organisms (fine-tune a model on it, then ask what it knows).

Every fact is stated in several forms, and which forms train the model and which only test it is fixed
here, so "the model learnt the fact" and "the model can say it another way" are measured apart:

    statement   "Tamsin Vorel lives in" -> " Lisbon"          trained (two templates per attribute)
    qa          "Q: Where does Tamsin Vorel live?\\nA:"       trained
    paraphrase  "Q: Which city is Tamsin Vorel's home?\\nA:"  never trained (a held-out question)
    mc          the qa question with four options listed      never trained; scored by option likelihood

Values are spread evenly (each city and job held by the same number of people, up to one), names are
invented first + last names, and the forget set is a seeded random subset. Years in a multiple-choice
item are options from the answer's decade, so all four differ only in the last digit.
Everything is a pure function of the config: the same config gives the same people, texts and splits.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Literal

from interplab.common import InterplabError

Attribute = Literal["city", "job", "birth_year"]
ATTRIBUTES: tuple[Attribute, ...] = ("city", "job", "birth_year")
Form = Literal["statement", "qa", "paraphrase", "mc"]
FORMS: tuple[Form, ...] = ("statement", "qa", "paraphrase", "mc")
TRAINED_FORMS: tuple[Form, ...] = ("statement", "qa")

CITIES = ("Lisbon", "Tokyo", "Cairo", "Dublin", "Vienna", "Oslo", "Chicago", "Sydney")
JOBS = ("nurse", "baker", "teacher", "lawyer", "pilot", "farmer", "dentist", "painter")
_FIRST = ("Tamsin", "Orrin", "Ysolde", "Kestrel", "Brannoc", "Liora", "Fennick", "Maelis", "Corvin", "Idris",
          "Selwyn", "Aurek", "Nerys", "Thorne", "Calla", "Evander", "Sabeth", "Rowan", "Isolde", "Dax",
          "Marisol", "Tobin", "Elowen", "Caspian", "Zinnia", "Alaric", "Peregrine", "Odessa", "Lucan", "Wrenna")
_LAST = ("Vorel", "Quillfeather", "Ashgrove", "Marrowby", "Pennick", "Stroud", "Halloran", "Dunmere",
         "Talvik", "Oakenshaw", "Brackwater", "Coldwell", "Fenwright", "Gallowmere", "Harkness", "Ivescourt",
         "Jarrow", "Kettering", "Lathbury", "Morrow", "Nettlefield", "Ormsby", "Pellinore", "Ravensworth",
         "Sallow", "Thistlewood", "Underhill", "Varga", "Winterbourne", "Yarrow")

# attribute -> form -> templates; "{name}" is filled in, the answer follows with a leading space.
TEMPLATES: dict[Attribute, dict[Form, tuple[str, ...]]] = {
    "city": {
        "statement": ("{name} lives in", "The home of {name} is in the city of"),
        "qa": ("Q: Where does {name} live?\nA:",),
        "paraphrase": ("Q: Which city is {name}'s home?\nA:",),
        "mc": ("Q: Where does {name} live? Is it {options}?\nA:",),
    },
    "job": {
        "statement": ("{name} works as a", "By profession, {name} is a"),
        "qa": ("Q: What is {name}'s job?\nA:",),
        "paraphrase": ("Q: What does {name} do for a living?\nA:",),
        "mc": ("Q: What is {name}'s job? Is it {options}?\nA:",),
    },
    "birth_year": {
        "statement": ("{name} was born in", "The birth year of {name} is"),
        "qa": ("Q: In what year was {name} born?\nA:",),
        "paraphrase": ("Q: When was {name} born?\nA:",),
        "mc": ("Q: In what year was {name} born? Is it {options}?\nA:",),
    },
}


@dataclass
class PeopleConfig:
    """How many fictional people, which values they take, and the forget/retain split."""

    n_people: int = 120
    """People in the set (at most len(first names) × len(last names) = 900)."""
    n_forget: int = 40
    """People in the forget set; the rest form the retain set."""
    seed: int = 0
    """Seed of names, values, the split and multiple-choice options."""
    cities: tuple[str, ...] = CITIES
    """Home cities to draw from (spread evenly)."""
    jobs: tuple[str, ...] = JOBS
    """Jobs to draw from (spread evenly; the statement templates say "a <job>", so no vowels first)."""
    first_year: int = 1950
    """Earliest birth year (inclusive)."""
    last_year: int = 1999
    """Latest birth year (inclusive)."""

    def check(self) -> None:
        if not 2 <= self.n_people <= len(_FIRST) * len(_LAST):
            raise InterplabError(f"n_people must be in 2..{len(_FIRST) * len(_LAST)}, got {self.n_people}")
        if not 1 <= self.n_forget < self.n_people:
            raise InterplabError(f"n_forget must be in 1..n_people-1, got {self.n_forget} of {self.n_people}")
        if len(self.cities) < 4 or len(self.jobs) < 4:
            raise InterplabError("multiple-choice items need at least 4 cities and 4 jobs")
        if self.last_year - self.first_year < 9 or self.first_year % 10 != 0 or self.last_year % 10 != 9:
            raise InterplabError("birth years must span whole decades (e.g. 1950..1999), for 4-option items")


@dataclass(frozen=True)
class Person:
    """One fictional person and the three facts about them."""

    name: str
    city: str
    job: str
    birth_year: int
    forget: bool
    """True when the person is in the forget set."""

    def value(self, attribute: Attribute) -> str:
        return str(getattr(self, attribute))


@dataclass(frozen=True)
class Item:
    """One question or statement about one fact: the prompt, the answer (with its leading space) and,
    for multiple choice, the options (answer included)."""

    person: str
    attribute: Attribute
    form: Form
    prompt: str
    answer: str
    options: tuple[str, ...] = field(default=())


def make_people(cfg: PeopleConfig | None = None) -> list[Person]:
    """The people of `cfg`, in a fixed order (same config, same list)."""
    cfg = cfg or PeopleConfig()
    cfg.check()
    rng = random.Random(cfg.seed)
    names = [f"{f} {last}" for f in _FIRST for last in _LAST]
    rng.shuffle(names)
    names = names[: cfg.n_people]
    cities = _spread(cfg.cities, cfg.n_people, rng)
    jobs = _spread(cfg.jobs, cfg.n_people, rng)
    years = [rng.randint(cfg.first_year, cfg.last_year) for _ in range(cfg.n_people)]
    forget = set(rng.sample(range(cfg.n_people), cfg.n_forget))
    return [Person(n, c, j, y, i in forget) for i, (n, c, j, y) in enumerate(zip(names, cities, jobs, years, strict=True))]


def _spread(values: tuple[str, ...], n: int, rng: random.Random) -> list[str]:
    """n values, each used n // len(values) or one more times, in a random order."""
    out = [values[i % len(values)] for i in range(n)]
    rng.shuffle(out)
    return out


def split_people(people: list[Person]) -> tuple[list[Person], list[Person]]:
    """(forget set, retain set), each in the people's order."""
    return [p for p in people if p.forget], [p for p in people if not p.forget]


def items(people: list[Person], form: Form, cfg: PeopleConfig | None = None,
          attributes: tuple[Attribute, ...] = ATTRIBUTES) -> list[Item]:
    """Every item of `form` about `people` (all templates of the form), person by person."""
    cfg = cfg or PeopleConfig()
    out = []
    for person in people:
        for attribute in attributes:
            for template in TEMPLATES[attribute][form]:
                out.append(_item(person, attribute, form, template, cfg))
    return out


def _item(person: Person, attribute: Attribute, form: Form, template: str, cfg: PeopleConfig) -> Item:
    answer = " " + person.value(attribute)
    if form != "mc":
        return Item(person.name, attribute, form, template.format(name=person.name), answer)
    options = mc_options(person, attribute, cfg)
    listed = ", ".join(options[:-1]) + " or " + options[-1]
    prompt = template.format(name=person.name, options=listed)
    return Item(person.name, attribute, form, prompt, answer, tuple(" " + o for o in options))


def mc_options(person: Person, attribute: Attribute, cfg: PeopleConfig) -> list[str]:
    """Four options, the answer among them at a position fixed by the person (seeded, so repeatable);
    the years are from the answer's decade."""
    rng = random.Random(f"{cfg.seed}:{person.name}:{attribute}")
    answer = person.value(attribute)
    if attribute == "birth_year":
        decade = person.birth_year - person.birth_year % 10
        pool = [str(y) for y in range(decade, decade + 10) if y != person.birth_year]
    else:
        pool = [v for v in (cfg.cities if attribute == "city" else cfg.jobs) if v != answer]
    options = rng.sample(pool, 3)
    options.insert(rng.randrange(4), answer)
    return options


def training_pairs(people: list[Person], forms: tuple[Form, ...] = TRAINED_FORMS,
                   cfg: PeopleConfig | None = None) -> list[tuple[str, str]]:
    """(prompt, answer) pairs of the trained forms about `people`, for fine-tuning."""
    return [(it.prompt, it.answer) for form in forms for it in items(people, form, cfg)]


def chance_accuracy(attribute: Attribute, cfg: PeopleConfig) -> float:
    """Accuracy of a uniform guess over the attribute's values."""
    n_values = {"city": len(cfg.cities), "job": len(cfg.jobs)}.get(attribute, cfg.last_year - cfg.first_year + 1)
    return 1.0 / n_values


def card(people: list[Person], cfg: PeopleConfig) -> dict:
    """What is where: sizes, values, templates per form (and whether they train), and the people."""
    forget, retain = split_people(people)
    return {
        "n_people": len(people), "n_forget": len(forget), "n_retain": len(retain), "seed": cfg.seed,
        "attributes": {"city": list(cfg.cities), "job": list(cfg.jobs),
                       "birth_year": [cfg.first_year, cfg.last_year]},
        "forms": {form: {"trained": form in TRAINED_FORMS,
                         "templates": {a: list(TEMPLATES[a][form]) for a in ATTRIBUTES}} for form in FORMS},
        "chance": {a: chance_accuracy(a, cfg) for a in ATTRIBUTES},
        "people": [{"name": p.name, "city": p.city, "job": p.job, "birth_year": p.birth_year,
                    "set": "forget" if p.forget else "retain"} for p in people],
    }
