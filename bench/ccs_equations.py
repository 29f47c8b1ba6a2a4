"""CCS vs the supervised probe on the built-in Equations answerability set (issue 16, item 5).

    python bench/ccs_equations.py sentence-transformers/all-MiniLM-L6-v2 3,4,5 200
    python bench/ccs_equations.py /path/to/SmolLM2-135M-Instruct 12,18,24 600

Arguments: model (hub id, packaged name or folder), comma-separated layers, number of examples (balanced,
70/30 split). Per layer and CCS subspace (all dimensions, or the top 1/2/4 principal components of the
pair differences): the supervised residual probe on the plain prompt ("sup"), a supervised probe on the
pair differences ("sup_pair"), CCS with its sign from 8 labels ("ccs"), a random direction signed the
same way ("rand"), the cosine of CCS with the supervised probe, and CCS's unsupervised loss.
"""

from __future__ import annotations

import sys

import torch

from interplab.data.qa_formats import qa_prompt
from interplab.data.synthetic.answerability import make_equations
from interplab.models.loading import load_model
from interplab.probes import (
    CCSConfig,
    FeatureConfig,
    extract_features,
    fit_ccs,
    random_direction_probe,
    stratified_split,
    train_linear_probe,
)
from interplab.probes.study import ProbeStudyConfig


def main() -> None:
    model, layers, n = sys.argv[1], sys.argv[2].split(","), int(sys.argv[3])
    torch.set_num_threads(1)
    lm = load_model(model, device="cpu")
    ex = make_equations(n, seed=0)
    y = torch.tensor([int(e.answerable) for e in ex])
    tr, te = stratified_split(y, 0.3, 0)
    hooks = [f"blocks.{layer}.resid_post" for layer in layers]
    fc = FeatureConfig(batch_size=32)
    yes, no = ProbeStudyConfig().ccs_pair
    base = extract_features(lm, [qa_prompt(e) for e in ex], hooks, fc)
    pos = extract_features(lm, [qa_prompt(e).removesuffix("\nAnswer:") + yes for e in ex], hooks, fc)
    neg = extract_features(lm, [qa_prompt(e).removesuffix("\nAnswer:") + no for e in ex], hooks, fc)

    def acc(pred, labels) -> float:
        return float((pred.long() == labels).double().mean())

    print("| hook | CCS subspace | sup | sup_pair | ccs | rand | cos(ccs, sup) | ccs loss |")
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for h in hooks:
        sup = train_linear_probe(base[h][tr], y[tr])
        diff = pos[h] - neg[h]
        sup_pair = train_linear_probe(diff[tr], y[tr])
        rand = random_direction_probe(pos[h][tr], neg[h][tr], y[tr])
        for nc in (None, 1, 2, 4):
            c = fit_ccs(pos[h][tr], neg[h][tr], y[tr], CCSConfig(n_components=nc, n_tries=4))
            print(f"| {h} | {nc or 'all'} | {acc(sup.logits(base[h][te]) > 0, y[te]):.3f} | "
                  f"{acc(sup_pair.logits(diff[te]) > 0, y[te]):.3f} | "
                  f"{acc(c.credence(pos[h][te], neg[h][te]) > 0.5, y[te]):.3f} | "
                  f"{acc(rand.credence(pos[h][te], neg[h][te]) > 0.5, y[te]):.3f} | "
                  f"{float(c.direction @ sup.direction.double()):.3f} | {c.loss:.3f} |", flush=True)


if __name__ == "__main__":
    main()
