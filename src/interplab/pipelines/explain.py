"""Explain and score SAE latents into a run folder (the job behind `interplab explain`).

1. Check the run folder (a previous run needs resume or overwrite) before loading anything.
2. Build the explainer (an OpenAI-compatible endpoint, a local model, or none: then the
   token-statistics baseline alone) and the judge (a local model read by log-probabilities: how much
   more likely an excerpt becomes after the explanation, by default; the endpoint's parsed replies when there is no local model).
3. Collect the latents' examples from model + SAE + text, or read them from the dashboards DB.
4. `interplab.autointerp.run_autointerp`: every explainer (the LLM, plus the token-statistics baseline
   unless turned off) on the same explain half, one judge on the same held-out half; each
   explanation is also written to the dashboards DB when one is given, where feature pages show it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from interplab.autointerp import (
    AutointerpConfig,
    ClientConfig,
    ExampleConfig,
    Judge,
    LatentExamples,
    LocalHFClient,
    LogprobJudge,
    OpenAICompatibleClient,
    ScoreConfig,
    StoreExampleConfig,
    TokenStatsExplainer,
    collect_examples,
    examples_from_db,
    examples_from_store,
    run_autointerp,
    summarize,
)
from interplab.common import InterplabError
from interplab.dashboards import DashboardDB, masked_url
from interplab.models.tokens import token_texts
from interplab.pipelines.cache import TextSource
from interplab.pipelines.progress import progress_bar

SCORING = ("log-prob", "text")
TOKEN_STATS = TokenStatsExplainer.name


@dataclass
class ExplainSource:
    """Which latents, and where their examples come from."""

    model: str | None = None
    """Model the SAE reads (examples computed from --data); with --sae."""
    sae: Path | None = None
    """SAE folder (cfg.json + sae_weights.safetensors)."""
    hook: str | None = None
    """Hook of the SAE; None: from its metadata."""
    db: str | None = None
    """Dashboards database (path or SQLAlchemy URL): examples read from it without --model, and
    explanations written back to it for the feature pages."""
    sae_id: int | None = None
    """SAE id in --db; None: the only one, or the one at the --sae path."""
    features: list[int] | None = None
    """Latent indices; None: the --top-n most frequently firing latents that leave silent windows."""
    top_n: int = 10
    """Without --features: how many latents."""


@dataclass
class ExplainModels:
    """Who explains and who judges."""

    explainer: str | None = None
    """Local explainer (HF hub id, model folder or packaged name), or 'token-stats' for the baseline
    alone; None with --endpoint."""
    endpoint: str | None = None
    """OpenAI-compatible explainer server URL, e.g. http://127.0.0.1:8000."""
    endpoint_model: str = "default"
    """Model name sent to --endpoint."""
    judge: str | None = None
    """Local causal LM that scores the explanations; None: the local explainer, else the endpoint."""
    scoring: str = "log-prob"
    """How a local judge answers: 'log-prob' (log-probabilities, nothing to parse; --method says of what) or
    'text' (a written 0/1 list, parsed). An endpoint judge always writes text."""


@dataclass
class ExplainRun:
    """What a run produced."""

    out: Path
    records: list[dict[str, Any]]
    """One per (latent, explainer), as in explanations.jsonl."""
    summary: dict[str, Any] = field(default_factory=dict)
    """The report summary: per explainer and score, mean/std/min/max over latents."""


def _explainer_client(models: ExplainModels, client_cfg: ClientConfig, device: str | None):
    """The LLM explainer's client, or None for the token-statistics baseline alone."""
    local = models.explainer if models.explainer != TOKEN_STATS else None
    if models.endpoint is not None and local is not None:
        raise InterplabError("pass one LLM explainer: --endpoint http://host:port or --explainer <model>, not both")
    if models.endpoint is not None:
        remote = OpenAICompatibleClient(models.endpoint, model=models.endpoint_model, cfg=client_cfg)
        remote.check()  # before loading models: an unreachable endpoint fails in a second
        return remote
    if local is not None:
        return LocalHFClient(local, cfg=client_cfg, device=device)
    if models.explainer is None and models.judge is None:
        raise InterplabError("pass an explainer: --endpoint http://host:port (OpenAI-compatible), --explainer "
                             "<hf id or folder>, or --explainer token-stats --judge <local causal LM>")
    return None


