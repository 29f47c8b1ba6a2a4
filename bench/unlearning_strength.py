"""Bench: how hard each unlearning method pushes on a knowledge organism, before any attack.

The removal-vs-suppression table only says something about a method at a setting that makes the model
forget: a method too weak to lower forget accuracy is "not forgotten" whatever it does inside. This
bench runs each method over a small grid of settings (seed 0) and prints, per setting, forget and
retain exact match (trained question form, as served), held-out perplexity and CPU seconds. It
measures nothing the attacks measure (no relearning, probes or direction removal), so choosing a
method's default from it cannot favour a verdict.

Rule for a default: among the settings whose forget exact match is at most chance + the verdict's
margin (rule 1 of `interplab.unlearning.verdict`), those of the weakest tier (`GRID`: learning rate ×
steps, from the default outwards), and of those the one with the highest retain exact match. A method
with no such setting keeps its default, and the table says so.

    PYTHONPATH=src python bench/unlearning_strength.py --organism runs/organism --workers 2
    PYTHONPATH=src python bench/unlearning_strength.py --organism runs/organism --methods npo,rmu
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch

from interplab.data.text import load_texts
from interplab.unlearning import EvalConfig, KnowledgeOrganism, make_context, method, restore
from interplab.unlearning.methods import unlearn
from interplab.unlearning.metrics import chance_accuracy, fluency, qa_accuracy
from interplab.unlearning.verdict import VerdictConfig
from timing import cpu_seconds

# Tiers of strength, from the default outwards: the gradient methods at learning rates ×3 and ×10, then
# ×10 for twice the steps and ×30 (equal lr × steps share a tier); RMU at learning rates ×2 to ×60 (its
# loss barely moves at the default); SAE clamping with more latents and a harder clamp.
GRID: dict[str, list[list[dict[str, Any]]]] = {
    "gradient-ascent": [[{}], [{"lr": 3e-5}], [{"lr": 1e-4}]],
    "gradient-difference": [[{}], [{"lr": 3e-5}], [{"lr": 1e-4}], [{"lr": 1e-4, "steps": 40}], [{"lr": 3e-4}]],
    "npo": [[{}], [{"lr": 3e-5}], [{"lr": 1e-4}], [{"lr": 1e-4, "steps": 40}], [{"lr": 3e-4}]],
    "rmu": [[{}], [{"lr": 1e-4}, {"lr": 1e-4, "steer_scale": 8.0}], [{"lr": 1e-3}],
            [{"lr": 2e-3}, {"lr": 1e-3, "steps": 60}], [{"lr": 3e-3}]],
    "sae-clamp": [[{}], [{"n_latents": 64}, {"clamp_multiple": 20.0}], [{"n_latents": 64, "clamp_multiple": 20.0}]],
}

_CTX: dict[str, Any] = {}


def start_worker(organism_dir: Path, threads: int) -> None:
    torch.set_num_threads(threads)
    organism = KnowledgeOrganism.open(organism_dir)
    _CTX["ctx"] = make_context(organism, load_texts("wiki-en"), EvalConfig())


def run_method(name: str) -> list[dict[str, Any]]:
    """Every grid setting of one method, from the organism's weights each time."""
    ctx = _CTX["ctx"]
    people_cfg = ctx.organism.cfg.people
    rows = []
    for tier, change in ((t, c) for t, settings in enumerate(GRID[name]) for c in settings):
        restore(ctx.lm, ctx.organism_weights)
        torch.manual_seed(0)
        cfg = replace(method(name).config(), **change)
        cpu0 = cpu_seconds()
        served = unlearn(ctx.lm, ctx.data, name, cfg, seed=0)
        cpu_unlearn = cpu_seconds() - cpu0
        rows.append({"method": name, "tier": tier, "setting": change or "default",
                     "forget_em": qa_accuracy(served, ctx.organism.forget, people_cfg, with_filter=True),
                     "retain_em": qa_accuracy(served, ctx.retain_eval, people_cfg, with_filter=True),
                     "ppl": fluency(served, ctx.fluency_texts, ctx.cfg.fluency_tokens),
                     "unlearn_cpu_s": cpu_unlearn, "cpu_s": cpu_seconds() - cpu0})
    restore(ctx.lm, ctx.organism_weights)
    return rows


def choose(rows: list[dict[str, Any]], ceiling: float) -> dict[str, Any] | None:
    """The forgetting setting of the weakest tier; within a tier, the one with the best retain."""
    forgot = [r for r in rows if r["forget_em"] <= ceiling]
    if not forgot:
        return None
    tier = min(r["tier"] for r in forgot)
    return max((r for r in forgot if r["tier"] == tier), key=lambda r: r["retain_em"])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--organism", type=Path, required=True)
    ap.add_argument("--methods", default=",".join(GRID), help="comma-separated, among " + ", ".join(GRID))
    ap.add_argument("--workers", type=int, default=1, help="processes, one method each at a time")
    ap.add_argument("--threads", type=int, default=1, help="torch threads per worker")
    args = ap.parse_args()
    names = [m.strip() for m in args.methods.split(",") if m.strip()]
    unknown = [m for m in names if m not in GRID]
    if unknown:
        raise SystemExit(f"no grid for {', '.join(unknown)}; use some of {', '.join(GRID)}")
    organism = KnowledgeOrganism.open(args.organism)
    chance = chance_accuracy(organism.forget)
    ceiling = chance + VerdictConfig().margin
    load0, t0 = os.getloadavg()[0], time.perf_counter()
    results: dict[str, list[dict[str, Any]]] = {}
    with ProcessPoolExecutor(max(1, args.workers), multiprocessing.get_context("spawn"), start_worker,
                             (args.organism, args.threads)) as pool:
        futures = {pool.submit(run_method, n): n for n in names}
        for fut in as_completed(futures):
            results[futures[fut]] = fut.result()
            print(f"[{time.perf_counter() - t0:5.0f} s] {futures[fut]} done", flush=True)
    print(f"\norganism {args.organism}: forget chance {chance:.2f}, forgotten at forget EM <= {ceiling:.2f}; "
          f"{time.perf_counter() - t0:.0f} s wall, load average {load0:.1f} before, {os.getloadavg()[0]:.1f} after\n")
    print("| method | tier | setting | forget EM | retain EM | held-out ppl | unlearning CPU s | chosen |")
    print("| --- | ---: | --- | ---: | ---: | ---: | ---: | --- |")
    for name in names:
        pick = choose(results[name], ceiling)
        for r in results[name]:
            setting = "default" if r["setting"] == "default" else ", ".join(f"{k} {v:g}" for k, v in r["setting"].items())
            mark = "yes" if r is pick else ("none forgets" if pick is None and r is results[name][0] else "")
            print(f"| {name} | {r['tier']} | {setting} | {r['forget_em']:.2f} | {r['retain_em']:.2f} | {r['ppl']:.1f} | "
                  f"{r['unlearn_cpu_s']:.0f} | {mark} |")


if __name__ == "__main__":
    main()
