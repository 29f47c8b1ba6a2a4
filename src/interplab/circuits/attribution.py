"""Attribution graphs from per-layer transcoders, by backward passes through the local replacement.

Ameisen et al. 2025, "Circuit tracing" (https://transformer-circuits.pub/2025/attribution-graphs/methods.html);
the open-source circuit-tracer follows the same steps.

1. Record the prompt (replacement.py): per layer L the MLP input x_L and output y_L; the transcoder's
   active features (position p, latent f, activation a), its error err_L = y_L - transcoder(x_L).
2. Replay B copies of the prompt through the frozen model once, keeping the autograd graph.
3. A target's row of direct effects is one backward pass seeded at the target's input: the unembedding
   column W_U[:, t] at the last position for a logit; W_enc[:, f] at x_L[p] for a feature (its
   pre-activation). Gradients are read where sources write: at the embeddings (edge = <g, e_p>) and at
   each MLP output (feature edge = a · <g, W_dec[f]>, error edge = <g, err_L[p]>). B targets share
   one backward (row b of the batch carries target b); the graph is reused, not rebuilt.
4. Bias: the replay with every source zeroed (E = 0, c_L = b_dec) gives each target's constant part.
   Completeness: Σ(row) + bias = the target's value (logit, or pre-activation = activation) exactly up
   to rounding, because the replay is affine in the sources; it is checked and stored with the graph.
5. Which features get rows: the logit rows first, then in rounds of B the unvisited features of highest
   influence on the logits through the rows so far (`influence`), up to `max_feature_nodes`.
6. Pruning by influence (prune.py), then the graph JSON (graph.py).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn

from interplab.circuits.replacement import FrozenState, body, frozen, module_at
from interplab.common import InterplabError, get_logger
from interplab.models.interventions import capture

log = get_logger(__name__)


@dataclass
class GraphConfig:
    """How a graph is built and pruned."""

    max_feature_nodes: int = 256
    """Features whose incoming edges are computed (rows of the adjacency), most influential first."""
    batch_size: int = 8
    """Targets per backward pass: the replay holds this many copies of the prompt. On 2 idle CPU cores
    (SmolLM2, 30 tokens, 257 rows) 4-8 built fastest: 9.8 / 11.3 s against 19.2 s at 32 (bench/README.md);
    a GPU wants larger batches."""
    node_threshold: float = 0.8
    """Pruning keeps the most influential nodes holding this share of the total influence."""
    edge_threshold: float = 0.98
    """Pruning keeps the highest-scoring edges holding this share of the total edge score."""
    n_logits: int = 1
    """Target logits when none are given: the model's top predictions at the last position."""
    first_position_features: bool = False
    """Keep transcoder features at the first position (the attention sink). By default they join that
    position's error node, as circuit-tracer zeroes them: transcoders are trained with sinks left out,
    so features there are read off-distribution, and ablating one can move the frozen replay to NaN."""


@dataclass
class Recording:
    """One prompt's real forward pass, as the graph's sources."""

    input_ids: Tensor
    """[1, P] token ids."""
    embeds_PD: Tensor
    """Token embeddings (the embedding module's output)."""
    mlp_in: list[Tensor]
    """Per layer, the MLP input [P, d]."""
    mlp_out: list[Tensor]
    """Per layer, the MLP output [P, d]."""
    feat_pos: list[Tensor]
    """Per layer, positions of the active features [n_L]."""
    feat_idx: list[Tensor]
    """Per layer, latent indices of the active features [n_L]."""
    feat_act: list[Tensor]
    """Per layer, activations of the active features [n_L]."""
    errors: list[Tensor]
    """Per layer, the transcoder's error y_L - prediction [P, d]."""
    logits_V: Tensor
    """The real model's logits at the last position [vocab]."""
    state: FrozenState = field(default_factory=FrozenState)


def _skip(tc: Any, x: Tensor) -> Tensor:
    out = tc.skip_out(x) if hasattr(tc, "skip_out") else None
    return torch.zeros_like(x) if out is None else out


