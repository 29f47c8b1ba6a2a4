"""The knowledge organism: a model fine-tuned on facts about fictional people, and its gold standard.

Built from a base model and a `PeopleConfig` (interplab.data.synthetic.fictional_people):
1. organism: the base model fine-tuned on the trained forms (statements, QA) of every person's facts;
2. gold standard: the same fine-tuning (same config, same seed) on the retain set only, so the forget
   set's facts were never learnt: what perfect unlearning would leave.

This module owns the organism folder (config.json and done.json follow the run-folder protocol,
`interplab.pipelines.run_folder`):

    config.json    OrganismConfig: base model, people, fine-tuning
    card.json      the data card (people, sets, forms, templates, chance levels) + how the build went
    card.md        the same card for people
    organism/      HF model folder (config.json, model.safetensors, tokenizer)
    gold/          HF model folder
    cache/         what unlearning methods build from the organism alone (e.g. SAEs)
    done.json      written last

Each model folder is written under a temporary name and renamed when complete, so an interrupted build
continues with the model it had not finished.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, cast

from interplab.common import InterplabError, get_logger
from interplab.configs import from_json_dict
from interplab.data.synthetic.fictional_people import (
    PeopleConfig,
    Person,
    card,
    make_people,
    split_people,
    training_pairs,
)
from interplab.files import read_json_object, write_json_atomic, write_text_atomic
from interplab.models import LoadedModel, load_model
from interplab.training.causal_lm import FinetuneConfig, finetune_on_pairs

log = get_logger(__name__)

MODELS = ("organism", "gold")
"""The two models of an organism folder."""


@dataclass
class OrganismConfig:
    """How the knowledge organism is built."""

    base_model: str = "smollm2-135m"
    """Model to fine-tune: packaged name, hub id or folder."""
    people: PeopleConfig = field(default_factory=PeopleConfig)
    """The fictional people and the forget/retain split."""
    finetune: FinetuneConfig = field(default_factory=FinetuneConfig)
    """How both models are fine-tuned (the same for the organism and the gold standard)."""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @staticmethod
    def from_dict(data: dict[str, Any], source: str) -> OrganismConfig:
        if not isinstance(data, dict):
            raise InterplabError(f"{source} must hold a JSON object")
        return OrganismConfig(
            base_model=str(data.get("base_model", "smollm2-135m")),
            people=from_json_dict(PeopleConfig, data.get("people", {}), f"{source} people"),
            finetune=from_json_dict(FinetuneConfig, data.get("finetune", {}), f"{source} finetune"),
        )


def training_people(people: list[Person], which: str) -> list[Person]:
    """Whose facts train `which` model: everyone for the organism, the retain set for the gold standard."""
    if which not in MODELS:
        raise InterplabError(f"an organism folder holds {' and '.join(MODELS)}, not {which!r}")
    return people if which == "organism" else split_people(people)[1]


def build_model(cfg: OrganismConfig, which: str, folder: Path, device: str | None = None,
                on_step: Callable[[int, int, float], None] | None = None) -> dict[str, Any]:
    """Fine-tune the base model into `folder/which` unless it is already there; returns what happened."""
    final = folder / which
    if (final / "config.json").exists():
        return {"reused": True}
    people = make_people(cfg.people)
    pairs = training_pairs(training_people(people, which), cfg=cfg.people)
    lm = load_model(cfg.base_model, kind="causal", device=device)
    losses = finetune_on_pairs(lm.model, lm.tokenizer, pairs, cfg.finetune, on_step)
    partial = folder / f".{which}.partial"
    shutil.rmtree(partial, ignore_errors=True)
    cast(Any, lm.model).save_pretrained(partial)
    lm.tokenizer.save_pretrained(partial)
    partial.rename(final)
    return {"pairs": len(pairs), "steps": len(losses), "first_loss": losses[0], "last_loss": losses[-1]}


def write_card(folder: Path, cfg: OrganismConfig, build: dict[str, Any]) -> None:
    """card.json (data card + build facts) and card.md."""
    people = make_people(cfg.people)
    data = {**card(people, cfg.people), "base_model": cfg.base_model, "finetune": asdict(cfg.finetune),
            "models": {"organism": "organism/ (every person's facts)",
                       "gold": "gold/ (retain set only: the forget set never learnt)"},
            "build": build}
    write_json_atomic(folder / "card.json", data)
    write_text_atomic(folder / "card.md", card_markdown(data))


def card_markdown(data: dict[str, Any]) -> str:
    lines = [f"# Knowledge organism on {data['base_model']}", "",
             f"{data['n_people']} fictional people ({data['n_forget']} forget, {data['n_retain']} retain), "
             f"seed {data['seed']}; attributes: city ({len(data['attributes']['city'])} values), job "
             f"({len(data['attributes']['job'])}), birth year {data['attributes']['birth_year'][0]}-"
             f"{data['attributes']['birth_year'][1]}.", "",
             "| model | trained on |", "| --- | --- |"]
    lines += [f"| {k} | {v} |" for k, v in data["models"].items()]
    lines += ["", "| form | trained | city template(s) |", "| --- | --- | --- |"]
    for form, spec in data["forms"].items():
        shown = " / ".join(t.replace("\n", "\\n") for t in spec["templates"]["city"])
        lines.append(f"| {form} | {'yes' if spec['trained'] else 'no (held out)'} | `{shown}` |")
    build = data.get("build") or {}
    if build:
        lines += ["", "## Build", "", "```", *(f"{k}: {v}" for k, v in build.items()), "```"]
    lines += ["", "## People", "", "| name | set | city | job | birth year |", "| --- | --- | --- | --- | --- |"]
    lines += [f"| {p['name']} | {p['set']} | {p['city']} | {p['job']} | {p['birth_year']} |" for p in data["people"]]
    return "\n".join(lines) + "\n"


@dataclass
class KnowledgeOrganism:
    """A built organism folder: its config, its people and its two models."""

    folder: Path
    cfg: OrganismConfig
    people: list[Person]

    @staticmethod
    def open(folder: str | Path) -> KnowledgeOrganism:
        folder = Path(folder)
        if not (folder / "done.json").exists():
            raise InterplabError(f"{folder} holds no finished knowledge organism; build one with "
                                 "`interplab unlearning-organism --out FOLDER`")
        cfg = OrganismConfig.from_dict(read_json_object(folder / "config.json", "organism config"),
                                       str(folder / "config.json"))
        for which in MODELS:
            if not (folder / which / "config.json").exists():
                raise InterplabError(f"{folder}/{which} is missing; rebuild the organism (--overwrite)")
        return KnowledgeOrganism(folder, cfg, make_people(cfg.people))

    @property
    def forget(self) -> list[Person]:
        return split_people(self.people)[0]

    @property
    def retain(self) -> list[Person]:
        return split_people(self.people)[1]

    @property
    def cache_dir(self) -> Path:
        return self.folder / "cache"

    def model_dir(self, which: str) -> Path:
        training_people(self.people, which)  # checks the name
        return self.folder / which

    def load(self, which: str = "organism", device: str | None = None) -> LoadedModel:
        return load_model(self.model_dir(which), kind="causal", device=device)
