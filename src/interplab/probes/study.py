"""The answerability probing study (Heindrich, Torr, Barez, Thost 2025, arXiv:2502.19964), on any model.

1. Load each dataset (synthetic Equations / Celebrity, or SQuAD-v2 / BoolQ / IDK files), balanced, seeded.
2. Read pooled activations ("Context: ... Question: ... Answer:", last token) at every requested layer
   in one forward pass per batch; split each dataset into train/test (stratified).
3. Layer sweep: in-domain residual probe accuracy/AUROC per layer and dataset (table + plot).
4. At the probe layer: train-on-A / test-on-B matrices for residual probes and contrast directions.
5. Directions: cosine matrix of the per-dataset residual probe directions.
6. CCS (Burns et al. 2022) at that hook on "... Yes" / "... No" contrast pairs of each prompt: accuracy
   (sign chosen on a few labels), a random direction for reference, cosine with the supervised probe,
   and its own generalization matrix.
7. With an SAE at that hook: latent ranking by CV single-latent accuracy, k-sparse sweep, SAE-feature
   generalization matrix, and cosines between residual probes and decoder directions (single latents
   and the k-sparse probe mapped through W_dec).
Everything lands in a report folder (interplab.reports) whose index.json the web UI reads.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

from interplab.common import InterplabError, get_logger
from interplab.data.qa_formats import QAExample, load_qa_file, qa_prompt
from interplab.data.synthetic.answerability import make_celebrity, make_equations
from interplab.models.loading import LoadedModel
from interplab.probes.ccs import ccs_fit, ccs_row
from interplab.probes.directions import combined_decoder_direction, decoder_alignment, probe_cosines
from interplab.probes.features import FeatureConfig, extract_features, hook_name
from interplab.probes.generalization import (
    SplitData,
    contrast_fit,
    generalization_matrix,
    layer_sweep,
    matrix_rows,
    residual_fit,
    score_metrics,
    series_by,
    sparse_fit,
)
from interplab.probes.linear import LinearProbeConfig, stratified_split, train_linear_probe
from interplab.probes.sae_probes import (
    encode_latents,
    evaluate_single_latents,
    fit_single_latents,
    k_sparse_sweep,
    rank_latents,
    train_sparse_probe,
)
from interplab.reports.writer import ReportWriter

log = get_logger(__name__)

SYNTHETIC: dict[str, Callable[..., list[QAExample]]] = {
    "equations": make_equations,
    "celebrity": make_celebrity,
}


@dataclass
class ProbeStudyConfig:
    """What the probe study runs."""

    layers: list[int] = field(default_factory=lambda: [0])
    """Block indices to read (one forward pass serves all)."""
    site: str = "resid_post"
    """Hook site within each block: resid_pre, resid_post, mlp_out or attn_out."""
    datasets: list[str] = field(default_factory=lambda: ["equations", "celebrity"])
    """'equations', 'celebrity', or paths to SQuAD-v2 JSON / BoolQ / IDK JSONL files."""
    n_per_dataset: int = 200
    """Examples per dataset (balanced; files are subsampled to this)."""
    test_frac: float = 0.3
    """Held-out fraction of each dataset (stratified)."""
    seed: int = 0
    """Seed for generators, subsampling and splits."""
    C: float = 1.0
    """Inverse L2 strength of every logistic probe (scikit-learn's C)."""
    pooling: str = "last"
    """Token pooling: 'last' (the paper's choice), 'mean' or 'marker' (last token of the question)."""
    batch_size: int = 16
    """Prompts per forward pass."""
    max_length: int = 256
    """Token limit per prompt."""
    probe_layer: int | None = None
    """Layer of the matrices and direction analysis; None: the SAE's hook, else the last of `layers`."""
    sae_ks: list[int] = field(default_factory=lambda: [1, 2, 5, 10, 20, 50])
    """k values of the k-sparse SAE probe sweep."""
    sae_k: int = 5
    """k of the SAE-feature probe used in the generalization matrix and decoder cosines."""
    n_contrast_pairs: int = 8
    """Examples per class behind each difference-of-means contrast direction."""
    top_latents: int = 10
    """Latents listed per dataset in the ranking table."""
    ccs: bool = True
    """Also fit CCS (unsupervised, probes/ccs.py) at the probe layer on contrast pairs of each prompt."""
    ccs_pair: tuple[str, str] = ("\nCan it be answered? Yes", "\nCan it be answered? No")
    """Endings (replacing the final "\nAnswer:") of the two halves of each CCS contrast pair."""
    ccs_label_examples: int = 8
    """Labelled training examples CCS may use, only to choose its sign."""


def _balanced_subsample(examples: list[QAExample], n: int, seed: int) -> list[QAExample]:
    rng = random.Random(seed)
    pos = [e for e in examples if e.answerable]
    neg = [e for e in examples if not e.answerable]
    if not pos or not neg:
        raise InterplabError("a dataset has only one class (all answerable or none); probes need both")
    half = min(n // 2, len(pos), len(neg))
    chosen = rng.sample(pos, half) + rng.sample(neg, half)
    rng.shuffle(chosen)
    return chosen


def load_study_datasets(specs: Sequence[str], n: int, seed: int) -> dict[str, list[QAExample]]:
    """Name -> balanced examples for each spec ('equations', 'celebrity' or a file path)."""
    out: dict[str, list[QAExample]] = {}
    for spec in specs:
        if spec in SYNTHETIC:
            out[spec] = SYNTHETIC[spec](n, seed=seed)
            continue
        path = Path(spec)
        if not path.exists():
            raise InterplabError(
                f"dataset {spec!r} is neither {' nor '.join(SYNTHETIC)} nor an existing file"
            )
        out[path.stem] = _balanced_subsample(load_qa_file(path, seed=seed), n, seed)
    if len(out) != len(specs):
        raise InterplabError("two datasets share a name; rename one of the files")
    return out


def _features(
    lm: LoadedModel, examples: dict[str, list[QAExample]], hooks: list[str], cfg: ProbeStudyConfig
) -> dict[str, dict[str, SplitData]]:
    """hook -> dataset -> SplitData (one forward pass per batch for all hooks)."""
    fcfg = FeatureConfig(pooling=cfg.pooling, batch_size=cfg.batch_size, max_length=cfg.max_length)
    by_hook: dict[str, dict[str, SplitData]] = {h: {} for h in hooks}
    for name, exs in examples.items():
        y_N = torch.tensor([int(e.answerable) for e in exs])
        train, test = stratified_split(y_N, cfg.test_frac, cfg.seed)
        prompts = [qa_prompt(e) for e in exs]
        if cfg.pooling == "marker":  # read at the end of the question, before the "Answer:" cue
            prompts = [p.removesuffix("\nAnswer:") + fcfg.marker + "\nAnswer:" for p in prompts]
        feats = extract_features(lm, prompts, hooks, fcfg)
        for hook in hooks:
            by_hook[hook][name] = SplitData(feats[hook], y_N, train, test)
        log.info("features for %s: %d examples at %d hooks", name, len(exs), len(hooks))
    return by_hook


def _probe_hook(cfg: ProbeStudyConfig, hooks: list[str], sae) -> str:
    if cfg.probe_layer is not None:
        hook = hook_name(cfg.probe_layer, cfg.site)
        if hook not in hooks:
            raise InterplabError(f"--probe-layer {cfg.probe_layer} is not among --layers {cfg.layers}")
        return hook
    sae_hook = sae.cfg.metadata.get("hook_name") if sae is not None else None
    return sae_hook if sae_hook in hooks else hooks[-1]


def _write_matrix(report: ReportWriter, result, kind: str, title: str) -> None:
    report.heatmap(
        f"generalization_{kind}_accuracy",
        result.accuracy,
        result.names,
        result.names,
        f"{title}: accuracy (train row, test column)",
        vmin=0.0,
        vmax=1.0,
        caption="Each cell: a probe trained on the row's dataset, tested on the column's; 1.0 is always right, "
        "0.5 is a coin flip, so bright cells off the diagonal mean the concept carries over between datasets.",
    )
    report.heatmap(
        f"generalization_{kind}_auroc",
        result.auroc,
        result.names,
        result.names,
        f"{title}: AUROC (train row, test column)",
        vmin=0.0,
        vmax=1.0,
        caption="As the accuracy grid, scored by AUROC (how well the probe's scores rank true above false "
        "examples, whatever the threshold): 1.0 is perfect ranking, 0.5 is chance.",
    )
    report.table(f"generalization_{kind}", matrix_rows(result, kind), f"{title}: all pairs")
    for i, name in enumerate(result.names):
        report.log_metric(name=f"{kind}_in_domain_accuracy", dataset=name, value=float(result.accuracy[i, i]))


def _residual_analyses(report: ReportWriter, data: dict[str, SplitData], cfg: ProbeStudyConfig, pcfg) -> dict:
    residual = generalization_matrix(data, residual_fit(pcfg))
    _write_matrix(report, residual, "residual", "Residual-stream probe")
    contrast = generalization_matrix(data, contrast_fit(cfg.n_contrast_pairs, cfg.seed))
    _write_matrix(report, contrast, "contrast", f"Difference-of-means ({cfg.n_contrast_pairs} pairs)")
    probes = {name: train_linear_probe(*split.train, pcfg) for name, split in data.items()}
    names, cos = probe_cosines({n: p.direction for n, p in probes.items()})
    report.heatmap(
        "probe_direction_cosines",
        cos,
        names,
        names,
        "Cosine between residual probe directions",
        row_axis="dataset",
        col_axis="dataset",
        vmin=-1.0,
        vmax=1.0,
        caption="How alike the directions found by probes on different datasets are: 1 means the same direction, "
        "0 unrelated, -1 opposite.",
    )
    return {"residual_in_domain_accuracy": residual.accuracy.diagonal().tolist(), "probes": probes}


def _sae_analyses(
    report: ReportWriter, data: dict[str, SplitData], sae, probes: dict, cfg: ProbeStudyConfig, pcfg
):
    latents = {
        n: SplitData(encode_latents(sae, s.X_ND), s.y_N, s.train_idx, s.test_idx) for n, s in data.items()
    }
    ranking_rows, sweep_rows, align_rows = [], [], []
    for name, split in latents.items():
        ranking = rank_latents(*split.train, seed=cfg.seed)
        top = ranking.latents[: cfg.top_latents]
        fit = fit_single_latents(*split.train, C=cfg.C)
        for rank, (f, m) in enumerate(zip(top, evaluate_single_latents(fit, top, *split.test), strict=True)):
            ranking_rows.append(
                {
                    "dataset": name,
                    "rank": rank + 1,
                    "latent": f,
                    "cv_accuracy": float(ranking.cv_accuracy_F[f]),
                    "mean_diff": float(ranking.mean_diff_F[f]),
                    "test_accuracy": m.accuracy,
                    "test_auroc": m.auroc,
                }
            )
        for k, m in k_sparse_sweep(*split.train, *split.test, ks=cfg.sae_ks, cfg=pcfg):
            sweep_rows.append({"dataset": name, "k": k, "accuracy": m.accuracy, "auroc": m.auroc})
        align_rows.append(_alignment_row(name, split, sae, probes[name], cfg, pcfg))
    report.table(
        "sae_latent_ranking", ranking_rows, "Latents ranked by CV single-latent accuracy (train split)"
    )
    report.table("sae_k_sparse", sweep_rows, "k-sparse SAE probes: test metrics")
    ks, series = series_by(sweep_rows, "dataset", "k", "accuracy")
    report.line_plot(
        "sae_k_sparse", ks, series, "k-sparse SAE probe accuracy", "k (latents)", "test accuracy", log_x=True,
        caption="Accuracy of probes allowed to read only the k most useful SAE latents: a line that is high already "
        "at small k means a few interpretable latents carry the concept.",
    )
    report.table("probe_decoder_cosines", align_rows, "Residual probe vs SAE decoder directions")
    k = min(cfg.sae_k, sae.cfg.d_sae)
    _write_matrix(
        report, generalization_matrix(latents, sparse_fit(k, cfg=pcfg)), "sae", f"SAE {k}-sparse probe"
    )


def _alignment_row(name: str, split: SplitData, sae, probe, cfg: ProbeStudyConfig, pcfg) -> dict:
    W_dec_FD = sae.W_dec.detach().float().cpu()
    single = decoder_alignment(probe.direction.float().cpu(), W_dec_FD, top_n=3)
    sparse = train_sparse_probe(*split.train, min(cfg.sae_k, sae.cfg.d_sae), cfg=pcfg)
    combined_D = combined_decoder_direction(sparse.latents, sparse.latent_weights, W_dec_FD)
    return {
        "dataset": name,
        "max_single_cosine": single.max_abs_cosine,
        "top_latents": single.latents,
        "top_cosines": single.cosines,
        "combined_k": len(sparse.latents),
        "combined_cosine": float(combined_D @ probe.direction.double().cpu()),
    }


def _ccs_analyses(report: ReportWriter, lm: LoadedModel, examples: dict[str, list[QAExample]], hook: str,
                  data: dict[str, SplitData], probes: dict, cfg: ProbeStudyConfig) -> dict:
    """CCS beside the supervised probes: accuracy, random-direction reference, cosine, generalization."""
    fcfg = FeatureConfig(pooling="last", batch_size=cfg.batch_size, max_length=cfg.max_length)
    pairs: dict[str, SplitData] = {}
    rows = []
    for name, exs in examples.items():
        halves = [extract_features(lm, [qa_prompt(e).removesuffix("\nAnswer:") + end for e in exs], [hook], fcfg)[hook]
                  for end in cfg.ccs_pair]
        split = data[name]
        pairs[name] = SplitData(torch.cat(halves, dim=1), split.y_N, split.train_idx, split.test_idx)
        sup = score_metrics(probes[name].logits(split.test[0]), split.test[1]).accuracy
        rows.append(ccs_row(name, pairs[name], sup, probes[name].direction, cfg.ccs_label_examples, cfg.seed))
    report.table("ccs", rows, f"CCS (unsupervised; sign from {cfg.ccs_label_examples} labels) vs the supervised "
                 "residual probe, with a random direction for reference")
    _write_matrix(report, generalization_matrix(pairs, ccs_fit(cfg.ccs_label_examples, cfg.seed)), "ccs", "CCS")
    return {"ccs_accuracy": [r["ccs_accuracy"] for r in rows],
            "ccs_over_supervised": [r["ccs_over_supervised"] for r in rows]}


def run_probe_study(
    lm: LoadedModel,
    cfg: ProbeStudyConfig,
    out: str | Path,
    sae=None,
    overwrite: bool = False,
    on_step: Callable[[str], None] | None = None,
    sae_source: str | None = None,
) -> Path:
    """Run the whole study and write the report folder; returns the path of its index.json.

    `sae_source` (where the SAE was loaded from) is only recorded in config.json.
    """
    step = on_step or (lambda msg: log.info(msg))
    hooks = [hook_name(layer, cfg.site) for layer in cfg.layers]
    if not hooks:
        raise InterplabError("no layers given; pass e.g. --layers 0,1,2")
    bad = [layer for layer in cfg.layers if not 0 <= layer < lm.n_layers]
    if bad:
        raise InterplabError(f"layers {bad} out of range; {lm.name} has layers 0..{lm.n_layers - 1}")
    if sae is not None and sae.cfg.d_in != lm.d_model:
        raise InterplabError(f"the SAE reads d_in={sae.cfg.d_in} but the model has d_model={lm.d_model}")
    report = ReportWriter(out, f"Probe study: {lm.name}", "probe-study", overwrite=overwrite)
    report.write_config({"model": lm.name, "sae": sae_source, **asdict(cfg)})
    pcfg = LinearProbeConfig(C=cfg.C)
    step("loading datasets")
    examples = load_study_datasets(cfg.datasets, cfg.n_per_dataset, cfg.seed)
    step("reading activations")
    by_hook = _features(lm, examples, hooks, cfg)
    step("layer sweep")
    sweep = layer_sweep(by_hook, pcfg)
    report.table("layer_sweep", sweep, "Residual probe, in-domain test metrics per layer")
    xs, series = series_by(sweep, "dataset", "hook", "accuracy")
    report.line_plot(
        "layer_sweep",
        [int(h.split(".")[1]) if h.startswith("blocks.") else i for i, h in enumerate(xs)],
        series,
        "Residual probe accuracy by layer",
        "layer",
        "test accuracy",
        caption="How well a simple linear probe reads each dataset's label from each layer, on held-out examples: "
        "higher means the layer represents the concept more plainly; 0.5 is chance for two balanced classes.",
    )
    probe_hook = _probe_hook(cfg, hooks, sae)
    step(f"generalization at {probe_hook}")
    summary = _residual_analyses(report, by_hook[probe_hook], cfg, pcfg)
    if sae is not None:
        step("SAE-feature probes")
        _sae_analyses(report, by_hook[probe_hook], sae, summary["probes"], cfg, pcfg)
    if cfg.ccs:
        step("CCS")
        summary.update(_ccs_analyses(report, lm, examples, probe_hook, by_hook[probe_hook], summary["probes"], cfg))
    summary.pop("probes")
    summary.update(probe_hook=probe_hook, datasets=list(examples), has_sae=sae is not None)
    return report.finish(summary)
