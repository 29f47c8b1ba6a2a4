"""Evaluate unlearning methods on a knowledge organism: metrics, attacks and a verdict per method and seed.

For each seed:
1. Split the forget set into the attacker's `train` people and `held_out` people (seeded).
2. Record the organism's activations on the attacker's items (the "original" of direction removal).
3. For the gold standard and every method (each starting from the organism's weights):
   unlearn -> metrics as served (forget, retain, fluency) -> probe attack -> direction removal ->
   relearning attack (last: it fine-tunes the weights) -> verdict.
The organism itself is scored once as the reference row (metrics and probes, no attacks).
One model is held in memory; the organism's and the gold standard's weights are kept as copies and
copied back before each arm, so any number of arms runs in the memory of about three models.
"""

from __future__ import annotations

import random
import resource
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from interplab.common import InterplabError, get_logger
from interplab.data.synthetic.fictional_people import Person
from interplab.models import LoadedModel
from interplab.unlearning.direction_removal import (
    DirectionRemovalConfig,
    attack_items,
    direction_removal,
    removal_layers,
    token_acts,
)
from interplab.unlearning.methods import UnlearningData, unlearn
from interplab.unlearning.metrics import chance_accuracy, qa_accuracy, served_metrics
from interplab.unlearning.organism import KnowledgeOrganism
from interplab.unlearning.probe_attack import ProbeAttackConfig, ProbeFeatures, probe_attack, probe_features
from interplab.unlearning.relearning import RelearnConfig, relearning_curve
from interplab.unlearning.served import ServedModel
from interplab.unlearning.verdict import Evidence, VerdictConfig, judge

log = get_logger(__name__)

GOLD = "gold-standard"
ORGANISM = "organism"


@dataclass
class EvalConfig:
    """How unlearnt models are measured and attacked."""

    n_retain_eval: int = 20
    """Retain-set people scored for retain accuracy (the first ones; every retain person trains probes)."""
    attack_train_fraction: float = 0.5
    """Share of the forget set whose facts the attacker knows (relearning data, probe and direction
    training); the rest are held out and measure recovery."""
    fluency_docs: int = 24
    """Held-out documents (the last ones of the text source) for perplexity; no method sees them."""
    fluency_tokens: int = 64
    """Tokens of each held-out document scored."""
    method_docs: int = 200
    """Documents (the first ones of the text source) given to methods that use general text."""
    relearn: RelearnConfig = field(default_factory=RelearnConfig)
    """The relearning attack."""
    probe: ProbeAttackConfig = field(default_factory=ProbeAttackConfig)
    """The probe attack."""
    direction: DirectionRemovalConfig = field(default_factory=DirectionRemovalConfig)
    """The direction-removal attack."""
    verdict: VerdictConfig = field(default_factory=VerdictConfig)
    """Margins of the verdict."""
    dtype: str = "float32"
    """Compute dtype of everything that runs the model (unlearning, metrics, attacks): "float32", or
    "bfloat16" (autocast: weights, optimiser state and the residual stream stay float32, matrix products
    run in bfloat16; on CPUs with bfloat16 matrix units about twice as fast). Probe fits stay float32."""

    def check(self) -> None:
        if self.dtype not in ("float32", "bfloat16"):
            raise InterplabError(f"dtype must be 'float32' or 'bfloat16', got {self.dtype!r}")
        if not 0 < self.attack_train_fraction < 1:
            raise InterplabError(f"attack_train_fraction must be in (0, 1), got {self.attack_train_fraction}")
        if self.fluency_docs < 1 or self.n_retain_eval < 1:
            raise InterplabError("fluency_docs and n_retain_eval must be >= 1")
        self.probe.check()


@dataclass
class AttackSplit:
    train: list[Person]
    """Forget-set people whose facts the attacker knows."""
    held_out: list[Person]
    """Forget-set people on whom recovery is measured."""


def attack_split(forget: list[Person], seed: int, fraction: float) -> AttackSplit:
    order = list(forget)
    random.Random(f"attack:{seed}").shuffle(order)
    n = min(max(1, round(fraction * len(order))), len(order) - 1)
    return AttackSplit(order[:n], order[n:])


