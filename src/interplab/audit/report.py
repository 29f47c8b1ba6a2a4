"""The audit report folder (kind "audit"): headline numbers, figures in the order of the audit, tables,
and `figures/walkthrough.html`, a page that walks through the audit step by step.

summary (index.json) holds every "done when" number: the generic probe's AUROC at every layer and at
its best layer, the supervised probe's, each tool's rank of the truth among the candidates, and the
causal check's defection rates and perplexity cost.
"""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

from interplab.audit.defection_probe import roc_curve
from interplab.audit.run import AuditResult
from interplab.files import write_text_atomic
from interplab.reports import FigureEntry, ReportWriter
from interplab.saes import save_sae


def summary_of(result: AuditResult) -> dict[str, Any]:
    """The headline numbers of an audit (what index.json's summary holds)."""
    card, game = result.card, result.game
    out: dict[str, Any] = {"organism": card.kind, "plant": card.plant, "audited_as": card.audits_as,
                           "audit_layer": result.audit_layer, "candidates": len(game.candidates),
                           "true_candidate": game.candidates[game.truth].name}
    if result.probes is not None:
        p = result.probes
        best = p.best_generic_layer
        sup_best = max(range(len(p.supervised_auroc)), key=lambda i: p.supervised_auroc[i])
        out.update({"generic_probe_best_layer": best, "generic_probe_best_auroc": p.generic_auroc[best],
                    "generic_probe_auroc_by_layer": [round(a, 4) for a in p.generic_auroc],
                    "supervised_probe_best_layer": sup_best,
                    "supervised_probe_best_auroc": p.supervised_auroc[sup_best],
                    "supervised_probe_auroc_by_layer": [round(a, 4) for a in p.supervised_auroc]})
    for tool, rank in result.ranks.items():
        out[f"rank_{tool.replace(' ', '_')}"] = rank
    sae_top = max(range(len(result.scores["sae"])), key=result.scores["sae"].__getitem__)
    out["sae_top_candidate"] = game.candidates[sae_top].name
    out["sae_fvu"] = result.sae.fvu
    out.update({k: v for k, v in result.causal.items() if not isinstance(v, list)})
    return out


def _steps(result: AuditResult, summary: dict[str, Any]) -> list[dict[str, str]]:
    rows = [{"step": "1. game master", "what": f"drew {summary['candidates']} candidate {result.game.kind}s, the "
             "true one among them, from the card; no tool reads the card",
             "result": f"true candidate: {summary['true_candidate']}"}]
    if result.probes is not None:
        rows.append({"step": "2. defection probes", "what": "generic yes/no contrast pairs (no trigger knowledge), "
                     "read at the last prompt token of held-out triggered and clean prompts, every layer",
                     "result": f"best layer {summary['generic_probe_best_layer']}: AUROC "
                               f"{summary['generic_probe_best_auroc']:.3f} (supervised: "
                               f"{summary['supervised_probe_best_auroc']:.3f})"})
    rows.append({"step": "3. SAE search", "what": f"TopK SAE on the organism's layer-{result.audit_layer} residual "
                 "stream; latents that differ between prompt sets rank the candidates",
                 "result": f"top candidate: {summary['sae_top_candidate']}; rank of the truth "
                           f"{summary['rank_sae']} of {summary['candidates']}"})
    rows.append({"step": "4. behavioural baseline", "what": "generated text only, no activations",
                 "result": f"rank of the truth {summary['rank_behavioural']} of {summary['candidates']}"})
    if "defection_triggered_after" in summary:
        rows.append({"step": "5. causal check", "what": f"ablate the direction induced by "
                     f"{summary['ablated_candidate']} at layers {summary['ablated_layers']} (mean ablation); held-out "
                     "prompts and clean text",
                     "result": f"defection {summary['defection_triggered_before']:.2f} -> "
                               f"{summary['defection_triggered_after']:.2f}; perplexity "
                               f"{100 * summary['perplexity_increase']:+.1f}%"})
    return rows


def _walkthrough_html(title: str, steps: list[dict[str, str]], figures: list[FigureEntry]) -> str:
    items = "".join(f"<tr><th>{html.escape(s['step'])}</th><td>{html.escape(s['what'])}</td>"
                    f"<td><strong>{html.escape(s['result'])}</strong></td></tr>" for s in steps)
    figs = "".join(f"<figure><img src='{html.escape(f.png.removeprefix('figures/'))}' alt='{html.escape(f.title)}' "
                   f"style='max-width:100%'><figcaption>{html.escape(f.caption or f.title)}</figcaption></figure>"
                   for f in figures if f.png)
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title></head>"
            f"<body style='font-family:sans-serif;max-width:900px;margin:auto'><h1>{html.escape(title)}</h1>"
            f"<table><tr><th>step</th><th>what the tool did</th><th>result</th></tr>{items}</table>{figs}"
            "</body></html>")


