"""Coefficient sweep: how much of the target behaviour a steering vector buys, and what it costs in coherence.

For each coefficient c (in units of the hook's median activation norm, units.py):
1. Generate completions of the prompts with c * vector.step_D() added (`apply.generate`, greedy by default).
2. Target: the keyword rate (fraction of completions containing any keyword, case-insensitive), or a
   probe score (mean over completions of a linear probe's P(positive), or of the projection on a unit
   direction, read at a hook of the *unsteered* model over the completion tokens).
3. Coherence: perplexity of the completion tokens under the unsteered model given the prompt. Steering
   that "works" by producing gibberish shows up as a perplexity blow-up next to the target gain.

The run folder is a report folder (interplab.reports, so the web UI shows it): config.json,
tables/sweep.csv + .json (one row per coefficient), generations.jsonl, figures/sweep.png +
figures/sweep.html (offline, hover for numbers), index.json last.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

import torch
from torch import Tensor
from torch.nn import functional as F

from interplab.common import InterplabError
from interplab.files import write_text_atomic
from interplab.models.interventions import run_to_capture
from interplab.models.loading import LoadedModel
from interplab.probes import LinearProbe, LinearProbeConfig, train_linear_probe
from interplab.reports.index import FigureEntry
from interplab.reports.writer import ReportWriter
from interplab.steering.apply import Generation, GenerationSettings, generate
from interplab.steering.units import DEFAULT_SWEEP, calibrate
from interplab.steering.vectors import ContrastConfig, ContrastPair, SteeringVector, pooled_activations


@dataclass
class SweepConfig:
    """Which coefficients, where, and how text is generated."""

    coefs: list[float] = field(default_factory=lambda: list(DEFAULT_SWEEP))
    """Coefficients tried, in order, in units of the hook's median activation norm (0 is the unsteered
    baseline; fluent steering lies below ~0.5, see units.py)."""
    positions: list[int] | None = None
    """Absolute token positions to steer; None steers every position, generated tokens included."""
    generation: GenerationSettings = field(default_factory=GenerationSettings)
    """Decoding settings shared by every coefficient."""


class Target(Protocol):
    """A behaviour measured on (prompt, completion) pairs; larger means more of it."""

    name: str

    def score(self, lm: LoadedModel, generations: Sequence[Generation]) -> float: ...


@dataclass
class KeywordTarget:
    """Fraction of completions that contain at least one keyword (case-insensitive)."""

    keywords: list[str]
    name: str = "keyword_rate"

    def score(self, lm: LoadedModel, generations: Sequence[Generation]) -> float:
        if not self.keywords:
            raise InterplabError("no keywords given; pass --keywords word1,word2 or use a probe target")
        words = [k.lower() for k in self.keywords]
        return sum(any(w in g.text.lower() for w in words) for g in generations) / max(len(generations), 1)


@dataclass
class ProbeTarget:
    """Mean probe score of the completions, read by the unsteered model at `hook`.

    With a LinearProbe: mean P(positive). With a bare direction: mean projection on its unit vector.
    """

    hook: str
    probe: LinearProbe | None = None
    direction_D: Tensor | None = None
    name: str = "probe_score"

    def _score_rows(self, acts_ND: Tensor) -> Tensor:
        if self.probe is not None:
            return self.probe.predict_proba(acts_ND)
        if self.direction_D is None:
            raise InterplabError("a probe target needs a LinearProbe or a direction; pass --probe-vector")
        unit_D = self.direction_D.double() / self.direction_D.double().norm().clamp_min(1e-12)
        return acts_ND.double() @ unit_D

    def score(self, lm: LoadedModel, generations: Sequence[Generation]) -> float:
        values = []
        for g in generations:
            if not g.new_ids:
                continue
            ids_1T = torch.tensor([g.prompt_ids + g.new_ids], device=lm.device)
            acts_TD = run_to_capture(lm.model, {"input_ids": ids_1T}, self.hook)[self.hook][0]
            mean_1D = acts_TD[len(g.prompt_ids) :].float().mean(0, keepdim=True).cpu()
            values.append(float(self._score_rows(mean_1D)[0]))
        return sum(values) / len(values) if values else float("nan")


def probe_from_pairs(
    lm: LoadedModel, pairs: Sequence[ContrastPair], hook: str, cfg: LinearProbeConfig | None = None
) -> LinearProbe:
    """A logistic probe (positive texts = 1, negative = 0) on token-mean activations at `hook`.

    Mean pooling matches how ProbeTarget reads completions (mean over the generated tokens).
    """
    if len(pairs) < 2:
        raise InterplabError(
            "a probe target needs at least 2 contrast pairs; add more lines to the pairs file"
        )
    pooling = ContrastConfig(pooling="mean")
    prompts = [p.prompt for p in pairs]
    pos_ND = pooled_activations(lm, prompts, [p.positive for p in pairs], hook, pooling)
    neg_ND = pooled_activations(lm, prompts, [p.negative for p in pairs], hook, pooling)
    y_N = torch.cat([torch.ones(len(pairs)), torch.zeros(len(pairs))]).long()
    return train_linear_probe(torch.cat([pos_ND, neg_ND]), y_N, cfg or LinearProbeConfig(device="cpu"))


def perplexity(lm: LoadedModel, generations: Sequence[Generation]) -> float:
    """exp(mean NLL) of all completion tokens, each given its prompt and earlier completion tokens."""
    nll, count = 0.0, 0
    for g in generations:
        if not g.new_ids:
            continue
        ids_1T = torch.tensor([g.prompt_ids + g.new_ids], device=lm.device)
        with torch.no_grad():
            logits_TV = lm.model(input_ids=ids_1T).logits[0].float()
        start = len(g.prompt_ids)
        # logits at t predict token t+1: completion tokens start..T-1 are predicted from start-1..T-2
        targets_N = ids_1T[0, start:]
        nll += float(F.cross_entropy(logits_TV[start - 1 : -1], targets_N, reduction="sum"))
        count += len(targets_N)
    return math.exp(nll / count) if count else float("nan")


@dataclass
class SweepRow:
    """One coefficient's outcome."""

    coef: float
    target: float
    perplexity: float
    mean_new_tokens: float
    example: str