def _judge(models: ExplainModels, client: Any, device: str | None) -> Judge | None:
    if models.scoring not in SCORING:
        raise InterplabError(f"--scoring takes {' or '.join(SCORING)}, got {models.scoring!r}")
    if models.judge is not None:
        if models.scoring == "text":
            return LocalHFClient(models.judge, device=device)
        shared = isinstance(client, LocalHFClient) and models.judge == models.explainer
        return LogprobJudge(client.lm if shared else models.judge, device=device)
    if isinstance(client, LocalHFClient) and models.scoring == "log-prob":
        return LogprobJudge(client.lm)  # the explainer's weights, loaded once
    return client


def db_sae_id(db: DashboardDB, sae_id: int | None, sae: Path | None) -> int:
    """The id of the SAE in `db`: `sae_id` when given (checked), else the row at path `sae`, else the only one."""
    records = db.list_saes()
    if sae_id is not None:
        if db.get_sae(sae_id) is None:
            raise InterplabError(f"no SAE with id {sae_id} in the database; ids there: {[r.id for r in records]}")
        return sae_id
    matches = [r for r in records if sae is not None and Path(r.path).resolve() == sae.resolve()]
    if len(matches) == 1 or len(records) == 1:
        found = (matches or records)[0].id
        assert found is not None  # rows read from the database always have their id
        return found
    names = ", ".join(f"{r.id}={r.name}" for r in records) or "none"
    raise InterplabError(f"pick the SAE with --sae-id (the database holds: {names}); build dashboards first if none")


def collect_run_examples(source: ExplainSource, texts: TextSource, cfg: ExampleConfig, db: DashboardDB | None,
                         sae_id: int | None, device: str | None) -> dict[int, LatentExamples]:
    """Examples from model + SAE + texts when both are given, else from the dashboards DB."""
    if source.model is not None and source.sae is not None:
        from interplab.models.loading import load_model
        from interplab.saes.io import load_sae

        sae = load_sae(source.sae, device=device)
        hook = source.hook or sae.cfg.metadata.get("hook_name")
        if not hook:
            raise InterplabError("the SAE's metadata names no hook; pass --hook (e.g. blocks.3.resid_post)")
        lm = load_model(source.model, device=device)
        return collect_examples(lm, sae, hook, texts.load(), source.features, cfg, top_n=source.top_n)
    if db is None or sae_id is None:
        raise InterplabError("pass --model and --sae (examples computed from --data), or --db with dashboards")
    features = source.features
    if features is None:
        features = [f.idx for f in db.list_features(sae_id, order="frequency", limit=source.top_n)]
    return examples_from_db(db, sae_id, features, n_random=cfg.n_random, seed=cfg.seed)


