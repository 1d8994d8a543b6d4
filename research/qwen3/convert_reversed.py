"""Qwen3 MindSpore -> HF converter (streamed; derived from the same ``weight_map.SPEC``).

mf-ext convert ms_to_hf --model qwen3 --input_path qwen3.ckpt --output_path HF_DIR
"""

from __future__ import annotations

from mf_ext.convert import ms_to_hf

from .weight_map import SPEC


def convert_ms_to_pt(input_path, output_path, dtype=None, **kw):
    """Convert the MindSpore Qwen3 checkpoint at ``input_path`` to an HF folder at ``output_path``."""
    return ms_to_hf(SPEC, input_path, output_path, dtype, **kw)
