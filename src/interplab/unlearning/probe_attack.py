"""Probe attack: can a linear probe read the forgotten attribute from the residual stream?

1. Prompts that ask for the attribute (its trained forms: the question and the statements) for every
   person; the residual stream (blocks.L.resid_post, network edits in place) at three positions of each
   prompt: the last token (where the model is about to answer), the last token of the person's name and
   the mean over the name's tokens (where factual recall gathers a subject's attributes).
2. Candidate features: each (position, layer), and per position the concatenation of the last
   `concat` probed layers. Per candidate, one multinomial logistic probe (L2, z-scored features),
   trained on the retain set and half of the attacker's `train` forget people. The features depend on
   the network and the people only, not on the seed's split, so they are read once per network.
3. The other half of the attacker's forget people is the validation set: the candidate with the best
   validation accuracy is chosen there, never on the test people.
4. Accuracy on the `held_out` forget people's prompts, of the chosen probe and of each layer at the
   chosen position (the curve), beside `chance`: the share of the most common value among them.
Beside the fitted probes, one family needs no training: the model's own readout. At the last token of
each prompt the model is about to say the attribute, so the final norm and the unembedding rows of the
values' first tokens, applied to layer L's residual stream, are a linear classifier (the norm's
per-token scale cannot change the arg-max) that the model itself wrote: the logit lens, used as an
extraction attack by Patil et al. 2023 ("Can sensitive information be deleted from LLMs?",
arXiv:2309.17410). Candidates "lens@L" compete with the fitted probes on the validation people. They
matter when the fitted probes are data-starved (a few dozen training people for 8 values): a filter
at the output leaves this readout intact at the last layer, where it is the model's own answer.
A model that never learnt the held-out people cannot do better than chance at any layer; a model that
still holds their facts can, whatever its output says.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import NamedTuple

import torch
from torch import Tensor
from torch.nn import functional as F

from interplab.common import InterplabError
from interplab.data.synthetic.fictional_people import (
    TRAINED_FORMS,
    Attribute,
    Item,
    PeopleConfig,
    Person,
    items,
)
from interplab.lens import final_decoder
from interplab.models import capture
from interplab.models.hookpoints import base_model
from interplab.unlearning.served import ServedModel

POSITIONS = ("last", "name_last", "name_mean")
"""Where in the prompt the residual stream is read (see the module docstring)."""


@dataclass
class ProbeAttackConfig:
    """The probe attack."""

    attribute: str = "city"
    """Attribute the probes decode: city or job."""
    layers: tuple[int, ...] | None = None
    """Layers to probe (None: every 4th layer from the first, and the last 4)."""
    positions: tuple[str, ...] = POSITIONS
    """Token positions to read: last, name_last, name_mean."""
    concat: int = 4
    """Also probe the concatenation of the last this many probed layers at each position (< 2: no)."""
    C: float = 1.0
    """Inverse L2 strength of each probe (scikit-learn's C, multinomial)."""
    lens: bool = True
    """Also read each probed layer at the last token with the model's own final norm and unembedding
    (candidates "lens@L", no training; skipped when two values share their first token)."""

    def check(self) -> None:
        unknown = set(self.positions) - set(POSITIONS)
        if unknown or not self.positions:
            raise InterplabError(f"probe positions must be some of {', '.join(POSITIONS)}, got {list(self.positions)}")
        if self.C <= 0:
            raise InterplabError(f"probe C must be > 0, got {self.C}")


class ProbeResult(NamedTuple):
    """What the probe attack found on one model."""

    curve: list[tuple[int, float]]
    """(layer, held-out accuracy) at the chosen position."""
    choice: str
    """The candidate chosen on the validation people, e.g. "name_last@20" or "last@26+27+28+29"."""
    validation: float
    """Its validation accuracy."""
    accuracy: float
    """Its held-out accuracy: the number the verdict reads."""
    chance: float
    """Most-common-value share among the held-out prompts."""


def probe_layers(cfg: ProbeAttackConfig, n_layers: int) -> list[int]:
    if cfg.layers is not None:
        bad = [layer for layer in cfg.layers if not 0 <= layer < n_layers]
        if bad:
            raise InterplabError(f"probe layers must be in 0..{n_layers - 1}, got {bad}")
        return sorted(set(cfg.layers))
    return sorted(set(range(0, n_layers, 4)) | set(range(max(0, n_layers - 4), n_layers)))


def name_spans(tokenizer, its: list[Item]) -> tuple[list[list[int]], list[tuple[int, int]]]:
    """(token ids with special tokens, [start, end) token span of the person's name) per item."""
    enc = tokenizer([it.prompt for it in its], add_special_tokens=True, return_offsets_mapping=True)
    spans = []
    for it, offsets in zip(its, enc["offset_mapping"], strict=True):
        a = it.prompt.index(it.person)
        b = a + len(it.person)
        inside = [t for t, (s, e) in enumerate(offsets) if s < b and e > a]
        if not inside:
            raise InterplabError(f"no token of {it.person!r} found in its prompt")
        spans.append((inside[0], inside[-1] + 1))
    return enc["input_ids"], spans


@torch.no_grad()
def position_acts(served: ServedModel, its: list[Item], layers: list[int], positions: tuple[str, ...],
                  batch_size: int = 32) -> dict[tuple[str, int], Tensor]:
    """{(position, layer): [n_items, d]} residual stream at each position, network edits in place."""
    hooks = [f"blocks.{layer}.resid_post" for layer in layers]
    out: dict[tuple[str, int], list[Tensor]] = {(p, layer): [] for p in positions for layer in layers}
    pad = served.tokenizer.pad_token_id or 0
    for start in range(0, len(its), batch_size):
        ids, spans = name_spans(served.tokenizer, its[start:start + batch_size])
        length = max(len(i) for i in ids)
        input_ids = torch.tensor([i + [pad] * (length - len(i)) for i in ids], device=served.device)
        mask = torch.tensor([[1] * len(i) + [0] * (length - len(i)) for i in ids], device=served.device)
        rows_B = torch.arange(len(ids))
        last_B = torch.tensor([len(i) - 1 for i in ids])
        name_last_B = torch.tensor([e - 1 for _, e in spans])
        pos_T = torch.arange(length)
        name_BT = torch.stack([(pos_T >= s) & (pos_T < e) for s, e in spans]).float()
        with served.network(), capture(served.model, hooks) as acts:
            base_model(served.model)(input_ids=input_ids, attention_mask=mask)  # the residual stream only
        for layer, hook in zip(layers, hooks, strict=True):
            x_BTD = acts[hook].float().cpu()
            got = {"last": x_BTD[rows_B, last_B], "name_last": x_BTD[rows_B, name_last_B],
                   "name_mean": (name_BT[..., None] * x_BTD).sum(1) / name_BT.sum(1, keepdim=True)}
            for p in positions:
                out[(p, layer)].append(got[p])
    return {k: torch.cat(v) for k, v in out.items()}


def fit_softmax_probe(x_ND: Tensor, y_N: Tensor, n_classes: int, C: float, max_iter: int = 100):
    """Multinomial logistic regression on z-scored features: minimises mean cross-entropy + ||W||² / (2 C n)
    (scikit-learn's multinomial objective divided by C n). Returns logits(x) -> [n, classes]."""
    x_ND = x_ND.float()  # float32: only the arg-max of the logits is read, and it settles early
    mean_D, std_D = x_ND.mean(0), x_ND.std(0, correction=0)
    std_D = torch.where(std_D > 1e-8, std_D, torch.ones_like(std_D))
    z_ND = (x_ND - mean_D) / std_D
    W_DK = torch.zeros(x_ND.shape[1], n_classes, requires_grad=True)
    b_K = torch.zeros(n_classes, requires_grad=True)
    opt = torch.optim.LBFGS([W_DK, b_K], lr=1.0, max_iter=max_iter, tolerance_grad=1e-4, tolerance_change=1e-9,
                            history_size=20, line_search_fn="strong_wolfe")
    penalty = 1.0 / (2.0 * C * len(x_ND))

    def closure() -> Tensor:
        opt.zero_grad()
        loss = F.cross_entropy(z_ND @ W_DK + b_K, y_N) + penalty * (W_DK ** 2).sum()
        loss.backward()
        return loss

    with torch.enable_grad():
        opt.step(closure)
    W, b = W_DK.detach(), b_K.detach()
    return lambda x: ((x.float() - mean_D) / std_D) @ W + b


def _prompts(people: list[Person], attribute: Attribute, cfg: PeopleConfig) -> list[Item]:
    return [it for form in TRAINED_FORMS for it in items(people, form, cfg, (attribute,))]


def _candidates(cfg: ProbeAttackConfig, layers: list[int]) -> dict[str, tuple[str, list[int]]]:
    out = {f"{p}@{layer}": (p, [layer]) for p in cfg.positions for layer in layers}
    if cfg.concat >= 2 and len(layers) >= 2:
        last = layers[-cfg.concat:]
        out.update({f"{p}@{'+'.join(map(str, last))}": (p, last) for p in cfg.positions})
    return out


class ProbeFeatures(NamedTuple):
    """The residual stream at every candidate position of every person's prompts (one forward pass each)."""

    its: list[Item]
    """The prompts, person by person."""
    acts: dict[tuple[str, int], Tensor]
    """{(position, layer): [n_items, d]}."""
    layers: list[int]
    lens: dict[int, Tensor]
    """{layer: [n_items, n_values]} the model's own readout of the values at the last token (empty: none)."""
    values: list[str]
    """The attribute's values, in the column order of `lens`."""


def probe_features(served: ServedModel, people: list[Person], people_cfg: PeopleConfig, cfg: ProbeAttackConfig,
                   n_layers: int) -> ProbeFeatures:
    """Features of `people`'s prompts for the probe attack (network edits in place, no output filter).
    They depend on the network and the people only, so one set serves every seed's split."""
    cfg.check()
    layers = probe_layers(cfg, n_layers)
    its = _prompts(people, cfg.attribute, people_cfg)  # type: ignore[arg-type]
    positions = tuple(dict.fromkeys((*cfg.positions, "last"))) if cfg.lens else cfg.positions
    acts = position_acts(served, its, layers, positions)
    values, lens = lens_readout(served, its, {layer: acts[("last", layer)] for layer in layers}) if cfg.lens else ([], {})
    return ProbeFeatures(its, {k: v for k, v in acts.items() if k[0] in cfg.positions}, layers, lens, values)


def value_tokens(tokenizer, its: list[Item]) -> dict[str, int] | None:
    """{value: the first token of its answer} for the values of `its`, or None when two values share it
    (then the model's readout cannot tell them apart at one position)."""
    first: dict[str, int] = {}
    for it in its:
        if it.answer.strip() not in first:
            first[it.answer.strip()] = tokenizer(it.answer, add_special_tokens=False)["input_ids"][0]
    return first if len(set(first.values())) == len(first) else None


@torch.no_grad()
def lens_readout(served: ServedModel, its: list[Item], last_acts: dict[int, Tensor]) -> tuple[list[str], dict[int, Tensor]]:
    """(values, {layer: [n_items, n_values] logits}): each layer's last-token residual stream through the
    model's final norm and the unembedding rows of the values' first tokens. Empty for encoders and when
    values share a first token."""
    tokens = value_tokens(served.tokenizer, its)
    if tokens is None or not served.lm.is_causal:
        return [], {}
    decoder = final_decoder(served.lm)
    values = sorted(tokens)
    ids = [tokens[v] for v in values]
    weight: Tensor = decoder.head.weight  # type: ignore[assignment]
    return values, {layer: decoder.logits(x_ND.to(device=weight.device, dtype=weight.dtype), ids).cpu()
                    for layer, x_ND in last_acts.items()}


def probe_attack(features: ProbeFeatures, retain: list[Person], train: list[Person], held_out: list[Person],
                 cfg: ProbeAttackConfig, seed: int) -> ProbeResult:
    """Probes trained on `retain` and half of the attacker's `train` people, chosen on the other half
    (split by `seed`), scored on `held_out` (every one of them must be in `features`)."""
    cfg.check()
    order = list(train)
    random.Random(f"probe-validation:{seed}").shuffle(order)
    n_val = len(order) // 2
    groups = {"fit": retain + order[n_val:], "val": order[:n_val], "test": held_out}
    value = {p.name: p.value(cfg.attribute) for g in groups.values() for p in g}  # type: ignore[arg-type]
    rows = {k: [i for i, it in enumerate(features.its) if it.person in {p.name for p in g}] for k, g in groups.items()}
    classes = sorted({value[features.its[i].person] for i in rows["fit"]})
    labels = {k: torch.tensor([classes.index(v) if (v := value[features.its[i].person]) in classes else -1 for i in r])
              for k, r in rows.items()}
    scores: dict[str, tuple[float, float, float]] = {}  # name -> (validation accuracy, -validation loss, test)
    for name, (position, used) in _candidates(cfg, features.layers).items():
        feats = {k: torch.cat([features.acts[(position, layer)][r] for layer in used], 1) for k, r in rows.items() if r}
        logits = fit_softmax_probe(feats["fit"], labels["fit"], len(classes), cfg.C)
        val, val_loss = 0.0, 0.0
        if "val" in feats:
            val_logits_NK = logits(feats["val"])
            val = _accuracy(val_logits_NK, labels["val"])
            val_loss = float(F.cross_entropy(val_logits_NK, labels["val"], ignore_index=-1))
        scores[name] = (val, -val_loss, _accuracy(logits(feats["test"]), labels["test"]))
    truth = {k: torch.tensor([features.values.index(value[features.its[i].person]) for i in r])
             for k, r in rows.items()} if features.lens else {}
    for layer, logits_NV in features.lens.items():
        val_scores = (0.0, 0.0)
        if rows["val"]:
            val_scores = (_accuracy(logits_NV[rows["val"]], truth["val"]),
                          -float(F.cross_entropy(logits_NV[rows["val"]], truth["val"])))
        scores[f"lens@{layer}"] = (*val_scores, _accuracy(logits_NV[rows["test"]], truth["test"]))
    # ties in accuracy (30-odd validation prompts) go to the lower validation loss
    choice = max(scores, key=lambda n: scores[n][:2])
    position = choice.split("@")[0]
    curve = [(layer, scores[f"{position}@{layer}"][2]) for layer in features.layers]
    test_y = [value[features.its[i].person] for i in rows["test"]]
    chance = max(test_y.count(v) for v in set(test_y)) / len(test_y)
    return ProbeResult(curve, choice, scores[choice][0], scores[choice][2], chance)


def _accuracy(logits_NK: Tensor, y_N: Tensor) -> float:
    return float((logits_NK.argmax(1) == y_N).float().mean())
