"""An attribution-graph report (prompt with an HTML payload) and a dashboards database holding the graph's
layer-1 transcoder, on a tiny random GPT-2: for the graph page's unit and browser tests."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from circuit_helpers import random_transcoders
from fake_dashboard_rows import synthetic_batch
from interplab.circuits import GraphConfig
from interplab.dashboards.db import DashboardDB, SaeRecord
from interplab.models import load_model
from interplab.pipelines.graph import graph_run
from interplab.saes import SAEGroup, save_group

PAYLOAD = "<img src=x onerror=alert(1)><script>alert(2)</script>"
PROMPT = f"The cat {PAYLOAD} sat on the"
D_SAE = 48
LINKED_LAYER = 1


@dataclass
class GraphData:
    db_path: Path
    reports_dir: Path
    name: str
    transcoders: Path
    sae_id: int


def save_random_transcoders(folder: Path, n_layers: int, d: int) -> Path:
    """Random skip-transcoders for every layer, saved as a transcoder set (group.json + one folder each)."""
    tcs = random_transcoders(n_layers, d, d_sae=D_SAE)
    names = [f"blocks.{L}.mlp_in" for L in range(n_layers)]
    group = SAEGroup.of(names, [tc.cfg for tc in tcs])
    for member, tc in zip(group.members, tcs, strict=True):
        member.load_state_dict({k: v.float() for k, v in tc.state_dict().items()})
    return save_group(group.float(), folder)


def build_graph_data(tmp: Path, model_dir: Path) -> GraphData:
    lm = load_model(model_dir, device="cpu")
    transcoders = save_random_transcoders(tmp / "transcoders", lm.n_layers, lm.d_model)
    reports = tmp / "reports"
    name = "graph-xss"
    graph_run(reports / name, lm, transcoders, PROMPT, GraphConfig(max_feature_nodes=32, batch_size=8,
                                                                    node_threshold=0.95, edge_threshold=0.99))
    db = DashboardDB(tmp / "graph-dash.db")
    hook = f"blocks.{LINKED_LAYER}.mlp_in"
    sae_id = db.upsert_sae(SaeRecord(name=f"transcoder {hook}", path=str(transcoders / hook), model=str(model_dir),
                                     hook=hook, d_in=lm.d_model, d_sae=D_SAE, arch="topk_skip_transcoder"))
    db.write_latents(sae_id, *synthetic_batch(0, D_SAE, n_top=2, n_quantile=1, context=6))
    db.close()
    return GraphData(tmp / "graph-dash.db", reports, name, transcoders, sae_id)