def explain_run(
    out: str | Path,
    source: ExplainSource,
    models: ExplainModels,
    cfg: AutointerpConfig | None = None,
    texts: TextSource | None = None,
    example_cfg: ExampleConfig | None = None,
    client_cfg: ClientConfig | None = None,
    device: str | None = None,
    resume: bool = False,
    overwrite: bool = False,
    show_progress: bool = True,
) -> ExplainRun:
    """Explain and score latents into `out` (see the module docstring); returns the records and summary."""
    from interplab.autointerp.pipeline import check_run_folder

    out, cfg = Path(out), cfg or AutointerpConfig()
    check_run_folder(out, overwrite, resume)  # fail before loading anything, delete nothing yet
    client = _explainer_client(models, client_cfg or ClientConfig(), device)
    judge = _judge(models, client, device)
    dash = DashboardDB(source.db, create=False) if source.db is not None else None
    sae_id = db_sae_id(dash, source.sae_id, source.sae) if dash is not None else None
    examples = collect_run_examples(source, texts or TextSource(), example_cfg or ExampleConfig(), dash, sae_id,
                                    device)

    def to_db(rec: dict[str, Any]) -> None:
        if dash is not None and sae_id is not None:
            dash.write_explanation(sae_id, rec["feature"], rec["explanation"], db_explainer_label(rec),
                                   rec["detection"], rec["fuzzing"])

    info = {"model": source.model, "sae": str(source.sae) if source.sae else None,
            "db": masked_url(source.db) if source.db else None, "sae_id": sae_id}
    with progress_bar("explaining", total=len(examples), show=show_progress) as update:
        records = run_autointerp(client, examples, out, cfg, judge=judge, overwrite=overwrite, resume=resume,
                                 sink=to_db, progress=lambda i, n: update(i, n, None), run_info=info)
    return ExplainRun(out, records, summarize(records))


def db_explainer_label(record: dict[str, Any]) -> str:
    """The explainer column of the dashboards DB: who explained, and who judged the scores."""
    label = record["explainer"] + (" (baseline)" if record.get("baseline") else "")
    return f"{label}; judge {record['judge']}" if record.get("judge") else label


def explain_analysed_sae(lm: Any, db: str | Path, sae: Path, out: Path, n_latents: int, seed: int = 0,
                         store: Path | None = None, max_examples: int = 8, fuzzing: bool = False,
                         show_progress: bool = True) -> ExplainRun:
    """The explanations stage of `analyze`. With the SAE's activation `store`: `n_latents` latents sampled
    (seed) among those that fire in enough windows, examples and exact negatives (windows where the latent
    is silent) read from the store (autointerp/store_examples.py); without it, the `n_latents` most
    frequent latents from the dashboards DB (negatives approximated by other latents' windows). A causal
    LM explains its own latents (its chat template, greedy) next to the token-statistics baseline, and
    judges both by its log-probabilities (score.py) on `max_examples` held-out windows per class
    (detection; fuzzing too when asked); an encoder gets the baseline alone, unscored. Every explanation is
    written back to the DB, where feature pages show it."""
    from interplab.autointerp.pipeline import explainers_for

    dash = DashboardDB(str(db), create=False)
    sae_id = db_sae_id(dash, None, sae)
    if store is not None:
        from interplab.saes.io import load_sae

        model = load_sae(sae, device=lm.device)
        ex_cfg = StoreExampleConfig(examples=ExampleConfig(n_top=16, n_per_quantile=3, n_random=3 * max_examples,
                                                           seed=seed))
        examples = examples_from_store(store, model.encode, token_texts(lm.tokenizer), ex_cfg,
                                       n_latents=n_latents, seed=seed)
    else:
        features = [f.idx for f in dash.list_features(sae_id, order="frequency", limit=n_latents)]
        examples = examples_from_db(dash, sae_id, features, seed=seed)
    causal = bool(lm.is_causal)
    cfg = AutointerpConfig(score=ScoreConfig(max_examples=max_examples), detection=causal,
                           fuzzing=causal and fuzzing, seed=seed)
    client = LocalHFClient(lm) if causal else None
    judge = LogprobJudge(lm) if causal else None

    def to_db(rec: dict[str, Any]) -> None:
        dash.write_explanation(sae_id, rec["feature"], rec["explanation"], db_explainer_label(rec),
                               rec["detection"], rec["fuzzing"])

    info = {"model": lm.name, "sae": str(sae), "sae_id": sae_id, "explainer": "the analysed model" if causal
            else "token statistics only (an encoder cannot write text)"}
    with progress_bar("explaining", total=len(examples), show=show_progress) as update:
        records = run_autointerp(client, examples, out, cfg, judge=judge, explainers=explainers_for(client, cfg),
                                 overwrite=True, sink=to_db, progress=lambda i, n: update(i, n, None), run_info=info)
    return ExplainRun(out, records, summarize(records))
