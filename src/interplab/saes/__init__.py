"""Sparse autoencoders: architectures (registered by name), losses, fast TopK kernels, file formats."""

from interplab.saes.base import SAE, SAEConfig, SAEOutput, TrainOutput, TrainState
from interplab.saes.batchtopk import BatchTopKSAE
from interplab.saes.init import geometric_median, init_b_dec_geometric_median_, init_b_dec_mean_
from interplab.saes.io import load_dictionary_learning, load_sae, load_sparsify, save_sae
from interplab.saes.jumprelu import JumpReLUSAE
from interplab.saes.penalties import frequency_weighted_costs
from interplab.saes.registry import SAE_CLASSES, make_sae, register_sae
from interplab.saes.relu import ReLUSAE
from interplab.saes.topk import TopKSAE

__all__ = [
    "BatchTopKSAE",
    "JumpReLUSAE",
    "ReLUSAE",
    "SAE",
    "SAE_CLASSES",
    "SAEConfig",
    "SAEOutput",
    "TopKSAE",
    "TrainOutput",
    "TrainState",
    "frequency_weighted_costs",
    "geometric_median",
    "init_b_dec_geometric_median_",
    "init_b_dec_mean_",
    "load_dictionary_learning",
    "load_sae",
    "load_sparsify",
    "make_sae",
    "register_sae",
    "save_sae",
]
