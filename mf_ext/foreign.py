"""Models that are not mf-ext's: MindFormers' built-ins and the research folders written for ``run_mindformer.py``.

mf-ext's own models carry a static KV cache (``init_kv_cache``) that :mod:`mf_ext.generation` drives on CPU and Ascend.
A *foreign* model (MindFormers' ``LlamaForCausalLM``, ``research/telechat2``'s ``TelechatForCausalLM``, a factory
class's product, ...) has none, and MindFormers' own ``generate()`` needs Ascend kernels (``ArgMaxExt``, paged
attention). On Ascend this module calls the model's own ``generate()``; on CPU it

* builds the model in the forms that have CPU kernels (:func:`adapt_config_for_device`: no ``use_past`` paged KV
  cache, no ``use_flash_attention``, no ``is_dynamic``, ``use_rope_slice``; the same numbers), saying what it changed;
* swaps the fused ``RmsNorm`` primitive that some layers hard-wire (MindFormers' ``LlamaRMSNorm`` picks it whatever
  ``fused_rms_norm`` says: internlm2 and telechat2 decoder layers) for ``RmsNormComposite``, the op's own
  definition written with ops that have CPU kernels (:func:`adapt_model_for_device`);
* generates by full recompute (:func:`generate`): each step runs the whole right-padded buffer, padded to what the
  model accepts (exactly ``seq_length`` for MindFormers' static-shape models, ``is_dynamic: False``); causal attention
  makes the padding after the last real token invisible to it. Sampling is :func:`mf_ext.generation.sample_next`'s,
  so greedy / top-k / top-p / temperature / eos / seed mean what they mean for mf-ext's models.

Failures are one line naming the model class and what is missing (:class:`ForeignModelError`).
"""

from __future__ import annotations

import sys

import numpy as np

from mf_ext.config import ConfigError

__all__ = [
    "ForeignModelError",
    "rms_norm_composite",
    "adapt_config_for_device",
    "adapt_model_for_device",
    "build_model",
    "generate",
    "is_foreign",
    "logits",
]

# model_config settings a MindFormers model needs on CPU, each exact (the same numbers, other kernels).
CPU_SETTINGS: dict[str, object] = {
    "use_past": False,  # paged-attention KV cache (PagedAttention / ReshapeAndCache: Ascend kernels only)
    "use_flash_attention": False,  # FlashAttentionScore: Ascend only
    "is_dynamic": False,  # dynamic shapes serve the paged cache; without it inputs are seq_length long
    "use_rope_slice": True,  # rotate-half by slicing; the BatchMatMul form broadcasts, which CPU kernels cannot
}


class ForeignModelError(ConfigError):
    """A model that is not mf-ext's cannot run as asked; one line naming its class and what is missing."""


def is_foreign(model) -> bool:
    """Whether ``model`` (an instance or a class) is not an mf-ext model (it has no ``init_kv_cache``)."""
    return not hasattr(model, "init_kv_cache")


def _device() -> str:
    import mindspore as ms

    return ms.get_context("device_target")


def _registered(module_type: str, name) -> type | None:
    """The class registered as ``name`` for ``module_type`` in MindFormers' register, or None."""
    if not isinstance(name, str) or not name:
        return None
    from mindformers.tools.register import MindFormerRegister

    for candidate in (name, f"mcore_{name}"):
        try:
            if MindFormerRegister.is_exist(module_type, candidate):
                return MindFormerRegister.get_cls(module_type, candidate)
        except (KeyError, ValueError, TypeError):
            continue
    return None


def _defaults(cls) -> dict:
    import inspect

    try:
        params = inspect.signature(cls.__init__).parameters.values()
    except (TypeError, ValueError):
        return {}
    return {p.name: p.default for p in params if p.default is not inspect.Parameter.empty}


