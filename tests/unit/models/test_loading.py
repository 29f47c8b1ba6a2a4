import pytest
import torch

from interplab.common import InterplabError
from interplab.models import capture, load_model


def test_local_folder_loads_causal_and_encoder_with_the_right_class(tiny_model_dir):
    gpt = load_model(tiny_model_dir("gpt_neox"))
    assert gpt.is_causal and gpt.family == "gpt_neox" and gpt.n_layers == 2 and gpt.d_model == 64
    assert gpt.unembedding().shape == (64, len(gpt.tokenizer))
    bert = load_model(tiny_model_dir("bert"))
    assert not bert.is_causal and bert.family == "bert"
    assert bert.unembedding() is not None  # MLM head kept for logit effects


def test_kind_override_loads_encoder_body_without_head(tiny_model_dir):
    lm = load_model(tiny_model_dir("gpt2"), kind="encoder")
    assert not lm.is_causal and lm.unembedding() is None


def test_missing_model_gives_one_line_error_naming_the_fix(tmp_path):
    with pytest.raises(InterplabError, match="could not load model 'nobody/no-such-model'.*local model folder"):
        load_model("nobody/no-such-model")
    (tmp_path / "empty").mkdir()
    with pytest.raises(InterplabError, match="has no config.json"):
        load_model(tmp_path / "empty")


def test_packaged_minilm_is_a_real_pretrained_sentence_encoder(minilm):
    assert minilm.family == "bert" and minilm.n_layers == 6 and minilm.d_model == 384
    texts = ["A cat is sleeping on the sofa.", "A kitten naps on the couch.", "Stock markets fell sharply today."]
    batch = minilm.tokenize(texts)
    with capture(minilm.model, "blocks.5.resid_post") as acts, torch.no_grad():
        out = minilm.model(**batch, output_hidden_states=True)
    torch.testing.assert_close(acts["blocks.5.resid_post"], out.hidden_states[6])
    mask = batch["attention_mask"].unsqueeze(-1).float()
    emb = (out.last_hidden_state * mask).sum(1) / mask.sum(1)  # mean pooling, as sentence-transformers does
    emb = torch.nn.functional.normalize(emb, dim=-1)
    sim = emb @ emb.T
    # pretrained weights: paraphrases are far closer than unrelated sentences (random weights would not be)
    assert sim[0, 1] > 0.6 and sim[0, 1] - sim[0, 2] > 0.4
