"""`analyze`: one call from a model to everything the web UI shows.

Stages (each recorded in stages.json when it finishes; a rerun after a kill or Ctrl-C skips finished
stages and resumes the running one from its own files):
1. split the corpus's documents into training and held-out documents (every 10th is held out);
2. per hook: cache activations of the training documents, and of the held-out ones;
3. per hook: train an SAE on the training store (resumable run folder);
4. per hook: evaluate it on the held-out store (FVU, L0, dead/dense; excluded sink positions stated)
   and, for causal LMs, CE/KL loss recovered with the SAE spliced in on held-out documents;
5. per hook: feature dashboards with logit effects into one SQLite database;
6. reports: the toy model of superposition, a probe study at the analysed layers, a steering sweep
   (causal LMs), explanations of the strongest latents;
then the interface serves it (`interplab analyze` ends with `interplab serve`).
Before any work a one-line estimate of time and disk is logged, from a measured forward pass and SAE step.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

from interplab.activations.cache import CacheConfig
from interplab.common import InterplabError, get_logger
from interplab.data.text import load_texts
from interplab.models.hookpoints import hook_names
from interplab.models.loading import LoadedModel, load_model
from interplab.pipelines.cache import cache_run
from interplab.pipelines.run_folder import open_run
from interplab.pipelines.stages import StageBook
from interplab.pipelines.train import StoreData, evaluate_on_data, train_sae_run
from interplab.saes import SAE, load_sae, make_sae, sae_config
from interplab.training import TrainConfig

log = get_logger(__name__)

HELD_OUT_EVERY = 10
"""Every 10th document of the corpus is held out: SAE evaluation reads only those."""


@dataclass
class AnalyzeConfig:
    """What `analyze` runs. The defaults fit SmolLM2-135M in about ten minutes on two CPU cores."""

    model: str = "smollm2-135m"
    """HF hub id, local folder, .gguf file or packaged name (smollm2-135m, minilm, gemma3-270m)."""
    data: str = "wiki-en"
    """Corpus: a packaged name (wiki-en, wiki-fr, wiki-es, demo) or a .txt/.jsonl/.parquet file or folder."""
    layers: str = "middle"
    """Comma-separated block indices to analyse (e.g. 6,15), or "middle" for the middle block."""
    site: str = "resid_post"
    """Hook site in each block: resid_post, resid_pre, mlp_out or attn_out."""
    context_size: int = 128
    """Tokens per sequence window."""
    train_tokens: int = 65_536
    """Token positions cached per hook for training (whole windows)."""
    eval_tokens: int = 8_192
    """Held-out token positions cached per hook for evaluation."""
    architecture: str = "topk"
    """SAE architecture (topk, batchtopk, relu, jumprelu, ...)."""
    expansion: int = 4
    """Latents per model dimension (d_sae = expansion × d_model)."""
    k: int = 32
    """TopK / BatchTopK: active latents per token."""
    steps: int = 600
    """SAE training steps."""
    batch_size: int = 1024
    """Activations per SAE training step."""
    lr: float = 1e-3
    """Peak SAE learning rate."""
    loss_texts: int = 24
    """Held-out documents for CE/KL loss recovered (causal LMs)."""
    probe: bool = True
    """Write a probe study report (residual vs SAE-feature probes) at the analysed layers."""
    steering: bool = True
    """Write a steering sweep report (causal LMs): a sentiment vector, target vs perplexity per coefficient."""
    toy: bool = True
    """Write the toy-model-of-superposition report (seconds, model-independent)."""
    explain_latents: int = 6
    """Latents of the first SAE explained and scored (0: none), sampled among those that fire in enough
    cached windows (`interplab explain` scores more)."""
    explain_examples: int = 8
    """Held-out windows per class the judge reads per latent (detection)."""
    seed: int = 0
    """Seed of the SAE init, data order and reports."""
    device: str | None = None
    """cpu, cuda, ... (None: CUDA when present)."""


@dataclass
class HookResult:
    """Where one hook's outputs are."""

    hook: str
    store: Path
    eval_store: Path
    run: Path
    evaluation: dict[str, Any]


@dataclass
class AnalyzeResult:
    """What an analyze folder holds, for the interface to serve."""

    out: Path
    model: str
    hooks: list[HookResult]
    db: Path
    reports: Path
    vectors: Path