def sweep(
    lm: LoadedModel,
    vector: SteeringVector,
    prompts: Sequence[str],
    target: Target,
    cfg: SweepConfig | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> tuple[list[SweepRow], dict[float, list[Generation]]]:
    """Rows (one per coefficient) and the generations behind them."""
    cfg = cfg or SweepConfig()
    if not cfg.coefs:
        raise InterplabError("no coefficients to sweep; pass e.g. --coefs=-0.5,0,0.5")
    if not prompts:
        raise InterplabError("no prompts to sweep over; pass --prompts (a .txt file, one prompt per line)")
    vector = calibrate(vector, lm)  # measure the unit once, not per coefficient
    rows, outputs = [], {}
    for i, coef in enumerate(cfg.coefs):
        if progress is not None:
            progress(i, len(cfg.coefs))
        gens = generate(lm, prompts, vector, coef, cfg.positions, cfg.generation)
        outputs[coef] = gens
        rows.append(
            SweepRow(
                coef=coef,
                target=target.score(lm, gens),
                perplexity=perplexity(lm, gens),
                mean_new_tokens=sum(len(g.new_ids) for g in gens) / len(gens),
                example=gens[0].text,
            )
        )
    if progress is not None:
        progress(len(cfg.coefs), len(cfg.coefs))
    return rows, outputs


def write_sweep(
    out: str | Path,
    rows: Sequence[SweepRow],
    outputs: dict[float, list[Generation]],
    prompts: Sequence[str],
    target_name: str,
    config: dict[str, Any],
    overwrite: bool = False,
) -> Path:
    """Write the run folder (tables, generations, PNG + HTML figure, index.json last); return index.json."""
    from interplab.steering.sweep_plot import SWEEP_CAPTION, sweep_html, sweep_png

    writer = ReportWriter(out, "Steering coefficient sweep", "steering-sweep", overwrite=overwrite)
    writer.write_config(config)
    writer.table(
        "sweep",
        [{**asdict(r), "target_name": target_name} for r in rows],
        "Target vs perplexity per coefficient",
    )
    lines = [
        json.dumps({"coef": coef, "prompt": prompt, "completion": g.text}) + "\n"
        for coef, gens in outputs.items()
        for prompt, g in zip(prompts, gens, strict=True)
    ]
    write_text_atomic(writer.folder / "generations.jsonl", "".join(lines))
    title = f"Steering sweep: {target_name} and perplexity vs coefficient"
    sweep_png(rows, target_name, writer.figure_path("sweep", "png"), title)
    sweep_html(rows, target_name, writer.figure_path("sweep", "html"), title)
    writer.add_figure(FigureEntry(name="sweep", title=title, png="figures/sweep.png", html="figures/sweep.html",
                                  caption=SWEEP_CAPTION))
    for r in rows:
        writer.log_metric(coef=r.coef, target=r.target, perplexity=r.perplexity)
    best = max(rows, key=lambda r: r.target if math.isfinite(r.target) else -math.inf)
    return writer.finish(
        {"target": target_name, "n_coefs": len(rows), "best_coef": best.coef, "best_target": best.target}
    )
