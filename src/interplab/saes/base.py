"""The SAE base class, its config, and the NamedTuples its forward passes return.

Parameter layout follows SAELens v6 so files load there unchanged:
`W_enc` [d_in, d_sae], `b_enc` [d_sae], `W_dec` [d_sae, d_in], `b_dec` [d_in].

Encoding is `latents = act(pre)` with `pre = (x - b_dec·apply_b_dec_to_input) @ W_enc + b_enc`;
decoding is `x_hat = latents @ W_dec + b_dec`. Each architecture (relu.py, topk.py, batchtopk.py,
jumprelu.py) supplies the activation and its training loss in `training_forward`.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields
from typing import Any, NamedTuple

import torch
from torch import Tensor, nn

from interplab.common import InterplabError, get_logger

log = get_logger(__name__)


@dataclass
class SAEConfig:
    """Everything needed to rebuild an SAE (shape, architecture, loss settings). JSON-safe."""

    d_in: int
    """Width of the activations the SAE reads (the model's d_model at the hook)."""
    d_sae: int
    """Number of latents (dictionary size)."""
    architecture: str = "topk"
    """Registry name: "relu", "topk", "batchtopk" or "jumprelu"."""
    k: int = 32
    """TopK / BatchTopK: latents kept per token (BatchTopK: on average over the batch)."""
    tied: bool = False
    """Share one matrix: W_enc is W_dec.T (half the parameters, no separate encoder)."""
    l1_coeff: float = 5.0
    """ReLU: weight of the decoder-norm-weighted L1 penalty (Anthropic April 2024 uses ~5 on
    inputs scaled to E‖x‖² = d_in)."""
    l0_coeff: float = 1.0
    """JumpReLU: weight of the L0 penalty."""
    jumprelu_bandwidth: float = 0.001
    """JumpReLU: width ε of the rectangle kernel in the straight-through threshold gradient."""
    jumprelu_init_threshold: float = 0.001
    """JumpReLU: initial threshold of every latent."""
    auxk_alpha: float = 1 / 32
    """TopK / BatchTopK: weight of the AuxK dead-latent loss (Gao et al. 2024 use 1/32)."""
    k_aux: int | None = None
    """TopK / BatchTopK: dead latents used by AuxK per token; None means d_in // 2."""
    dead_after_tokens: int = 10_000_000
    """A latent that has not fired for this many training tokens counts as dead (the trainer keeps
    the count and passes the mask in TrainState)."""
    freq_weighted_sparsity: bool = False
    """ReLU / JumpReLU: scale each latent's sparsity cost by a decreasing function of its firing
    frequency (see `frequency_weighted_costs`)."""
    freq_beta: float = 0.5
    """Exponent β of the frequency-weighted cost c_i ∝ (freq_i + eps)^-β; 0 gives the plain penalty."""
    freq_eps: float = 1e-4
    """Frequency floor in the cost, so never-seen latents get a finite cost."""
    freq_cost_min: float = 0.25
    """Lower clip of the per-latent cost (after normalisation)."""
    freq_cost_max: float = 4.0
    """Upper clip of the per-latent cost (after normalisation): bounds how hard rare latents are pushed."""
    threshold_momentum: float = 0.99
    """BatchTopK: EMA momentum of the inference threshold estimated during training."""
    apply_b_dec_to_input: bool = True
    """Subtract b_dec from the input before encoding (SAELens convention; Gao et al.'s b_pre)."""
    normalize_decoder: bool | None = None
    """Keep decoder rows at unit norm during training; None means the architecture's default
    (TopK, BatchTopK: True; ReLU, JumpReLU: False, their penalties read the norms instead)."""
    decoder_init_norm: float | None = None
    """Norm of decoder rows at init; None means 1.0 for unit-norm architectures, else 0.1 (Anthropic)."""
    init_encoder_scale: float | None = None
    """W_enc starts as this multiple of W_dec.T; None means the architecture's default (TopK,
    BatchTopK: 0.5; ReLU, JumpReLU: 1.0). Adam moves every weight by about lr per step whatever its
    size, so the smaller the encoder starts, the sooner it is re-aimed from its random initial
    directions at the data: faster early FVU, but many latents are pulled onto the same frequent
    directions at once, and with no spare latents (dictionary = true feature count) those
    duplicates stay. Measured (CPU, 2026-11-23): bench/sae.py (d_in 384, d_sae 4096 = 2x its 2048
    features, k 32) FVU after 300 steps 0.54 / 0.47 / 0.35 at scale 1 / 0.5 / 0.1; bench/ground_truth.py
    at d_sae = the 512 true features, MMCS after 6000 steps 0.89 at 0.1 (latents on duplicate
    features) but 0.98 at 0.5 and 1.0. 0.5 keeps the ground truth and is close to sparsify's
    nn.Linear start (≈0.58 × W_dec.T); dictionary_learning starts at 1.0. Not 0: every
    pre-activation would be 0 and the encoder would get no gradient."""
    sparse_kernel: bool = True
    """TopK: use the sparse autograd kernel (sparse_ops.py); False runs the plain dense reference."""
    dtype: str = "float32"
    """Parameter dtype, as a name ("float32", "bfloat16"); parsed once when the SAE is built."""
    seed: int = 0
    """Seed of the weight initialisation."""
    metadata: dict[str, Any] = field(default_factory=dict)
    """Provenance: model_name, hook_name, dataset_path, context_size, d_model... (free-form, JSON-safe)."""

    @property
    def k_aux_eff(self) -> int:
        """The AuxK width actually used."""
        return self.k_aux if self.k_aux is not None else max(1, self.d_in // 2)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe dict (every field)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SAEConfig:
        """Build from a dict; unknown keys are ignored with a debug log (files from newer versions)."""
        names = {f.name for f in fields(cls)}
        missing = [n for n in ("d_in", "d_sae") if n not in data]
        if missing:
            raise InterplabError(f"SAE config lacks {missing}; a cfg.json needs at least d_in and d_sae")
        unknown = sorted(set(data) - names)
        if unknown:
            log.debug("ignoring unknown SAE config keys %s", unknown)
        kwargs = {k: v for k, v in data.items() if k in names}
        kwargs["metadata"] = dict(kwargs.get("metadata") or {})
        return cls(**kwargs)


class SAEOutput(NamedTuple):
    """Inference forward pass."""

    x_hat: Tensor
    """Reconstruction [..., d_in]."""
    latents: Tensor
    """Post-activation latents [..., d_sae] (dense)."""


class TrainState(NamedTuple):
    """What the trainer knows that the loss needs."""

    sparsity_scale: float = 1.0
    """Multiplier on the configured sparsity coefficient (warm-up goes 0 -> 1)."""
    dead_mask_F: Tensor | None = None
    """[d_sae] bool, True for latents that have not fired for `dead_after_tokens` (AuxK uses it)."""
    freq_F: Tensor | None = None
    """[d_sae] running firing frequency estimate in [0, 1] (frequency-weighted penalty uses it)."""


class TrainOutput(NamedTuple):
    """One training forward pass. `loss` is what to backpropagate; the rest is for logging."""

    loss: Tensor
    """Total scalar loss = mse_loss + sparsity_loss + aux_loss."""
    mse_loss: Tensor
    """Squared error summed over d_in, averaged over the batch (SAELens convention)."""
    sparsity_loss: Tensor
    """The weighted sparsity penalty actually added (0 for TopK / BatchTopK)."""
    aux_loss: Tensor
    """The weighted AuxK loss actually added (0 when no latent is dead or for ReLU / JumpReLU)."""
    x_hat_BD: Tensor
    """Reconstruction [B, d_in]."""
    latents_BF: Tensor | None
    """Dense latents [B, d_sae]; None for TopK, which returns the sparse pair below instead."""
    top_values_BK: Tensor | None
    """TopK only: the k latent values per row [B, k] (ReLU applied; may hold zeros)."""
    top_indices_BK: Tensor | None
    """TopK only: their latent indices [B, k]."""
    fire_counts_F: Tensor
    """[d_sae] number of rows of the batch in which each latent was nonzero (for frequencies)."""
    l0: Tensor
    """Mean number of nonzero latents per row (detached scalar)."""
    fvu: Tensor
    """Fraction of variance unexplained: ‖x - x_hat‖² / ‖x - mean(x)‖² over the batch (detached)."""


_FLOAT_DTYPES = {"float32", "float64", "float16", "bfloat16"}


def parse_dtype(name: str) -> torch.dtype:
    """'float32' / 'torch.float32' / 'bf16'-style names -> torch dtype (floating types only)."""
    short = {"fp32": "float32", "fp16": "float16", "bf16": "bfloat16", "fp64": "float64", "double": "float64"}
    key = str(name).removeprefix("torch.")
    key = short.get(key, key)
    if key not in _FLOAT_DTYPES:
        raise InterplabError(f"unknown SAE dtype {name!r}; use one of {sorted(_FLOAT_DTYPES)}")
    return getattr(torch, key)


def _unit_rows(w_FD: Tensor, norm: float) -> Tensor:
    return w_FD / w_FD.norm(dim=-1, keepdim=True).clamp_min(1e-12) * norm


class SAE(nn.Module):
    """Base sparse autoencoder. Subclasses implement `activation` and `training_forward`."""

    #: registry name, set by `register_sae`
    architecture_name: str = ""
    #: architectures whose decoder rows are kept at unit norm by default
    unit_norm_decoder_default: bool = False
    #: W_enc = this × W_dec.T at init unless the config says otherwise (see SAEConfig.init_encoder_scale)
    encoder_init_scale_default: float = 1.0

    def __init__(self, cfg: SAEConfig):
        super().__init__()
        if cfg.d_in <= 0 or cfg.d_sae <= 0:
            raise InterplabError(f"SAE needs positive d_in and d_sae, got {cfg.d_in} and {cfg.d_sae}")
        self.cfg = cfg
        dtype = parse_dtype(cfg.dtype)
        gen = torch.Generator().manual_seed(cfg.seed)
        # Kaiming-uniform directions, rescaled; the encoder starts as the decoder's transpose times
        # `encoder_init_scale` (Gao et al. 2024, Conerly et al. 2024): fewer dead latents at the start.
        bound = 1 / math.sqrt(cfg.d_in)
        w_dec_FD = torch.empty(cfg.d_sae, cfg.d_in).uniform_(-bound, bound, generator=gen)
        w_dec_FD = _unit_rows(w_dec_FD, self.decoder_init_norm).to(dtype)
        self.W_dec = nn.Parameter(w_dec_FD)
        if not cfg.tied:
            self.W_enc = nn.Parameter((w_dec_FD.T * self.encoder_init_scale).contiguous())
        self.b_enc = nn.Parameter(torch.zeros(cfg.d_sae, dtype=dtype))
        self.b_dec = nn.Parameter(torch.zeros(cfg.d_in, dtype=dtype))

    def __getattr__(self, name: str) -> Any:
        # Tied SAEs have no W_enc parameter; expose the decoder's transpose under that name so
        # every caller (and the SAELens-layout writer) can read `sae.W_enc` either way.
        if name == "W_enc" and self.__dict__.get("cfg") is not None and self.cfg.tied:
            return self.W_dec.T
        return super().__getattr__(name)

    # ---- settings resolved from the config -------------------------------------------------
    @property
    def normalize_decoder(self) -> bool:
        """Whether decoder rows are kept at unit norm during training."""
        nd = self.cfg.normalize_decoder
        return self.unit_norm_decoder_default if nd is None else nd

    @property
    def encoder_init_scale(self) -> float:
        """W_enc = encoder_init_scale × W_dec.T at initialisation (untied SAEs)."""
        scale = self.cfg.init_encoder_scale
        return self.encoder_init_scale_default if scale is None else scale

    @property
    def decoder_init_norm(self) -> float:
        """Norm of decoder rows at initialisation."""
        if self.cfg.decoder_init_norm is not None:
            return self.cfg.decoder_init_norm
        return 1.0 if self.normalize_decoder else 0.1

    @property
    def dtype(self) -> torch.dtype:
        return self.W_dec.dtype

    @property
    def device(self) -> torch.device:
        return self.W_dec.device

    # ---- inference ---------------------------------------------------------------------------
    def _check_input(self, x: Tensor) -> None:
        if x.shape[-1] != self.cfg.d_in:
            raise InterplabError(
                f"SAE expects inputs with last dimension d_in={self.cfg.d_in}, got shape {tuple(x.shape)}; "
                "check that the SAE matches the hook it is applied to"
            )

    def sae_input(self, x: Tensor) -> Tensor:
        """The input the encoder sees: x (cast to the SAE dtype) minus b_dec if configured."""
        self._check_input(x)
        x = x.to(self.dtype)
        return x - self.b_dec if self.cfg.apply_b_dec_to_input else x

    def pre_acts(self, x: Tensor) -> Tensor:
        """Encoder pre-activations [..., d_sae]."""
        return self.sae_input(x) @ self.W_enc + self.b_enc

    def activation(self, pre: Tensor) -> Tensor:
        """Post-activation latents from pre-activations (per token; inference rule)."""
        raise NotImplementedError

    def encode(self, x: Tensor) -> Tensor:
        """Latents [..., d_sae] for inputs [..., d_in] (post-activation, dense)."""
        return self.activation(self.pre_acts(x))

    def decode(self, z: Tensor) -> Tensor:
        """Reconstruction [..., d_in] from latents [..., d_sae]."""
        return z.to(self.dtype) @ self.W_dec + self.b_dec

    def forward(self, x: Tensor) -> SAEOutput:
        z = self.encode(x)
        return SAEOutput(x_hat=self.decode(z), latents=z)

    # ---- training ----------------------------------------------------------------------------
    def training_forward(self, x_BD: Tensor, state: TrainState | None = None) -> TrainOutput:
        """Loss and statistics for one batch [B, d_in]; call `.loss.backward()` on the result."""
        raise NotImplementedError

    def _reconstruction_stats(self, x_BD: Tensor, x_hat_BD: Tensor) -> tuple[Tensor, Tensor]:
        """(mse_loss with grad, fvu detached)."""
        err_BD = x_hat_BD - x_BD
        mse = err_BD.pow(2).sum(-1).mean()
        with torch.no_grad():
            total = (x_BD - x_BD.mean(0)).pow(2).sum().clamp_min(1e-12)
            fvu = err_BD.detach().pow(2).sum() / total
        return mse, fvu

    def decoder_norms(self) -> Tensor:
        """[d_sae] L2 norm of each decoder row."""
        return self.W_dec.norm(dim=-1)

    @torch.no_grad()
    def set_decoder_norm_to_unit_(self) -> None:
        """Rescale decoder rows to unit norm (call after each optimiser step when `normalize_decoder`)."""
        self.W_dec.div_(torch.linalg.vector_norm(self.W_dec, dim=-1, keepdim=True).clamp_min_(1e-12))

    @torch.no_grad()
    def remove_gradient_parallel_to_decoder_(self) -> None:
        """Project out the part of W_dec.grad along each decoder row (Gao et al. 2024).

        With unit-norm rows that component would only change the norm, which the renormalisation
        after the step undoes anyway; removing it keeps Adam's moment estimates honest.
        """
        grad = self.W_dec.grad
        if grad is None:
            return
        w_FD = self.W_dec
        sq_norm_F1 = torch.linalg.vector_norm(w_FD, dim=-1, keepdim=True).square_().clamp_min_(1e-12)
        coef_F1 = (grad * w_FD).sum(-1, keepdim=True).div_(sq_norm_F1)
        grad.addcmul_(coef_F1, w_FD, value=-1)  # in place, no [d_sae, d_in] product temporary

    # ---- file-format hooks (io.py) -----------------------------------------------------------
    def export_tensors(self) -> dict[str, Tensor]:
        """SAELens-layout tensors to save (W_enc written out even when tied)."""
        return {
            "W_enc": self.W_enc.detach().contiguous(),
            "b_enc": self.b_enc.detach().contiguous(),
            "W_dec": self.W_dec.detach().contiguous(),
            "b_dec": self.b_dec.detach().contiguous(),
        }

    def expected_shapes(self) -> dict[str, tuple[int, ...]]:
        """Shape of every tensor `import_tensors_` requires."""
        d, f = self.cfg.d_in, self.cfg.d_sae
        return {"W_enc": (d, f), "b_enc": (f,), "W_dec": (f, d), "b_dec": (d,)}

    @torch.no_grad()
    def import_tensors_(self, tensors: dict[str, Tensor], source: str = "file") -> None:
        """Copy SAELens-layout tensors in, after checking each name and shape."""
        for name, shape in self.expected_shapes().items():
            if name not in tensors:
                if name == "W_enc" and self.cfg.tied:
                    continue
                raise InterplabError(f"{source} lacks tensor {name!r} (expected shape {shape})")
            t = tensors[name]
            if tuple(t.shape) != shape:
                raise InterplabError(
                    f"{source}: tensor {name!r} has shape {tuple(t.shape)}, expected {shape} "
                    f"for d_in={self.cfg.d_in}, d_sae={self.cfg.d_sae}"
                )
        for name in self.expected_shapes():
            if name == "W_enc" and self.cfg.tied:
                continue
            self._import_one_(name, tensors[name])

    def _import_one_(self, name: str, t: Tensor) -> None:
        target = getattr(self, name)
        target.copy_(t.to(device=target.device, dtype=target.dtype))

    def n_params(self) -> int:
        """Number of trainable parameters."""
        return sum(p.numel() for p in self.parameters())


def fire_counts(latents_BF: Tensor) -> Tensor:
    """[d_sae] number of rows where each latent is nonzero."""
    return (latents_BF != 0).sum(0)
