"""Build feature dashboards for every latent of an SAE (or every neuron of a hook) into the database.

1. Open the store and the SAE; the SAE's d_in must equal the store's d (else a one-line error,
   before the database is touched). Without an SAE (`sae_path=None`, CLI `--neurons`) the
   dictionary is the identity: each of the store's d dimensions is a latent.
2. Open the database and decide where to start: a new name starts at latent 0; an existing one
   needs `resume` (continue after the last committed batch, same settings only) or `overwrite`.
3. Scan the store twice through the encoder, in batches on the device (scan.py): pass 1 streams
   the top-k contexts and maxima, pass 2 the firing counts, histograms and quantile samples.
4. Write latents in batches of `write_batch`: statistics, logit effects (logits.py), nearest
   latents by decoder cosine (nearest.py), contexts decoded with the model's tokenizer, and the
   resume state ("done" = latents written), all in one transaction per batch.
5. Resume: rows and state commit together, so after a kill the database holds whole batches and
   says how many. The scan state is checkpointed after pass 2 (scan_checkpoint.py, next to a SQLite
   file), so a resume normally goes straight to writing; without a checkpoint (PostgreSQL URL,
   killed during the scans, file lost) it rescans. The scans are deterministic for a given store,
   SAE, settings and device, so either way the remaining latents get exactly the rows an
   uninterrupted build writes.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from interplab.activations.store import ActivationStore
from interplab.common import InterplabError, get_device, get_logger
from interplab.dashboards.config import DashboardConfig
from interplab.dashboards.db import DashboardDB, SaeRecord
from interplab.dashboards.db_access import masked_url
from interplab.dashboards.logits import logit_effects, unembedding_of
from interplab.dashboards.nearest import nearest_latents, unit_rows
from interplab.dashboards.quantiles import Histogram, QuantileSampler
from interplab.dashboards.records import LatentExtras, example_records, feature_records
from interplab.dashboards.scan import Encode, ProgressFn, TopScan, scan_quantiles, scan_top
from interplab.dashboards.scan_checkpoint import checkpoint_path, load_scan, save_scan, settings_hash
from interplab.models.tokens import token_texts

log = get_logger(__name__)


@dataclass
class Dictionary:
    """What the build needs from an SAE (or the identity dictionary of neurons)."""

    encode: Encode
    """[N, d_in] activations -> [N, n_latents] latents, or (values, latents) [N, k] pairs for TopK SAEs."""
    w_dec_FD: Tensor | None
    """Decoder rows [n_latents, d_in] (None for neurons: no neighbours; logits read W_U directly)."""
    n_latents: int
    d_in: int
    arch: str
    fingerprint: str
    """sha256 of the weights file ("neurons" for the identity)."""


@dataclass
class BuildResult:
    sae_id: int
    n_latents: int
    written: int
    """Latents written by this call (0 when the database already held a complete build)."""
    n_tokens: int
    """Real tokens scanned (0 when nothing was to do)."""
    seconds: float


def load_dictionary(sae_path: Path | None, store: ActivationStore, device: torch.device,
                    pairs: bool = True) -> Dictionary:
    """The SAE at `sae_path` (d_in checked against the store), or the neurons when it is None.
    pairs: scan a TopK SAE as its (value, latent) pairs (False: as dense latents, the reference)."""
    d = store.d
    if sae_path is None:
        return Dictionary(lambda x: x.float(), None, d, d, "neurons", "neurons")
    from interplab.saes.io import WEIGHTS_FILENAME, load_sae
    from interplab.saes.topk import TopKSAE

    sae = load_sae(sae_path, device=device)
    if sae.cfg.d_in != d:
        raise InterplabError(
            f"SAE {sae_path} reads d_in={sae.cfg.d_in} but store {store.folder} holds d={d} "
            f"({store.manifest.header.model} {store.manifest.header.hook}); pass the store the SAE was trained on")
    weights = Path(sae_path) / WEIGHTS_FILENAME if Path(sae_path).is_dir() else Path(sae_path)
    digest = hashlib.sha256(weights.read_bytes()).hexdigest() if weights.is_file() else str(sae_path)
    dtype = sae.dtype

    def encode(x_ND: Tensor) -> Tensor:
        return sae.encode(x_ND.to(dtype)).float()

    def encode_pairs(x_ND: Tensor) -> tuple[Tensor, Tensor]:
        values_NK, idx_NK = sae.encode_sparse(x_ND.to(dtype))  # type: ignore[attr-defined]
        return values_NK.float(), idx_NK

    # TopK SAEs (and transcoders) are scanned as their k (value, latent) pairs per token: same numbers,
    # O(N·k) instead of O(N·d_sae) work after the encoder (dashboards/batch_latents.py).
    chosen: Encode = encode_pairs if pairs and isinstance(sae, TopKSAE) else encode
    return Dictionary(chosen, sae.W_dec.detach(), sae.cfg.d_sae, sae.cfg.d_in, sae.cfg.architecture, digest)


def _settings(store: ActivationStore, dic: Dictionary, model: str, cfg: DashboardConfig) -> dict[str, Any]:
    """Everything that decides the database content: a resume must match it exactly."""
    h = store.manifest.header
    return {"weights": dic.fingerprint, "store_tokens": h.tokens_sha256, "n_seq": h.n_seq, "hook": h.hook,
            "store_model": h.model, "model": model, **cfg.content_dict(),
            # the excluded positions decide which tokens are scanned (absent for stores without a rule)
            **({} if h.exclusion.is_empty else {"exclusion": h.exclusion.to_json()})}


def _start_latent(db: DashboardDB, name: str, settings: dict[str, Any], n_latents: int,
                  resume: bool, overwrite: bool) -> int:
    """Where this build starts: 0, or the resume point; raises when the name is taken."""
    rec = db.get_sae_by_name(name)
    if rec is None or overwrite:
        return 0
    assert rec.id is not None
    old = db.get_state(rec.id, "settings")
    if old is None and db.n_features(rec.id) == 0:
        return 0  # registered but never written
    if not resume:
        raise InterplabError(f"the database already holds dashboards named {name!r}; pass --resume to "
                             "continue that build, --overwrite to rebuild it, or another --name")
    if old != settings:
        keys = sorted(k for k in set(settings) | set(old or {}) if (old or {}).get(k) != settings.get(k))
        raise InterplabError(f"cannot resume {name!r}: it was built with other settings ({', '.join(keys[:4])}); "
                             "repeat the original options, or pass --overwrite")
    return min(int(db.get_state(rec.id, "done", 0)), n_latents)


def _open_db(db: DashboardDB | str | Path) -> DashboardDB:
    """The database, opened (tables created) unless it already is; driver and URL errors become one line."""
    if isinstance(db, DashboardDB):
        return db
    from sqlalchemy.exc import SQLAlchemyError

    try:
        return DashboardDB(db)
    except (ImportError, SQLAlchemyError) as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise InterplabError(f"cannot open the database {masked_url(db)} ({masked_url(first)}); pass a SQLite file path in an existing "
                             "folder or a SQLAlchemy URL whose driver is installed (PostgreSQL: pip install "
                             "'psycopg[binary]')") from None


@dataclass
class _Job:
    """Everything a build needs, validated before the database is opened."""

    store: ActivationStore
    dic: Dictionary
    sae_folder: Path | None
    model: str
    name: str
    settings: dict[str, Any]
    cfg: DashboardConfig
    device: torch.device


def _register(db: DashboardDB, job: _Job, n_tokens: int) -> int:
    h, dic = job.store.manifest.header, job.dic
    path = str(job.sae_folder) if job.sae_folder is not None else f"neurons:{job.store.folder}"
    rec = SaeRecord(name=job.name, path=path, model=job.model, hook=h.hook, d_in=dic.d_in, d_sae=dic.n_latents,
                    arch=dic.arch, n_tokens=n_tokens,
                    meta={"store": str(job.store.folder), "dashboards": job.cfg.content_dict()})
    return db.upsert_sae(rec)


def build_dashboards(sae_path: str | Path | None, store_dir: str | Path, db: DashboardDB | str | Path,
                     cfg: DashboardConfig | None = None, *, name: str | None = None, model: str | None = None,
                     resume: bool = False, overwrite: bool = False, device: str | torch.device | None = None,
                     progress: ProgressFn | None = None) -> BuildResult:
    """Build (or resume) the dashboards of every latent; `sae_path=None` builds them for the neurons.

    `model` (hub id or folder; default: the store's model) gives the tokenizer that decodes contexts
    and the unembedding for logit effects. `db` is a DashboardDB, a SQLite path or a SQLAlchemy URL.
    See the module docstring for the steps.
    """
    t0 = time.perf_counter()
    cfg = cfg or DashboardConfig()
    cfg.check()
    dev = get_device(device)
    store = ActivationStore.open(store_dir)
    sae_folder = Path(sae_path) if sae_path is not None else None
    dic = load_dictionary(sae_folder, store, dev)
    model = model or store.manifest.header.model
    name = name or (sae_folder.name if sae_folder is not None else f"neurons-{Path(store_dir).name}")
    job = _Job(store, dic, sae_folder, model, name, _settings(store, dic, model, cfg), cfg, dev)
    database = _open_db(db)
    try:
        return _build_into(database, job, resume, overwrite, progress, t0)
    finally:
        if database is not db:
            database.close()


def _build_into(database: DashboardDB, job: _Job, resume: bool, overwrite: bool, progress: ProgressFn | None,
                t0: float) -> BuildResult:
    """Steps 2-5 on an open database."""
    dic, name = job.dic, job.name
    start = _start_latent(database, name, job.settings, dic.n_latents, resume, overwrite)
    existing = database.get_sae_by_name(name)
    ckpt = checkpoint_path(database.url, name)
    if start >= dic.n_latents and existing is not None and existing.id is not None:
        log.info("dashboards %r are complete (%d latents); nothing to do", name, dic.n_latents)
        if ckpt is not None:
            ckpt.unlink(missing_ok=True)  # left by a build killed right after its last batch
        return BuildResult(existing.id, dic.n_latents, 0, 0, time.perf_counter() - t0)
    from interplab.models.loading import load_model

    lm = load_model(job.model, device=job.device)
    if start:
        log.info("resuming dashboards %r at latent %d of %d", name, start, dic.n_latents)
    top, hist, sampler = _scans(job, progress, ckpt, resume)
    sae_id = _register(database, job, top.stats.n_tokens)
    if start == 0:  # only now is an overwritten build's old content dropped
        database.clear_latents(sae_id)
        database.set_state(sae_id, "settings", job.settings)
    _write_all(database, sae_id, start, dic, top, hist, sampler, lm, job.cfg, progress)
    if ckpt is not None:
        ckpt.unlink(missing_ok=True)
    return BuildResult(sae_id, dic.n_latents, dic.n_latents - start, top.stats.n_tokens, time.perf_counter() - t0)


def _scans(job: _Job, progress: ProgressFn | None, ckpt: Path | None,
           resume: bool) -> tuple[TopScan, Histogram, QuantileSampler]:
    """Step 3: both scans, or on resume their checkpoint (scan_checkpoint.py) when one matches."""
    key = settings_hash(job.settings)
    if resume and ckpt is not None:
        loaded = load_scan(ckpt, key, job.cfg, job.device)
        if loaded is not None:
            log.info("resuming from the scan checkpoint %s (store not re-read)", ckpt)
            return loaded
    top = scan_top(job.store, job.dic.encode, job.dic.n_latents, job.cfg, job.device, progress)
    hist, sampler = scan_quantiles(job.store, job.dic.encode, top.stats, job.cfg, job.device, progress, top.codes)
    top.codes = None  # pass 1's codes are not needed after pass 2
    if ckpt is not None:
        save_scan(ckpt, key, top, hist, sampler)
    return top, hist, sampler


def _write_all(db: DashboardDB, sae_id: int, start: int, dic: Dictionary, top: TopScan, hist: Histogram,
               sampler: QuantileSampler, lm: Any, cfg: DashboardConfig, progress: ProgressFn | None) -> None:
    """Step 4: write latents start .. n_latents - 1 in batches, each with its resume state."""
    w_u = unembedding_of(lm)
    text = token_texts(lm.tokenizer)
    unit = unit_rows(dic.w_dec_FD) if dic.w_dec_FD is not None and cfg.n_neighbours else None
    for first in range(start, dic.n_latents, cfg.write_batch):
        ids = torch.arange(first, min(first + cfg.write_batch, dic.n_latents))
        w_dec = dic.w_dec_FD[ids] if dic.w_dec_FD is not None else torch.eye(dic.d_in)[ids]
        pos, neg = logit_effects(w_dec, w_u, cfg.n_logits, text)
        near = nearest_latents(unit, ids, cfg.n_neighbours) if unit is not None else [[] for _ in ids]
        feats = feature_records(first, top, hist, LatentExtras(pos, neg, near))
        exs = example_records(first, len(ids), top, sampler, text)
        db.write_latents(sae_id, feats, exs, state={"done": first + len(ids)})
        if progress is not None:
            progress("write", first + len(ids), dic.n_latents)