@torch.no_grad()
def record(model: nn.Module, transcoders: list[Any], input_ids: Tensor,
           first_position_features: bool = False) -> Recording:
    """Run the real model once (patterns and scales recorded) and read the transcoders' sources.
    Without `first_position_features`, position 0's features are moved into its error node (the
    position's MLP output is still split exactly into features + error + skip + bias)."""
    n = len(transcoders)
    state = FrozenState(mode="record")
    hooks = [f"blocks.{L}.{s}" for L in range(n) for s in ("mlp_in", "mlp_out")]
    embed = module_at(model, "embed")
    seen: dict[str, Tensor] = {}
    handle = embed.register_forward_hook(lambda m, a, out: seen.__setitem__("e", out.detach()))
    try:
        with frozen(model, state), capture(model, hooks) as acts:
            logits = model(input_ids=input_ids, use_cache=False).logits
    finally:
        handle.remove()
    pos, idx, act, err = [], [], [], []
    for L, tc in enumerate(transcoders):
        x, y = acts[f"blocks.{L}.mlp_in"][0], acts[f"blocks.{L}.mlp_out"][0]
        out = tc(x)
        latents, error = out.latents, y - out.x_hat
        if not first_position_features:
            error[0] += (latents[0] @ tc.W_dec).to(error.dtype)
            latents = latents.clone()
            latents[0] = 0
        p, f = latents.nonzero(as_tuple=True)
        pos.append(p)
        idx.append(f)
        act.append(latents[p, f])
        err.append(error)
    return Recording(input_ids=input_ids, embeds_PD=seen["e"][0],
                     mlp_in=[acts[f"blocks.{L}.mlp_in"][0] for L in range(n)],
                     mlp_out=[acts[f"blocks.{L}.mlp_out"][0] for L in range(n)], feat_pos=pos, feat_idx=idx,
                     feat_act=act, errors=err, logits_V=logits[0, -1].detach(), state=state)


class Replay:
    """B copies of the prompt through the frozen model with chosen sources (see replacement.py)."""

    def __init__(self, model: nn.Module, transcoders: list[Any], rec: Recording, batch: int,
                 embeds_PD: Tensor, consts: list[Tensor], grad: bool = True, live: list[Tensor] | None = None):
        """`consts[L]` [P, d] is added to layer L's MLP output beside its skip path; with `live`, also
        each layer's features marked in `live[L]` [P, d_sae] (0/1), at their pre-activation: the
        transcoders linearised around the recorded run (the features it found active stay active)."""
        self.model, self.tcs, self.live = model, transcoders, live
        self.E = embeds_PD.expand(batch, *embeds_PD.shape).clone().requires_grad_(grad)
        self.mlp_in: list[Tensor] = [torch.empty(0)] * len(transcoders)
        self.M: list[Tensor] = [torch.empty(0)] * len(transcoders)
        patches: dict[nn.Module, Any] = {module_at(model, "embed"): lambda *a, **k: self.E}
        for L in range(len(transcoders)):
            m_in, m_out = module_at(model, "mlp_in", L), module_at(model, "mlp", L)
            if m_in is m_out:
                patches[m_in] = self._mlp(L, consts[L], read_input=True)
            else:  # Gemma: the MLP feeds post_feedforward_layernorm, whose output is mlp_out
                patches[m_in] = self._stash(L)
                patches[m_out] = self._mlp(L, consts[L], read_input=False)
        rec.state.mode = "replay"
        try:
            with frozen(model, rec.state, patches), torch.set_grad_enabled(grad):
                ids = rec.input_ids.expand(batch, -1)
                self.hidden = body(model)(input_ids=ids, use_cache=False).last_hidden_state
        finally:
            rec.state.mode = "record"

    def _stash(self, L: int) -> Any:
        def forward(x: Tensor) -> Tensor:
            self.mlp_in[L] = x
            return torch.zeros_like(x)

        return forward

    def _mlp(self, L: int, const_PD: Tensor, read_input: bool) -> Any:
        def forward(x: Tensor) -> Tensor:
            if read_input:
                self.mlp_in[L] = x
            out = const_PD + _skip(self.tcs[L], self.mlp_in[L])
            if self.live is not None:
                tc = self.tcs[L]
                out = out + ((tc.pre_acts(self.mlp_in[L]) * self.live[L]) @ tc.W_dec).to(out.dtype)
            if torch.is_grad_enabled() and not out.requires_grad:  # no skip path: a leaf source
                out.requires_grad_()
            self.M[L] = out
            return out

        return forward


