"""Export a finetune checkpoint: merged full weights to an HF folder, or the LoRA adapter alone to PEFT.

A training checkpoint holds the model, the optimizer state (``adam_m.*``, ``adam_v.*``, ``global_step``, ...) and
the run position (``epoch_num``, ``step_num``). Export keeps only model tensors, folds LoRA into the base weights
(``W + scale * B @ A`` in float32) and hands a clean MindSpore checkpoint to the plug-in's ``convert_ms_to_pt``.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import numpy as np

# one filter for optimizer state and run counters, shared with `mf-ext convert ms_to_hf` and checkpoint loading
from mf_ext.convert.train_state import is_train_state


def model_params(checkpoint: str | os.PathLike) -> dict[str, np.ndarray]:
    """The model tensors of a (training) checkpoint as numpy arrays, optimizer state and counters dropped."""
    import mindspore as ms

    from mf_ext.config import ConfigError

    if not Path(checkpoint).is_file():
        raise ConfigError(f"checkpoint {str(checkpoint)!r} does not exist")
    loaded = ms.load_checkpoint(str(checkpoint))
    return {name: p.asnumpy() for name, p in loaded.items() if not is_train_state(name, loaded)}


def lora_scale_of(config) -> float | None:
    """``lora_alpha / lora_rank`` from ``model.model_config.pet_config`` of a loaded config (None without LoRA)."""
    from .lora import LoraSettings

    mc = config.model.model_config
    s = LoraSettings.from_pet_config(mc.get("pet_config") if hasattr(mc, "get") else None)
    return None if s is None else s.scale


LORA_KEY = "mf_ext_lora"  # the trainer records {rank, alpha, target_modules} of a LoRA run under this key


def recorded_lora(hf_cfg: dict) -> tuple[int, float] | None:
    """``(rank, alpha)`` the trainer recorded in a checkpoint's ``.config.json`` (None when it recorded none)."""
    rec = hf_cfg.get(LORA_KEY) if isinstance(hf_cfg, dict) else None
    if not isinstance(rec, dict):
        return None
    rank, alpha = rec.get("rank"), rec.get("alpha")
    if isinstance(rank, int) and rank > 0 and isinstance(alpha, (int, float)) and alpha > 0:
        return rank, float(alpha)
    return None


def _hf_config_for(checkpoint: Path, hf_config) -> dict:
    from mf_ext.config import ConfigError
    from mf_ext.convert import find_source_config

    if isinstance(hf_config, dict):
        return hf_config
    src = Path(hf_config) if hf_config is not None else find_source_config(checkpoint)
    if src is None or not Path(src).is_file():
        raise ConfigError(
            f"no HF config for {str(checkpoint)!r}: expected {checkpoint.name + '.config.json'!r} beside it "
            "(finetune writes one) or pass hf_config="
        )
    return json.loads(Path(src).read_text())


def export_merged_hf(
    checkpoint: str | os.PathLike,
    output_dir: str | os.PathLike,
    plugin,
    *,
    lora_scale: float | None = None,
    hf_config=None,
    dtype: str | None = None,
) -> Path:
    """Write an HF folder (``from_pretrained`` loads it) from a finetune checkpoint; LoRA merged when present.

    ``lora_scale`` (alpha / rank) defaults to what the trainer recorded in the checkpoint's ``.config.json``.
    ``plugin`` is a registry plug-in (``mf_ext.registry.load_plugin("research/llama3_1")``): its
    ``convert_ms_to_pt`` writes the folder (temporary name + rename).
    """
    import mindspore as ms

    from mf_ext.config import ConfigError

    from .lora import merge_lora_params

    ckpt = Path(checkpoint)
    params = model_params(ckpt)
    cfg = dict(_hf_config_for(ckpt, hf_config))
    recorded = recorded_lora(cfg)
    cfg.pop(LORA_KEY, None)  # ours, not an HF config key
    has_lora = any(k.endswith(".lora_a") for k in params)
    if has_lora:
        if lora_scale is None and recorded is not None:
            lora_scale = recorded[1] / recorded[0]
        if lora_scale is None:
            raise ConfigError(
                f"{str(ckpt)!r} holds LoRA tensors and its {ckpt.name + '.config.json'!r} records no LoRA rank/alpha: "
                "pass --lora_rank R --lora_alpha A (the pet_config values of the training run)"
            )
        params = merge_lora_params(params, lora_scale)
    with tempfile.TemporaryDirectory(prefix=".mf_ext_export-", dir=Path(output_dir).resolve().parent) as tmp:
        clean = Path(tmp) / "model.ckpt"
        ms.save_checkpoint([{"name": k, "data": ms.Tensor(v)} for k, v in params.items()], str(clean))
        Path(str(clean) + ".config.json").write_text(json.dumps(cfg))
        plugin.convert_ms_to_pt(str(clean), str(output_dir), dtype=dtype)
    return Path(output_dir)


def lora_tensors(checkpoint: str | os.PathLike) -> dict[str, np.ndarray]:
    """Only the ``*.lora_a`` / ``*.lora_b`` tensors of a finetune checkpoint."""
    return {k: v for k, v in model_params(checkpoint).items() if k.endswith((".lora_a", ".lora_b"))}


