"""Our GLM conversion against MindFormers 1.9's own ``mindformers/models/glm2/convert_weight.py``.

MindFormers' converter reads a ChatGLM folder with ``AutoModel.from_pretrained`` (THUDM's remote code, which is not
available offline). It only takes ``state_dict()`` from that model, so the test registers a stand-in PyTorch model
with THUDM's tensor names (``chatglm_layout.chatglm_shapes``) under ``model_type: chatglm`` for the duration of the
test; MindFormers' converter then runs unmodified on the ChatGLM folder re-packed from an HF ``GlmForCausalLM``.

Differences, each asserted:
* MindFormers carries ``transformer.rotary_pos_emb.inv_freq`` into the checkpoint; we drop it (the model computes
  the frequencies from ``rope_ratio``; MindFormers' ChatGLM2 has no such parameter either).
* With ``qkv_concat: False`` / ``mlp_concat: False`` MindFormers splits ``query_key_value`` into ``wq``/``wk``/``wv``
  and ``dense_h_to_4h`` into ``dense_left``/``dense_right``; our model keeps the fused tensors (MindFormers' default
  layout), which are exactly their row-concatenations.
* ``use_rearrange_rope: True`` (MindFormers' permuted-q/k layout for its Ascend rotary kernel) is not produced.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from tests.research.glm4.chatglm_layout import chatglm_shapes

ms = pytest.importorskip("mindspore")


@pytest.fixture
def chatglm_automodel():
    """``AutoModel`` resolves ``model_type: chatglm`` to a stand-in holding THUDM's tensor names (removed after)."""
    import torch
    from transformers import AutoConfig, AutoModel, PretrainedConfig, PreTrainedModel
    from transformers.models.auto.configuration_auto import CONFIG_MAPPING
    from transformers.models.auto.modeling_auto import MODEL_MAPPING

    class StandInChatGLMConfig(PretrainedConfig):
        model_type = "chatglm"

    class StandInChatGLM(PreTrainedModel):
        config_class = StandInChatGLMConfig

        def __init__(self, config):
            super().__init__(config)
            for name, shape in chatglm_shapes(config.to_dict()).items():
                *path, leaf = name.split(".")
                mod = self
                for part in path:
                    if part not in mod._modules:
                        mod.add_module(part, torch.nn.Module())
                    mod = mod._modules[part]
                if leaf == "inv_freq":
                    mod.register_buffer(leaf, torch.zeros(shape))
                else:
                    mod.register_parameter(leaf, torch.nn.Parameter(torch.zeros(shape)))

        def _init_weights(self, module):
            return

    AutoConfig.register("chatglm", StandInChatGLMConfig)
    AutoModel.register(StandInChatGLMConfig, StandInChatGLM)
    try:
        yield
    finally:
        CONFIG_MAPPING._extra_content.pop("chatglm", None)
        MODEL_MAPPING._extra_content.pop(StandInChatGLMConfig, None)


def _yaml(path, cfg: dict, **switches) -> str:
    mc = {
        "num_layers": cfg["num_layers"],
        "padded_vocab_size": cfg["padded_vocab_size"],
        "hidden_size": cfg["hidden_size"],
        "ffn_hidden_size": cfg["ffn_hidden_size"],
        "kv_channels": cfg["kv_channels"],
        "num_attention_heads": cfg["num_attention_heads"],
        "multi_query_group_num": cfg["multi_query_group_num"],
        **switches,
    }
    path.write_text(json.dumps({"model": {"model_config": mc}}))  # JSON is YAML
    return str(path)


def _load(path) -> dict[str, np.ndarray]:
    return {k: v.asnumpy() for k, v in ms.load_checkpoint(str(path)).items()}


def test_equals_mindformers_glm2_converter(tmp_path, monkeypatch, plugin, twins, chatglm_automodel):
    from mindformers.models.glm2.convert_weight import convert_pt_to_ms as mf_convert

    monkeypatch.chdir(tmp_path)
    _, hf_dir, chatglm_dir = twins
    cfg = json.loads((chatglm_dir / "config.json").read_text())
    plugin.convert_pt_to_ms(str(hf_dir), str(tmp_path / "ours.ckpt"), progress=False)
    ours = _load(tmp_path / "ours.ckpt")

    # MindFormers' default layout (qkv_concat, mlp_concat, no rope rearrangement): tensor for tensor
    defaults = _yaml(tmp_path / "fused.yaml", cfg, qkv_concat=True, mlp_concat=True, use_rearrange_rope=False)
    mf_convert(str(chatglm_dir), str(tmp_path / "mf.ckpt"), defaults)
    theirs = _load(tmp_path / "mf.ckpt")
    inv_freq = theirs.pop("transformer.rotary_pos_emb.inv_freq")
    assert inv_freq.shape == (cfg["kv_channels"] // 4,)
    assert sorted(theirs) == sorted(ours)
    for name, value in theirs.items():
        assert value.dtype == ours[name].dtype, name
        np.testing.assert_array_equal(ours[name], value, err_msg=name)

    # MindFormers' split layout: the same rows, in separate tensors
    split = _yaml(tmp_path / "split.yaml", cfg, qkv_concat=False, mlp_concat=False, use_rearrange_rope=False)
    mf_convert(str(chatglm_dir), str(tmp_path / "mf_split.ckpt"), split)
    theirs = _load(tmp_path / "mf_split.ckpt")
    for i in range(cfg["num_layers"]):
        t = f"transformer.encoder.layers.{i}."
        for kind in ("weight", "bias"):
            parts = [theirs.pop(f"{t}self_attention.{w}.{kind}") for w in ("wq", "wk", "wv")]
            np.testing.assert_array_equal(np.concatenate(parts), ours[f"{t}self_attention.query_key_value.{kind}"])
        parts = [theirs.pop(f"{t}mlp.{w}.weight") for w in ("dense_left", "dense_right")]
        np.testing.assert_array_equal(np.concatenate(parts), ours[f"{t}mlp.dense_h_to_4h.weight"])
    theirs.pop("transformer.rotary_pos_emb.inv_freq")
    fused = {n for n in ours if ".query_key_value." in n or ".dense_h_to_4h." in n}
    assert sorted(theirs) == sorted(set(ours) - fused)
