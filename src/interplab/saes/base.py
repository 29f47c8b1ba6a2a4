"""The SAE base class, its config, and the NamedTuples its forward passes return.

Parameter layout follows SAELens v6 so files load there unchanged:
`W_enc` [d_in, d_sae], `b_enc` [d_sae], `W_dec` [d_sae, d_in], `b_dec` [d_in].

Encoding is `latents = act(pre)` with `pre = (x - b_dec·apply_b_dec_to_input) @ W_enc + b_enc`;
decoding is `x_hat = latents @ W_dec + b_dec`. Each architecture (relu.py, topk.py, batchtopk.py,
jumprelu.py) supplies the activation and its training loss in `training_forward`.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any, ClassVar, NamedTuple

import torch
from torch import Tensor, nn

from interplab.common import InterplabError, get_dtype, get_logger
from interplab.configs import from_json_dict, to_json_dict

log = get_logger(__name__)


@dataclass
class SAEConfig:
    """Fields every architecture shares. JSON-safe.

    Each architecture subclasses it in its own file (relu.py, topk.py, ...) with the fields only it
    has, sets `architecture` (its registry name) and its SAELens mapping, and registers its SAE
    class with `@register_sae`: a new architecture is one file.
    """

    architecture: ClassVar[str] = ""
    """Registry name of the architecture (set by each subclass)."""
    saelens_architecture: ClassVar[str] = ""
    """The `architecture` written to a SAELens cfg.json (what SAELens runs at inference)."""
    saelens_reads: ClassVar[tuple[str, ...]] = ()
    """SAELens `architecture` names that load as this class."""

    d_in: int
    """Width of the activations the SAE reads (the model's d_model at the hook)."""
    d_sae: int
    """Number of latents (dictionary size)."""
    tied: bool = False
    """Share one matrix: W_enc is W_dec.T (half the parameters, no separate encoder)."""
    apply_b_dec_to_input: bool = True
    """Subtract b_dec from the input before encoding (SAELens convention; Gao et al.'s b_pre)."""
    normalize_decoder: bool = False
    """Keep decoder rows at unit norm during training (TopK-style); penalty architectures read the
    norms in their penalty instead."""
    decoder_init_norm: float | None = None
    """Norm of decoder rows at init; None means 1.0 with a unit-norm decoder, else 0.1 (Anthropic)."""
    init_encoder_scale: float = 1.0
    """W_enc starts as this multiple of W_dec.T. Adam moves every weight by about lr per step, so a
    small encoder is re-aimed at the data sooner (faster early FVU) but many latents are pulled onto
    the same frequent directions at once and stay duplicates when the dictionary has no spare
    latents. Not 0: every pre-activation would be 0 and the encoder would get no gradient.
    Measurements behind each architecture's default: bench/README.md."""
    dtype: str = "float32"
    """Parameter dtype, as a name ("float32", "bfloat16"); parsed once when the SAE is built."""
    seed: int = 0
    """Seed of the weight initialisation."""
    metadata: dict[str, Any] = field(default_factory=dict)
    """Provenance: model_name, hook_name, dataset_path, context_size, d_model... (free-form, JSON-safe)."""

    # Keys of files written before configs were split per architecture.
    _RENAMED: ClassVar[dict[str, str]] = {}

    def check(self) -> None:
        """Raise a one-line InterplabError for settings that cannot build an SAE."""
        if self.d_in <= 0 or self.d_sae <= 0:
            raise InterplabError(f"SAE needs positive d_in and d_sae, got {self.d_in} and {self.d_sae}")
        parse_dtype(self.dtype)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe dict: every field plus the architecture name."""
        return {"architecture": self.architecture, **to_json_dict(self)}

    @staticmethod
    def from_dict(data: Any, source: str = "SAE config") -> SAEConfig:
        """The config class registered for `data["architecture"]`, built and type-checked from `data`."""
        from interplab.saes.registry import config_class

        if not isinstance(data, dict):
            raise InterplabError(f"{source} must hold a JSON object")
        cls = config_class(str(data.get("architecture", "topk")))
        fields_in = {k: v for k, v in data.items() if k != "architecture"}
        # Files from before the split wrote None for "the architecture's default".
        for name in ("normalize_decoder", "init_encoder_scale"):
            if fields_in.get(name, 0) is None:
                del fields_in[name]
        cfg = from_json_dict(cls, fields_in, source, renamed=cls._RENAMED)
        cfg.metadata = dict(cfg.metadata or {})
        cfg.check()
        return cfg

    def replace(self, **changes: Any) -> SAEConfig:
        """A copy with some fields changed."""
        return dataclasses.replace(self, **changes)

    # ---- SAELens mapping (overridden by architectures with extra keys) ----------------------
    def saelens_fields(self) -> dict[str, Any]:
        """Architecture-specific keys of the SAELens cfg.json (besides d_in, d_sae, dtype...)."""
        return {}

    @classmethod
    def fields_from_saelens(cls, raw: dict[str, Any]) -> dict[str, Any]:
        """Our config fields read from a SAELens cfg.json's architecture-specific keys."""
        return {}


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

    @classmethod
    def from_dense(cls, x_hat_BD: Tensor, latents_BF: Tensor, mse: Tensor, fvu: Tensor,
                   sparsity: Tensor | None = None, aux: Tensor | None = None) -> TrainOutput:
        """The output of an architecture with dense latents; loss = mse + sparsity + aux."""
        zero = mse.new_zeros(())
        sparsity = zero if sparsity is None else sparsity
        aux = zero if aux is None else aux
        with torch.no_grad():
            active_BF = latents_BF != 0
            counts_F, l0 = active_BF.sum(0), active_BF.sum(-1).float().mean()
        return cls(loss=mse + sparsity + aux, mse_loss=mse, sparsity_loss=sparsity, aux_loss=aux,
                   x_hat_BD=x_hat_BD, latents_BF=latents_BF, top_values_BK=None, top_indices_BK=None,
                   fire_counts_F=counts_F, l0=l0, fvu=fvu)

    @classmethod
    def from_topk(cls, x_hat_BD: Tensor, values_BK: Tensor, idx_BK: Tensor, d_sae: int, mse: Tensor,
                  fvu: Tensor, aux: Tensor) -> TrainOutput:
        """The output of a TopK forward that kept (values, indices) pairs; loss = mse + aux."""
        with torch.no_grad():
            counts_F = sparse_fire_counts(values_BK, idx_BK, d_sae)
            l0 = (values_BK > 0).sum(1).float().mean()
        return cls(loss=mse + aux, mse_loss=mse, sparsity_loss=mse.new_zeros(()), aux_loss=aux,
                   x_hat_BD=x_hat_BD, latents_BF=None, top_values_BK=values_BK, top_indices_BK=idx_BK,
                   fire_counts_F=counts_F, l0=l0, fvu=fvu)


def sparse_fire_counts(values_BK: Tensor, idx_BK: Tensor, d_sae: int) -> Tensor:
    """[d_sae] rows in which each latent fired, from a (values, indices) pair (no host sync)."""
    fired = (values_BK > 0).reshape(-1).long()
    return torch.zeros(d_sae, dtype=torch.long, device=idx_BK.device).index_add_(0, idx_BK.reshape(-1), fired)


def parse_dtype(name: str) -> torch.dtype:
    """An SAE parameter dtype from its name ('float32', 'torch.bfloat16', 'bf16', ...)."""
    try:
        return get_dtype(name)
    except ValueError as exc:
        raise InterplabError(f"{exc} (SAE dtype)") from None


def _unit_rows(w_FD: Tensor, norm: float) -> Tensor:
    return w_FD / w_FD.norm(dim=-1, keepdim=True).clamp_min(1e-12) * norm


class SAE(nn.Module):
    """Base sparse autoencoder. Subclasses implement `activation` and `training_forward`."""

    #: the architecture's config class (set by each subclass; `register_sae` files both under its name)
    config_class: ClassVar[type[SAEConfig]] = SAEConfig
    cfg: SAEConfig

    def __init__(self, cfg: SAEConfig):
        super().__init__()
        if not isinstance(cfg, self.config_class):
            raise InterplabError(f"{type(self).__name__} needs a {self.config_class.__name__}, got {type(cfg).__name__}")
        cfg.check()
        self.cfg = cfg
        dtype = parse_dtype(cfg.dtype)
        gen = torch.Generator().manual_seed(cfg.seed)
        # Kaiming-uniform directions, rescaled; the encoder starts as the decoder's transpose times
        # `init_encoder_scale` (Gao et al. 2024, Conerly et al. 2024): fewer dead latents at the start.
        bound = 1 / math.sqrt(cfg.d_in)
        w_dec_FD = torch.empty(cfg.d_sae, cfg.d_in).uniform_(-bound, bound, generator=gen)
        w_dec_FD = _unit_rows(w_dec_FD, self.decoder_init_norm).to(dtype)
        self.W_dec = nn.Parameter(w_dec_FD)
        if not cfg.tied:
            self.W_enc = nn.Parameter((w_dec_FD.T * cfg.init_encoder_scale).contiguous())
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
    def architecture_name(self) -> str:
        """Registry name of this SAE's architecture."""
        return self.cfg.architecture

    @property
    def normalize_decoder(self) -> bool:
        """Whether decoder rows are kept at unit norm during training."""
        return self.cfg.normalize_decoder

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