@dataclass
class AttributionGraph:
    """Nodes, the adjacency rows computed, and what was checked. Columns: features (layer-major),
    errors (layer × position), tokens (position); rows: logit targets, then visited features."""

    tokens: list[str]
    input_ids: list[int]
    n_layers: int
    feat_layer: Tensor
    feat_pos: Tensor
    feat_idx: Tensor
    feat_act: Tensor
    logit_tokens: list[int]
    logit_values: Tensor
    logit_probs: Tensor
    rows: Tensor
    """[n_logits + n_visited, n_cols] direct effects: rows[target, source]."""
    row_features: Tensor
    """Feature (column) index of each feature row, in order after the logit rows."""
    row_bias: Tensor
    """Constant part of each row's target (zero-source replay)."""
    row_value: Tensor
    """Each row's target value in the real forward (logit, or feature activation)."""
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def n_features(self) -> int:
        return int(self.feat_layer.numel())

    @property
    def n_positions(self) -> int:
        return len(self.tokens)

    def row_cols(self) -> Tensor:
        """Each row's column: -1 for the logit rows, then the visited features' (what `influence` takes)."""
        return torch.cat([torch.full((len(self.logit_tokens),), -1, dtype=torch.long), self.row_features])

    def completeness_error(self) -> Tensor:
        """|Σ row + bias - value| per row (0 up to rounding: the replay is affine in the sources)."""
        return (self.rows.double().sum(1) + self.row_bias.double() - self.row_value.double()).abs()


def unembedding(model: nn.Module) -> Tensor:
    """W_U as [vocab, d] (the LM head's weight)."""
    return model.get_output_embeddings().weight  # type: ignore[operator,union-attr,return-value]


def _seed_logits(model: nn.Module, tokens: list[int], P: int, B: int, dtype: torch.dtype) -> Tensor:
    w_U = unembedding(model)  # [V, d]
    seed = torch.zeros(B, P, w_U.shape[1], dtype=dtype, device=w_U.device)
    for b, t in enumerate(tokens):
        seed[b, -1] = w_U[t].to(dtype)
    return seed


def _logit_bias(model: nn.Module, t: int) -> float:
    b = getattr(model.get_output_embeddings(), "bias", None)  # type: ignore[operator]
    return 0.0 if b is None else float(b[t])


