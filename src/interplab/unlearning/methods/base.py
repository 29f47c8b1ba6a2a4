"""What every unlearning method gets (`UnlearningData`) and how it is called (`Method`).

A method takes the organism loaded in memory, changes its weights in place and/or adds network edits
or an output filter, and returns the `ServedModel`. It sees the forget and retain sets (the trained
forms of their facts) and, for methods that need general text, a list of documents; it never sees the
held-out forms (paraphrases, multiple choice) or the evaluation's text.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import torch

from interplab.data.synthetic.fictional_people import TRAINED_FORMS, Item, PeopleConfig, Person, items
from interplab.models import LoadedModel
from interplab.unlearning.served import ServedModel


@dataclass
class UnlearningData:
    """The forget and retain sets an unlearning method may use."""

    people_cfg: PeopleConfig
    """The config the people were made from (values, templates' options)."""
    forget: list[Person]
    """People whose facts are to be forgotten."""
    retain: list[Person]
    """People whose facts must stay."""
    texts: list[str] = field(default_factory=list)
    """General text (never the evaluation's held-out documents), for methods that need some."""
    cache_dir: Path | None = None
    """Where a method may keep what it builds from the organism alone (e.g. an SAE); None: nowhere."""

    def forget_items(self) -> list[Item]:
        return [it for form in TRAINED_FORMS for it in items(self.forget, form, self.people_cfg)]

    def retain_items(self) -> list[Item]:
        return [it for form in TRAINED_FORMS for it in items(self.retain, form, self.people_cfg)]


class Method(NamedTuple):
    """An unlearning method: its name, config class and the function that applies it."""

    name: str
    config: type
    """Dataclass of its settings (a docstring under each field)."""
    run: Callable[[LoadedModel, UnlearningData, Any, int], ServedModel]
    """run(lm, data, cfg, seed): change `lm.model` in place and return the served model."""
    summary: str
    """One line: what it does."""


def pairs_of(its: list[Item]) -> list[tuple[str, str]]:
    return [(it.prompt, it.answer) for it in its]


def name_start_tokens(tokenizer, its: list[Item]) -> list[int]:
    """Per item, the index of the prompt token where the person's name starts (tokens before it are the
    template's, shared with every other person)."""
    out = []
    for it in its:
        prefix = it.prompt[: it.prompt.index(it.person)].rstrip(" ")
        out.append(len(tokenizer(prefix, add_special_tokens=True)["input_ids"]) if prefix else
                   len(tokenizer("", add_special_tokens=True)["input_ids"]))
    return out


def from_name_mask(tokenizer, its: list[Item], attention_mask_BT: torch.Tensor) -> torch.Tensor:
    """[batch, seq] bool: real tokens at or after the start of the person's name."""
    starts = torch.tensor(name_start_tokens(tokenizer, its), device=attention_mask_BT.device)
    pos_BT = torch.arange(attention_mask_BT.shape[1], device=attention_mask_BT.device).expand_as(attention_mask_BT)
    return attention_mask_BT.bool() & (pos_BT >= starts[:, None])
