"""DeepSeek-V3 MindSpore -> HF converter (MindFormers' ``convert_reversed.py`` entry point, streamed; experts unstacked).

mf-ext convert ms_to_hf --model deepseek3 --input_path deepseek3.ckpt --output_path HF_DIR
"""

from __future__ import annotations

from mf_ext.convert import ms_to_hf

from .weight_map import SPEC


def convert_ms_to_pt(input_path, output_path, dtype=None, **kw):
    """Convert the MindSpore checkpoint at ``input_path`` to an HF folder at ``output_path`` (architecture from the
    ``config.json`` kept beside the checkpoint, ``hf_config=`` or ``ms_config=``; ``mcore`` detected from names)."""
    return ms_to_hf(SPEC, input_path, output_path, dtype, **kw)
