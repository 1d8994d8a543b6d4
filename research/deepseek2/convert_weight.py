"""DeepSeek-V2 HF -> MindSpore converter (MindFormers' ``convert_weight.py`` entry point, streamed; experts stacked, MLA).

mf-ext convert hf_to_ms --model deepseek2 --input_path HF_DIR --output_path deepseek2.ckpt [--dtype bfloat16]
"""

from __future__ import annotations

from mf_ext.convert import hf_to_ms

from .weight_map import SPEC


def convert_pt_to_ms(input_path, output_path, dtype=None, **kw):
    """Convert the HF checkpoint at ``input_path`` to MindSpore at ``output_path`` (``dtype=None`` keeps the source
    dtype; keyword options: ``format="ckpt"|"safetensors"``, ``mcore=False``, ``dry_run``, ``hf_config``,
    ``progress``)."""
    return hf_to_ms(SPEC, input_path, output_path, dtype, **kw)
