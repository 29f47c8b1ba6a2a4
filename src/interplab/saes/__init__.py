"""Sparse autoencoders and transcoders: one file per architecture (its config class and SAE class,
registered by name), losses, fast TopK kernels, file formats."""

from interplab.saes.base import SAE, SAEConfig, SAEOutput, TrainOutput, TrainState
from interplab.saes.batchtopk import BatchTopKConfig, BatchTopKSAE
from interplab.saes.group import SAEGroup, SAEGroupConfig, load_group, save_group
from interplab.saes.init import geometric_median, init_b_dec_geometric_median_, init_b_dec_mean_
from interplab.saes.io import load_dictionary_learning, load_sae, load_sparsify, save_sae
from interplab.saes.jumprelu import JumpReLUConfig, JumpReLUSAE
from interplab.saes.matryoshka import MatryoshkaConfig, MatryoshkaSAE
from interplab.saes.penalties import FrequencyPenaltyFields, frequency_weighted_costs
from interplab.saes.registry import SAE_CLASSES, config_class, make_sae, register_sae, sae_config
from interplab.saes.relu import ReLUConfig, ReLUSAE
from interplab.saes.topk import TopKConfig, TopKSAE
from interplab.saes.transcoder import (
    JumpReLUSkipTranscoder,
    JumpReLUSkipTranscoderConfig,
    JumpReLUTranscoder,
    JumpReLUTranscoderConfig,
    TopKSkipTranscoder,
    TopKSkipTranscoderConfig,
    TopKTranscoder,
    TopKTranscoderConfig,
    TranscoderFields,
    fold_transcoder_scales_,
    is_transcoder,
)
from interplab.saes.transcoder_io import load_sparsify_transcoder, save_sparsify_transcoder

__all__ = [
    "BatchTopKConfig",
    "BatchTopKSAE",
    "FrequencyPenaltyFields",
    "JumpReLUConfig",
    "JumpReLUSAE",
    "JumpReLUSkipTranscoder",
    "JumpReLUSkipTranscoderConfig",
    "JumpReLUTranscoder",
    "JumpReLUTranscoderConfig",
    "MatryoshkaConfig",
    "MatryoshkaSAE",
    "ReLUConfig",
    "ReLUSAE",
    "SAE",
    "SAE_CLASSES",
    "SAEConfig",
    "SAEGroup",
    "SAEGroupConfig",
    "SAEOutput",
    "TopKConfig",
    "TopKSAE",
    "TopKSkipTranscoder",
    "TopKSkipTranscoderConfig",
    "TopKTranscoder",
    "TopKTranscoderConfig",
    "TrainOutput",
    "TrainState",
    "TranscoderFields",
    "config_class",
    "fold_transcoder_scales_",
    "frequency_weighted_costs",
    "geometric_median",
    "init_b_dec_geometric_median_",
    "init_b_dec_mean_",
    "is_transcoder",
    "load_dictionary_learning",
    "load_group",
    "load_sae",
    "load_sparsify",
    "load_sparsify_transcoder",
    "make_sae",
    "register_sae",
    "sae_config",
    "save_group",
    "save_sae",
    "save_sparsify_transcoder",
]