class _Builder:
    def __init__(self, model: nn.Module, tcs: list[Any], rec: Recording, cfg: GraphConfig):
        self.model, self.tcs, self.rec, self.cfg = model, tcs, rec, cfg
        self.n, self.P = len(tcs), rec.input_ids.shape[1]
        self.counts = [int(p.numel()) for p in rec.feat_pos]
        self.offsets = [sum(self.counts[:L]) for L in range(self.n)]
        self.n_feat = sum(self.counts)
        self.n_cols = self.n_feat + self.n * self.P + self.P
        consts = [rec.mlp_out[L] - _skip(tcs[L], rec.mlp_in[L]) for L in range(self.n)]
        self.replay = Replay(model, tcs, rec, cfg.batch_size, rec.embeds_PD, consts, grad=True)
        self.decoders = [tc.W_dec.detach()[rec.feat_idx[L]] * rec.feat_act[L][:, None] for L, tc in enumerate(tcs)]

    def rows(self, feature_targets: list[int], logit_tokens: list[int]) -> Tensor:
        """Direct-effect rows for up to B targets: logits first, then features (column indices)."""
        B, P, rp = self.cfg.batch_size, self.P, self.replay
        dtype = rp.hidden.dtype
        outputs, seeds = [], []
        if logit_tokens:
            outputs.append(rp.hidden)
            seeds.append(_seed_logits(self.model, logit_tokens, P, B, dtype))
        by_layer: dict[int, Tensor] = {}
        for b, col in enumerate(feature_targets, start=len(logit_tokens)):
            L = int(torch.searchsorted(torch.tensor(self.offsets), col, right=True)) - 1
            j = col - self.offsets[L]
            seed = by_layer.setdefault(L, torch.zeros_like(rp.mlp_in[L]))
            seed[b, int(self.rec.feat_pos[L][j])] = self.tcs[L].W_enc.detach()[:, int(self.rec.feat_idx[L][j])]
        for L, seed in by_layer.items():
            outputs.append(rp.mlp_in[L])
            seeds.append(seed)
        grads = torch.autograd.grad(outputs, [rp.E, *rp.M], seeds, retain_graph=True, allow_unused=True,
                                    materialize_grads=True)
        g_E, g_M = grads[0], grads[1:]
        parts = []
        for L in range(self.n):
            g_BnD = g_M[L][:, self.rec.feat_pos[L]]
            parts.append(torch.einsum("bnd,nd->bn", g_BnD, self.decoders[L].to(dtype)))
        parts += [(g_M[L] * self.rec.errors[L].to(dtype)).sum(-1) for L in range(self.n)]
        parts.append((g_E * self.rec.embeds_PD.to(dtype)).sum(-1))
        n_rows = len(logit_tokens) + len(feature_targets)
        return torch.cat(parts, 1)[:n_rows].detach()

    @torch.no_grad()
    def biases(self, feature_cols: list[int], logit_tokens: list[int]) -> Tensor:
        """Each target's value with every source zeroed (E = 0, c_L = b_dec)."""
        zero = Replay(self.model, self.tcs, self.rec, 1, torch.zeros_like(self.rec.embeds_PD),
                      [tc.b_dec.detach().expand(self.P, -1) for tc in self.tcs], grad=False)
        w_U = unembedding(self.model)
        out = [float(zero.hidden[0, -1] @ w_U[t].to(zero.hidden.dtype)) + _logit_bias(self.model, t)
               for t in logit_tokens]
        for col in feature_cols:
            L = int(torch.searchsorted(torch.tensor(self.offsets), col, right=True)) - 1
            j = col - self.offsets[L]
            tc, p, f = self.tcs[L], int(self.rec.feat_pos[L][j]), int(self.rec.feat_idx[L][j])
            out.append(float(zero.mlp_in[L][0, p] @ tc.W_enc[:, f].to(zero.hidden.dtype) + tc.b_enc[f]))
        return torch.tensor(out, dtype=torch.float64)


def influence(rows: Tensor, row_cols: Tensor, weights: Tensor, n_cols: int) -> Tensor:
    """Influence of every column node on the weighted targets, through the rows computed so far.

    Edges are taken as |A| normalised per row (each target's inputs sum to 1); weights start on the
    logit rows and flow to sources, and from a source to its own inputs when it has a row, until
    nothing flows (the graph is acyclic: edges go up the layers). `row_cols` is -1 for logit rows.
    """
    norm = rows.abs()
    norm = norm / norm.sum(1, keepdim=True).clamp_min(1e-30)
    w_R = weights.to(norm.dtype).clone()
    total = torch.zeros(n_cols, dtype=norm.dtype)
    has_row = row_cols >= 0
    for _ in range(rows.shape[0] + 2):
        flow = w_R @ norm
        if not bool(flow.any()):
            break
        total += flow
        w_R = torch.zeros_like(w_R)
        w_R[has_row] = flow[row_cols[has_row]]
    return total


