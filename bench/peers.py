"""One small adapter per TopK SAE trainer, all with the same interface, for bench/sae.py.

Each adapter drives its library with that library's own recommended training step (its own loss
including AuxK, its own decoder normalisation and gradient projection, its own b_dec init) and
nothing else: no wandb, no checkpoints, no LR warm-up or decay (every trainer gets the same constant
Adam learning rate, so speed and quality compare like for like).

Interface (duck-typed, see `TopKTrainerAdapter`):
    name                              row label in the table
    make(d_in, d_sae, k, lr, seed)    build the SAE + optimiser on `self.device`
    train_step(batch_BD)              one optimiser step on a [B, d_in] batch
    train(batches, n, on_step)        n steps, calling on_step(steps_done) after each (the bench's
                                      clock); peers loop over train_step, interplab runs its `fit`
    encode_decode(x_ND) -> x_hat_ND   inference reconstruction (for FVU)
    decoder_directions() -> [d_sae, d_in]  decoder rows (for MMCS against ground truth)

Peer imports happen inside `make`, so a missing peer fails with ImportError there (the bench turns
that into a "not installed" row) and this module imports with torch + interplab alone.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Protocol

import torch
from torch import Tensor

# Gao et al. 2024 (App. A.2) and every peer use α = 1/32 for the AuxK dead-latent loss.
AUXK_ALPHA = 1 / 32
# Tokens without firing after which a latent counts as dead (Gao et al.; sparsify and
# dictionary_learning default). Runs shorter than this never see a dead latent, as in real training.
DEAD_AFTER_TOKENS = 10_000_000


class TopKTrainerAdapter(Protocol):
    name: str

    def make(self, d_in: int, d_sae: int, k: int, lr: float, seed: int) -> None: ...
    def train_step(self, batch_BD: Tensor) -> None: ...
    def train(self, batches: Iterator[Tensor], n_steps: int, on_step: Callable[[int], None]) -> None: ...
    def encode_decode(self, x_ND: Tensor) -> Tensor: ...
    def decoder_directions(self) -> Tensor: ...


class StepLoop:
    """`train` as a plain loop over `train_step` (the peers' adapters)."""

    def train_step(self, batch_BD: Tensor) -> None:
        raise NotImplementedError

    def train(self, batches: Iterator[Tensor], n_steps: int, on_step: Callable[[int], None]) -> None:
        for done in range(1, n_steps + 1):
            self.train_step(next(batches))
            on_step(done)


class DeadTracker:
    """Tokens since each latent last fired; the dead mask every peer's AuxK reads."""

    def __init__(self, d_sae: int, device: torch.device, threshold: int = DEAD_AFTER_TOKENS):
        self.since_fired_F = torch.zeros(d_sae, dtype=torch.long, device=device)
        self.threshold = threshold

    def mask(self) -> Tensor:
        return self.since_fired_F > self.threshold

    @torch.no_grad()
    def update_(self, n_tokens: int, fired_idx: Tensor) -> None:
        """`fired_idx`: indices of latents that fired (any shape, repeats fine)."""
        self.since_fired_F += n_tokens
        self.since_fired_F[fired_idx.reshape(-1)] = 0

    @torch.no_grad()
    def update_from_counts_(self, n_tokens: int, counts_F: Tensor) -> None:
        """Same from per-latent fire counts, without a host sync (no nonzero())."""
        self.since_fired_F.add_(n_tokens).masked_fill_(counts_F > 0, 0)


class InterplabTopK(StepLoop):
    """interplab.saes TopKSAE; `sparse_kernel=False` gives the plain dense PyTorch reference row.

    The measured run goes through `interplab.training.fit`. Its step (the recipe documented in
    interplab/saes/topk.py): b_dec = geometric median of the first batch, loss = MSE + AuxK from
    `training_forward`, project the decoder gradient, Adam, renormalise rows. `train_step` spells the
    same step out by hand (tests check that fit and it train the same SAE).
    """

    def __init__(self, device: torch.device, sparse_kernel: bool = True):
        self.device = device
        self.sparse_kernel = sparse_kernel
        self.name = "interplab" if sparse_kernel else "interplab-dense"

    def make(self, d_in: int, d_sae: int, k: int, lr: float, seed: int) -> None:
        from interplab.saes import TopKConfig, make_sae

        cfg = TopKConfig(
            d_in=d_in,
            d_sae=d_sae,
            k=k,
            seed=seed,
            auxk_alpha=AUXK_ALPHA,
            sparse_kernel=self.sparse_kernel,
        )
        self.sae = make_sae(cfg).to(self.device)
        fused = self.device.type in ("cpu", "cuda") or None  # as fit builds it
        self.opt = torch.optim.Adam(self.sae.parameters(), lr=lr, betas=(0.9, 0.999), fused=fused)
        self.dead = DeadTracker(d_sae, self.device)
        self.lr, self.seed, self.step = lr, seed, 0

    def train(self, batches: Iterator[Tensor], n_steps: int, on_step: Callable[[int], None]) -> None:
        """interplab.training.fit with a constant lr and no clipping; b_dec init only on the first call.

        fit builds its own Adam and dead-latent tracker per call: the bench calls it once for the
        measured run (later calls only profile steps, whose cost does not depend on Adam's state).
        """
        from interplab.training import TrainConfig, fit

        cfg = TrainConfig(
            total_steps=n_steps,
            lr=self.lr,
            lr_decay="none",
            max_grad_norm=None,
            seed=self.seed,
            b_dec_init="geometric_median" if self.step == 0 else "none",
            device=str(self.device),
            threads=torch.get_num_threads(),  # what the bench set for every trainer, not fit's own choice
            log_every=n_steps,
            dead_after_tokens=DEAD_AFTER_TOKENS,
        )
        fit(self.sae, batches, cfg, on_step=lambda done, _metrics: on_step(done))
        self.step += n_steps

    def train_step(self, batch_BD: Tensor) -> None:
        """One step of the same recipe without fit."""
        from interplab.saes import TrainState, init_b_dec_geometric_median_

        if self.step == 0:
            init_b_dec_geometric_median_(self.sae, batch_BD[:4096])
        out = self.sae.training_forward(batch_BD, TrainState(dead_mask_F=self.dead.mask()))
        out.loss.backward()
        self.sae.remove_gradient_parallel_to_decoder_()
        self.opt.step()
        self.opt.zero_grad(set_to_none=True)
        self.sae.set_decoder_norm_to_unit_()
        self.dead.update_from_counts_(batch_BD.shape[0], out.fire_counts_F)
        self.step += 1

    @torch.no_grad()
    def encode_decode(self, x_ND: Tensor) -> Tensor:
        return self.sae(x_ND).x_hat

    def decoder_directions(self) -> Tensor:
        return self.sae.W_dec.detach()


class SAELensTopK(StepLoop):
    """SAELens `TopKTrainingSAE`, stepped like `SAETrainer._train_step` (their defaults: dense
    activations, decoder-norm rescaling instead of renormalisation, grad-norm clip 1.0, AuxK via
    `training_forward_pass`, dead = no firing in `dead_feature_window`=1000 forward passes)."""

    name = "saelens"
    dead_feature_window = 1000

    def __init__(self, device: torch.device):
        self.device = device

    def make(self, d_in: int, d_sae: int, k: int, lr: float, seed: int) -> None:
        from sae_lens import TopKTrainingSAE, TopKTrainingSAEConfig

        torch.manual_seed(seed)
        cfg = TopKTrainingSAEConfig(d_in=d_in, d_sae=d_sae, k=k, dtype="float32", device=str(self.device))
        self.sae = TopKTrainingSAE(cfg)
        self.sae.train()
        self.opt = torch.optim.Adam(self.sae.parameters(), lr=lr, betas=(0.9, 0.999))
        self.passes_since_fired_F = torch.zeros(d_sae, device=self.device)
        self.step = 0

    def train_step(self, batch_BD: Tensor) -> None:
        from sae_lens.saes.sae import TrainStepInput

        out = self.sae.training_forward_pass(
            step_input=TrainStepInput(
                sae_in=batch_BD,
                coefficients={},
                dead_neuron_mask=(self.passes_since_fired_F > self.dead_feature_window).bool(),
                n_training_steps=self.step,
                is_logging_step=False,
            )
        )
        with torch.no_grad():
            did_fire_F = out.feature_acts.bool().float().sum(-2).bool()
            self.passes_since_fired_F += 1
            self.passes_since_fired_F[did_fire_F] = 0
        out.loss.backward()
        torch.nn.utils.clip_grad_norm_(self.sae.parameters(), 1.0)
        self.opt.step()
        self.opt.zero_grad()
        self.step += 1

    @torch.no_grad()
    def encode_decode(self, x_ND: Tensor) -> Tensor:
        return self.sae.decode(self.sae.encode(x_ND))

    def decoder_directions(self) -> Tensor:
        return self.sae.W_dec.detach()


class SparsifyTopK(StepLoop):
    """EleutherAI sparsify `SparseCoder`, stepped like `sparsify.Trainer.fit` with loss_fn="fvu":
    b_dec = batch mean on the first step, renormalise decoder rows before the forward, loss =
    fvu + α·auxk, project the decoder gradient, optimiser step. Their Trainer defaults to signum;
    here Adam at the shared lr, as for every trainer. On CUDA their forward autocasts to bf16."""

    name = "sparsify"

    def __init__(self, device: torch.device):
        self.device = device

    def make(self, d_in: int, d_sae: int, k: int, lr: float, seed: int) -> None:
        from sparsify import SparseCoder, SparseCoderConfig

        torch.manual_seed(seed)
        cfg = SparseCoderConfig(num_latents=d_sae, k=k)
        self.sae = SparseCoder(d_in, cfg, device=self.device)
        self.opt = torch.optim.Adam(self.sae.parameters(), lr=lr)
        self.dead = DeadTracker(d_sae, self.device)
        self.step = 0

    def train_step(self, batch_BD: Tensor) -> None:
        if self.step == 0:
            self.sae.b_dec.data = batch_BD.mean(0).to(self.sae.dtype)
        self.sae.set_decoder_norm_to_unit_norm()
        out = self.sae(batch_BD, dead_mask=self.dead.mask())
        loss = out.fvu + AUXK_ALPHA * out.auxk_loss
        loss.backward()
        self.sae.remove_gradient_parallel_to_decoder_directions()
        self.opt.step()
        self.opt.zero_grad()
        self.dead.update_(batch_BD.shape[0], out.latent_indices)
        self.step += 1

    @torch.no_grad()
    def encode_decode(self, x_ND: Tensor) -> Tensor:
        return self.sae(x_ND).sae_out.float()

    def decoder_directions(self) -> Tensor:
        return self.sae.W_dec.detach()


class DictionaryLearningTopK(StepLoop):
    """dictionary_learning `TopKTrainer.update(step, x)` as is (geometric-median b_dec on step 0,
    AuxK, gradient projection, grad-norm clip 1.0, Adam, renormalisation), with its LR warm-up
    set to 0 steps so the learning rate matches the other trainers'."""

    name = "dictionary_learning"

    def __init__(self, device: torch.device, total_steps: int):
        self.device = device
        self.total_steps = total_steps

    def make(self, d_in: int, d_sae: int, k: int, lr: float, seed: int) -> None:
        from dictionary_learning.trainers.top_k import TopKTrainer

        self.trainer = TopKTrainer(
            steps=self.total_steps + 1,
            activation_dim=d_in,
            dict_size=d_sae,
            k=k,
            layer=0,
            lm_name="bench",
            lr=lr,
            auxk_alpha=AUXK_ALPHA,
            warmup_steps=0,
            seed=seed,
            device=str(self.device),
        )
        self.step = 0

    def train_step(self, batch_BD: Tensor) -> None:
        self.trainer.update(self.step, batch_BD)
        self.step += 1

    @torch.no_grad()
    def encode_decode(self, x_ND: Tensor) -> Tensor:
        return self.trainer.ae(x_ND)

    def decoder_directions(self) -> Tensor:
        # nn.Linear(dict_size, activation_dim) stores the decoder as [d_in, d_sae].
        return self.trainer.ae.decoder.weight.detach().T


PEER_NAMES = ("saelens", "sparsify", "dictionary_learning")
OUR_NAMES = ("interplab", "interplab-dense")


def make_adapter(name: str, device: torch.device, total_steps: int) -> TopKTrainerAdapter:
    """Adapter for a row name (ours or a peer's); ValueError names the choices."""
    if name == "interplab":
        return InterplabTopK(device, sparse_kernel=True)
    if name == "interplab-dense":
        return InterplabTopK(device, sparse_kernel=False)
    if name == "saelens":
        return SAELensTopK(device)
    if name == "sparsify":
        return SparsifyTopK(device)
    if name == "dictionary_learning":
        return DictionaryLearningTopK(device, total_steps)
    raise ValueError(f"unknown trainer {name!r}; choose from {OUR_NAMES + PEER_NAMES}")
