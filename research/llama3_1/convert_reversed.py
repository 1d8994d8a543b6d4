"""Llama-family MindSpore -> HF converter (MindFormers' ``convert_reversed.py`` entry point, streamed).

Reads a MindSpore ``.ckpt`` or MindSpore-named safetensors folder (``w_qkv`` / ``w_gate_hidden`` fused weights are
split back); writes an HF folder (safetensors + index + ``config.json`` + ``generation_config.json``) that
``AutoModelForCausalLM.from_pretrained`` loads. Derived from the same ``weight_map.SPEC`` as ``convert_weight``.

    mf-ext convert ms_to_hf --model llama --input_path llama.ckpt --output_path HF_DIR
"""

from __future__ import annotations

from mf_ext.convert import ms_to_hf

from .weight_map import SPEC


def convert_ms_to_pt(input_path, output_path, dtype=None, **kw):
    """Convert the MindSpore checkpoint at ``input_path`` to an HF folder at ``output_path``.

    The architecture comes from the ``config.json`` that hf_to_ms kept beside the checkpoint, or ``hf_config=``
    (config.json path or dict), or ``ms_config=`` (MindFormers YAML path / model_config dict).
    ``dtype=None`` keeps the checkpoint's dtype. ``qkv_concat`` is detected from the tensor names.
    """
    return ms_to_hf(SPEC, input_path, output_path, dtype, **kw)
