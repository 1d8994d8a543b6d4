"""Llama-family HF -> MindSpore converter (MindFormers' ``convert_weight.py`` entry point, streamed).

Reads HF safetensors (single or sharded), ``pytorch_model*.bin`` or Meta ``consolidated.*.pth``; writes a
MindSpore ``.ckpt`` (default) or a MindSpore-named safetensors folder, plus the source ``config.json`` beside it.
The mapping is ``weight_map.SPEC`` (model names: ``family.py``); see :mod:`mf_ext.convert` for the engine.

    mf-ext convert hf_to_ms --model llama --input_path HF_DIR --output_path llama.ckpt [--dtype bfloat16]
"""

from __future__ import annotations

from mf_ext.convert import hf_to_ms

from .weight_map import SPEC


def convert_pt_to_ms(input_path, output_path, dtype=None, **kw):
    """Convert the HF checkpoint at ``input_path`` to MindSpore at ``output_path``.

    ``dtype``: output dtype (``None`` keeps the source dtype; ``"bfloat16"``/``"fp16"``/``mindspore.float16``...).
    Keyword options: ``format="ckpt"|"safetensors"``, ``qkv_concat=False``, ``dry_run=False``,
    ``hf_config=None`` (config.json path or dict overriding the one in ``input_path``), ``progress=True``.
    Returns the engine's result (or the plan for ``dry_run``).
    """
    return hf_to_ms(SPEC, input_path, output_path, dtype, **kw)