def adapt_config_for_device(cfg, *, verbose: bool = True) -> list[str]:
    """Prepare a foreign model's build as ``run_mindformer.py`` does, in the forms that run on this device.

    * ``RUN_MODE``: MindFormers' context sets this environment variable to ``predict`` for a predict / eval run of
      a ``use_past`` (or non-legacy) model, and models read it when built (``research/deepseek3``'s factory picks
      its inference network by it; ``LlamaForCausalLM`` returns predict-layout logits). Set the same way here.
    * On CPU, ``model_config`` in the forms that run there (:data:`CPU_SETTINGS`, in place).

    mf-ext's own models are left alone. Returns the ``model_config`` changes (``"use_past True -> False"``), also
    printed as one note on stderr.
    """
    import os

    model = cfg.get("model") or {}
    cls = _registered("models", (model.get("arch") or {}).get("type"))
    if cls is None or not is_foreign(cls):
        return []
    mc = model.model_config
    defaults = _defaults(_registered("config", mc.get("type")) or object)
    run_mode = cfg.get("run_mode") or "predict"
    use_past = mc["use_past"] if "use_past" in mc else defaults.get("use_past", False)
    if run_mode in ("predict", "eval") and (use_past or not cfg.get("use_legacy", True)):
        os.environ["RUN_MODE"] = run_mode
    if _device() != "CPU":
        return []
    changes = []
    for key, cpu_value in CPU_SETTINGS.items():
        current = mc[key] if key in mc else defaults.get(key)
        if current is not None and current != cpu_value:
            changes.append(f"{key} {current!r} -> {cpu_value!r}")
            mc[key] = cpu_value
    if changes and verbose:
        print(
            f"[mf-ext] CPU: {cls.__name__} runs with {'; '.join(changes)} (exact; MindFormers' forms need Ascend kernels)",
            file=sys.stderr,
            flush=True,
        )
    return changes


def build_model(cfg):
    """``cfg.model`` built by MindFormers' ``build_model`` (``cfg`` is not modified, except by
    :func:`adapt_config_for_device` for a foreign model), ready for this device; a failure is one line naming the
    class."""
    import copy
    import os

    from mindformers.models import build_model as mindformers_build_model

    from mf_ext.registry import plugin_imports

    adapt_config_for_device(cfg)
    arch = ((cfg.get("model") or {}).get("arch") or {}).get("type")
    try:
        with plugin_imports():  # plug-in code importing siblings while the model is built gets its own folder's
            model = mindformers_build_model(copy.deepcopy(cfg.model))  # MindFormers' builders may pop keys
    except (MemoryError, KeyboardInterrupt):
        raise
    except Exception as exc:  # the model's own constructor: one line naming it, the traceback with MF_EXT_DEBUG=1
        if os.environ.get("MF_EXT_DEBUG"):
            raise
        detail = next((line.strip() for line in str(exc).splitlines() if line.strip()), "")
        prefix = f"{arch}: "
        detail = detail[len(prefix) :] if detail.startswith(prefix) else detail  # MindFormers prefixes the class
        raise ForeignModelError(
            f"model.arch {arch!r}: building it on {_device()} failed: {type(exc).__name__}: {detail}"
        ) from exc
    adapt_model_for_device(model)
    return model


# --------------------------------------------------------------------------------------------------------------------
# RmsNorm on CPU


_COMPOSITE: list = []


def _composite_class():
    """:class:`RmsNormComposite`, built on first use (it is a MindSpore Cell; importing this module stays light)."""
    if _COMPOSITE:
        return _COMPOSITE[0]
    from mindspore import dtype as mstype
    from mindspore import nn, ops

    class RmsNormComposite(nn.Cell):
        """``RmsNorm(epsilon)(x, gamma) -> (y, rstd)`` from ops with CPU kernels, as the Ascend op defines it.

        ``rstd = 1 / sqrt(mean(x**2, -1) + epsilon)`` and ``y = x * rstd * gamma``, computed in float32 (the Ascend
        kernel computes float16 / bfloat16 inputs in float32 too); ``y`` has ``x``'s dtype, ``rstd`` is float32 with
        the last axis kept, as the op returns them.
        """

        def __init__(self, epsilon: float):
            super().__init__()
            self.epsilon = float(epsilon)

        def construct(self, x, gamma):
            xf = ops.cast(x, mstype.float32)
            rstd = ops.rsqrt(ops.mean(ops.square(xf), -1, keep_dims=True) + self.epsilon)
            y = xf * rstd * ops.cast(gamma, mstype.float32)
            return ops.cast(y, x.dtype), rstd

    RmsNormComposite.__module__ = __name__
    _COMPOSITE.append(RmsNormComposite)
    return RmsNormComposite


def rms_norm_composite(epsilon: float):
    """A :class:`RmsNormComposite` cell: the ``RmsNorm(epsilon)`` primitive's drop-in replacement on CPU."""
    return _composite_class()(epsilon)


