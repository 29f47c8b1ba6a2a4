"""The side-by-side unlearning table on a knowledge organism, one arm at a time, resumable.

Does what `interplab unlearning-eval` does (interplab.unlearning.evaluate: the organism's reference
row, then per seed the gold standard and every method), but appends each finished arm (method, seed)
to `<out>.arms.jsonl` as it goes and skips arms already there, so a run stopped early keeps what it
measured and a second run continues it. Arms other than the gold standard need only the organism's
model, so they can run while `interplab unlearning-organism` is still fine-tuning the gold standard
(`--no-gold`). At the end (or with `--report-only`) it writes the report folder `<out>` from every arm
in the file and prints the Markdown table (mean ± std over seeds) that docs/unlearning.md quotes, with
the wall and CPU seconds of the arms and the load average.

    interplab unlearning-organism --out runs/organism                  # once (the long part)
    python bench/unlearning.py --organism runs/organism --out runs/unlearning-table --seeds 0,1,2
    python bench/unlearning.py --organism runs/organism --out runs/t --seeds 0 --methods output-block,rmu --no-gold
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import time
from dataclasses import asdict
from pathlib import Path

import torch

from interplab.data.synthetic.fictional_people import make_people
from interplab.data.text import load_texts
from interplab.files import read_json_object
from interplab.pipelines.unlearning import cpu_threads
from interplab.unlearning import (
    GOLD,
    METHODS,
    ORGANISM,
    ArmResult,
    EvalConfig,
    KnowledgeOrganism,
    OrganismConfig,
    ServedModel,
    attack_split,
    make_context,
    method,
    reference_acts,
    restore,
)
from interplab.unlearning.evaluate import evaluate_served, run_arm
from interplab.unlearning.report import markdown_summary, summary_rows, write_report


def open_organism(folder: Path, need_gold: bool) -> KnowledgeOrganism:
    """The organism folder; without the gold standard it may still be building (no done.json yet)."""
    if need_gold or (folder / "done.json").exists():
        return KnowledgeOrganism.open(folder)
    cfg = OrganismConfig.from_dict(read_json_object(folder / "config.json", "organism config"), str(folder))
    return KnowledgeOrganism(folder, cfg, make_people(cfg.people))


def read_arms(path: Path) -> list[ArmResult]:
    if not path.exists():
        return []
    arms = []
    for line in path.read_text().splitlines():
        if line.strip():
            d = json.loads(line)
            d["relearn"], d["probe"], d["direction"] = ([tuple(p) for p in d[k]] for k in ("relearn", "probe", "direction"))
            arms.append(ArmResult(**d))
    return arms


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--organism", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True, help="report folder (replaced at the end)")
    parser.add_argument("--methods", default="all", help="comma-separated, or all")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--no-gold", action="store_true", help="skip the gold-standard arms (not built yet)")
    parser.add_argument("--report-only", action="store_true", help="write the report from the arms file only")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--device", default=None)
    args = parser.parse_args()

    arms_path = args.out.with_name(args.out.name + ".arms.jsonl")
    arms_path.parent.mkdir(parents=True, exist_ok=True)
    done = read_arms(arms_path)
    names = list(METHODS) if args.methods == "all" else [method(m.strip()).name for m in args.methods.split(",") if m.strip()]
    seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    load_before = os.getloadavg()
    start, cfg = time.perf_counter(), EvalConfig()

    def keep(r: ArmResult) -> None:
        done.append(r)
        with arms_path.open("a") as f:
            f.write(json.dumps(asdict(r)) + "\n")
        ev = r.evidence()
        print(f"[{time.perf_counter() - start:6.0f} s] {r.method} seed {r.seed}: {r.verdict or 'reference'} "
              f"(forget {r.metrics['forget_qa_em']:.2f}, retain {r.metrics['retain_qa_em']:.2f}, relearn "
              f"{ev.relearn_best}, probe {ev.probe_best}, direction {ev.direction_best}; "
              f"{sum(v for k, v in r.seconds.items() if k.endswith('wall')):.0f} s)", flush=True)

    def have(name: str, seed: int) -> bool:
        return any(r.method == name and (r.seed == seed or name == ORGANISM) for r in done)

    if not args.report_only:
        organism = open_organism(args.organism, need_gold=not args.no_gold)
        with cpu_threads(args.device, args.threads):
            ctx = make_context(organism, load_texts("wiki-en"), cfg, args.device)
            if not have(ORGANISM, seeds[0]):
                first = attack_split(organism.forget, seeds[0], cfg.attack_train_fraction)
                keep(evaluate_served(ctx, ServedModel(ctx.lm), ORGANISM, seeds[0], first, None, attacks=False))
            gold_weights = None
            if not args.no_gold:
                gold = organism.load("gold", str(ctx.lm.device))
                gold_weights = {k: v.detach().clone() for k, v in gold.model.state_dict().items()}
                del gold
            for seed in seeds:
                todo = [n for n in ([] if args.no_gold else [GOLD]) + names if not have(n, seed)]
                if not todo:
                    continue
                split = attack_split(organism.forget, seed, cfg.attack_train_fraction)
                reference = reference_acts(ctx, split)
                for name in todo:
                    keep(run_arm(ctx, name, None if name == GOLD else method(name).config(), seed, split, reference,
                                 gold_weights if gold_weights is not None else ctx.organism_weights))
                restore(ctx.lm, ctx.organism_weights)
            threads = torch.get_num_threads()
    else:
        threads = torch.get_num_threads()
    order = {name: i for i, name in enumerate([ORGANISM, GOLD, *METHODS])}
    arms = sorted(done, key=lambda r: (order.get(r.method, len(order)), r.seed))
    wall = sum(v for r in arms for k, v in r.seconds.items() if k.endswith("wall"))
    cpu = sum(v for r in arms for k, v in r.seconds.items() if k.endswith("cpu"))
    summary = {"organism": str(args.organism), "seeds": sorted({r.seed for r in arms}),
               "methods": [n for n in METHODS if any(r.method == n for r in arms)],
               "verdicts": {row["method"]: row["verdict"] for row in summary_rows(arms) if row["method"] != ORGANISM},
               "gold_standard": GOLD, "wall_s": round(wall, 1), "cpu_s": round(cpu, 1), "threads": threads}
    shutil.rmtree(args.out, ignore_errors=True)
    write_report(args.out, arms, {"organism": str(args.organism.resolve()), "eval": asdict(cfg),
                                  "arms_file": str(arms_path)}, summary)
    print(f"\n{args.out}: {len(arms)} arms, wall {wall:.0f} s, CPU {cpu:.0f} s (sums over arms), {threads} torch "
          f"threads, load average {load_before[0]:.1f} before, {os.getloadavg()[0]:.1f} after\n")
    print(markdown_summary(summary_rows(arms)))


if __name__ == "__main__":
    main()
