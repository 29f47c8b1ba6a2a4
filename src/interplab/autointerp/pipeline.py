"""Explain and score many latents into a run folder (and the dashboards database when given).

    out/
      config.json          what was run (explainers, judge, features, settings)
      explanations.jsonl   one line per finished (latent, explainer): explanation, reply, detection and fuzzing
                           (balanced accuracy; AUROC too for log-prob judges)
      scores.csv / .json   one row per (latent, explainer)
      index.json           written last: a folder with it is finished; its summary holds each explainer's
                           mean and spread (std, min, max) over latents and how often it beat the baseline

Per latent: split its examples once (explain half / held-out half); every explainer (an LLM, and the
token-statistics baseline unless turned off) explains from the same half, and one judge scores every
explanation on the same held-out half by detection and fuzzing. Each line is appended and flushed, so
a killed run keeps every finished one; `resume=True` skips them.
"""

from __future__ import annotations

import json
import math
import random
import statistics
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from interplab.autointerp.clients import ExplainerClient
from interplab.autointerp.examples import Example, LatentExamples, split_held_out
from interplab.autointerp.explain import ExplainConfig, Explainer, LLMExplainer
from interplab.autointerp.score import Judge, ScoreConfig, detection_score, fuzzing_score
from interplab.autointerp.token_stats import NAME as BASELINE
from interplab.autointerp.token_stats import TokenStatsConfig, TokenStatsExplainer
from interplab.common import InterplabError, get_logger
from interplab.dashboards import DashboardDB, ExampleRecord
from interplab.files import json_safe, write_text_atomic
from interplab.reports.index import ReportIndex, TableEntry
from interplab.reports.writer import write_index, write_table_files

log = get_logger(__name__)


@dataclass
class AutointerpConfig:
    """One explain + score run."""

    explain: ExplainConfig = field(default_factory=ExplainConfig)
    score: ScoreConfig = field(default_factory=ScoreConfig)
    token_stats: TokenStatsConfig = field(default_factory=TokenStatsConfig)
    detection: bool = True
    """Score by detection (activating vs non-activating windows)."""
    fuzzing: bool = True
    """Score by fuzzing (correct vs random token marks)."""
    baseline: bool = True
    """Also explain every latent with the token-statistics explainer, scored by the same judge: the
    baseline an LLM explainer must beat."""
    seed: int = 0
    """Seed of the explain/held-out split."""


def _clean(value: float | None) -> float | None:
    return None if value is None or not math.isfinite(value) else round(value, 4)


def explainers_for(client: ExplainerClient | None, cfg: AutointerpConfig) -> list[Explainer]:
    """The LLM explainer behind `client` (if any), then the token-statistics baseline (if on)."""
    explainers: list[Explainer] = [LLMExplainer(client, cfg.explain)] if client is not None else []
    if cfg.baseline or not explainers:
        explainers.append(TokenStatsExplainer(cfg.token_stats, cfg.explain))
    return explainers


def explain_and_score(
    explainers: Sequence[Explainer], judge: Judge | None, feature: int, examples: LatentExamples,
    cfg: AutointerpConfig, skip: Iterable[str] = (),
) -> list[dict[str, Any]]:
    """One record per explainer (minus `skip`): explanation from the explain half, scores on the held-out half."""
    shown, held = split_held_out(examples, cfg.seed)
    records = []
    for explainer in explainers:
        if explainer.name in set(skip):
            continue
        explanation = explainer.explain(shown)
        record: dict[str, Any] = {
            "feature": feature,
            "explainer": explainer.name,
            "explanation": explanation.text,
            "baseline": explainer.name == BASELINE,
            "judge": judge.name if judge is not None else None,
            "n_explain_examples": explanation.n_examples,
            "n_heldout_activating": len(held.top) + len(held.quantile),
            "n_heldout_random": len(held.random),
            **{score: None for score in SCORES},
        }
        for task, on, scorer in (("detection", cfg.detection, detection_score),
                                 ("fuzzing", cfg.fuzzing, fuzzing_score)):
            if on and judge is not None:
                result = scorer(judge, explanation.text, held, cfg.score)
                record[task], record[f"{task}_detail"] = _clean(result.balanced_accuracy), result.to_dict()
                record[f"{task}_auroc"] = _clean(result.auroc)
        record["reply"] = explanation.reply
        records.append(record)
    return records


