"""The logit lens and the tuned lens: per-layer next-token predictions of a causal LM, their KL to the model's
output, and tuned-lens translators (trained, saved, loaded)."""

from interplab.lens.decode import FinalDecoder, final_decoder, kl_from_log_probs, layer_labels, lens_hooks
from interplab.lens.logit_lens import LensGrid, compare_lenses, kl_by_layer, lens_grid, run_streams
from interplab.lens.report import write_lens_report
from interplab.lens.train import LensTrainResult, TunedLensConfig, train_tuned_lens
from interplab.lens.tuned import TunedLens, is_tuned_lens_folder, load_tuned_lens, save_tuned_lens

__all__ = [
    "FinalDecoder",
    "LensGrid",
    "LensTrainResult",
    "TunedLens",
    "TunedLensConfig",
    "compare_lenses",
    "final_decoder",
    "is_tuned_lens_folder",
    "kl_by_layer",
    "kl_from_log_probs",
    "layer_labels",
    "lens_grid",
    "lens_hooks",
    "load_tuned_lens",
    "run_streams",
    "save_tuned_lens",
    "train_tuned_lens",
    "write_lens_report",
]
