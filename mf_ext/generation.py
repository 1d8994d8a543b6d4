"""CPU-capable logits and generation loop for mf-ext models (greedy, top-k, top-p sampling in numpy).

MindFormers' own ``generate()`` cannot run on CPU (``ArgMaxExt``/``TopkExt`` have no CPU kernel, its KV cache is
Ascend-only). This loop only needs the model's forward: with ``use_cache`` it drives the model's static-shape KV
cache (``model.init_kv_cache`` + ``past_key_values``/``cache_position``). Graph mode compiles per input shape, so
every shape here is independent of the prompt length: the prompt is prefilled in fixed chunks of 64 tokens (the last
one right-padded; causal attention makes the padding invisible and decoding overwrites its cache slots), then one
token per step, and the cache buffers are sized in powers of two from 256 tokens. A model thus compiles one prefill
and one decode graph for every prompt + generation up to 256 tokens, and one more pair per doubling beyond. Without
a cache it recomputes over a right-padded buffer (multiples of 64 tokens).

Models without ``init_kv_cache`` (MindFormers' built-ins, research folders written for ``run_mindformer.py``) go to
:mod:`mf_ext.foreign`: full recompute on CPU, the model's own ``generate()`` on Ascend, same sampling options.

MindSpore is imported on first call, not at module import.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from mf_ext.errors import MfExtError

__all__ = ["logits", "generate", "sample_next"]

# Without a cache, buffers are rounded up to a multiple of this many tokens so repeated calls with nearby lengths
# reuse the compiled graph-mode graphs; it is also the prefill chunk with a cache.
_LENGTH_BUCKET = 64
_PREFILL_CHUNK = 64
# KV cache buffers: powers of two from this length, so prompts of any length up to it share the compiled graphs.
# Masked slots cost one multiply-add each per decode step; the weights dominate a step's time.
_MIN_CACHE_LEN = 256


def _cache_len(total: int) -> int:
    """KV buffer length for ``total`` tokens (prompt + new): a power of two, at least ``_MIN_CACHE_LEN``."""
    length = _MIN_CACHE_LEN
    while length < total:
        length *= 2
    return length


def _as_ids(input_ids, vocab_size: int | None) -> np.ndarray:
    ids = np.asarray(input_ids)
    if ids.ndim == 1:
        ids = ids[None, :]
    if ids.ndim != 2 or ids.shape[1] == 0:
        raise ValueError(f"input_ids: expected a non-empty (batch, seq) array of token ids, got shape {ids.shape!r}")
    if not np.issubdtype(ids.dtype, np.integer):
        raise ValueError(f"input_ids: expected integer token ids, got dtype {ids.dtype!r}")
    if vocab_size is not None and (ids.min() < 0 or ids.max() >= vocab_size):
        raise GenerationError(
            f"input_ids: token ids must be in [0, {vocab_size}), got range [{int(ids.min())!r}, {int(ids.max())!r}]"
        )
    return ids.astype(np.int64)


def _left_pad(rows, pad: int) -> tuple[np.ndarray, np.ndarray]:
    """Left-pad id lists of different lengths to one array; return ``(ids, attention_mask)``."""
    width = max(len(row) for row in rows)
    if width == 0:
        raise ValueError("input_ids: every prompt is empty")
    ids = np.full((len(rows), width), pad, dtype=np.int64)
    mask = np.zeros((len(rows), width), dtype=np.int32)
    for i, row in enumerate(rows):
        if len(row) == 0:
            raise ValueError(f"input_ids: prompt {i} is empty")
        ids[i, width - len(row) :] = np.asarray(row, dtype=np.int64)
        mask[i, width - len(row) :] = 1
    return ids, mask


def _first_tensor(out):
    # MindFormers' built-in models return (logits, tokens, mask) outside training; ours returns logits.
    return out[0] if isinstance(out, (tuple, list)) else out


def logits(model, input_ids) -> np.ndarray:
    """Full-sequence logits of ``model`` for ``input_ids`` ((batch, seq) ints) as float32 (batch, seq, vocab).

    Works for ``Llama3ForCausalLM`` and for foreign models (MindFormers' built-in ``LlamaForCausalLM``, research
    folders: see :mod:`mf_ext.foreign`, which pads to the length a static-shape model accepts).
    """
    import mindspore as ms

    vocab = getattr(getattr(model, "config", None), "vocab_size", None)
    ids = _as_ids(input_ids, vocab)
    if not hasattr(model, "init_kv_cache"):  # not an mf-ext model: MindFormers' built-ins, research folders
        from mf_ext import foreign

        return foreign.logits(model, ids)
    out = _first_tensor(model(ms.Tensor(ids.astype(np.int32), ms.int32))).asnumpy().astype(np.float32)
    return out.reshape(ids.shape[0], ids.shape[1], -1)


def sample_next(
    step_logits: np.ndarray,
    do_sample: bool = False,
    top_k: int = 0,
    top_p: float = 1.0,
    temperature: float = 1.0,
    rng: np.random.Generator | None = None,
) -> np.ndarray:
    """Pick one token per row of ``step_logits`` (batch, vocab): argmax, or a temperature/top-k/top-p sample."""
    scores = np.asarray(step_logits, dtype=np.float32)
    if not do_sample:
        return scores.argmax(-1)
    rng = rng if rng is not None else np.random.default_rng()
    scores = scores.astype(np.float64) / temperature
    vocab = scores.shape[-1]
    if 0 < top_k < vocab:
        kth = np.partition(scores, vocab - top_k, axis=-1)[:, vocab - top_k][:, None]
        scores = np.where(scores < kth, -np.inf, scores)
    if top_p < 1.0:
        order = np.argsort(-scores, axis=-1, kind="stable")
        sorted_scores = np.take_along_axis(scores, order, -1)
        probs = np.exp(sorted_scores - sorted_scores[:, :1])
        probs /= probs.sum(-1, keepdims=True)
        # Drop a token once the mass before it already reaches top_p; the most likely token always stays.
        drop_sorted = (np.cumsum(probs, -1) - probs) >= top_p
        drop = np.zeros_like(drop_sorted)
        np.put_along_axis(drop, order, drop_sorted, -1)
        scores = np.where(drop, -np.inf, scores)
    probs = np.exp(scores - scores.max(-1, keepdims=True))
    probs /= probs.sum(-1, keepdims=True)
    return np.array([rng.choice(vocab, p=row) for row in probs])


class GenerationError(MfExtError, ValueError):
    """Settings that cannot generate (one line naming the setting)."""


def _check_special_ids(vocab_size, pad: int, eos: set[int]) -> None:
    # An id the embedding table lacks would only surface as a kernel error ("Gather ... input_indices should be in
    # the range [0, 1280), got 128004") after compiling: refuse it here, naming the setting.
    if not isinstance(vocab_size, (int, np.integer)) or vocab_size <= 0:
        return
    if pad >= vocab_size:
        raise GenerationError(
            f"pad_token_id: {pad!r} is outside the model's vocabulary [0, {vocab_size}) (model.config.pad_token_id, "
            "or the smallest eos_token_id); set one the model knows"
        )
    outside = sorted(t for t in eos if t >= vocab_size)
    if outside:
        raise GenerationError(
            f"eos_token_id: {outside!r} outside the model's vocabulary [0, {vocab_size}); the model can never emit it"
        )


def _eos_set(eos_token_id) -> set[int]:
    if eos_token_id is None:
        return set()
    if isinstance(eos_token_id, (int, np.integer)) and not isinstance(eos_token_id, bool):
        return {int(eos_token_id)}
    if (
        isinstance(eos_token_id, Sequence)
        and not isinstance(eos_token_id, str)
        and all(isinstance(t, (int, np.integer)) and not isinstance(t, bool) for t in eos_token_id)
    ):
        return {int(t) for t in eos_token_id}
    raise ValueError(f"eos_token_id: expected an int, a list of ints or None, got {eos_token_id!r}")


def generate(
    model,
    input_ids,
    max_new_tokens: int,
    do_sample: bool = False,
    top_k: int = 0,
    top_p: float = 1.0,
    temperature: float = 1.0,
    eos_token_id: int | Sequence[int] | None = None,
    use_cache: bool = True,
    seed: int | None = None,
    attention_mask=None,
    eager_prefill: bool = False,
) -> np.ndarray:
    """Generate up to ``max_new_tokens`` tokens after ``input_ids`` and return prompt + new ids (batch, len).

    Greedy by default; ``do_sample`` samples with ``temperature``, ``top_k`` (0 = off) and ``top_p`` (1.0 = off),
    reproducibly for a given ``seed``. Rows that emitted an ``eos_token_id`` are padded with the model's
    ``pad_token_id`` (or the eos id) until every row is done or the budget is spent.

    Prompts of different lengths: pass a list of id lists (left-padded here with the pad id), or a left-padded
    array with ``attention_mask`` (1 = token, 0 = padding) as for HF ``generate``; rotary positions then follow
    the mask, so each row decodes as it would alone.

    ``eager_prefill`` (graph mode, with a cache): run the prompt's prefill chunks in PyNative and compile only the
    decode graph -- for short prompts a compile costs more than the few eager calls (same numerics).
    """
    import mindspore as ms

    config = model.config
    eos = _eos_set(eos_token_id)
    pad = getattr(config, "pad_token_id", None)
    pad = pad if isinstance(pad, (int, np.integer)) and pad >= 0 else (min((t for t in eos if t >= 0), default=0))
    _check_special_ids(getattr(config, "vocab_size", None), pad, eos)
    if (
        attention_mask is None
        and isinstance(input_ids, (list, tuple))
        and input_ids
        and all(isinstance(row, (list, tuple, np.ndarray)) for row in input_ids)
        and len({len(row) for row in input_ids}) > 1
    ):
        input_ids, attention_mask = _left_pad(input_ids, pad)
    ids = _as_ids(input_ids, getattr(config, "vocab_size", None))
    if attention_mask is not None:
        attention_mask = np.asarray(attention_mask)
        if attention_mask.ndim == 1:
            attention_mask = attention_mask[None, :]
        if attention_mask.shape != ids.shape or not np.isin(attention_mask, (0, 1)).all():
            raise ValueError(
                f"attention_mask: expected 0/1 values of the input_ids shape {ids.shape!r}, "
                f"got shape {attention_mask.shape!r}"
            )
        if not attention_mask[:, -1].all():
            raise ValueError("attention_mask: padding must be on the left (every row's last prompt token is real)")
        if attention_mask.all():
            attention_mask = None  # nothing masked: keep the unpadded graphs
    if not isinstance(max_new_tokens, (int, np.integer)) or max_new_tokens < 0:
        raise ValueError(f"max_new_tokens: expected a non-negative int, got {max_new_tokens!r}")
    if not isinstance(top_k, (int, np.integer)) or top_k < 0:
        raise ValueError(f"top_k: expected an int >= 0 (0 disables it), got {top_k!r}")
    if not 0.0 < float(top_p) <= 1.0:
        raise ValueError(f"top_p: expected a float in (0, 1], got {top_p!r}")
    if do_sample and not float(temperature) > 0.0:
        raise ValueError(f"temperature: expected a float > 0 when sampling, got {temperature!r}")
    rng = np.random.default_rng(seed)
    if not hasattr(model, "init_kv_cache"):  # not an mf-ext model: MindFormers' built-ins, research folders
        from mf_ext import foreign

        sampling = dict(do_sample=do_sample, top_k=int(top_k), top_p=float(top_p), temperature=float(temperature))
        return foreign.generate(
            model, ids, attention_mask, int(max_new_tokens), **sampling, eos=eos, pad=pad, rng=rng, seed=seed
        )

    batch, prompt_len = ids.shape
    total = prompt_len + int(max_new_tokens)
    use_cache = use_cache and max_new_tokens > 0
    buf_len = _cache_len(total) if use_cache else -(-total // _LENGTH_BUCKET) * _LENGTH_BUCKET
    out = np.full((batch, buf_len), pad, dtype=np.int64)
    out[:, :prompt_len] = ids
    full_mask = None
    if attention_mask is not None:
        full_mask = np.ones((batch, buf_len), dtype=np.int32)
        full_mask[:, :prompt_len] = attention_mask
    finished = np.zeros(batch, dtype=bool)
    cur = prompt_len
    cache = model.init_kv_cache(batch, buf_len) if use_cache else None
    while cur < total:
        if cache is not None:
            if cur == prompt_len:
                # Prefill in fixed-size chunks, the last one right-padded: every prompt length uses the same compiled
                # graph; the padding sits after every real token (invisible to them) and its cache slots are
                # overwritten by decoding. Each chunk projects one position's logits (the last chunk's is used).
                mode = ms.get_context("mode")
                eager = eager_prefill and mode == ms.GRAPH_MODE
                if eager:
                    ms.set_context(mode=ms.PYNATIVE_MODE)
                for start in range(0, prompt_len, _PREFILL_CHUNK):
                    inputs = model.prepare_inputs_for_generation(
                        out[:, : start + _PREFILL_CHUNK],
                        past_key_values=cache,
                        cache_position=start,
                        logit_index=min(prompt_len - 1 - start, _PREFILL_CHUNK - 1),
                        attention_mask=full_mask,
                        valid_length=prompt_len,
                    )
                    step_logits, cache = model(**inputs)
                    cache = ms.mutable(tuple(cache))
                if eager:
                    ms.set_context(mode=mode)
            else:  # one token per call, written at position cur - 1
                inputs = model.prepare_inputs_for_generation(
                    out[:, :cur],
                    past_key_values=cache,
                    cache_position=cur - 1,
                    return_last_logit=True,
                    attention_mask=full_mask,
                    valid_length=cur,
                )
                step_logits, cache = model(**inputs)
                cache = ms.mutable(tuple(cache))
            step = step_logits.asnumpy()[:, -1]
        elif full_mask is not None:
            full = model(**model.prepare_inputs_for_generation(out, attention_mask=full_mask)).asnumpy()
            step = full[:, cur - 1]
        else:
            full = _first_tensor(model(ms.Tensor(out.astype(np.int32), ms.int32))).asnumpy()
            step = full.reshape(batch, buf_len, -1)[:, cur - 1]
        token = sample_next(step, do_sample, top_k, top_p, temperature, rng)
        token = np.where(finished, pad, token)
        out[:, cur] = token
        cur += 1
        finished |= np.isin(token, list(eos))
        if finished.all():
            break
    return out[:, :cur]