def resolve_hooks(lm: LoadedModel, layers: str, site: str) -> list[str]:
    """Hook names for "middle" or comma-separated block indices, checked against the model."""
    if layers.strip() == "middle":
        picked = [lm.n_layers // 2]
    else:
        try:
            picked = [int(p) for p in layers.split(",") if p.strip()]
        except ValueError:
            raise InterplabError(f"--layers takes comma-separated block indices or 'middle', got {layers!r}") from None
    bad = [i for i in picked if not 0 <= i < lm.n_layers]
    if not picked or bad:
        raise InterplabError(f"layers {bad or picked} out of range; {lm.name} has blocks 0..{lm.n_layers - 1}")
    hooks = [f"blocks.{i}.{site}" for i in picked]
    unknown = [h for h in hooks if h not in hook_names(lm.model)]
    if unknown:
        raise InterplabError(f"no hook {unknown[0]} in {lm.name}; --site is one of resid_post, resid_pre, "
                             "mlp_out, attn_out")
    return hooks


def split_documents(texts: list[str]) -> tuple[list[str], list[str]]:
    """(training documents, held-out documents): every HELD_OUT_EVERY-th document is held out."""
    train = [t for i, t in enumerate(texts) if i % HELD_OUT_EVERY != HELD_OUT_EVERY - 1]
    held = [t for i, t in enumerate(texts) if i % HELD_OUT_EVERY == HELD_OUT_EVERY - 1]
    if not held or not train:
        raise InterplabError(f"the corpus has {len(texts)} documents; analyze needs at least {HELD_OUT_EVERY} "
                             "(one in ten is held out for evaluation)")
    return train, held


def _folder_name(hook: str) -> str:
    return hook.replace(".", "-")


def sae_for(cfg: AnalyzeConfig, d_model: int) -> dict[str, Any]:
    """The SAE config fields analyze sets (k only for the architectures that have it)."""
    fields: dict[str, Any] = {"d_in": d_model, "d_sae": cfg.expansion * d_model, "seed": cfg.seed}
    if cfg.architecture in ("topk", "batchtopk", "matryoshka"):
        fields["k"] = cfg.k
    return fields


def estimate(lm: LoadedModel, cfg: AnalyzeConfig, hooks: list[str]) -> str:
    """A one-line estimate of the time and disk the run takes, from a measured forward pass and SAE step."""
    from interplab.models.interventions import run_to_capture

    ids = torch.randint(0, int(lm.tokenizer.vocab_size), (4, cfg.context_size), device=lm.device)
    batch = {"input_ids": ids, "attention_mask": torch.ones_like(ids)}
    t0 = time.perf_counter()
    run_to_capture(lm.model, batch, hooks[-1])
    fwd_rate = ids.numel() / max(time.perf_counter() - t0, 1e-6)
    sae = make_sae(sae_config(cfg.architecture, **sae_for(cfg, lm.d_model)))
    x = torch.randn(cfg.batch_size, lm.d_model)
    t0 = time.perf_counter()
    sae.training_forward(x).loss.backward()
    step_s = time.perf_counter() - t0
    tokens = cfg.train_tokens + cfg.eval_tokens
    cache_s = tokens * len(hooks) / fwd_rate
    train_s = 1.3 * step_s * cfg.steps * len(hooks)  # + optimiser step
    disk_gb = tokens * len(hooks) * lm.d_model * 4 / 1e9
    total_min = (cache_s + train_s) * 1.5 / 60  # evaluation, dashboards, reports: about half again
    return (f"{len(hooks)} hook(s) × {tokens:,} tokens: about {disk_gb:.2f} GB of activations and "
            f"{math.ceil(total_min)} min here (forward {fwd_rate:,.0f} tok/s, SAE step {step_s * 1e3:.0f} ms)")


def _cache_stage(lm: LoadedModel, hook: str, folder: Path, texts: list[str], max_tokens: int,
                 cfg: AnalyzeConfig) -> dict[str, Any]:
    cache_cfg = CacheConfig(context_size=cfg.context_size, max_tokens=max_tokens, resume=folder.exists())
    store = cache_run(lm, hook, folder, texts, cache_cfg)
    return {"tokens": store.n_tokens, "shards": store.n_shards}


def _loss_recovered(lm: LoadedModel, sae: SAE, hook: str, texts: list[str], cfg: AnalyzeConfig) -> dict[str, Any]:
    from interplab.activations.exclusion import ExclusionRule
    from interplab.evals import loss_recovered_on_texts

    exclusion = ExclusionRule.from_json(sae.cfg.metadata.get("exclusion") or {})
    res = loss_recovered_on_texts(lm, texts[: cfg.loss_texts], hook, sae=sae.to(lm.device),
                                  max_length=cfg.context_size, exclusion=exclusion)
    return {f"heldout_{k}" if k != "n_tokens" else "heldout_loss_tokens": v for k, v in res._asdict().items()}


def _evaluate_stage(lm: LoadedModel, hr: HookResult, held_texts: list[str], cfg: AnalyzeConfig) -> dict[str, Any]:
    from interplab.files import write_json_atomic

    sae = load_sae(hr.run / "sae")
    result = {f"heldout_{k}": v for k, v in evaluate_on_data(sae, hr.eval_store, 64, 1024).items()}
    if lm.is_causal:
        result.update(_loss_recovered(lm, sae, hr.hook, held_texts, cfg))
    write_json_atomic(hr.run / "heldout_eval.json", result)
    return result


def run_analyze(cfg: AnalyzeConfig, out: str | Path, overwrite: bool = False) -> AnalyzeResult:
    """Run every stage of the analysis into `out` (see the module docstring); rerunning resumes."""
    out = Path(out)
    folder = open_run(out, {"analyze": asdict(cfg)}, overwrite=overwrite)
    book = StageBook(out, announce=_announce)
    lm = load_model(cfg.model, device=cfg.device)
    hooks = resolve_hooks(lm, cfg.layers, cfg.site)
    if not folder.finished and not book.records:
        log.info("estimate: %s", estimate(lm, cfg, hooks))
    train_texts, held_texts = split_documents(load_texts(cfg.data))
    results = []
    for hook in hooks:
        name = _folder_name(hook)
        hr = HookResult(hook, out / "stores" / name / "train", out / "stores" / name / "heldout",
                        out / "saes" / name, {})
        book.run(f"cache {hook}", _cache_stage, lm, hook, hr.store, train_texts, cfg.train_tokens, cfg)
        book.run(f"cache held-out {hook}", _cache_stage, lm, hook, hr.eval_store, held_texts, cfg.eval_tokens, cfg)
        book.run(f"train SAE {hook}", _train_stage, hr, lm, cfg)
        hr.evaluation = book.run(f"evaluate {hook}", _evaluate_stage, lm, hr, held_texts, cfg)
        results.append(hr)
    db = out / "dashboards.db"
    for hr in results:
        book.run(f"dashboards {hr.hook}", _dashboards_stage, lm, hr, db, cfg)
    reports, vectors = out / "reports", out / "vectors"
    _report_stages(book, lm, results, reports, vectors, cfg)
    folder.mark_done({hr.hook: hr.evaluation for hr in results})
    return AnalyzeResult(out, cfg.model, results, db, reports, vectors)


def _announce(name: str, skipped: bool) -> None:
    log.info("%s %s", "✓ already done:" if skipped else "▶", name)


def _train_stage(hr: HookResult, lm: LoadedModel, cfg: AnalyzeConfig) -> dict[str, Any]:
    sae_cfg = sae_config(cfg.architecture, **sae_for(cfg, lm.d_model))
    train_cfg = TrainConfig(total_steps=cfg.steps, batch_size=cfg.batch_size, lr=cfg.lr, seed=cfg.seed,
                            checkpoint_every=max(1, cfg.steps // 6), log_every=20, device=cfg.device)
    run = train_sae_run(hr.run, StoreData(hr.store), sae_cfg, train_cfg)
    return {"train_fvu": run.evaluation.get("fvu"), "train_l0": run.evaluation.get("l0")}


def _dashboards_stage(lm: LoadedModel, hr: HookResult, db: Path, cfg: AnalyzeConfig) -> dict[str, Any]:
    from interplab.dashboards import DashboardConfig, build_dashboards
    from interplab.pipelines.progress import progress_bar

    with progress_bar(f"dashboards {hr.hook}") as update:
        res = build_dashboards(hr.run / "sae", hr.store, str(db), DashboardConfig(seed=cfg.seed),
                               name=f"{lm.name} {hr.hook}", model=lm.source or cfg.model, resume=True,
                               device=cfg.device,
                               progress=lambda stage, done, total: update(done, total, f"dashboards: {stage}"))
    return {"sae_id": res.sae_id, "latents": res.n_latents}


def _report_stages(book: StageBook, lm: LoadedModel, results: list[HookResult], reports: Path, vectors: Path,
                   cfg: AnalyzeConfig) -> None:
    from interplab.pipelines import analyze_reports as R

    if cfg.toy:
        book.run("report: toy model of superposition", R.toy_report, reports / "toy", cfg.seed)
    if cfg.probe:
        book.run("report: probe study", R.probe_report, lm, results[0], reports / "probe", cfg)
    if cfg.steering and lm.is_causal:
        book.run("report: steering sweep", R.steering_report, lm, results[0].hook, reports / "steering", vectors, cfg)
    if cfg.explain_latents > 0:
        book.run("report: explanations", R.explain_report, lm, results[0], reports.parent / "dashboards.db",
                 reports / "explanations", cfg)
