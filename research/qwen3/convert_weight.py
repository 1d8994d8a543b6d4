"""Qwen3 HF -> MindSpore converter (streamed; mapping in ``weight_map.SPEC``).

mf-ext convert hf_to_ms --model qwen3 --input_path HF_DIR --output_path qwen3.ckpt [--qkv_concat]
"""

from __future__ import annotations

from mf_ext.convert import hf_to_ms

from .weight_map import SPEC

MODEL_NAMES = ("qwen3",)


def convert_pt_to_ms(input_path, output_path, dtype=None, **kw):
    """Convert the HF Qwen3 checkpoint at ``input_path`` to MindSpore at ``output_path`` (see llama3_1's twin)."""
    return hf_to_ms(SPEC, input_path, output_path, dtype, **kw)
