"""The cross-lingual lab: on verse-aligned Bibles, which SAE latents are shared across languages by layer, the
logit lens's latent English, and whether steering vectors transfer between languages (with controls)."""

from interplab.crosslingual.activations import VerseActivations, verse_activations
from interplab.crosslingual.latent_english import LatentEnglishResult, latent_english, latent_english_summary
from interplab.crosslingual.shared import (
    SharedLatentConfig,
    shared_latent_table,
    shared_latents,
    train_layer_sae,
    verse_maxima,
)
from interplab.crosslingual.steering import (
    CrossSteeringConfig,
    cross_steering,
    language_vectors,
    pairs_of,
    sentiment_scores,
    steering_effect,
)

__all__ = [
    "CrossSteeringConfig",
    "LatentEnglishResult",
    "SharedLatentConfig",
    "VerseActivations",
    "cross_steering",
    "language_vectors",
    "latent_english",
    "latent_english_summary",
    "pairs_of",
    "sentiment_scores",
    "shared_latent_table",
    "shared_latents",
    "steering_effect",
    "train_layer_sae",
    "verse_activations",
    "verse_maxima",
]