def replace_rms_norm(model) -> list[str]:
    """Replace every ``RmsNorm`` primitive held by a cell of ``model`` with ``RmsNormComposite`` (:func:`rms_norm_composite`).

    Returns the cell attributes replaced (``model.layers.0.attention_norm.norm`` ...). The primitive's users call
    it as ``self.norm(x, weight)[0]``, which the composite answers identically.
    """
    from mindspore.ops.auto_generate.gen_ops_prim import RmsNorm

    replaced = []
    for cell_name, cell in model.cells_and_names():
        prims = getattr(cell, "_primitives", None) or {}
        for attr, prim in list(prims.items()):
            if isinstance(prim, RmsNorm):
                eps = prim.attrs.get("epsilon", getattr(prim, "epsilon", 1e-6))
                del prims[attr]
                cell.__dict__.pop(attr, None)
                setattr(cell, attr, rms_norm_composite(eps))
                replaced.append(f"{cell_name}.{attr}" if cell_name else attr)
    return replaced


def adapt_model_for_device(model) -> list[str]:
    """On CPU, give a built model what it needs to run there (today: the ``RmsNorm`` fallback); returns the changes."""
    if _device() != "CPU":
        return []
    return replace_rms_norm(model)


# --------------------------------------------------------------------------------------------------------------------
# logits and generation


def _name(model) -> str:
    return type(model).__name__


def _static_length(model) -> int | None:
    """The input length a foreign model accepts: MindFormers' static-shape models take exactly ``seq_length``."""
    cfg = getattr(model, "config", None)
    seq = getattr(cfg, "seq_length", None)
    if isinstance(seq, (int, np.integer)) and seq > 0:
        return int(seq)
    return None


def _explain(model, exc: BaseException):
    """One line for a failure inside a foreign model: the operator MindSpore lacks on this device
    (:func:`mf_ext.api.backend_error`), else the model's own first line."""
    from mf_ext.api import backend_error

    who = f"{_name(model)} ({type(model).__module__})"
    missing = backend_error(exc, who)
    if missing is not None:
        return missing
    first = next((line.strip() for line in str(exc).splitlines() if line.strip()), type(exc).__name__)
    return ForeignModelError(f"{who} failed on {_device()}: {first}")


def _check_runnable(model) -> None:
    """CPU: refuse a model built with MindFormers' paged cache; give the others the RmsNorm fallback (idempotent)."""
    if _device() != "CPU":
        return
    adapt_model_for_device(model)  # a model built directly (not through mf_ext.load_model) needs it as well
    if getattr(getattr(model, "config", None), "use_past", False):
        raise ForeignModelError(
            f"{_name(model)} was built with use_past=True: MindFormers' paged KV cache runs on Ascend only; on CPU build "
            "it with model_config.use_past False (run_mindformer_ext.py and mf_ext.load_model do this)"
        )


def _forward(model, ids: np.ndarray) -> np.ndarray:
    """Logits (batch, len, vocab) float32 of a foreign model for exactly ``ids`` (already padded as it needs)."""
    import mindspore as ms

    if getattr(model, "training", False):
        model.set_train(False)  # as MindFormers' generate() does: outside training its models return logits
    try:
        out = model(ms.Tensor(ids.astype(np.int32), ms.int32))
        out = out[0] if isinstance(out, (tuple, list)) else out  # (logits, tokens, mask) outside predict mode
        arr = out.asnumpy().astype(np.float32)  # PyNative reports a missing kernel here, when the value is needed
    except (RuntimeError, TypeError, ValueError) as exc:
        raise _explain(model, exc) from exc
    batch, length = ids.shape
    if arr.size % (batch * length):
        raise ForeignModelError(
            f"{_name(model)} returned logits of shape {tuple(arr.shape)} for input {ids.shape}: expected one row of "
            "logits per input position"
        )
    return arr.reshape(batch, length, -1)


def _padded_width(model, needed: int, what: str) -> int:
    width = _static_length(model)
    if width is None:
        return needed
    if needed > width:
        raise ForeignModelError(
            f"{_name(model)} takes inputs of exactly seq_length={width} tokens (a static-shape MindFormers model); "
            f"{what} needs {needed}: raise model.model_config.seq_length or ask for fewer tokens"
        )
    return width


def logits(model, ids: np.ndarray) -> np.ndarray:
    """Full-sequence logits (batch, len, vocab) of a foreign model for ``ids`` of any length up to what it accepts."""
    _check_runnable(model)
    batch, length = ids.shape
    width = _padded_width(model, length, f"input_ids of length {length}")
    buf = np.full((batch, width), _pad_id(model), dtype=np.int64)
    buf[:, :length] = ids
    return _forward(model, buf)[:, :length]