def _done(path: Path) -> dict[tuple[int, str], dict[str, Any]]:
    """Finished records in explanations.jsonl by (latent, explainer); a torn last line is dropped."""
    records: dict[tuple[int, str], dict[str, Any]] = {}
    if path.exists():
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                rec = json.loads(line)
                records[(int(rec["feature"]), str(rec["explainer"]))] = rec
            except (ValueError, KeyError, TypeError):
                log.warning("skipping an unreadable line in %s", path)
    return records


def check_run_folder(out: Path, overwrite: bool, resume: bool) -> None:
    """Refuse to touch a previous run's explanations unless resuming or overwriting (changes nothing)."""
    if (out / "explanations.jsonl").exists() and not (overwrite or resume):
        raise InterplabError(
            f"{out} already holds explanations; pass --resume to continue, --overwrite to replace, "
            "or another --out"
        )


def prepare_run_folder(out: Path, overwrite: bool, resume: bool) -> None:
    """Create `out`; with overwrite (and no resume) clear the previous run's files."""
    check_run_folder(out, overwrite, resume)
    out.mkdir(parents=True, exist_ok=True)
    if overwrite and not resume:
        for name in ("explanations.jsonl", "scores.csv", "scores.json", "index.json"):
            (out / name).unlink(missing_ok=True)


SCORES = ("detection", "detection_auroc", "fuzzing", "fuzzing_auroc")
"""Per-latent scores: balanced accuracy (0.5 = chance) and, for log-prob judges, the margins' AUROC."""
COLUMNS = ["feature", "explainer", "explanation", *SCORES, "n_explain_examples", "n_heldout_activating",
           "n_heldout_random", "judge"]


def write_scores(out: Path, records: Iterable[dict[str, Any]], summary: Mapping[str, Any]) -> None:
    """scores.csv + scores.json (one row per latent and explainer) and index.json last."""
    rows = [{c: r.get(c) for c in COLUMNS} for r in sorted(records, key=lambda r: (r["feature"], r["baseline"]))]
    write_table_files(out / "scores.csv", out / "scores.json", rows)
    table = TableEntry(
        name="scores",
        title="Explanations with detection and fuzzing balanced accuracy and AUROC (0.5 = chance)",
        csv="scores.csv",
        json="scores.json",
    )
    title = "Auto-interpretability: explanations and scores"
    write_index(out, ReportIndex(title=title, kind="autointerp", summary=json_safe(dict(summary)), tables=[table]))


def spread(values: Iterable[float | None]) -> dict[str, float | int | None]:
    """Mean, standard deviation, min and max of the values that are not None, and how many there are."""
    kept = [v for v in values if v is not None]
    if not kept:
        return {"n": 0, "mean": None, "std": None, "min": None, "max": None}
    std = statistics.stdev(kept) if len(kept) > 1 else 0.0
    return {"n": len(kept), "mean": round(statistics.fmean(kept), 4), "std": round(std, 4),
            "min": round(min(kept), 4), "max": round(max(kept), 4)}


