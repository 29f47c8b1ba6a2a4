"""`interplab unlearning-organism`, `interplab unlearn` and `interplab unlearning-eval` over
`interplab.pipelines.unlearning`. Options come from the config dataclasses (`PeopleConfig`,
`FinetuneConfig`, every method's config, `EvalConfig` and the attacks' configs)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import typer

from interplab.commands.options import (
    command,
    dataclass_options,
    option,
    pick_fields,
    union_options,
    values_for,
)
from interplab.data.synthetic.fictional_people import PeopleConfig
from interplab.training.causal_lm import FinetuneConfig
from interplab.unlearning import (
    METHODS,
    DirectionRemovalConfig,
    EvalConfig,
    ProbeAttackConfig,
    RelearnConfig,
    VerdictConfig,
)

_PEOPLE_RENAME = {"seed": "people_seed"}
_FT_RENAME = {"seed": "finetune_seed"}
_RELEARN_RENAME = {f.name: f"relearn_{f.name}" for f in dataclasses.fields(RelearnConfig)}
_PROBE_RENAME = {"attribute": "probe_attribute", "C": "probe_c", "concat": "probe_concat"}
_NESTED = ("relearn", "probe", "direction", "verdict")


def _method_classes() -> dict[str, type]:
    return {name: m.config for name, m in METHODS.items()}


def _method_fields() -> list[str]:
    return sorted({f.name for cls in _method_classes().values() for f in dataclasses.fields(cls)})


def _run_options() -> list:
    return [
        option("data", None, "General text: packaged corpus (wiki-en, ...), file or folder (default wiki-en); the last "
               "documents are held out for fluency, the first ones go to methods that use text.", str | None, "Run"),
        option("device", None, "cpu, cuda, ... (default: CUDA when present).", str | None, "Run"),
        option("threads", None, "CPU threads (default: the cores not busy with other work).", int | None, "Run"),
        option("overwrite", False, "Replace what --out already holds.", bool, "Run"),
    ]


def register(app: typer.Typer) -> None:
    organism = [
        option("out", ..., "Organism folder (created): organism/, gold/, card.json, card.md.", Path, "Organism"),
        option("model", "smollm2-135m", "Base model: packaged name, hub id or folder.", str, "Organism"),
        *dataclass_options(PeopleConfig, "People", exclude=("cities", "jobs"), rename=_PEOPLE_RENAME),
        *dataclass_options(FinetuneConfig, "Fine-tuning", rename=_FT_RENAME),
        *[p for p in _run_options() if p.name != "data"],
    ]
    app.command("unlearning-organism")(command(
        organism, _organism, "Build a knowledge organism: a model fine-tuned on facts about fictional people, and "
        "its gold standard (the same fine-tuning without the forget set).", "unlearning-organism"))
    unlearn_params = [
        option("organism", ..., "Organism folder (from `interplab unlearning-organism`).", Path, "Unlearning"),
        option("method", ..., f"One of: {', '.join(METHODS)}.", str, "Unlearning"),
        option("out", ..., "Unlearnt-model folder (created): unlearning.json, weights.safetensors (changed "
               "tensors only), sae/.", Path, "Unlearning"),
        option("seed", 0, "Seed of the method (data order, random vectors).", int, "Unlearning"),
        *union_options(_method_classes(), "Method settings"),
        *_run_options(),
    ]
    app.command("unlearn")(command(unlearn_params, _unlearn, "Unlearn the organism's forget set with one method "
                                   "and save what changed.", "unlearn"))
    eval_params = [
        option("organism", ..., "Organism folder (from `interplab unlearning-organism`).", Path, "Evaluation"),
        option("out", ..., "Report folder (created; listed by `interplab serve --reports`).", Path, "Evaluation"),
        option("methods", "all", f"Methods to unlearn and evaluate, comma-separated: all, none or some of "
               f"{', '.join(METHODS)}.", str, "Evaluation"),
        option("seeds", "0", "Seeds, comma-separated (e.g. 0,1,2): one unlearnt model per method and seed.", str,
               "Evaluation"),
        option("model", [], "Saved unlearnt-model folder (from `interplab unlearn`) to evaluate too; repeatable.",
               list[Path], "Evaluation"),
        option("method_config", None, "JSON file {method: {field: value}} of method settings (defaults otherwise).",
               Path | None, "Evaluation"),
        *dataclass_options(EvalConfig, "Evaluation", exclude=_NESTED),
        *dataclass_options(RelearnConfig, "Relearning attack", rename=_RELEARN_RENAME),
        *dataclass_options(ProbeAttackConfig, "Probe attack", exclude=("layers", "positions"), rename=_PROBE_RENAME),
        option("probe_positions", None, "Prompt positions the probes read, comma-separated: last, name_last, "
               "name_mean (default: all three; the validation people choose).", str | None, "Probe attack"),
        option("probe_layers", None, "Layers to probe, comma-separated (default: every 4th layer and the last 4).",
               str | None, "Probe attack"),
        option("direction_layers", None, "Layers for direction removal, comma-separated (default: 1/4, 1/2, 3/4 "
               "of the depth).", str | None, "Direction removal"),
        *dataclass_options(VerdictConfig, "Verdict"),
        *_run_options(),
    ]
    app.command("unlearning-eval")(command(eval_params, _eval, "Evaluate unlearning methods side by side on a "
                                           "knowledge organism: metrics, attacks, a verdict per method.",
                                           "unlearning-eval"))


def _organism(values: dict[str, Any]) -> None:
    from rich.console import Console

    from interplab.pipelines.unlearning import build_organism_run
    from interplab.unlearning import OrganismConfig

    people = values_for(PeopleConfig, values, _PEOPLE_RENAME)
    people.check()
    cfg = OrganismConfig(values["model"], people, values_for(FinetuneConfig, values, _FT_RENAME))
    cfg.finetune.check()
    organism = build_organism_run(cfg, values["out"], values["overwrite"], values["device"], values["threads"])
    build = json.loads((organism.folder / "card.json").read_text())["build"]
    Console(stderr=True).print(
        f"organism in {organism.folder}: " + "; ".join(
            f"{w} forget {b.get('forget_qa_em', float('nan')):.2f} retain {b.get('retain_qa_em', float('nan')):.2f}"
            for w, b in build.items()) + " (exact match, question form); card: card.md")


def _unlearn(values: dict[str, Any]) -> None:
    from rich.console import Console

    from interplab.pipelines.unlearning import unlearn_run
    from interplab.unlearning import method

    m = method(values["method"])
    cfg = m.config(**pick_fields(values, m.config, f"--method {m.name}", _method_fields()))
    folder = unlearn_run(values["organism"], m.name, cfg, values["seed"], values["out"], values["overwrite"],
                         values["device"], values["data"], threads=values["threads"])
    Console(stderr=True).print(f"{m.name} (seed {values['seed']}) -> {folder}; evaluate it with "
                               f"`interplab unlearning-eval --organism {values['organism']} --methods none "
                               f"--model {folder} --out REPORT`")


def _ints(text: str | None, what: str) -> tuple[int, ...] | None:
    from interplab.common import InterplabError

    if text is None:
        return None
    try:
        return tuple(int(t) for t in text.split(",") if t.strip())
    except ValueError:
        raise InterplabError(f"{what} must be comma-separated integers, got {text!r}") from None


def _positions(text: str | None) -> dict[str, tuple[str, ...]]:
    return {} if text is None else {"positions": tuple(t.strip() for t in text.split(",") if t.strip())}


def _method_configs(path: Path | None) -> dict[str, Any]:
    from interplab.configs import from_json_dict
    from interplab.files import read_json_object
    from interplab.unlearning import method

    if path is None:
        return {}
    data = read_json_object(path, "method settings")
    return {method(name).name: from_json_dict(method(name).config, fields, f"{path} [{name}]")
            for name, fields in data.items()}


def _eval(values: dict[str, Any]) -> None:
    from rich.console import Console

    from interplab.pipelines.unlearning import unlearning_eval_run

    cfg = values_for(EvalConfig, values, relearn=values_for(RelearnConfig, values, _RELEARN_RENAME),
                     probe=values_for(ProbeAttackConfig, values, _PROBE_RENAME,
                                      layers=_ints(values["probe_layers"], "--probe-layers"),
                                      **_positions(values["probe_positions"])),
                     direction=DirectionRemovalConfig(_ints(values["direction_layers"], "--direction-layers")),
                     verdict=values_for(VerdictConfig, values))
    methods = [] if values["methods"].strip() == "none" else [m.strip() for m in values["methods"].split(",") if m.strip()]
    seeds = list(_ints(values["seeds"], "--seeds") or ())
    folder = unlearning_eval_run(values["organism"], values["out"], methods, seeds, values["model"], cfg,
                                 _method_configs(values["method_config"]), values["data"], values["overwrite"],
                                 values["device"], values["threads"])
    summary = json.loads((folder / "index.json").read_text())["summary"]
    lines = [f"  {m}: {v}" for m, v in summary.get("verdicts", {}).items()]
    Console(stderr=True).print(f"wrote {folder}/index.json ({summary['wall_s']:.0f} s, {summary['cpu_s']:.0f} CPU-s); "
                               "verdicts (seeds with each):\n" + "\n".join(lines))