@dataclass
class ArmResult:
    """Everything measured on one unlearnt model (one method, one seed)."""

    method: str
    seed: int
    metrics: dict[str, float]
    """Metrics as served (forget_*, retain_*, fluency_ppl)."""
    chance: float
    """Best-constant-answer exact match on the whole forget set (the bar of "forgotten")."""
    chance_held_out: float
    """Best-constant-answer exact match on the held-out forget people (the bar of the attacks)."""
    relearn: list[tuple[int, float]] = field(default_factory=list)
    """(step, held-out exact match) along the relearning attack."""
    probe: list[tuple[int, float]] = field(default_factory=list)
    """(layer, held-out probe accuracy) at the position chosen on the validation people."""
    probe_chance: float | None = None
    probe_choice: str = ""
    """The probe (position@layers) chosen on the validation people."""
    probe_validation: float | None = None
    """Its validation accuracy."""
    probe_accuracy: float | None = None
    """Its held-out accuracy (the verdict's probe evidence)."""
    direction: list[tuple[int, float]] = field(default_factory=list)
    """(layer, held-out exact match with the top difference direction removed)."""
    verdict: str = ""
    reasons: list[str] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)
    """Wall and CPU seconds: unlearn, evaluate."""
    dtype: str = "float32"
    """The compute dtype it was measured in (EvalConfig.dtype)."""
    retain_reference: float | None = None
    """The organism's retain exact match on the same people (the bar of collateral damage)."""

    def evidence(self) -> Evidence:
        return Evidence(
            forget_em=self.metrics["forget_qa_em"], chance=self.chance, chance_held_out=self.chance_held_out,
            relearn_best=max(a for _, a in self.relearn) if self.relearn else None,
            probe_best=self.probe_accuracy if self.probe_accuracy is not None else
            max(a for _, a in self.probe) if self.probe else None, probe_chance=self.probe_chance,
            direction_best=max(a for _, a in self.direction) if self.direction else None,
            retain_em=self.metrics.get("retain_qa_em"), retain_reference=self.retain_reference)


class _Clock:
    def __init__(self) -> None:
        self.wall, self.cpu = time.perf_counter(), _cpu()

    def read(self) -> tuple[float, float]:
        return time.perf_counter() - self.wall, _cpu() - self.cpu


def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


@dataclass
class Context:
    """What every arm of one organism shares."""

    organism: KnowledgeOrganism
    lm: LoadedModel
    cfg: EvalConfig
    fluency_texts: list[str]
    data: UnlearningData
    organism_weights: dict[str, Tensor]
    retain_eval: list[Person]
    metrics_cache: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Metrics as served by fingerprint (ServedModel.fingerprint): a model that serves exactly as an
    earlier one did (the gold standard, an output filter or a seed-free edit on another seed) is not
    scored twice."""
    probe_cache: dict[str, ProbeFeatures] = field(default_factory=dict)
    """Probe features by network fingerprint (weights and edits, no filter), for the same reason."""
    retain_reference: float | None = None
    """The organism's retain exact match on `retain_eval` (measured by make_context)."""


def compute_precision(cfg: EvalConfig, device: torch.device, weights_change: bool = False) -> AbstractContextManager:
    """The autocast region `cfg.dtype` asks for (a no-op for float32). Autocast caches the bfloat16 copy
    of each weight until the region ends; where the region trains (`weights_change`), the cache is off,
    or every forward pass after the first would run the weights as they were at the first."""
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=cfg.dtype == "bfloat16",
                          cache_enabled=not weights_change)


def make_context(organism: KnowledgeOrganism, texts: list[str], cfg: EvalConfig, device: str | None = None,
                 lm: LoadedModel | None = None) -> Context:
    """Load the organism and split the text source into method text and held-out fluency text."""
    cfg.check()
    if len(texts) < cfg.fluency_docs + 1:
        raise InterplabError(f"the text source has {len(texts)} documents; need more than fluency_docs={cfg.fluency_docs}")
    lm = lm or organism.load("organism", device)
    fluency = texts[-cfg.fluency_docs:]
    method_texts = texts[: min(cfg.method_docs, len(texts) - cfg.fluency_docs)]
    data = UnlearningData(organism.cfg.people, organism.forget, organism.retain, method_texts, organism.cache_dir)
    weights = {k: v.detach().clone() for k, v in lm.model.state_dict().items()}
    retain_eval = organism.retain[: cfg.n_retain_eval]
    with compute_precision(cfg, lm.device):
        reference = qa_accuracy(ServedModel(lm), retain_eval, organism.cfg.people)
    return Context(organism, lm, cfg, fluency, data, weights, retain_eval, retain_reference=reference)


def restore(lm: LoadedModel, weights: dict[str, Tensor]) -> None:
    lm.model.load_state_dict(weights)
    lm.model.eval()


