"""GPT2 HF -> MindSpore converter (MindFormers' ``convert_weight.py`` entry point, streamed).

    mf-ext convert hf_to_ms --model gpt2 --input_path HF_DIR --output_path gpt2.ckpt [--dtype bfloat16]

Reads GPT2LMHeadModel's names (``transformer.h.0...``, what ``save_pretrained`` writes) and GPT2Model's bare names
(``h.0...``, the original OpenAI release files): ``weight_map.SPEC`` or ``weight_map.SPEC_GPT2MODEL``, chosen from
the checkpoint's tensor names. The engine is :mod:`mf_ext.convert`.
"""

from __future__ import annotations

from mf_ext.convert import hf_to_ms

from .weight_map import SPEC, SPEC_GPT2MODEL


def spec_for(input_path):
    """The spec whose names the checkpoint at ``input_path`` uses (GPT2Model's bare names or GPT2LMHeadModel's)."""
    from mf_ext.convert.readers import open_source

    try:
        reader = open_source(input_path)
    except Exception:  # a bad input: the engine reports it with its own one-line error
        return SPEC
    try:
        names = reader.tensors
        return SPEC_GPT2MODEL if "wte.weight" in names and "transformer.wte.weight" not in names else SPEC
    finally:
        reader.close()


def convert_pt_to_ms(input_path, output_path, dtype=None, **kw):
    """Convert the HF GPT2 checkpoint at ``input_path`` to MindSpore at ``output_path`` (``dtype=None`` keeps the
    source dtype; keyword options as ``mf_ext.convert.hf_to_ms``)."""
    return hf_to_ms(spec_for(input_path), input_path, output_path, dtype, **kw)
