"""A tiny causal transformer for the Dyck lab, written out so every head can be read and ablated.

Per string (tokens BOS, brackets, EOS, padding):
1. x_0 = token embedding + learned position embedding.
2. Each block (pre-LN): x += attention(LN(x)) with causal multi-head attention, then x += MLP(LN(x)).
   Each head's output z_h (before the output projection) can be replaced: `head_fn(layer, z_BHTd)` returns
   the tensor used instead, which is how head ablations are done.
3. Depth: a linear read of LN(x_final) at every position (classes: depth 0..max_depth, and "below zero").
4. Balanced: every position scores "something is wrong here" (v_t, linear in LN(x_final)); the string's logit
   for "balanced" is -logsumexp over real positions of v_t, a smooth "no position objects". An unbalanced
   string needs one objecting position: a prefix below zero, or EOS at a depth other than 0.
The residual stream after the embeddings and after each block is returned for probes and SAEs.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple, cast

import torch
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save
from torch import Tensor, nn
from torch.nn import functional as F

from interplab.common import InterplabError
from interplab.configs import from_json_dict, to_json_dict
from interplab.data.synthetic.dyck import VOCAB_SIZE
from interplab.files import read_json_object, write_bytes_atomic, write_text_atomic

HeadFn = Callable[[int, Tensor], Tensor]


@dataclass
class DyckModelConfig:
    """Shape of the Dyck transformer."""

    d_model: int = 32
    """Residual stream width."""
    n_layers: int = 2
    """Transformer blocks."""
    n_heads: int = 2
    """Attention heads per block."""
    d_mlp: int = 64
    """MLP hidden width."""
    seq_len: int = 22
    """Positions (BOS + brackets + EOS)."""
    max_depth: int = 8
    """Deepest depth class; deeper or negative depths have their own classes."""

    @property
    def d_head(self) -> int:
        return self.d_model // self.n_heads

    @property
    def n_depth_classes(self) -> int:
        return self.max_depth + 2  # 0..max_depth and "below zero"


class DyckOutput(NamedTuple):
    balanced_logit_B: Tensor
    """Logit of "balanced" per string."""
    depth_logits_BTC: Tensor
    """Depth-class logits at every position."""
    resid: list[Tensor]
    """Residual stream [B, T, d] after the embeddings and after each block (n_layers + 1 entries)."""


def depth_class(depth_BT: Tensor, max_depth: int) -> Tensor:
    """Depth -> class index: 0..max_depth as themselves (deeper clipped), negative depths -> max_depth + 1."""
    return torch.where(depth_BT < 0, torch.full_like(depth_BT, max_depth + 1), depth_BT.clamp(max=max_depth))


class Block(nn.Module):
    def __init__(self, cfg: DyckModelConfig):
        super().__init__()
        self.cfg = cfg
        self.ln1 = nn.LayerNorm(cfg.d_model)
        self.qkv = nn.Linear(cfg.d_model, 3 * cfg.d_model)
        self.out = nn.Linear(cfg.d_model, cfg.d_model)
        self.ln2 = nn.LayerNorm(cfg.d_model)
        self.mlp = nn.Sequential(nn.Linear(cfg.d_model, cfg.d_mlp), nn.GELU(), nn.Linear(cfg.d_mlp, cfg.d_model))

    def heads(self, x_BTD: Tensor, mask_BT: Tensor) -> tuple[Tensor, Tensor]:
        """(per-head outputs z [B, H, T, d_head], attention patterns [B, H, T(query), T(key)])."""
        b, t, _ = x_BTD.shape
        h, dh = self.cfg.n_heads, self.cfg.d_head
        q, k, v = self.qkv(self.ln1(x_BTD)).view(b, t, 3, h, dh).permute(2, 0, 3, 1, 4)
        scores_BHTT = q @ k.transpose(-1, -2) / math.sqrt(dh)
        causal_TT = torch.ones(t, t, dtype=torch.bool, device=x_BTD.device).tril()
        allowed = causal_TT[None, None] & mask_BT[:, None, None, :]
        pattern = torch.softmax(scores_BHTT.masked_fill(~allowed, float("-inf")), dim=-1)
        return pattern @ v, pattern

    def forward(self, x_BTD: Tensor, mask_BT: Tensor, layer: int, head_fn: HeadFn | None) -> Tensor:
        z_BHTd, _ = self.heads(x_BTD, mask_BT)
        if head_fn is not None:
            z_BHTd = head_fn(layer, z_BHTd)
        b, h, t, dh = z_BHTd.shape
        x_BTD = x_BTD + self.out(z_BHTd.transpose(1, 2).reshape(b, t, h * dh))
        return x_BTD + self.mlp(self.ln2(x_BTD))


class DyckTransformer(nn.Module):
    def __init__(self, cfg: DyckModelConfig):
        super().__init__()
        self.cfg = cfg
        self.embed = nn.Embedding(VOCAB_SIZE, cfg.d_model)
        self.pos = nn.Embedding(cfg.seq_len, cfg.d_model)
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg.n_layers))
        self.ln_final = nn.LayerNorm(cfg.d_model)
        self.depth_head = nn.Linear(cfg.d_model, cfg.n_depth_classes)
        self.objection = nn.Linear(cfg.d_model, 1)

    def forward(self, tokens_BT: Tensor, mask_BT: Tensor, head_fn: HeadFn | None = None) -> DyckOutput:
        positions = torch.arange(tokens_BT.shape[1], device=tokens_BT.device)
        x = self.embed(tokens_BT) + self.pos(positions)[None]
        resid = [x]
        for layer, block in enumerate(self.blocks):
            x = block(x, mask_BT, layer, head_fn)
            resid.append(x)
        final = self.ln_final(x)
        objection_BT = self.objection(final).squeeze(-1).masked_fill(~mask_BT, float("-inf"))
        return DyckOutput(balanced_logit_B=-torch.logsumexp(objection_BT, dim=-1),
                          depth_logits_BTC=self.depth_head(final), resid=resid)

    def attention_patterns(self, tokens_BT: Tensor, mask_BT: Tensor) -> list[Tensor]:
        """Each block's attention patterns [B, H, T, T] (for the write-up's figures)."""
        positions = torch.arange(tokens_BT.shape[1], device=tokens_BT.device)
        x = self.embed(tokens_BT) + self.pos(positions)[None]
        patterns = []
        blocks = cast(list[Block], list(self.blocks))  # ModuleList iterates as Module
        for layer, block in enumerate(blocks):
            patterns.append(block.heads(x, mask_BT)[1])
            x = block(x, mask_BT, layer, None)
        return patterns


def losses(out: DyckOutput, balanced_B: Tensor, depth_BT: Tensor, mask_BT: Tensor, max_depth: int) -> tuple[Tensor, Tensor]:
    """(balanced cross-entropy, per-token depth cross-entropy over real tokens)."""
    cls = F.binary_cross_entropy_with_logits(out.balanced_logit_B, balanced_B.float())
    target = depth_class(depth_BT, max_depth)
    depth = F.cross_entropy(out.depth_logits_BTC[mask_BT], target[mask_BT])
    return cls, depth


WEIGHTS_FILE = "dyck_model.safetensors"
CONFIG_FILE = "dyck_model.json"


def save_dyck_model(model: DyckTransformer, folder: str | Path) -> Path:
    """Weights as safetensors plus the config as JSON (no pickle)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    write_bytes_atomic(folder / WEIGHTS_FILE, st_save({k: v.contiguous() for k, v in model.state_dict().items()}))
    write_text_atomic(folder / CONFIG_FILE, json.dumps(to_json_dict(model.cfg), indent=2))
    return folder


def load_dyck_model(folder: str | Path) -> DyckTransformer:
    folder = Path(folder)
    if not (folder / WEIGHTS_FILE).is_file() or not (folder / CONFIG_FILE).is_file():
        raise InterplabError(f"{folder} holds no Dyck model ({WEIGHTS_FILE} + {CONFIG_FILE}); run `interplab dyck`")
    cfg = from_json_dict(DyckModelConfig, read_json_object(folder / CONFIG_FILE), str(folder / CONFIG_FILE))
    model = DyckTransformer(cfg)
    model.load_state_dict(st_load((folder / WEIGHTS_FILE).read_bytes()))
    return model.eval()
