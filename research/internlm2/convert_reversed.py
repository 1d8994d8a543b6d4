"""InternLM2 / InternLM MindSpore -> HF converter (MindFormers' ``convert_reversed.py`` entry point, streamed).

Writes the layout the source ``config.json`` names (InternLM2's fused ``wqkv`` by default). Derived from the same
``weight_map.SPEC`` as ``convert_weight``.

    mf-ext convert ms_to_hf --model internlm2 --input_path internlm2.ckpt --output_path HF_DIR
"""

from __future__ import annotations

from mf_ext.convert import ms_to_hf

from .weight_map import SPEC


def convert_ms_to_pt(input_path, output_path, dtype=None, **kw):
    """Convert the MindSpore checkpoint at ``input_path`` to an HF folder at ``output_path``; the architecture comes
    from the ``config.json`` kept beside the checkpoint, ``hf_config=`` or ``ms_config=`` (YAML / model_config)."""
    return ms_to_hf(SPEC, input_path, output_path, dtype, **kw)