def evaluate_served(ctx: Context, served: ServedModel, method: str, seed: int, split: AttackSplit,
                    reference: dict[int, Tensor] | None, attacks: bool = True) -> ArmResult:
    """Metrics, attacks (probe, direction removal, relearning: last, it changes the weights) and verdict."""
    cfg, people_cfg = ctx.cfg, ctx.organism.cfg.people
    clock = _Clock()
    precision = compute_precision(cfg, ctx.lm.device)
    key = served.fingerprint()
    if key not in ctx.metrics_cache:
        with precision:
            ctx.metrics_cache[key] = served_metrics(served, ctx.organism.forget, ctx.retain_eval, people_cfg,
                                                    ctx.fluency_texts, cfg.fluency_tokens)
    metrics = dict(ctx.metrics_cache[key])
    result = ArmResult(method, seed, metrics, chance_accuracy(ctx.organism.forget), chance_accuracy(split.held_out),
                       dtype=cfg.dtype, retain_reference=ctx.retain_reference)
    network = served.fingerprint(with_filter=False)  # the attacker's model: no output filter
    if network not in ctx.probe_cache:
        with precision:
            ctx.probe_cache[network] = probe_features(served, ctx.organism.people, people_cfg, cfg.probe,
                                                      ctx.lm.n_layers)
    probe = probe_attack(ctx.probe_cache[network], ctx.organism.retain, split.train, split.held_out, cfg.probe, seed)
    result.probe, result.probe_chance = probe.curve, probe.chance
    result.probe_choice, result.probe_validation, result.probe_accuracy = probe.choice, probe.validation, probe.accuracy
    if attacks:
        layers = removal_layers(cfg.direction, ctx.lm.n_layers)
        with precision:
            result.direction = direction_removal(served, reference or {}, split.train, split.held_out, people_cfg,
                                                 layers, cfg.direction.forms)
        with compute_precision(cfg, ctx.lm.device, weights_change=True):
            result.relearn = relearning_curve(served, split.train, split.held_out, people_cfg, cfg.relearn, seed)
        result.verdict, result.reasons = judge(result.evidence(), cfg.verdict)
    wall, cpu = clock.read()
    result.seconds.update(eval_wall=wall, eval_cpu=cpu)
    return result


def run_arm(ctx: Context, method: str, method_cfg: Any, seed: int, split: AttackSplit,
            reference: dict[int, Tensor], gold_weights: dict[str, Tensor]) -> ArmResult:
    """Start from the organism (or the gold standard), unlearn, evaluate; leaves the weights changed."""
    restore(ctx.lm, gold_weights if method == GOLD else ctx.organism_weights)
    torch.manual_seed(seed)
    clock = _Clock()
    with compute_precision(ctx.cfg, ctx.lm.device, weights_change=True):
        served = ServedModel(ctx.lm) if method == GOLD else unlearn(ctx.lm, ctx.data, method, method_cfg, seed)
    unlearn_wall, unlearn_cpu = clock.read()
    result = evaluate_served(ctx, served, method, seed, split, reference)
    result.seconds.update(unlearn_wall=unlearn_wall, unlearn_cpu=unlearn_cpu)
    log.info("%s seed %d: %s (forget %.2f, retain %.2f) in %.0f s", method, seed, result.verdict,
             result.metrics["forget_qa_em"], result.metrics["retain_qa_em"], unlearn_wall + result.seconds["eval_wall"])
    return result


def run_saved(ctx: Context, folder: str | Path) -> ArmResult:
    """Evaluate a saved unlearnt-model folder (`interplab unlearn --out`) made from this organism, with the
    attack split of its seed; leaves the weights changed."""
    from interplab.unlearning.saved import apply_unlearnt, read_meta

    seed = int(read_meta(folder)["seed"])
    split = attack_split(ctx.organism.forget, seed, ctx.cfg.attack_train_fraction)
    reference = reference_acts(ctx, split)  # on the organism's weights, before the saved changes
    served, meta = apply_unlearnt(folder, ctx.organism, ctx.lm)
    return evaluate_served(ctx, served, f"{meta['method']} ({Path(folder).name})", seed, split, reference)


def reference_acts(ctx: Context, split: AttackSplit) -> dict[int, Tensor]:
    """The organism's activations on the attacker's items (weights must be the organism's)."""
    restore(ctx.lm, ctx.organism_weights)
    layers = removal_layers(ctx.cfg.direction, ctx.lm.n_layers)
    its = attack_items(split.train, ctx.organism.cfg.people, ctx.cfg.direction.forms)
    with compute_precision(ctx.cfg, ctx.lm.device):
        return token_acts(ServedModel(ctx.lm), its, layers)


def evaluate_methods(ctx: Context, methods: list[tuple[str, Any]], seeds: list[int],
                     on_result: Callable[[ArmResult], None] | None = None) -> list[ArmResult]:
    """The organism (reference), then per seed the gold standard and every (method, config)."""
    gold = ctx.organism.load("gold", str(ctx.lm.device))
    gold_weights = {k: v.detach().clone() for k, v in gold.model.state_dict().items()}
    del gold
    results = []
    first = attack_split(ctx.organism.forget, seeds[0], ctx.cfg.attack_train_fraction)
    restore(ctx.lm, ctx.organism_weights)
    reference_row = evaluate_served(ctx, ServedModel(ctx.lm), ORGANISM, seeds[0], first, None, attacks=False)
    results.append(reference_row)
    if on_result is not None:
        on_result(reference_row)
    for seed in seeds:
        split = attack_split(ctx.organism.forget, seed, ctx.cfg.attack_train_fraction)
        reference = reference_acts(ctx, split)
        for name, method_cfg in [(GOLD, None), *methods]:
            results.append(run_arm(ctx, name, method_cfg, seed, split, reference, gold_weights))
            if on_result is not None:
                on_result(results[-1])
    restore(ctx.lm, ctx.organism_weights)
    return results