def attribute(model: nn.Module, tokenizer: Any, transcoders: list[Any], prompt: str | Tensor,
              cfg: GraphConfig | None = None, target_tokens: list[int] | None = None) -> AttributionGraph:
    """Build the attribution graph of `prompt` for `target_tokens` (default: the top `n_logits`
    predictions). `transcoders[L]` replaces layer L's MLP; every layer needs one."""
    cfg = cfg or GraphConfig()
    t0 = time.perf_counter()
    ids = prompt if isinstance(prompt, Tensor) else tokenizer(prompt, return_tensors="pt")["input_ids"]
    ids = ids.to(next(model.parameters()).device)
    from interplab.models.hookpoints import block_list

    if len(transcoders) != len(block_list(model)):
        raise InterplabError(f"the model has {len(block_list(model))} layers but {len(transcoders)} transcoders "
                             "were given; a graph needs one per layer")
    rec = record(model, transcoders, ids, cfg.first_position_features)
    probs = rec.logits_V.float().softmax(-1)
    logit_tokens = list(target_tokens) if target_tokens else probs.topk(cfg.n_logits).indices.tolist()
    if len(logit_tokens) > cfg.batch_size:
        raise InterplabError(f"{len(logit_tokens)} target logits do not fit one batch of {cfg.batch_size}")
    b = _Builder(model, transcoders, rec, cfg)
    rows = [b.rows([], logit_tokens)]
    visited: list[int] = []
    weights = probs[logit_tokens] / probs[logit_tokens].sum()
    t_replay = time.perf_counter()
    limit = min(cfg.max_feature_nodes, b.n_feat)
    while len(visited) < limit:
        all_rows = torch.cat(rows)
        row_cols = torch.tensor([-1] * len(logit_tokens) + visited, dtype=torch.long)
        infl = influence(all_rows, row_cols, torch.cat([weights, torch.zeros(len(visited))]), b.n_cols)[: b.n_feat]
        if visited:
            infl[torch.tensor(visited)] = -1.0
        order = infl.argsort(descending=True)
        batch = [int(c) for c in order[: min(cfg.batch_size, limit - len(visited))] if float(infl[c]) > 0]
        if not batch:
            break
        rows.append(b.rows(batch, []))
        visited += batch
    all_rows = torch.cat(rows)
    feature_rows = torch.tensor(visited, dtype=torch.long)
    values = [float(rec.logits_V[t]) for t in logit_tokens] + [
        float(torch.cat(rec.feat_act)[c]) for c in visited]
    layer_of = torch.cat([torch.full((c,), L) for L, c in enumerate(b.counts)])
    graph = AttributionGraph(
        tokens=[tokenizer.decode([int(t)]) for t in ids[0]], input_ids=[int(t) for t in ids[0]], n_layers=b.n,
        feat_layer=layer_of, feat_pos=torch.cat(rec.feat_pos).cpu(), feat_idx=torch.cat(rec.feat_idx).cpu(),
        feat_act=torch.cat(rec.feat_act).detach().cpu(), logit_tokens=logit_tokens,
        logit_values=rec.logits_V[logit_tokens].detach().cpu(), logit_probs=probs[logit_tokens].cpu(),
        rows=all_rows.cpu(), row_features=feature_rows, row_bias=b.biases(visited, logit_tokens),
        row_value=torch.tensor(values, dtype=torch.float64))
    err = graph.completeness_error()
    graph.meta.update(seconds_record=t_replay - t0, seconds_total=time.perf_counter() - t0,
                      n_active_features=b.n_feat, n_visited=len(visited), batch_size=cfg.batch_size,
                      completeness_max_abs_error=float(err.max()),
                      completeness_logit_abs_error=float(err[: len(logit_tokens)].max()),
                      dtype=str(rec.logits_V.dtype).removeprefix("torch."))
    log.info("graph: %d active features, %d visited, %.1f s, completeness error %.2e", b.n_feat,
             len(visited), graph.meta["seconds_total"], float(err.max()))
    return graph