def summarize(records: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Flat summary: per explainer and score, mean/std/min/max over latents; wins over the baseline."""
    by_name: dict[str, list[dict[str, Any]]] = {}
    for rec in records:
        by_name.setdefault(rec["explainer"], []).append(rec)
    judges = sorted({str(r["judge"]) for r in records if r.get("judge")})
    summary: dict[str, Any] = {"n_features": len({r["feature"] for r in records}),
                               "judge": ", ".join(judges) or None, "explainers": ", ".join(by_name)}
    base = {r["feature"]: r for r in by_name.get(BASELINE, [])}
    for name, recs in by_name.items():
        for score in SCORES:
            for stat, value in spread(r.get(score) for r in recs).items():
                summary[f"{name} {score} {stat}"] = value
            pairs = [(float(r[score]), float(base[r["feature"]][score])) for r in recs if name != BASELINE
                     and r["feature"] in base and None not in (r.get(score), base[r["feature"]].get(score))]
            if pairs:
                summary[f"{name} {score} above baseline"] = f"{sum(a > b for a, b in pairs)} of {len(pairs)}"
    return summary


def run_autointerp(
    client: ExplainerClient | None,
    examples: Mapping[int, LatentExamples],
    out: str | Path,
    cfg: AutointerpConfig | None = None,
    *,
    judge: Judge | None = None,
    explainers: Sequence[Explainer] | None = None,
    overwrite: bool = False,
    resume: bool = False,
    sink: Callable[[dict[str, Any]], None] | None = None,
    progress: Callable[[int, int], None] | None = None,
    run_info: Mapping[str, Any] | None = None,
) -> list[dict[str, Any]]:
    """Explain + score every latent in `examples`; `sink(record)` also receives each (e.g. a DB writer).

    Explainers: `explainers`, else the LLM behind `client` plus the token-statistics baseline
    (`cfg.baseline`). Judge: `judge`, else `client`; without either, explanations are written unscored.
    """
    cfg = cfg or AutointerpConfig()
    out = Path(out)
    explainers = list(explainers) if explainers is not None else explainers_for(client, cfg)
    judge = judge if judge is not None else client
    if judge is None and (cfg.detection or cfg.fuzzing):
        raise InterplabError("scoring needs a judge: pass --judge <local causal LM>, --explainer or --endpoint "
                             "(or turn scoring off with --no-detection --no-fuzzing)")
    prepare_run_folder(out, overwrite, resume)
    info = {**asdict(cfg), "explainers": [e.name for e in explainers], "judge": judge.name if judge else None,
            "features": list(examples), **dict(run_info or {})}
    write_text_atomic(out / "config.json", json.dumps(json_safe(info), indent=2))
    jsonl = out / "explanations.jsonl"
    done = _done(jsonl) if resume else {}
    records = list(done.values())
    names = [e.name for e in explainers]
    todo = [f for f in examples if any((f, n) not in done for n in names)]
    for i, feature in enumerate(todo):
        if progress is not None:
            progress(i, len(todo))
        skip = [n for n in names if (feature, n) in done]
        for record in explain_and_score(explainers, judge, feature, examples[feature], cfg, skip):
            with jsonl.open("a", encoding="utf-8") as handle:
                handle.write(json.dumps(json_safe(record)) + "\n")
            if sink is not None:
                sink(record)
            records.append(record)
    if progress is not None:
        progress(len(todo), len(todo))
    write_scores(out, records, summarize(records))
    return records


def _to_example(record: ExampleRecord) -> Example:
    return Example(tokens=list(record.tokens), acts=[float(a) for a in record.acts])


def examples_from_db(
    db: DashboardDB, sae_id: int, features: Iterable[int], n_random: int = 10, seed: int = 0
) -> dict[int, LatentExamples]:
    """Top and quantile examples from the dashboards DB; negatives are other latents' top windows.

    The DB stores only activating windows, so non-activating ones are approximated by other latents'
    top windows whose text differs from every window this latent fires on (a latent rarely fires on
    another latent's top context; compute examples from --model/--sae/--data for exact negatives).
    """
    features = list(features)
    rng = random.Random(seed)
    pool_ids = [f.idx for f in db.list_features(sae_id, limit=max(200, 4 * len(features)))]
    out: dict[int, LatentExamples] = {}
    for feature in features:
        top = [_to_example(r) for r in db.get_examples(sae_id, feature, "top")]
        quantile = [_to_example(r) for r in db.get_examples(sae_id, feature, "quantile")]
        if not top and not quantile:
            raise InterplabError(
                f"latent {feature} has no examples in the database; "
                "rebuild dashboards or pick latents listed there"
            )
        own = {ex.text() for ex in top + quantile}
        others = [f for f in pool_ids if f != feature]
        rng.shuffle(others)
        negatives: list[Example] = []
        for other in others[: 3 * n_random]:
            for rec in db.get_examples(sae_id, other, "top")[:1]:
                ex = _to_example(rec)
                if ex.text() not in own and len(negatives) < n_random:
                    negatives.append(Example(tokens=ex.tokens, acts=[0.0] * len(ex.tokens)))
        out[feature] = LatentExamples(top=top, quantile=quantile, random=negatives)
    return out
