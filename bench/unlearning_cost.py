"""Where one arm of the unlearning table spends its CPU time, part by part.

Times each part of `interplab.unlearning.evaluate.run_arm` on its own (CPU seconds of this process and
wall seconds, one torch thread by default): the served metrics (forget and retain sets in each form,
fluency), the probe attack (forward passes, probe fits), direction removal (activations, scoring),
the relearning attack (steps, evaluations) and every method's unlearning step. Costs depend on the
model's size and the organism's people, not on what the model knows, so `--stand-in` times a base
model with the organism's config before any organism is built.

    python bench/unlearning_cost.py --organism runs/organism
    python bench/unlearning_cost.py --stand-in smollm2-135m --people 120 --forget 40
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch

from interplab.data.synthetic.fictional_people import PeopleConfig, items, make_people
from interplab.data.text import load_texts
from interplab.models import load_model
from interplab.unlearning import (
    METHODS,
    EvalConfig,
    KnowledgeOrganism,
    OrganismConfig,
    ServedModel,
    attack_split,
    make_context,
    reference_acts,
    restore,
    unlearn,
)
from interplab.unlearning.direction_removal import attack_items, direction_removal, removal_layers, token_acts
from interplab.unlearning.metrics import fluency, qa_accuracy
from interplab.unlearning.probe_attack import probe_attack, probe_features
from interplab.unlearning.relearning import relearning_curve
from interplab.unlearning.scoring import score_answers, score_choices
from timing import cpu_seconds

ROWS: list[dict[str, Any]] = []


@contextmanager
def timed(part: str, **facts: Any) -> Iterator[None]:
    wall, cpu = time.perf_counter(), cpu_seconds()
    yield
    row = {"part": part, "cpu_s": round(cpu_seconds() - cpu, 2), "wall_s": round(time.perf_counter() - wall, 2), **facts}
    ROWS.append(row)
    print(json.dumps(row), flush=True)


def time_metrics(served: ServedModel, ctx: Any, tag: str) -> None:
    people_cfg = ctx.organism.cfg.people
    for who, people in (("forget", ctx.organism.forget), ("retain", ctx.retain_eval)):
        for form in ("qa", "paraphrase"):
            its = items(people, form, people_cfg)
            with timed(f"{tag}metrics {who} {form}", items=len(its)):
                score_answers(served, its)
        its = items(people, "mc", people_cfg)
        with timed(f"{tag}metrics {who} mc", items=len(its)):
            score_choices(served, its)
    with timed(f"{tag}metrics fluency", docs=len(ctx.fluency_texts)):
        fluency(served, ctx.fluency_texts, ctx.cfg.fluency_tokens)


def time_attacks(served: ServedModel, ctx: Any, split: Any, reference: dict, seed: int) -> None:
    people_cfg, cfg = ctx.organism.cfg.people, ctx.cfg
    with timed("probe features (every person)", people=len(ctx.organism.people)):
        features = probe_features(served, ctx.organism.people, people_cfg, cfg.probe, ctx.lm.n_layers)
    with timed("probe fits and choice", layers=len(features.layers)):
        result = probe_attack(features, ctx.organism.retain, split.train, split.held_out, cfg.probe, seed)
    print(json.dumps({"probe": result._asdict()}), flush=True)
    with timed("fingerprint"):
        served.fingerprint()
    layers = removal_layers(cfg.direction, ctx.lm.n_layers)
    with timed("direction: unlearnt activations", items=len(attack_items(split.train, people_cfg))):
        token_acts(served, attack_items(split.train, people_cfg), layers)
    with timed("direction removal (all)", layers=len(layers)):
        direction_removal(served, reference, split.train, split.held_out, people_cfg, layers)
    with timed("one held-out qa scoring", items=3 * len(split.held_out)):
        qa_accuracy(served, split.held_out, people_cfg)
    with timed("relearning (all)", steps=cfg.relearn.steps, evals=cfg.relearn.steps // cfg.relearn.eval_every + 1):
        relearning_curve(served, split.train, split.held_out, people_cfg, cfg.relearn, seed)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--organism", type=Path, help="a built organism folder")
    parser.add_argument("--stand-in", help="time this base model instead, with --people/--forget people")
    parser.add_argument("--people", type=int, default=120)
    parser.add_argument("--forget", type=int, default=40)
    parser.add_argument("--methods", default="all", help="methods whose unlearning step is timed (all, none, a,b)")
    parser.add_argument("--methods-only", action="store_true", help="time the unlearning steps only")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--json", type=Path, help="write the rows here")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    load = os.getloadavg()
    with timed("load model"):
        if args.organism:
            organism = KnowledgeOrganism.open(args.organism)
            lm = organism.load("organism", "cpu")
        else:
            cfg = OrganismConfig(base_model=args.stand_in, people=PeopleConfig(n_people=args.people, n_forget=args.forget))
            organism = KnowledgeOrganism(Path(tempfile.mkdtemp(prefix="unlearning-cost-")), cfg, make_people(cfg.people))
            lm = load_model(args.stand_in, kind="causal", device="cpu")
    ctx = make_context(organism, load_texts("wiki-en"), EvalConfig(), "cpu", lm=lm)
    split = attack_split(organism.forget, 0, ctx.cfg.attack_train_fraction)
    with timed("reference activations (once per seed)"):
        reference = reference_acts(ctx, split)
    served = ServedModel(ctx.lm)
    if not args.methods_only:
        time_metrics(served, ctx, "")
        time_attacks(served, ctx, split, reference, 0)
    names = [] if args.methods == "none" else list(METHODS) if args.methods == "all" else args.methods.split(",")
    for name in names:
        restore(ctx.lm, ctx.organism_weights)
        with timed(f"unlearn {name}"):
            out = unlearn(ctx.lm, ctx.data, name, None, 0)
        if out.edits or out.output_filter is not None:
            time_metrics(out, ctx, f"[{name}] ")
    restore(ctx.lm, ctx.organism_weights)
    print(json.dumps({"threads": args.threads, "load_before": load[0], "load_after": os.getloadavg()[0],
                      "eval": asdict(ctx.cfg)["probe"]}))
    if args.json:
        args.json.write_text(json.dumps({"rows": ROWS, "threads": args.threads, "load": [load[0], os.getloadavg()[0]]},
                                        indent=1))


if __name__ == "__main__":
    main()
