"""FVU / MSE against scikit-learn, and CE / KL recovered on a real (tiny, random-weight) GPT-2."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.metrics import mean_squared_error, r2_score

from interplab.evals import evaluate_sae, fvu, loss_recovered, loss_recovered_on_texts
from interplab.models.interventions import capture
from interplab.models.loading import load_model
from interplab.saes import make_sae, sae_config
from interplab.training import TrainConfig, fit

TEXTS = [
    "The cat sat on the mat and looked at the bird outside the window.",
    "Interest rates rose again this quarter, and markets fell sharply.",
    "Add the flour slowly, then stir until the dough is smooth.",
    "The rocket reached orbit after a nine minute burn.",
    "She played the violin for the whole evening.",
    "It rained all day in the mountains, and the rivers were high.",
]
HOOK = "blocks.0.resid_post"


def test_streamed_fvu_and_mse_equal_sklearn_over_the_whole_set():
    gen = torch.Generator().manual_seed(0)
    x_ND = torch.randn(500, 6, generator=gen) * torch.arange(1, 7) + 3.0
    x_hat_ND = x_ND + 0.3 * torch.randn(500, 6, generator=gen)
    sae = make_sae(sae_config("relu", d_in=6, d_sae=6))
    with torch.no_grad():  # an SAE whose decode(encode(x)) is a known affine map, so x_hat is known
        sae.W_enc.copy_(torch.eye(6))
        sae.W_dec.copy_(torch.eye(6) * 0.5)
        sae.b_dec.zero_()
        sae.b_enc.zero_()
    x_pos = x_ND.abs()
    ev = evaluate_sae(sae, x_pos.split(128))
    x_ref = x_pos.double().numpy()
    x_hat_ref = 0.5 * x_ref
    r2 = r2_score(x_ref, x_hat_ref, multioutput="variance_weighted")
    assert ev.reconstruction.fvu == pytest.approx(1 - r2, rel=1e-6)
    assert ev.reconstruction.mse == pytest.approx(mean_squared_error(x_ref, x_hat_ref), rel=1e-6)
    assert ev.sparsity.l0 == pytest.approx(float((x_pos != 0).sum(1).float().mean()))
    assert fvu(x_ND, x_hat_ND) == pytest.approx(
        1 - r2_score(x_ND.double().numpy(), x_hat_ND.double().numpy(), multioutput="variance_weighted"), rel=1e-6)


@pytest.fixture(scope="module")
def gpt2(tiny_model_dir):
    """The tiny GPT-2, briefly fitted to TEXTS: a random model gains nothing from its activations, so
    zero-ablating them would not raise the loss and "recovered" would have no meaning."""
    lm = load_model(tiny_model_dir("gpt2"), device="cpu")
    torch.manual_seed(0)
    batch = lm.tokenize(TEXTS)
    labels = batch["input_ids"].masked_fill(batch["attention_mask"] == 0, -100)
    opt = torch.optim.Adam(lm.model.parameters(), lr=3e-3)
    lm.model.train()
    for _ in range(25):
        opt.zero_grad()
        lm.model(**batch, labels=labels).loss.backward()
        opt.step()
    lm.model.eval()
    return lm


def test_clean_ce_equals_the_models_own_loss(gpt2):
    batch = gpt2.tokenize(TEXTS[:1])
    res = loss_recovered(gpt2, [batch], HOOK, replace_fn=lambda x: x)
    with torch.no_grad():
        ref = gpt2.model(**batch, labels=batch["input_ids"]).loss
    assert res.ce_clean == pytest.approx(float(ref), rel=1e-5)


def test_identity_splice_recovers_everything_and_zeroing_recovers_nothing(gpt2):
    ident = loss_recovered_on_texts(gpt2, TEXTS, HOOK, replace_fn=lambda x: x, batch_size=4)
    assert ident.ce_recovered == pytest.approx(1.0, abs=1e-6)
    assert ident.kl_recovered == pytest.approx(1.0, abs=1e-6)
    assert ident.kl_spliced == pytest.approx(0.0, abs=1e-6)
    assert ident.ce_zero > ident.ce_clean  # ablation must hurt for the ratio to mean anything
    zero = loss_recovered_on_texts(gpt2, TEXTS, HOOK, replace_fn=torch.zeros_like, batch_size=4)
    assert zero.ce_recovered == pytest.approx(0.0, abs=1e-6)
    assert zero.kl_recovered == pytest.approx(0.0, abs=1e-6)
    assert zero.n_tokens == ident.n_tokens == int(
        sum((m.sum() - 1) for m in gpt2.tokenize(TEXTS)["attention_mask"]))


def test_trained_sae_recovers_part_of_the_loss(gpt2):
    batch = gpt2.tokenize(TEXTS)
    with capture(gpt2.model, [HOOK]) as acts:
        with torch.no_grad():
            gpt2.model(**batch)
    x_ND = acts[HOOK][batch["attention_mask"].bool()]
    d = x_ND.shape[-1]
    sae = make_sae(sae_config("topk", d_in=d, d_sae=4 * d, k=16))
    rows = [x_ND[torch.randperm(len(x_ND), generator=torch.Generator().manual_seed(i))[:64]] for i in range(150)]
    fit(sae, iter(rows), TrainConfig(total_steps=150, lr=3e-3, log_every=50))
    res = loss_recovered(gpt2, [batch], HOOK, sae=sae)
    assert 0.0 < res.ce_recovered <= 1.0 + 1e-6
    assert 0.0 < res.kl_recovered <= 1.0 + 1e-6
    same = loss_recovered(gpt2, [batch], HOOK, replace_fn=lambda x: sae.decode(sae.encode(x)))
    assert np.isclose(same.ce_spliced, res.ce_spliced, rtol=1e-6)
