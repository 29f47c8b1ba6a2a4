"""MLP neurons: each one's input row (what it reads from the MLP input) and output row (what it writes).

One table per family names the MLP's input projection (its gate, for gated MLPs: the pre-activation
that decides whether the neuron fires) and its output projection. HF stores `nn.Linear` weights as
[out, in] and GPT-2's `Conv1D` as [in, out]; both come back here as [n_neurons, d_model].
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor, nn

from interplab.common import InterplabError
from interplab.models.hookpoints import FAMILY_TABLES, base_model, model_family

# family -> (input projection, output projection), relative to the MLP module
NEURON_TABLE = {
    "llama": ("gate_proj", "down_proj"),
    "gemma3": ("gate_proj", "down_proj"),
    "gpt2": ("c_fc", "c_proj"),
    "gpt_neox": ("dense_h_to_4h", "dense_4h_to_h"),
}


@dataclass
class NeuronWeights:
    """One layer's MLP neurons."""

    w_in_ND: Tensor
    """Input rows: neuron n's pre-activation is mlp_in · w_in_ND[n] (+ b_in_N[n])."""
    b_in_N: Tensor | None
    w_out_ND: Tensor
    """Output rows: neuron n adds activation · w_out_ND[n] to the MLP output."""
    out_module: nn.Module
    """The output projection; its input holds the neurons' activations [..., n_neurons]."""


def _rows(module: nn.Module, reads_d: bool) -> Tensor:
    """The weight as [n_neurons, d]: Linear keeps [out, in], Conv1D [in, out]."""
    w: Tensor = module.weight  # type: ignore[assignment]
    conv1d = type(module).__name__ == "Conv1D"
    if reads_d:  # input projection d -> n: Linear [n, d], Conv1D [d, n]
        return w.T if conv1d else w
    return w if conv1d else w.T  # output projection n -> d: Linear [d, n], Conv1D [n, d]


def neuron_weights(model: nn.Module, layer: int) -> NeuronWeights:
    """Layer `layer`'s MLP neurons (detached views of the model's weights)."""
    family = model_family(model)
    if family not in NEURON_TABLE:
        raise InterplabError(f"MLP neurons are tabled for {', '.join(sorted(NEURON_TABLE))}, not {family}")
    mlp = base_model(model).get_submodule(FAMILY_TABLES[family].mlp_in.format(L=layer))
    inp, out = (mlp.get_submodule(name) for name in NEURON_TABLE[family])
    bias = getattr(inp, "bias", None)
    return NeuronWeights(_rows(inp, True).detach(), None if bias is None else bias.detach(),
                         _rows(out, False).detach(), out)
