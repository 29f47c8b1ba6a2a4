"""Unlearning jobs: build a knowledge organism, unlearn with one method, evaluate methods side by side.

    organism = build_organism_run(OrganismConfig(), "runs/organism")
    unlearn_run("runs/organism", "rmu", RMUConfig(), seed=0, out="runs/rmu")
    unlearning_eval_run("runs/organism", "reports/unlearning", methods=["rmu", "npo"], seeds=[0, 1, 2])

Every check that can fail on user input (the output folder, the organism, method names, the text
source) runs before a model is loaded or trained.
"""

from __future__ import annotations

import resource
import time
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch

from interplab.common import InterplabError, cpu_threads, get_logger
from interplab.data.synthetic.fictional_people import PeopleConfig, Person, items, make_people, split_people
from interplab.data.text import load_texts
from interplab.models import LoadedModel, load_model
from interplab.pipelines.progress import progress_bar
from interplab.pipelines.run_folder import open_run
from interplab.reports import refuse_to_replace_report
from interplab.unlearning import (
    GOLD,
    METHODS,
    MODELS,
    ORGANISM,
    ArmResult,
    EvalConfig,
    KnowledgeOrganism,
    OrganismConfig,
    ServedModel,
    build_model,
    evaluate_methods,
    make_context,
    method,
    restore,
    run_saved,
    unlearn,
    write_card,
)

log = get_logger(__name__)


def _cpu_seconds() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def _qa_em(lm: LoadedModel, people: list[Person], cfg: PeopleConfig) -> float:
    from interplab.unlearning.scoring import score_answers

    return score_answers(ServedModel(lm), items(people, "qa", cfg)).accuracy()


def build_organism_run(cfg: OrganismConfig, out: str | Path, overwrite: bool = False, device: str | None = None,
                       threads: int | None = None, show_progress: bool = True) -> KnowledgeOrganism:
    """Build (or continue, or reuse) the organism folder `out`; returns the organism."""
    run = open_run(out, cfg.to_dict(), overwrite=overwrite)
    if run.finished:
        return KnowledgeOrganism.open(out)
    out = Path(out)
    build: dict[str, Any] = {}
    with cpu_threads(device, threads), progress_bar("fine-tuning", show=show_progress) as update:
        for which in MODELS:
            wall, cpu = time.perf_counter(), _cpu_seconds()

            def on_step(step: int, total: int, loss: float, which: str = which) -> None:
                update(step, total, f"fine-tuning {which} (loss {loss:.3f})")

            facts = build_model(cfg, which, out, device, on_step=on_step)
            facts.update(wall_s=round(time.perf_counter() - wall, 1), cpu_s=round(_cpu_seconds() - cpu, 1),
                         threads=torch.get_num_threads())
            build[which] = facts
        forget, retain = split_people(make_people(cfg.people))
        for which in MODELS:
            lm = load_model(out / which, kind="causal", device=device)
            build[which].update(forget_qa_em=_qa_em(lm, forget, cfg.people), retain_qa_em=_qa_em(lm, retain, cfg.people))
    write_card(out, cfg, build)
    run.mark_done(build)
    return KnowledgeOrganism.open(out)


def _text_source(source: str | None) -> list[str]:
    return load_texts(source or "wiki-en")


def unlearn_run(organism_dir: str | Path, method_name: str, method_cfg: Any = None, seed: int = 0,
                out: str | Path = "runs/unlearnt", overwrite: bool = False, device: str | None = None,
                text_source: str | None = None, eval_cfg: EvalConfig | None = None,
                threads: int | None = None) -> Path:
    """Apply one method to the organism and write the unlearnt-model folder `out` (see unlearning.saved)."""
    from interplab.unlearning.saved import META, save_unlearnt

    m = method(method_name)
    out = Path(out)
    if (out / META).exists() and not overwrite:
        raise InterplabError(f"{out} already holds an unlearnt model; pass --overwrite or choose another --out")
    organism = KnowledgeOrganism.open(organism_dir)
    eval_cfg = eval_cfg or EvalConfig()
    texts = _text_source(text_source)
    with cpu_threads(device, threads):
        ctx = make_context(organism, texts, eval_cfg, device)
        served = unlearn(ctx.lm, ctx.data, m.name, method_cfg if method_cfg is not None else m.config(), seed)
        (out / META).unlink(missing_ok=True)
        return save_unlearnt(out, served, organism, ctx.organism_weights, m.name,
                             method_cfg if method_cfg is not None else m.config(), seed)


def _method_list(names: Sequence[str], configs: dict[str, Any] | None) -> list[tuple[str, Any]]:
    chosen = list(METHODS) if list(names) == ["all"] else list(names)
    out = []
    for name in chosen:
        m = method(name)
        out.append((m.name, (configs or {}).get(m.name) or m.config()))
    return out


def unlearning_eval_run(organism_dir: str | Path, out: str | Path, methods: Sequence[str] = ("all",),
                        seeds: Sequence[int] = (0,), models: Sequence[str | Path] = (),
                        cfg: EvalConfig | None = None, method_configs: dict[str, Any] | None = None,
                        text_source: str | None = None, overwrite: bool = False, device: str | None = None,
                        threads: int | None = None, show_progress: bool = True) -> Path:
    """Evaluate `methods` (unlearnt on the fly, one model per seed) and saved unlearnt `models` against the
    organism and its gold standard; write the report folder `out` and return it."""
    from interplab.unlearning.report import summary_rows, write_report
    from interplab.unlearning.saved import read_meta

    cfg = cfg or EvalConfig()
    cfg.check()
    refuse_to_replace_report(out, overwrite)
    organism = KnowledgeOrganism.open(organism_dir)
    chosen = _method_list(methods, method_configs) if methods else []
    for folder in models:
        read_meta(folder)  # a wrong folder fails before anything loads
    if not seeds:
        raise InterplabError("give at least one seed")
    texts = _text_source(text_source)
    wall, cpu = time.perf_counter(), _cpu_seconds()
    n_arms = 1 + len(seeds) * (1 + len(chosen)) + len(models)
    results: list[ArmResult] = []
    with cpu_threads(device, threads), progress_bar("unlearning", n_arms, show=show_progress) as update:
        def done(r: ArmResult) -> None:
            results.append(r)
            update(len(results), n_arms, f"{r.method} seed {r.seed}: {r.verdict or 'reference'}")

        ctx = make_context(organism, texts, cfg, device)
        evaluate_methods(ctx, chosen, list(seeds), on_result=done)
        for folder in models:
            done(run_saved(ctx, folder))
            restore(ctx.lm, ctx.organism_weights)
    seconds = {"wall_s": round(time.perf_counter() - wall, 1), "cpu_s": round(_cpu_seconds() - cpu, 1),
               "threads": torch.get_num_threads()}
    summary = {"organism": str(Path(organism_dir)), "seeds": list(seeds), "methods": [m for m, _ in chosen],
               "verdicts": {row["method"]: row["verdict"] for row in summary_rows(results) if row["method"] != ORGANISM},
               "gold_standard": GOLD, **seconds}
    config = {"organism": str(Path(organism_dir).resolve()), "seeds": list(seeds), "models": [str(m) for m in models],
              "methods": {m: asdict(c) for m, c in chosen}, "eval": asdict(cfg), "text_source": text_source or "wiki-en"}
    return write_report(out, results, config, summary, overwrite=overwrite).parent


__all__ = ["build_organism_run", "cpu_threads", "unlearn_run", "unlearning_eval_run"]