def export_peft(
    checkpoint: str | os.PathLike,
    output_dir: str | os.PathLike,
    plugin,
    *,
    cfg=None,
    alpha: float | None = None,
    base_model: str = "",
    hf_config=None,
) -> Path:
    """Write the LoRA adapter of a finetune checkpoint as a PEFT folder (``adapter_model.safetensors`` +
    ``adapter_config.json``) that ``peft.PeftModel.from_pretrained(base_hf_model, output_dir)`` loads.

    ``lora_alpha`` comes from ``cfg``'s ``pet_config``, ``alpha=``, or what the trainer recorded in the checkpoint's
    ``.config.json``; the rank is read from the tensors. The
    writing is the conversion engine's :func:`mf_ext.convert.lora.lora_to_peft` with the plug-in's spec; here we
    only strip the optimizer state (its ``adam_m.*lora_a`` names would look like LoRA cells) first.
    """
    import mindspore as ms

    from mf_ext.config import ConfigError
    from mf_ext.convert.lora import lora_to_peft

    from .lora import LoraSettings

    if cfg is not None:
        mc = cfg.model.model_config
        s = LoraSettings.from_pet_config(mc.get("pet_config") if hasattr(mc, "get") else None)
        if s is not None:
            alpha = s.alpha
    ckpt = Path(checkpoint)
    cfg_dict = dict(_hf_config_for(ckpt, hf_config))
    recorded = recorded_lora(cfg_dict)
    cfg_dict.pop(LORA_KEY, None)
    if alpha is None and recorded is not None:
        alpha = recorded[1]
    if alpha is None:
        raise ConfigError(
            f"{str(ckpt)!r}: LoRA alpha unknown (its .config.json records none): pass --lora_alpha A "
            "(alpha= or cfg= with model.model_config.pet_config in Python)"
        )
    tensors = lora_tensors(ckpt)
    if not tensors:
        raise ConfigError(f"{str(ckpt)!r} holds no LoRA tensors (*.lora_a / *.lora_b)")
    spec = plugin.import_module("weight_map").SPEC
    with tempfile.TemporaryDirectory(prefix=".mf_ext_peft-", dir=Path(output_dir).resolve().parent) as tmp:
        clean = Path(tmp) / "lora.ckpt"
        ms.save_checkpoint([{"name": k, "data": ms.Tensor(v)} for k, v in tensors.items()], str(clean))
        lora_to_peft(spec, clean, output_dir, lora_alpha=alpha, hf_config=cfg_dict, base_model_name_or_path=base_model)
    return Path(output_dir)


EXAMPLES = """examples:
  python -m mf_ext.train.export --register_path research/llama3_1 \\
      --checkpoint output/checkpoint/rank_0/llama3_1_rank_0-2_20.ckpt --output hf_finetuned
  # LoRA run: merged weights, and the adapter alone for peft (rank/alpha as recorded in CKPT.config.json)
  python -m mf_ext.train.export --register_path research/llama3_1 --checkpoint CKPT --output hf_merged \\
      --peft_output adapter --base_model HF_DIR
"""


def main(argv: list[str] | None = None) -> int:
    """CLI: a finetune checkpoint (optimizer state included) -> merged HF folder (+ PEFT adapter)."""
    import argparse
    import sys

    p = argparse.ArgumentParser(
        prog="python -m mf_ext.train.export",
        description="Export a finetune checkpoint to an HF folder (LoRA merged) and/or a PEFT adapter.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--register_path", required=True, help="plug-in folder whose convert_reversed.py writes HF")
    p.add_argument("--checkpoint", required=True, help="finetune .ckpt (its .config.json beside it names the arch)")
    p.add_argument("--output", default=None, help="HF folder for the merged full weights")
    p.add_argument("--peft_output", default=None, help="PEFT adapter folder (LoRA runs)")
    p.add_argument(
        "--lora_rank",
        type=int,
        default=None,
        help="LoRA rank of the training run (default: as recorded in .config.json)",
    )
    p.add_argument(
        "--lora_alpha", type=float, default=None, help="LoRA alpha of the training run (default: as recorded)"
    )
    p.add_argument("--base_model", default="", help="base_model_name_or_path written into adapter_config.json")
    p.add_argument("--hf_config", default=None, help="config.json (default: <checkpoint>.config.json)")
    p.add_argument("--dtype", default=None, help="output dtype of the merged weights (default: as stored)")
    a = p.parse_args(argv)
    if not a.output and not a.peft_output:
        p.error("nothing to do: pass --output and/or --peft_output")
    if (a.lora_rank is None) != (a.lora_alpha is None):
        p.error("--lora_rank and --lora_alpha go together (or pass neither: they are read from .config.json)")
    from mf_ext.errors import MfExtError, one_line
    from mf_ext.registry import load_plugin

    try:
        plugin = load_plugin(a.register_path)
        scale = None
        if a.lora_rank is not None and a.lora_alpha is not None:
            scale = a.lora_alpha / a.lora_rank
        if a.output:
            export_merged_hf(a.checkpoint, a.output, plugin, lora_scale=scale, hf_config=a.hf_config, dtype=a.dtype)
            print(f"merged HF weights -> {a.output}")
        if a.peft_output:
            export_peft(a.checkpoint, a.peft_output, plugin, alpha=a.lora_alpha, base_model=a.base_model,
                        hf_config=a.hf_config)  # fmt: skip
            print(f"PEFT adapter -> {a.peft_output}")
    except MfExtError as e:
        print(f"export: error: {one_line(e)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("export: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    import os

    from mf_ext.runtime import prepare_mindformers

    cache = os.environ.get("MF_EXT_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "mf-ext")
    prepare_mindformers(os.path.join(cache, "log"))
    raise SystemExit(main())
