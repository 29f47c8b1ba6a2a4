"""The side-by-side unlearning table on a knowledge organism, one arm at a time, resumable.

Does what `interplab unlearning-eval` does (interplab.unlearning.evaluate: the organism's reference
row, then per seed the gold standard and every method), but appends the finished arms (method, seed)
of each method to `<out>.arms.jsonl` as it goes and skips arms already there, so a run stopped early
keeps what it measured and a second run continues it. `--workers 2` runs two tasks at a time (one seed
of a method, or every seed of an arm whose served model does not depend on it) in two single-threaded
processes (on small batches one process per core beats two threads in one process, and far more so on
a busy machine). Arms other than the gold standard need only the organism's model, so they can run
while `interplab unlearning-organism` is still fine-tuning the gold standard (`--no-gold`). At the end
(or with `--report-only`) it writes the report folder `<out>` from every arm in the file and prints
the Markdown table (mean ± std over seeds) that docs/unlearning.md quotes, with the wall and CPU
seconds of the arms and the load average.

    interplab unlearning-organism --out runs/organism                  # once (the long part)
    python bench/unlearning.py --organism runs/organism --out runs/unlearning-table --seeds 0,1,2 --workers 2
    python bench/unlearning.py --organism runs/organism --out runs/t --seeds 0 --methods output-block,rmu --no-gold
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import shutil
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict
from pathlib import Path

import torch

from interplab.data.synthetic.fictional_people import make_people
from interplab.data.text import load_texts
from interplab.files import read_json_object
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
from timing import cpu_seconds


def open_organism(folder: Path, need_gold: bool) -> KnowledgeOrganism:
    """The organism folder; without the gold standard it may still be building (no done.json yet)."""
    if need_gold or (folder / "done.json").exists():
        return KnowledgeOrganism.open(folder)
    cfg = OrganismConfig.from_dict(read_json_object(folder / "config.json", "organism config"), str(folder))
    return KnowledgeOrganism(folder, cfg, make_people(cfg.people))


def read_arms(path: Path) -> list[ArmResult]:
    if not path.exists():
        return []
    return [as_arm(json.loads(line)) for line in path.read_text().splitlines() if line.strip()]


# Longest task first, so that parallel workers finish together (the order of their CPU seconds on
# SmolLM2-135M, docs/unlearning.md "Cost"). Methods run one task per seed; the arms whose served
# model does not depend on the seed (the gold standard, the output filter, SAE clamping: its SAE belongs
# to the organism) keep all their seeds in one task, so their metrics and probe features are measured
# once; the reference row is short and goes last.
COST_ORDER = ("sae-clamp", "npo", "gradient-difference", GOLD, "output-block", "gradient-ascent", "rmu", ORGANISM)
SEED_FREE = (GOLD, "output-block", "sae-clamp", ORGANISM)

_WORKER: dict = {}


def start_worker(organism_dir: Path, need_gold: bool, threads: int | None, device: str | None,
                 dtype: str = "float32") -> None:
    """Load the organism (and the gold standard's weights) into this process, once."""
    torch.set_num_threads(threads or 1)
    organism = open_organism(organism_dir, need_gold)
    ctx = make_context(organism, load_texts("wiki-en"), EvalConfig(dtype=dtype), device)
    gold = None
    if need_gold:
        model = organism.load("gold", str(ctx.lm.device)).model
        gold = {k: v.detach().clone() for k, v in model.state_dict().items()}
    _WORKER.update(ctx=ctx, gold=gold, reference={})


def run_task(name: str, seeds: list[int]) -> list[dict]:
    """Every arm of one method (all its seeds in one process, so seed-free measurements are reused)."""
    ctx = _WORKER["ctx"]
    out = []
    for seed in seeds:
        split = attack_split(ctx.organism.forget, seed, ctx.cfg.attack_train_fraction)
        if name == ORGANISM:
            restore(ctx.lm, ctx.organism_weights)
            out.append(asdict(evaluate_served(ctx, ServedModel(ctx.lm), ORGANISM, seed, split, None, attacks=False)))
            continue
        if seed not in _WORKER["reference"]:
            _WORKER["reference"][seed] = reference_acts(ctx, split)
        gold = _WORKER["gold"] if _WORKER["gold"] is not None else ctx.organism_weights
        out.append(asdict(run_arm(ctx, name, None if name == GOLD else method(name).config(), seed, split,
                                  _WORKER["reference"][seed], gold)))
    restore(ctx.lm, ctx.organism_weights)
    return out


def plan(names: list[str], seeds: list[int], gold: bool, done: list[ArmResult]) -> list[tuple[str, list[int]]]:
    """(method, seeds still to run) tasks, longest first: one per seed, or one per seed-free arm."""
    def have(name: str, seed: int) -> bool:
        return any(r.method == name and (r.seed == seed or name == ORGANISM) for r in done)

    wanted = {ORGANISM: seeds[:1], **({GOLD: seeds} if gold else {}), **{n: seeds for n in names}}
    todo = {n: [s for s in wanted[n] if not have(n, s)] for n in wanted}
    tasks: list[tuple[str, list[int]]] = []
    for n, t in todo.items():
        if t:
            tasks += [(n, t)] if n in SEED_FREE else [(n, [s]) for s in t]
    rank = {n: i for i, n in enumerate(COST_ORDER)}
    return sorted(tasks, key=lambda t: rank.get(t[0], -1))


def as_arm(d: dict) -> ArmResult:
    d = dict(d)
    d["relearn"], d["probe"], d["direction"] = ([tuple(p) for p in d[k]] for k in ("relearn", "probe", "direction"))
    return ArmResult(**d)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--organism", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True, help="report folder (replaced at the end)")
    parser.add_argument("--methods", default="all", help="comma-separated, or all")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--no-gold", action="store_true", help="skip the gold-standard arms (not built yet)")
    parser.add_argument("--report-only", action="store_true", help="write the report from the arms file only")
    parser.add_argument("--workers", type=int, default=1,
                        help="processes running methods side by side (one per core beats threads on small batches)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads per worker (default 1)")
    parser.add_argument("--device", default=None)
    parser.add_argument("--dtype", default="float32", choices=("float32", "bfloat16"),
                        help="compute dtype of every model run (EvalConfig.dtype); keep one per arms file")
    args = parser.parse_args()

    arms_path = args.out.with_name(args.out.name + ".arms.jsonl")
    arms_path.parent.mkdir(parents=True, exist_ok=True)
    done = read_arms(arms_path)
    other = next((r.dtype for r in done if r.dtype != args.dtype), None)
    if other is not None:
        raise SystemExit(f"{arms_path} holds arms measured in {other}; pass --dtype {other} or another --out")
    names = list(METHODS) if args.methods == "all" else [method(m.strip()).name for m in args.methods.split(",") if m.strip()]
    seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    load_before = os.getloadavg()
    start, cpu_start = time.perf_counter(), cpu_seconds()

    def keep(rows: list[dict]) -> None:
        for d in rows:
            r = as_arm(d)
            done.append(r)
            with arms_path.open("a") as f:
                f.write(json.dumps(d) + "\n")
            ev = r.evidence()
            print(f"[{time.perf_counter() - start:6.0f} s] {r.method} seed {r.seed}: {r.verdict or 'reference'} "
                  f"(forget {r.metrics['forget_qa_em']:.2f}, retain {r.metrics['retain_qa_em']:.2f}, relearn "
                  f"{ev.relearn_best}, probe {ev.probe_best} ({r.probe_choice}), direction {ev.direction_best}; "
                  f"{sum(v for k, v in r.seconds.items() if k.endswith('cpu')):.0f} CPU s)", flush=True)

    tasks = [] if args.report_only else plan(names, seeds, not args.no_gold, done)
    if tasks and args.workers <= 1:
        start_worker(args.organism, not args.no_gold, args.threads, args.device, args.dtype)
        for name, todo in tasks:
            keep(run_task(name, todo))
    elif tasks:
        ctx = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(args.workers, ctx, start_worker,
                                 (args.organism, not args.no_gold, args.threads, args.device, args.dtype)) as pool:
            for future in as_completed([pool.submit(run_task, n, t) for n, t in tasks]):
                keep(future.result())
    wall_table = time.perf_counter() - start
    order = {name: i for i, name in enumerate([ORGANISM, GOLD, *METHODS])}
    arms = sorted(done, key=lambda r: (order.get(r.method, len(order)), r.seed))
    cpu = sum(v for r in arms for k, v in r.seconds.items() if k.endswith("cpu"))
    summary = {"organism": str(args.organism), "seeds": sorted({r.seed for r in arms}),
               "methods": [n for n in METHODS if any(r.method == n for r in arms)],
               "verdicts": {row["method"]: row["verdict"] for row in summary_rows(arms) if row["method"] != ORGANISM},
               "gold_standard": GOLD, "cpu_s_arms": round(cpu, 1), "wall_s_this_run": round(wall_table, 1),
               "workers": args.workers, "dtype": args.dtype}
    shutil.rmtree(args.out, ignore_errors=True)
    write_report(args.out, arms, {"organism": str(args.organism.resolve()), "eval": asdict(EvalConfig(dtype=args.dtype)),
                                  "arms_file": str(arms_path)}, summary)
    print(f"\n{args.out}: {len(arms)} arms; this run {wall_table:.0f} s wall with {args.workers} worker(s) "
          f"({cpu_seconds() - cpu_start:.0f} CPU s in this process); CPU s summed over all arms {cpu:.0f}; load "
          f"average {load_before[0]:.1f} before, {os.getloadavg()[0]:.1f} after\n")
    print(markdown_summary(summary_rows(arms)))


if __name__ == "__main__":
    main()
