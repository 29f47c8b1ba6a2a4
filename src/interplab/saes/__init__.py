"""Sparse autoencoders: one file per architecture (its config class and SAE class, registered by
name), losses, fast TopK kernels, file formats."""

from interplab.saes.base import SAE, SAEConfig, SAEOutput, TrainOutput, TrainState
from interplab.saes.batchtopk import BatchTopKConfig, BatchTopKSAE
from interplab.saes.init import geometric_median, init_b_dec_geometric_median_, init_b_dec_mean_
from interplab.saes.io import load_dictionary_learning, load_sae, load_sparsify, save_sae
from interplab.saes.jumprelu import JumpReLUConfig, JumpReLUSAE
from interplab.saes.matryoshka import MatryoshkaConfig, MatryoshkaSAE
from interplab.saes.penalties import FrequencyPenaltyFields, frequency_weighted_costs
from interplab.saes.registry import SAE_CLASSES, config_class, make_sae, register_sae, sae_config
from interplab.saes.relu import ReLUConfig, ReLUSAE
from interplab.saes.topk import TopKConfig, TopKSAE

__all__ = [
    "BatchTopKConfig",
    "BatchTopKSAE",
    "FrequencyPenaltyFields",
    "JumpReLUConfig",
    "JumpReLUSAE",
    "MatryoshkaConfig",
    "MatryoshkaSAE",
    "ReLUConfig",
    "ReLUSAE",
    "SAE",
    "SAE_CLASSES",
    "SAEConfig",
    "SAEOutput",
    "TopKConfig",
    "TopKSAE",
    "TrainOutput",
    "TrainState",
    "config_class",
    "frequency_weighted_costs",
    "geometric_median",
    "init_b_dec_geometric_median_",
    "init_b_dec_mean_",
    "load_dictionary_learning",
    "load_sae",
    "load_sparsify",
    "make_sae",
    "register_sae",
    "sae_config",
    "save_sae",
]