def _pad_id(model, eos: set[int] | None = None, pad: int | None = None) -> int:
    """A padding id the model's embedding accepts: ``pad`` / its ``pad_token_id`` / an eos id, if in its vocab, else 0.

    (MindFormers' YAMLs carry the full model's ids, e.g. 128002, also when the weights have a smaller vocabulary.)
    """
    cfg = getattr(model, "config", None)
    vocab = getattr(cfg, "vocab_size", None)
    for cand in (pad, getattr(cfg, "pad_token_id", None), *sorted(eos or ())):
        if isinstance(cand, (int, np.integer)) and 0 <= cand and (vocab is None or cand < vocab):
            return int(cand)
    return 0


def generate(
    model,
    ids: np.ndarray,
    attention_mask: np.ndarray | None,
    max_new_tokens: int,
    *,
    do_sample: bool,
    top_k: int,
    top_p: float,
    temperature: float,
    eos: set[int],
    pad: int,
    rng: np.random.Generator,
    seed: int | None,
) -> np.ndarray:
    """:func:`mf_ext.generation.generate` for a foreign model (arguments already checked there).

    Ascend: the model's own ``generate()``. CPU: full recompute over a right-padded buffer as wide as the model
    accepts; rows of a left-padded batch (``attention_mask``) run one by one, unpadded, so each decodes as it would
    alone (MindFormers' models take no position ids to follow a mask).
    """
    if attention_mask is not None:
        # rows of a left-padded batch run one by one, unpadded; their new tokens line up after the padded prompt
        rows = [
            generate(
                model,
                ids[i : i + 1, ids.shape[1] - int(mask.sum()) :],
                None,
                max_new_tokens,
                do_sample=do_sample,
                top_k=top_k,
                top_p=top_p,
                temperature=temperature,
                eos=eos,
                pad=pad,
                rng=rng,
                seed=seed,
            )[0, int(mask.sum()) :]
            for i, mask in enumerate(attention_mask)
        ]
        out = np.full((ids.shape[0], ids.shape[1] + max(len(r) for r in rows)), pad, dtype=np.int64)
        out[:, : ids.shape[1]] = ids
        for i, new in enumerate(rows):
            out[i, ids.shape[1] : ids.shape[1] + len(new)] = new
        return out
    if _device() == "Ascend" and hasattr(model, "generate"):
        return _generate_ascend(model, ids, max_new_tokens, do_sample, top_k, top_p, temperature, eos, seed)
    _check_runnable(model)
    from mf_ext.generation import sample_next

    pad = _pad_id(model, eos, pad)
    batch, prompt_len = ids.shape
    total = prompt_len + max_new_tokens
    width = _padded_width(model, total, f"a {prompt_len}-token prompt + {max_new_tokens} new tokens")
    buf = np.full((batch, width), pad, dtype=np.int64)
    buf[:, :prompt_len] = ids
    finished = np.zeros(batch, dtype=bool)
    cur = prompt_len
    while cur < total:
        step = _forward(model, buf)[:, cur - 1]
        token = sample_next(step, do_sample, top_k, top_p, temperature, rng)
        token = np.where(finished, pad, token)
        buf[:, cur] = token
        cur += 1
        finished |= np.isin(token, list(eos))
        if finished.all():
            break
    return buf[:, :cur]


def _generate_ascend(model, ids, max_new_tokens, do_sample, top_k, top_p, temperature, eos, seed):
    """The model's own MindFormers ``generate()`` (Ascend has its kernels): prompt + new ids as one array."""
    kwargs = {"max_new_tokens": int(max_new_tokens), "do_sample": bool(do_sample)}
    if do_sample:
        kwargs["temperature"] = float(temperature)
        if top_k:
            kwargs["top_k"] = int(top_k)
        if top_p < 1.0:
            kwargs["top_p"] = float(top_p)
    if eos:
        kwargs["eos_token_id"] = sorted(eos) if len(eos) > 1 else next(iter(eos))
    rows = [[int(t) for t in row] for row in ids]
    try:
        out = model.generate(rows, seed=seed, **kwargs)
    except (RuntimeError, TypeError, ValueError) as exc:
        raise _explain(model, exc) from exc
    results = []
    for row, gen in zip(rows, out, strict=True):
        gen = [int(t) for t in np.asarray(gen).reshape(-1)]
        results.append(gen if gen[: len(row)] == row else row + gen)  # MindFormers returns prompt + new ids
    arr = np.full((len(results), max(len(r) for r in results)), _pad_id(model, eos), dtype=np.int64)
    for i, r in enumerate(results):
        arr[i, : len(r)] = r
    return arr