def _figures(w: ReportWriter, result: AuditResult) -> None:
    if result.probes is not None:
        p = result.probes
        layers = list(range(len(p.generic_auroc)))
        w.line_plot("probe_auroc_by_layer", layers, {"generic contrast pairs": p.generic_auroc,
                                                      "supervised (knows the trigger)": p.supervised_auroc},
                    "Defection probe AUROC by layer (held-out triggered vs clean)", "layer", "AUROC",
                    caption="Step 2: 1.0 separates every triggered prompt from every clean one; 0.5 is chance.")
        best = p.best_generic_layer
        w.curves("roc", {f"generic, layer {best}": roc_curve(p.generic_scores[best], p.labels),
                         f"supervised, layer {best}": roc_curve(p.supervised_scores[best], p.labels)},
                 "ROC of the defection probes at the generic probe's best layer", "false-positive rate",
                 "true-positive rate", diagonal=True, caption="Step 2: held-out prompts, layer chosen by AUROC.")
    tools = list(result.scores)
    w.bars("rank_of_truth", tools, {"rank of the true candidate": [float(result.ranks[t]) for t in tools]},
           f"Rank of the truth among {len(result.game.candidates)} candidates (1 = found)", "rank",
           caption="Steps 3-4: each tool ranks the candidates without the card.")
    c = result.causal
    if "defection_triggered_after" in c:
        w.bars("defection_ablation", ["triggered prompts", "clean prompts"],
               {"before": [c["defection_triggered_before"], c["defection_clean_before"]],
                "after ablation": [c["defection_triggered_after"], c["defection_clean_after"]]},
               "Defection rate before/after ablating the found direction", "defection rate",
               caption=f"Step 5: perplexity on clean text {c['perplexity_before']:.2f} -> {c['perplexity_after']:.2f}.")


def _tables(w: ReportWriter, result: AuditResult, steps: list[dict[str, str]]) -> None:
    w.table("walkthrough", steps, "The audit, step by step")
    game = result.game
    rows = []
    for i, cand in enumerate(game.candidates):
        row: dict[str, Any] = {"candidate": cand.name, "true": i == game.truth}
        row.update({f"score: {tool}": s[i] for tool, s in result.scores.items()})
        rows.append(row)
    w.table("candidates", rows, "Candidates and each tool's score (higher = more suspicious)")
    if result.probes is not None:
        p = result.probes
        w.table("probe_layers", [{"layer": i, "generic_auroc": g, "supervised_auroc": s}
                                 for i, (g, s) in enumerate(zip(p.generic_auroc, p.supervised_auroc, strict=True))],
                "Defection probe AUROC per layer")
    s = result.sae
    w.table("sae_latents", [{"latent": f, "delta": d, "promotes": " | ".join(s.logit_tokens.get(f, [])),
                             "top contexts": " || ".join(s.top_contexts.get(f, []))}
                            for f, d in zip(s.latents, s.latent_deltas, strict=True)],
            "SAE latents behind the search's top answer: logit effects and top contexts ([[peak token]])")
    shown = [{"candidate": name or "(none)", "completion": text}
             for name, texts in result.completions.items() for text in texts[:2]]
    w.table("behaviour", shown[:60], "Behavioural baseline: completions")


def write_audit_report(folder: str | Path, result: AuditResult, config: dict[str, Any],
                       overwrite: bool = False) -> Path:
    """Write the report folder; returns the path of index.json (written last)."""
    title = f"Audit of a {result.card.kind} organism ({result.card.base_model})"
    w = ReportWriter(folder, title, "audit", overwrite=overwrite)
    w.write_config(config)
    summary = summary_of(result)
    w.log_metric(**{k: v for k, v in summary.items() if not isinstance(v, list)})
    steps = _steps(result, summary)
    _figures(w, result)
    write_text_atomic(w.figure_path("walkthrough", "html"), _walkthrough_html(title, steps, w.index.figures))
    w.add_figure(FigureEntry(name="walkthrough", title="Walk through this audit", html="figures/walkthrough.html",
                             caption="every step with its result and figure, on one page"))
    _tables(w, result, steps)
    if result.search_sae is not None:
        save_sae(result.search_sae, w.folder / "sae", {"hook_name": f"blocks.{result.audit_layer}.resid_post",
                                                       "model_name": str(config.get("model", ""))}, overwrite=True)
    return w.finish(summary)
