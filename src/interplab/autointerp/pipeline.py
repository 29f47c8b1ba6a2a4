"""Explain and score many latents into a run folder (and the dashboards database when given).

    out/
      config.json          what was run (explainer, features, settings)
      explanations.jsonl   one line per finished latent: explanation, reply, detection, fuzzing
      scores.csv / .json   one row per latent (feature, explanation, detection, fuzzing, n examples)
      index.json           written last: a folder with it is finished

Per latent: split its examples (explain half / held-out half), explain, score by detection and fuzzing,
append the line and flush. A killed run keeps every finished latent; `resume=True` skips them.
"""

from __future__ import annotations

import json
import math
import random
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from interplab.autointerp.clients import ExplainerClient
from interplab.autointerp.examples import Example, LatentExamples, split_held_out
from interplab.autointerp.explain import ExplainConfig, explain_latent
from interplab.autointerp.score import ScoreConfig, detection_score, fuzzing_score
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
    detection: bool = True
    """Score by detection (activating vs non-activating windows)."""
    fuzzing: bool = True
    """Score by fuzzing (correct vs random token marks)."""
    seed: int = 0
    """Seed of the explain/held-out split."""


def _clean(value: float | None) -> float | None:
    return None if value is None or not math.isfinite(value) else round(value, 4)


def explain_and_score(
    client: ExplainerClient,
    feature: int,
    examples: LatentExamples,
    cfg: AutointerpConfig,
    judge: ExplainerClient | None = None,
) -> dict[str, Any]:
    """One latent's record: explanation from the explain half, scores on the held-out half."""
    shown, held = split_held_out(examples, cfg.seed)
    explanation = explain_latent(client, shown, cfg.explain)
    judge = judge or client
    record: dict[str, Any] = {
        "feature": feature,
        "explanation": explanation.text,
        "explainer": client.name,
        "n_explain_examples": explanation.n_examples,
        "n_heldout_activating": len(held.top) + len(held.quantile),
        "n_heldout_random": len(held.random),
        "detection": None,
        "fuzzing": None,
    }
    if cfg.detection:
        det = detection_score(judge, explanation.text, held, cfg.score)
        record["detection"], record["detection_detail"] = _clean(det.balanced_accuracy), det.to_dict()
    if cfg.fuzzing:
        fuz = fuzzing_score(judge, explanation.text, held, cfg.score)
        record["fuzzing"], record["fuzzing_detail"] = _clean(fuz.balanced_accuracy), fuz.to_dict()
    record["reply"] = explanation.reply
    return record


def _done(path: Path) -> dict[int, dict[str, Any]]:
    """Finished records in explanations.jsonl (a torn last line from a killed run is dropped)."""
    records: dict[int, dict[str, Any]] = {}
    if path.exists():
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                rec = json.loads(line)
                records[int(rec["feature"])] = rec
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


def write_scores(out: Path, records: Iterable[dict[str, Any]], summary: Mapping[str, Any]) -> None:
    """scores.csv + scores.json (one row per latent) and index.json last."""
    columns = [
        "feature",
        "explanation",
        "detection",
        "fuzzing",
        "n_explain_examples",
        "n_heldout_activating",
        "n_heldout_random",
        "explainer",
    ]
    rows = [{c: r.get(c) for c in columns} for r in sorted(records, key=lambda r: r["feature"])]
    write_table_files(out / "scores.csv", out / "scores.json", rows)
    table = TableEntry(
        name="scores",
        title="Explanations with detection and fuzzing balanced accuracy",
        csv="scores.csv",
        json="scores.json",
    )
    title = "Auto-interpretability: explanations and scores"
    write_index(out, ReportIndex(title=title, kind="autointerp", summary=json_safe(dict(summary)), tables=[table]))


def _mean(values: list[float | None]) -> float | None:
    kept = [v for v in values if v is not None]
    return round(sum(kept) / len(kept), 4) if kept else None


def run_autointerp(
    client: ExplainerClient,
    examples: Mapping[int, LatentExamples],
    out: str | Path,
    cfg: AutointerpConfig | None = None,
    *,
    overwrite: bool = False,
    resume: bool = False,
    sink: Callable[[dict[str, Any]], None] | None = None,
    progress: Callable[[int, int], None] | None = None,
    run_info: Mapping[str, Any] | None = None,
) -> list[dict[str, Any]]:
    """Explain + score every latent in `examples`; `sink(record)` also receives each (e.g. a DB writer)."""
    cfg = cfg or AutointerpConfig()
    out = Path(out)
    prepare_run_folder(out, overwrite, resume)
    write_text_atomic(
        out / "config.json",
        json.dumps(
            json_safe(
                {**asdict(cfg), "explainer": client.name, "features": list(examples), **dict(run_info or {})}
            ),
            indent=2,
        ),
    )
    jsonl = out / "explanations.jsonl"
    done = _done(jsonl) if resume else {}
    records = list(done.values())
    todo = [f for f in examples if f not in done]
    for i, feature in enumerate(todo):
        if progress is not None:
            progress(i, len(todo))
        record = explain_and_score(client, feature, examples[feature], cfg)
        with jsonl.open("a", encoding="utf-8") as handle:
            handle.write(json.dumps(json_safe(record)) + "\n")
        if sink is not None:
            sink(record)
        records.append(record)
    if progress is not None:
        progress(len(todo), len(todo))
    summary = {
        "n_features": len(records),
        "mean_detection": _mean([r.get("detection") for r in records]),
        "mean_fuzzing": _mean([r.get("fuzzing") for r in records]),
        "explainer": client.name,
    }
    write_scores(out, records, summary)
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
