"""Feature absorption against ground truth (Chanin et al. 2024, "A is for Absorption", arXiv:2409.14507).

On data with a known hierarchy (data/synthetic/hierarchy.py: a child never fires without its parent):

1. The parent's latent m_p is the latent whose decoder row points most along the parent direction f_p.
2. Events: the samples where one of p's children fires (so p fires too, with magnitude c_p).
3. Missed: m_p is silent on the event (z_{m_p} = 0).
4. Absorbed: missed, and the other active latents still write the parent's direction into the
   reconstruction: Σ_{l ≠ m_p} z_l (W_dec_l · f_p) ≥ `carried_frac` · c_p. The parent was not lost,
   it was folded into other (child) latents: that is absorption, as opposed to a plain miss.
5. absorption = absorbed events / events, pooled over parents (also reported per parent).

The true dictionary scores 0 (its parent latent fires whenever the parent does); a dictionary whose
child latents carry f_p + f_c while the parent latent stays silent scores 1.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import NamedTuple, Protocol

import torch
from torch import Tensor

from interplab.common import InterplabError
from interplab.evals.ground_truth import cosine_matrix


class Encoder(Protocol):
    W_dec: Tensor

    def encode(self, x: Tensor) -> Tensor: ...


class Hierarchy(Protocol):
    """What the metric reads from a hierarchy source (HierarchySource satisfies it)."""

    features_FD: Tensor
    parents: range

    def children_of(self, parent: int) -> range: ...

    def batch_with_truth(self, index: int) -> tuple[Tensor, Tensor]: ...


class AbsorptionResult(NamedTuple):
    """Absorption of the parents of a hierarchy by an SAE."""

    absorption: float
    """Share of child-firing events whose parent latent is silent while other latents carry the parent."""
    miss_rate: float
    """Share of those events whose parent latent is silent (absorbed or simply lost)."""
    per_parent_P: Tensor
    """[n_parents] absorption of each parent (NaN where it had no event)."""
    parent_latent_P: Tensor
    """[n_parents] the latent taken as each parent's own (best decoder cosine)."""
    parent_cos_P: Tensor
    """[n_parents] that latent's decoder cosine with the parent direction."""
    n_events: int
    """Child-firing events scored."""


def absorption_counts(latents_NF: Tensor, W_dec_FD: Tensor, coeffs_NT: Tensor, features_TD: Tensor,
                      parent: int, children: Iterable[int], parent_latent: int,
                      carried_frac: float = 0.5) -> tuple[int, int, int]:
    """(events, missed, absorbed) of one parent on one batch; see the module docstring."""
    events_N = coeffs_NT[:, list(children)].gt(0).any(1)
    if not bool(events_N.any()):
        return 0, 0, 0
    z_EF = latents_NF[events_N].float()
    missed_E = z_EF[:, parent_latent] == 0
    along_F = W_dec_FD.float() @ features_TD[parent].float()
    along_F[parent_latent] = 0.0
    carried_E = z_EF @ along_F >= carried_frac * coeffs_NT[events_N, parent].float()
    return int(events_N.sum()), int(missed_E.sum()), int((missed_E & carried_E).sum())


@torch.no_grad()
def hierarchy_absorption(sae: Encoder, source: Hierarchy, batches: Iterable[int],
                         carried_frac: float = 0.5) -> AbsorptionResult:
    """Absorption of every parent of `source` by `sae`, over the source's batches with these indices."""
    W_dec_FD = sae.W_dec.detach().float().cpu()
    parents = list(source.parents)
    cos_PF = cosine_matrix(source.features_FD[parents], W_dec_FD)
    parent_cos_P, parent_latent_P = cos_PF.max(1)
    totals = torch.zeros(len(parents), 3, dtype=torch.long)
    for index in batches:
        x_ND, coeffs_NT = source.batch_with_truth(index)
        z_NF = sae.encode(x_ND.to(sae.W_dec.device)).float().cpu()
        for p in parents:
            counts = absorption_counts(z_NF, W_dec_FD, coeffs_NT, source.features_FD, p, source.children_of(p),
                                       int(parent_latent_P[p]), carried_frac)
            totals[p] += torch.tensor(counts)
    events, missed, absorbed = totals.sum(0).tolist()
    if events == 0:
        raise InterplabError("no child feature fired in the scored batches; score more batches")
    per_parent_P = totals[:, 2].double() / totals[:, 0].double()  # NaN where a parent had no event
    return AbsorptionResult(absorbed / events, missed / events, per_parent_P.float(), parent_latent_P,
                            parent_cos_P, events)
