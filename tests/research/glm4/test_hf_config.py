"""The glm4 config mapping: HF GlmConfig <-> model_config <-> ChatGLM config.json, and what it refuses."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="module")
def mapping(plugin):
    return plugin.import_module("hf_config")


def test_hf_and_chatglm_configs_map_to_the_same_model_config(mapping):
    from transformers import GlmConfig

    hf = GlmConfig(num_hidden_layers=3, rope_theta=5e6, tie_word_embeddings=False).to_dict()
    mc = mapping.to_model_config(hf)
    assert (mc["n_kv_heads"], mc["head_dim"], mc["partial_rotary_factor"], mc["qkv_has_bias"]) == (2, 128, 0.5, True)
    chatglm = mapping.hf_to_chatglm(hf)
    assert chatglm["rope_ratio"] == 500.0 and chatglm["kv_channels"] == 128 and chatglm["padded_vocab_size"] == 151552
    assert mapping.to_model_config(chatglm) == mc
    back = mapping.to_hf_config(mc)
    assert back["architectures"] == ["GlmForCausalLM"]
    same = [k for k in back if k in hf and k != "architectures"]
    assert len(same) >= 18 and {k: back[k] for k in same} == {k: hf[k] for k in same}


def test_unsupported_hf_configs_are_refused(mapping):
    with pytest.raises(ValueError, match="rope_scaling"):
        mapping.to_model_config({"model_type": "glm", "hidden_size": 64, "num_hidden_layers": 1,
                                 "num_attention_heads": 4, "vocab_size": 8, "intermediate_size": 8,
                                 "rope_scaling": {"rope_type": "linear", "factor": 2.0}})  # fmt: skip
    with pytest.raises(ValueError, match="model_type 'llama' is not a GLM model"):
        mapping.to_model_config({"model_type": "llama"})
    with pytest.raises(ValueError, match="pre_seq_len"):
        mapping.chatglm_to_hf({"pre_seq_len": 8})
    with pytest.raises(ValueError, match="partial_rotary_factor"):
        mapping.hf_to_chatglm({"num_attention_heads": 4, "hidden_size": 64, "partial_rotary_factor": 0.25})
