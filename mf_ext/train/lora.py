"""LoRA for plug-in models whose linear layers keep their weight as ``<cell>.weight`` of shape ``(out, in)``.

Configured as MindFormers' ``pet_config`` (inside ``model.model_config``)::

    pet_config:
      pet_type: lora
      lora_rank: 8
      lora_alpha: 16
      target_modules: '.*wq|.*wk|.*wv|.*wo'     # regex on cell names, as MindFormers' LoraConfig
                                                # (default: the model family's ``lora_targets``)

A target cell ``model.layers.0.attention.wq`` gets ``...wq.lora_a`` ``(rank, in)`` and ``...wq.lora_b``
``(out, rank)`` and computes ``x W^T + scale * (x A^T) B^T`` with ``scale = alpha / rank`` (PEFT's layout and
scaling, so the adapter exports to PEFT unchanged). ``lora_b`` starts at zero: the model is unchanged at step 0.
The base weight keeps its name and is frozen; merging gives ``W + scale * B @ A``.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class LoraSettings:
    """``pet_config`` of a LoRA run; ``target_modules`` None means the model family's ``lora_targets``."""

    rank: int = 8
    alpha: float = 16.0
    target_modules: str | None = None

    @property
    def scale(self) -> float:
        return self.alpha / self.rank

    @classmethod
    def from_pet_config(cls, pet) -> LoraSettings | None:
        """``None`` when ``pet`` is empty; errors for a pet type other than LoRA or bad numbers."""
        from mf_ext.config import ConfigError

        if not pet:
            return None
        pet = dict(pet)
        kind = str(pet.get("pet_type", "lora")).lower()
        if kind != "lora":
            raise ConfigError(f"model.model_config.pet_config.pet_type: only 'lora' is supported, got {kind!r}")
        rank = pet.get("lora_rank", 8)
        alpha = pet.get("lora_alpha", 16)
        if not isinstance(rank, int) or rank < 1:
            raise ConfigError(f"model.model_config.pet_config.lora_rank: expected an integer >= 1, got {rank!r}")
        if not isinstance(alpha, (int, float)) or alpha <= 0:
            raise ConfigError(f"model.model_config.pet_config.lora_alpha: expected a number > 0, got {alpha!r}")
        target = pet.get("target_modules") or None
        if isinstance(target, (list, tuple)):  # PEFT-style list of names
            target = "|".join(f".*{re.escape(t)}" for t in target)
        return cls(rank=rank, alpha=float(alpha), target_modules=None if target is None else str(target))


def default_targets(model) -> str:
    """The LoRA targets the model's family declares (``Family.lora_targets``); a one-line error when none does."""
    from mf_ext.config import ConfigError
    from mf_ext.registry import family_of

    fam = family_of(type(model))
    if fam is None or not fam.lora_targets:
        who = f"family {fam.name!r}" if fam is not None else f"{type(model).__name__} (not from a family folder)"
        raise ConfigError(
            f"model.model_config.pet_config.target_modules: not set, and {who} declares no lora_targets; "
            "set target_modules (a regex on cell names)"
        )
    return fam.lora_targets


def _lora_cell_class():
    import mindspore as ms
    from mindspore import Parameter, nn, ops
    from mindspore.common.initializer import HeUniform, initializer

    class LoRALinear(nn.Cell):
        """A frozen ``(out, in)`` linear weight plus a trainable low-rank update."""

        def __init__(self, base, rank: int, scale: float):
            super().__init__()
            out_f, in_f = base.weight.shape
            self.weight = base.weight  # the same Parameter object: checkpoints and tied weights stay intact
            self.weight.requires_grad = False
            # a biased base (q/k/v of some families) keeps its bias: the same frozen Parameter, added as the base adds it
            self.bias = getattr(base, "bias", None)
            self.has_bias = self.bias is not None
            self.compute_dtype = getattr(base, "compute_dtype", base.weight.dtype)
            self.cast_weight = self.weight.dtype != self.compute_dtype
            self.out_features = out_f
            # PEFT's init: kaiming-uniform(a=sqrt(5)) for A, zeros for B.
            self.lora_a = Parameter(
                initializer(HeUniform(negative_slope=math.sqrt(5)), (rank, in_f), ms.float32), name="lora_a"
            )
            self.lora_b = Parameter(initializer("zeros", (out_f, rank), ms.float32), name="lora_b")
            self.scale = scale
            self.matmul = ops.MatMul(transpose_b=True)

        def construct(self, x):
            weight = ops.cast(self.weight, self.compute_dtype) if self.cast_weight else self.weight
            lead = x.shape[:-1]
            x2 = x.reshape(-1, x.shape[-1])
            y = self.matmul(x2, weight)
            if self.has_bias:
                y = y + (ops.cast(self.bias, self.compute_dtype) if self.cast_weight else self.bias)
            a = ops.cast(self.lora_a, x2.dtype)
            b = ops.cast(self.lora_b, x2.dtype)
            y = y + self.matmul(self.matmul(x2, a), b) * self.scale
            return y.reshape(lead + (self.out_features,))

    return LoRALinear


def apply_lora(model, settings: LoraSettings) -> list[str]:
    """Freeze every parameter of ``model`` and wrap the target linear cells with LoRA; return their names.

    Raises ``ConfigError`` when ``target_modules`` matches no linear cell.
    """
    from mf_ext.config import ConfigError

    lora_cls = _lora_cell_class()
    target_modules = settings.target_modules or default_targets(model)
    pattern = re.compile(target_modules)
    targets = []
    for name, cell in model.cells_and_names():
        if not name or isinstance(cell, lora_cls):
            continue
        w = getattr(cell, "weight", None)
        if w is None or len(w.shape) != 2 or not hasattr(cell, "matmul") or not pattern.fullmatch(name):
            continue
        targets.append(name)
    if not targets:
        raise ConfigError(f"model.model_config.pet_config.target_modules: {target_modules!r} matches no linear layer")
    for p in model.get_parameters():
        p.requires_grad = False
    for name in targets:
        parent_name, _, attr = name.rpartition(".")
        parent = model
        for part in parent_name.split(".") if parent_name else []:
            parent = parent._cells[part] if part in parent._cells else getattr(parent, part)
        setattr(parent, attr, lora_cls(getattr(parent, attr), settings.rank, settings.scale))
    # Attaching a cell deep in a built tree names its parameters relative to the parent only: rename to full paths.
    for pname, p in model.parameters_and_names():
        p.name = pname
    return targets


def merge_lora_params(params: dict[str, np.ndarray], scale: float) -> dict[str, np.ndarray]:
    """``{name: array}`` with every ``X.lora_a``/``X.lora_b`` pair folded into ``X.weight`` as
    ``W + scale * (B @ A)`` (computed in float32, cast back to W's dtype) and the LoRA tensors dropped."""
    out = {k: v for k, v in params.items() if not (k.endswith(".lora_a") or k.endswith(".lora_b"))}
    for k in params:
        if not k.endswith(".lora_a"):
            continue
        base = k[: -len(".lora_a")]
        a, b = params[k].astype(np.float32), params[base + ".lora_b"].astype(np.float32)
        w = params[base + ".weight"]
        out[base + ".weight"] = (w.astype(np.float32) + np.float32(scale) * (b @ a)).astype(w.dtype)
    return out
