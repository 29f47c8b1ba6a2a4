"""The steering playground uses the CLI's coefficient units: the hook's median activation norm."""

from __future__ import annotations

import pytest

from interplab.models.loading import load_model
from interplab.saes.io import load_sae
from interplab.steering import DEFAULT_COEF, from_sae_latent, generate_steered, hook_median_norm, save_vector
from interplab.steering.apply import GenerationSettings
from interplab.web.app import create_app
from web_data import HOOK, local_client

PROMPT = "The cat sat on"


def test_latent_coefficients_are_in_units_of_the_hook_median_norm(web_data, client) -> None:
    lm = load_model(web_data.model_dir, device="cpu")
    res = client.post("/api/steer", json={"sae_id": 1, "latent": 7, "prompt": PROMPT, "max_new_tokens": 6})
    body = res.json()
    assert res.status_code == 200 and body["steered"][0]["coef"] == DEFAULT_COEF  # the documented default
    assert body["hook_norm"] == pytest.approx(hook_median_norm(lm, HOOK), rel=1e-5)
    page = client.post("/steer", data={"sae_id": "1", "latent": "7", "prompt": PROMPT, "max_new_tokens": "6"},
                       headers={"Origin": str(client.base_url)})  # the page's form posts (only a POST runs)
    assert page.status_code == 200 and "coefficient 1 = hook norm" in page.text


def test_a_vector_file_steers_with_the_hook_norm_stored_in_it(web_data, tmp_path) -> None:
    lm, sae = load_model(web_data.model_dir, device="cpu"), load_sae(web_data.sae_folder)
    vector = from_sae_latent(sae, 7, hook=HOOK)
    vector.metadata["model"] = str(web_data.model_dir)
    vector.hook_norm = 3.0  # as if measured when it was built: used as is
    save_vector(vector, tmp_path / "vecs" / "v")
    vclient = local_client(create_app(web_data.db_path, device="cpu", vectors_dir=tmp_path / "vecs"))
    body = vclient.post("/api/steer", json={"vector": "v", "coef": 2.0, "prompt": PROMPT,
                                            "max_new_tokens": 6}).json()
    assert body["hook_norm"] == 3.0
    settings = GenerationSettings(max_new_tokens=6)
    assert body["steered"][0]["text"] == generate_steered(lm, [PROMPT], vector, 2.0, settings=settings)[0]
