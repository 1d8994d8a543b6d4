"""Llama 3 / 3.1 causal LM written with plain MindSpore ops that have CPU kernels (and run on Ascend too).

Parameter names are MindFormers' Llama names (``model.tok_embeddings.embedding_weight``,
``model.layers.{i}.attention.wq.weight`` ...), so one checkpoint loads into this model and into MindFormers'
built-in ``LlamaForCausalLM`` alike.

KV cache: the caller owns static-shape buffers, one ``(batch, n_kv_heads, max_len, head_dim)`` key and value
tensor per layer, passes them in as ``past_key_values`` with the write position ``cache_position`` (a scalar
int32 Tensor) and gets the updated buffers back. Shapes never change while decoding, so graph mode compiles one
graph for the prefill and one for every decode step (positions travel as Tensor values, not as constants).
``mf_ext.generation.generate`` drives this loop.
"""

from __future__ import annotations

import copy
import math

import mindspore as ms
import numpy as np
from mindformers.models.modeling_utils import PreTrainedModel
from mindspore import Parameter, Tensor, nn, ops
from mindspore.common.initializer import Normal, initializer

from .llama3_1_config import Llama3Config

__all__ = ["Llama3ForCausalLM", "Llama3Model", "rope_inv_freq"]


def rope_inv_freq(head_dim: int, theta: float, rope_scaling: dict | None) -> np.ndarray:
    """Rotary inverse frequencies (float32, ``head_dim // 2``), with Llama 3.1 / linear ``rope_scaling``.

    Computed step by step in float32, in the order HF transformers uses, so angles agree to the last bits.
    """
    exponent = np.arange(0, head_dim, 2, dtype=np.int64).astype(np.float32) / np.float32(head_dim)
    inv_freq = (np.float32(1.0) / np.power(np.float32(theta), exponent, dtype=np.float32)).astype(np.float32)
    if rope_scaling is None:
        return inv_freq
    kind = rope_scaling["type"]
    factor = np.float32(rope_scaling["factor"])
    if kind == "linear":
        return (inv_freq / factor).astype(np.float32)
    # llama3: keep high frequencies, divide low ones by `factor`, interpolate smoothly in between.
    low, high = np.float32(rope_scaling["low_freq_factor"]), np.float32(rope_scaling["high_freq_factor"])
    old_ctx = np.float32(rope_scaling["original_max_position_embeddings"])
    low_freq_wavelen, high_freq_wavelen = old_ctx / low, old_ctx / high
    wavelen = np.float32(2 * math.pi) / inv_freq
    scaled = np.where(wavelen > low_freq_wavelen, inv_freq / factor, inv_freq).astype(np.float32)
    smooth = ((old_ctx / wavelen - low) / (high - low)).astype(np.float32)
    smoothed = ((1 - smooth) * scaled / factor + smooth * scaled).astype(np.float32)
    is_medium = ~(wavelen < high_freq_wavelen) & ~(wavelen > low_freq_wavelen)
    return np.where(is_medium, smoothed, scaled).astype(np.float32)


class _Linear(nn.Cell):
    """``y = x @ weight.T`` with MindFormers' ``(out, in)`` weight layout; no bias (Llama has none)."""

    def __init__(self, in_features: int, out_features: int, param_dtype, compute_dtype, std: float):
        super().__init__()
        self.weight = Parameter(initializer(Normal(std), (out_features, in_features), param_dtype), name="weight")
        self.out_features = out_features
        self.compute_dtype = compute_dtype
        self.cast_weight = param_dtype != compute_dtype  # e.g. bf16 storage on CPU, where bf16 MatMul is missing
        self.matmul = ops.MatMul(transpose_b=True)

    def construct(self, x):
        weight = ops.cast(self.weight, self.compute_dtype) if self.cast_weight else self.weight
        lead = x.shape[:-1]
        y = self.matmul(x.reshape(-1, x.shape[-1]), weight)
        return y.reshape(lead + (self.out_features,))


class _Embedding(nn.Cell):
    def __init__(self, vocab_size: int, hidden_size: int, param_dtype, compute_dtype, std: float):
        super().__init__()
        self.embedding_weight = Parameter(
            initializer(Normal(std), (vocab_size, hidden_size), param_dtype), name="embedding_weight"
        )
        self.compute_dtype = compute_dtype
        self.cast_weight = param_dtype != compute_dtype  # CPU has no bf16 Gather kernel

    def construct(self, input_ids):
        table = ops.cast(self.embedding_weight, self.compute_dtype) if self.cast_weight else self.embedding_weight
        return ops.gather(table, input_ids, 0)


class _RMSNorm(nn.Cell):
    def __init__(self, hidden_size: int, eps: float, param_dtype, compute_type):
        super().__init__()
        self.weight = Parameter(initializer("ones", (hidden_size,), param_dtype), name="weight")
        self.eps = eps
        self.compute_type = compute_type

    def construct(self, x):
        dtype = x.dtype
        h = x if dtype == self.compute_type else ops.cast(x, self.compute_type)
        h = h * ops.rsqrt(ops.mean(ops.square(h), -1, True) + self.eps)
        if dtype != self.compute_type:
            h = ops.cast(h, dtype)
        weight = self.weight if self.weight.dtype == dtype else ops.cast(self.weight, dtype)
        return h * weight


def _swap_halves(x):
    # HF's rotate_half is concat(-x2, x1); the sign lives in the precomputed sin table instead (one op less).
    half = x.shape[-1] // 2
    return ops.concat((x[..., half:], x[..., :half]), -1)


def _cache_slots(start, seq: int, max_len: int):
    """For writing ``seq`` new positions at ``[start, start + seq)`` of a ``max_len`` cache: the source index of
    every cache slot and whether the slot is written. Computed once per step and shared by all layers."""
    idx = ops.arange(0, max_len, 1, dtype=ms.int32) - start
    valid = ops.logical_and(idx >= 0, idx < seq).reshape(1, 1, max_len, 1)
    return ops.clip(idx, 0, seq - 1), valid


def _write_cache(cache, new, src, valid):
    """Return ``cache`` (b, kv, max_len, d) with ``new`` (b, kv, s, d) written where ``valid``.

    A gather + select instead of an in-place scatter keeps every shape static and works in both modes.
    """
    if new.shape[2] == 1:  # decode step: broadcasting replaces the gather
        return ops.where(valid, new, cache)
    return ops.where(valid, ops.gather(new, src, 2), cache)


class _Attention(nn.Cell):
    def __init__(self, config: Llama3Config):
        super().__init__()
        self.n_heads, self.n_kv_heads, self.head_dim = config.num_heads, config.n_kv_heads, config.head_dim
        self.n_rep = self.n_heads // self.n_kv_heads
        self.qkv_concat = config.qkv_concat
        self.scale = self.head_dim**-0.5
        self.softmax_type = config.softmax_compute_type
        self.rotary_type = config.rotary_dtype
        self.dtype = config.compute_dtype
        hidden, pdt, cdt, std = config.hidden_size, config.param_init_type, config.compute_dtype, config.init_method_std
        q_out, kv_out = self.n_heads * self.head_dim, self.n_kv_heads * self.head_dim
        if self.qkv_concat:
            # MindFormers' fused layout: rows grouped per kv head as [q heads of the group | k | v].
            self.w_qkv = _Linear(hidden, q_out + 2 * kv_out, pdt, cdt, std)
        else:
            self.wq = _Linear(hidden, q_out, pdt, cdt, std)
            self.wk = _Linear(hidden, kv_out, pdt, cdt, std)
            self.wv = _Linear(hidden, kv_out, pdt, cdt, std)
        self.wo = _Linear(q_out, hidden, pdt, cdt, std)
        self.qk_matmul = ops.BatchMatMul(transpose_b=True)
        self.pv_matmul = ops.BatchMatMul()

    def _project(self, x, cos, sin):
        """q (b, h, s, d), k and v (b, kv, s, d), rotary embedding applied to q and k (in one pass)."""
        bs, seq = x.shape[0], x.shape[1]
        if self.qkv_concat:
            qkv = self.w_qkv(x).reshape(bs, seq, self.n_kv_heads, (self.n_rep + 2) * self.head_dim)
            q_width = self.n_rep * self.head_dim
            q = qkv[..., :q_width].reshape(bs, seq, self.n_heads, self.head_dim)
            k = qkv[..., q_width : q_width + self.head_dim]
            v = qkv[..., q_width + self.head_dim :]
        else:
            q = self.wq(x).reshape(bs, seq, self.n_heads, self.head_dim)
            k = self.wk(x).reshape(bs, seq, self.n_kv_heads, self.head_dim)
            v = self.wv(x).reshape(bs, seq, self.n_kv_heads, self.head_dim)
        qk = ops.concat((q, k), 2)  # (b, s, h + kv, d): one rotary pass for both
        if self.rotary_type != self.dtype:
            qk = ops.cast(qk, self.rotary_type)
        qk = qk * cos + _swap_halves(qk) * sin
        if self.rotary_type != self.dtype:
            qk = ops.cast(qk, self.dtype)
        q, k = qk[:, :, : self.n_heads], qk[:, :, self.n_heads :]
        return q.transpose(0, 2, 1, 3), k.transpose(0, 2, 1, 3), v.transpose(0, 2, 1, 3)

    def construct(self, x, cos, sin, mask, k_cache=None, v_cache=None, slots=None):
        bs, seq = x.shape[0], x.shape[1]
        q, k, v = self._project(x, cos, sin)
        if k_cache is not None:
            k = _write_cache(k_cache, k, slots[0], slots[1])
            v = _write_cache(v_cache, v, slots[0], slots[1])
        kv_len = k.shape[2]
        # GQA without repeating k/v: fold each kv head's query group into the query-length axis.
        q = q.reshape(bs, self.n_kv_heads, self.n_rep * seq, self.head_dim)
        scores = self.qk_matmul(q, k) * self.scale
        scores = ops.cast(scores, self.softmax_type).reshape(bs, self.n_kv_heads, self.n_rep, seq, kv_len) + mask
        probs = ops.cast(ops.softmax(scores, -1), self.dtype).reshape(bs, self.n_kv_heads, self.n_rep * seq, kv_len)
        out = self.pv_matmul(probs, v).reshape(bs, self.n_heads, seq, self.head_dim)
        out = out.transpose(0, 2, 1, 3).reshape(bs, seq, self.n_heads * self.head_dim)
        return self.wo(out), k, v


class _FeedForward(nn.Cell):
    def __init__(self, config: Llama3Config):
        super().__init__()
        hidden, ffn = config.hidden_size, config.ffn_hidden_size
        pdt, cdt, std = config.param_init_type, config.compute_dtype, config.init_method_std
        self.ffn_concat = config.qkv_concat
        self.ffn = ffn
        if self.ffn_concat:
            # MindFormers' fused layout: gate and up rows interleaved (gate_0, up_0, gate_1, up_1, ...).
            self.w_gate_hidden = _Linear(hidden, 2 * ffn, pdt, cdt, std)
        else:
            self.w1 = _Linear(hidden, ffn, pdt, cdt, std)  # gate
            self.w3 = _Linear(hidden, ffn, pdt, cdt, std)  # up
        self.w2 = _Linear(ffn, hidden, pdt, cdt, std)  # down

    def construct(self, x):
        if self.ffn_concat:
            gate_up = self.w_gate_hidden(x).reshape(x.shape[:-1] + (self.ffn, 2))
            gate, up = gate_up[..., 0], gate_up[..., 1]
        else:
            gate, up = self.w1(x), self.w3(x)
        return self.w2(ops.silu(gate) * up)


class _DecoderLayer(nn.Cell):
    def __init__(self, config: Llama3Config):
        super().__init__()
        self.attention_norm = _RMSNorm(
            config.hidden_size, config.rms_norm_eps, config.param_init_type, config.layernorm_compute_type
        )
        self.attention = _Attention(config)
        self.ffn_norm = _RMSNorm(
            config.hidden_size, config.rms_norm_eps, config.param_init_type, config.layernorm_compute_type
        )
        self.feed_forward = _FeedForward(config)

    def construct(self, x, cos, sin, mask, k_cache=None, v_cache=None, slots=None):
        attn, k, v = self.attention(self.attention_norm(x), cos, sin, mask, k_cache, v_cache, slots)
        h = x + attn
        h = h + self.feed_forward(self.ffn_norm(h))
        if k_cache is None:
            return h
        return h, k, v


class Llama3PreTrainedModel(PreTrainedModel):
    """Base class tying the model to ``Llama3Config`` (MindFormers' ``PreTrainedModel`` machinery)."""

    config_class = Llama3Config
    base_model_prefix = "llama3"


class Llama3Model(Llama3PreTrainedModel):
    """Embedding, decoder layers and final norm; returns hidden states and (with a cache) the updated cache."""

    def __init__(self, config: Llama3Config):
        super().__init__(config, auto_prefix=True)
        self.num_layers = config.num_layers
        self.dtype = config.compute_dtype
        self.rotary_type = config.rotary_dtype
        self.tok_embeddings = _Embedding(
            config.vocab_size,
            config.hidden_size,
            config.embedding_init_type,
            config.compute_dtype,
            config.init_method_std,
        )
        self.layers = nn.CellList([_DecoderLayer(config) for _ in range(config.num_layers)])
        self.norm_out = _RMSNorm(
            config.hidden_size, config.rms_norm_eps, config.param_init_type, config.layernorm_compute_type
        )
        self.inv_freq = Tensor(rope_inv_freq(config.head_dim, config.theta, config.rope_scaling)).reshape(1, -1)
        self.softmax_type = config.softmax_compute_type
        self.mask_min = float(np.finfo(np.float16 if config.softmax_compute_type == ms.float16 else np.float32).min)

    def construct(self, tokens, past_key_values=None, cache_position=None, position_ids=None, attention_mask=None):
        bs, seq = tokens.shape[0], tokens.shape[1]
        start = ops.zeros((), ms.int32) if cache_position is None else ops.cast(cache_position, ms.int32).reshape(())
        q_slot = ops.arange(0, seq, 1, dtype=ms.int32) + start  # where the new tokens sit in the sequence/cache
        if position_ids is None:  # rotary positions = slots; (s, 1, d) tables broadcast over batch and heads
            freqs = ops.cast(q_slot, ms.float32).reshape(-1, 1) * self.inv_freq
            table_shape = (seq, 1, -1)
        else:  # per-row positions (left-padded batches): (b, s, 1, d) tables
            freqs = ops.cast(position_ids, ms.float32).reshape(bs, seq, 1) * self.inv_freq
            table_shape = (bs, seq, 1, -1)
        # sin carries rotate_half's sign: [-sin | +sin].
        cos = ops.cos(freqs)
        sin = ops.sin(freqs)
        cos = ops.cast(ops.concat((cos, cos), -1), self.rotary_type).reshape(table_shape)
        sin = ops.cast(ops.concat((-sin, sin), -1), self.rotary_type).reshape(table_shape)
        kv_len = seq if past_key_values is None else past_key_values[0].shape[2]
        # Causal mask from slots (no (max_len, max_len) table): key j is visible to query i iff j <= slot(i), and,
        # with an attention_mask, iff key j is not padding. Additive like HF's (finfo.min where hidden), computed
        # once per step for all layers.
        allowed = ops.arange(0, kv_len, 1, dtype=ms.int32).reshape(1, -1) <= q_slot.reshape(-1, 1)
        if attention_mask is not None:
            keys = ops.cast(attention_mask[:, :kv_len], ms.int32) != 0
            allowed = ops.logical_and(allowed.reshape(1, seq, kv_len), keys.reshape(bs, 1, kv_len))
            allowed = allowed.reshape(bs, 1, 1, seq, kv_len)
        mask = ops.cast(ops.cast(ops.logical_not(allowed), ms.float32) * self.mask_min, self.softmax_type)
        h = ops.cast(self.tok_embeddings(tokens), self.dtype)
        new_cache = ()
        slots = None if past_key_values is None else _cache_slots(start, seq, kv_len)
        for i in range(self.num_layers):
            if past_key_values is None:
                h = self.layers[i](h, cos, sin, mask)
            else:
                h, k, v = self.layers[i](h, cos, sin, mask, past_key_values[2 * i], past_key_values[2 * i + 1], slots)
                new_cache = new_cache + (k, v)
        return self.norm_out(h), new_cache


class Llama3ForCausalLM(Llama3PreTrainedModel):
    r"""Llama 3 / 3.1 causal LM (MindFormers ``PreTrainedModel``), CPU- and graph-mode-capable.

    ``construct(input_ids, labels=None, ..., past_key_values=None, cache_position=None, return_last_logit=False,
    logit_index=None)``:

    - ``labels`` given → scalar fp32 loss, MindFormers-style shift (predict ``labels[:, 1:]`` from
      ``input_ids[:, :-1]``), positions whose label equals ``config.ignore_token_id`` (-100) are ignored;
      ``loss_mask`` (aligned with ``input_ids``) further masks positions.
    - otherwise → fp32 logits ``(batch, seq, vocab)``; only ``(batch, 1, vocab)`` with ``return_last_logit`` or
      ``logit_index`` (int32 Tensor of shape (1,): the one position to project, e.g. the last real token of a
      right-padded prefill, so prompts padded to one length share a compiled graph);
      with ``past_key_values`` (a tuple ``(k_0, v_0, k_1, v_1, ...)`` of ``(batch, n_kv_heads, max_len,
      head_dim)`` buffers) and ``cache_position`` (scalar int32 Tensor: slot of ``input_ids[:, 0]``) →
      ``(logits, updated_past_key_values)``.
    - ``attention_mask`` (HF meaning: ``(batch, kv_len)`` 1 = token, 0 = padding; ``kv_len`` = cache length with a
      cache, else ``seq``) and ``position_ids`` (``(batch, seq)`` rotary positions) serve left-padded batches;
      both ``None`` = one unpadded length per batch (positions = slots).

    The other positional arguments mirror MindFormers' ``LlamaForCausalLM.construct`` so its callers line up;
    they are accepted and ignored.
    """

    def __init__(self, config: Llama3Config):
        super().__init__(config, auto_prefix=True)
        self.config = config
        self.ignore_token_id = config.ignore_token_id
        self.vocab_size = config.vocab_size
        self.model = Llama3Model(config)
        self.lm_head = _Linear(
            config.hidden_size, config.vocab_size, config.param_init_type, config.compute_dtype, config.init_method_std
        )
        if config.tie_word_embeddings:
            self.lm_head.weight = self.model.tok_embeddings.embedding_weight
            self.lm_head.cast_weight = config.embedding_init_type != config.compute_dtype
        self.load_checkpoint(config)

    def construct(
        self,
        input_ids,
        labels=None,
        input_position=None,
        position_ids=None,
        attention_mask=None,
        input_embeds=None,
        init_reset=None,
        batch_valid_length=None,
        batch_index=None,
        zactivate_len=None,
        block_tables=None,
        slot_mapping=None,
        prefix_keys_values=None,
        llm_boost_inputs=None,
        q_seq_lens=None,
        loss_mask=None,
        gather_index=None,
        seq_range=None,
        actual_seq_len=None,
        past_key_values=None,
        cache_position=None,
        return_last_logit=False,
        logit_index=None,
    ):
        """Loss (with ``labels``), logits, or ``(logits, past_key_values)`` (with a cache); see class docstring."""
        if labels is not None:
            return self._loss(input_ids, labels, loss_mask)
        hidden, new_cache = self.model(input_ids, past_key_values, cache_position, position_ids, attention_mask)
        if logit_index is not None:
            hidden = ops.gather(hidden, ops.cast(logit_index, ms.int32).reshape(1), 1)
        elif return_last_logit:
            hidden = hidden[:, -1:, :]
        logits = ops.cast(self.lm_head(hidden), ms.float32)
        if past_key_values is None:
            return logits
        return logits, new_cache

    def _loss(self, input_ids, labels, loss_mask=None):
        seq = input_ids.shape[1]
        hidden, _ = self.model(input_ids[:, : seq - 1])
        logits = ops.cast(self.lm_head(hidden), ms.float32)
        targets = ops.cast(labels[:, 1:], ms.int32)
        valid = targets != self.ignore_token_id
        weight = ops.cast(valid, ms.float32)
        if loss_mask is not None:
            weight = weight * ops.cast(loss_mask[:, : seq - 1], ms.float32)
        log_probs = ops.log_softmax(logits, -1)
        picked = ops.gather_elements(log_probs, 2, ops.where(valid, targets, 0).expand_dims(-1)).squeeze(-1)
        return -(picked * weight).sum() / ops.maximum(weight.sum(), 1.0)

    def init_kv_cache(self, batch_size: int, max_len: int) -> tuple:
        """Zeroed static KV buffers ``(k_0, v_0, ...)``, each ``(batch, n_kv_heads, max_len, head_dim)``."""
        shape = (batch_size, self.config.n_kv_heads, max_len, self.config.head_dim)
        # mutable: graph mode then treats the buffers as inputs, not as constants to recompile for.
        return ms.mutable(tuple(ops.zeros(shape, self.config.compute_dtype) for _ in range(2 * self.config.num_layers)))

    def prepare_inputs_for_generation(self, input_ids, **kwargs):
        """Model inputs for one generation step: with a cache only the tokens from ``cache_position`` on.

        Keyword options: ``past_key_values``, ``cache_position`` (int), ``return_last_logit`` (bool),
        ``logit_index`` (int: the only position whose logits are computed), ``attention_mask`` (numpy
        ``(batch, kv_len)``, 1 = token, 0 = padding; rotary positions are derived from it as HF does).
        """
        past_key_values = kwargs.get("past_key_values")
        cache_position = int(kwargs.get("cache_position", 0) or 0)
        ids = np.asarray(input_ids, dtype=np.int32)
        if past_key_values is not None:
            ids = ids[:, cache_position:]
        inputs = {"input_ids": Tensor(ids, ms.int32)}
        if past_key_values is not None:
            inputs["past_key_values"] = ms.mutable(tuple(past_key_values))
            inputs["cache_position"] = Tensor(cache_position, ms.int32)
        mask = kwargs.get("attention_mask")
        if mask is not None:
            mask = np.asarray(mask, dtype=np.int32)
            positions = np.maximum(np.cumsum(mask, axis=1) - 1, 0)  # HF: position = number of real tokens before
            start = cache_position if past_key_values is not None else 0
            inputs["attention_mask"] = Tensor(mask, ms.int32)
            inputs["position_ids"] = Tensor(positions[:, start : start + ids.shape[1]], ms.int32)
        if kwargs.get("logit_index") is not None:
            inputs["logit_index"] = Tensor([int(kwargs["logit_index"])], ms.int32)
        elif kwargs.get("return_last_logit"):
            inputs["return_last_logit"] = True
        return inputs

    def generate(self, input_ids, generation_config=None, logits_processor=None, streamer=None, seed=None, **kwargs):
        """MindFormers' ``generate()`` interface served by ``mf_ext.generation.generate`` (works on CPU too).

        Takes MindFormers' inputs (id lists, right-padded with ``pad_token_id`` or ragged) and generation options
        (``max_new_tokens``/``max_length``, ``do_sample``, ``top_k``, ``top_p``, ``temperature``,
        ``eos_token_id``, or a ``GenerationConfig``); returns MindFormers' output: one int32 array per prompt
        holding the prompt and its new tokens up to and including the first eos.
        """
        from mindformers.generation import GenerationConfig

        from mf_ext.generation import generate as _generate

        if logits_processor or streamer is not None:
            raise ValueError("Llama3ForCausalLM.generate: logits_processor and streamer are not supported")
        config = copy.deepcopy(generation_config or GenerationConfig.from_model_config(self.config))
        config.update(**kwargs)
        if getattr(config, "repetition_penalty", 1.0) not in (None, 1.0):
            raise ValueError(
                f"Llama3ForCausalLM.generate: repetition_penalty {config.repetition_penalty!r} is not "
                "supported (expected 1.0)"
            )
        pad = config.pad_token_id if config.pad_token_id is not None else self.config.pad_token_id
        rows = [list(np.asarray(row).reshape(-1)) for row in (input_ids if np.ndim(input_ids[0]) > 0 else [input_ids])]
        if pad is not None and len({len(row) for row in rows}) == 1:  # MindFormers right-pads with pad_token_id
            rows = [row[: max((i + 1 for i, t in enumerate(row) if t != pad), default=len(row))] for row in rows]
        longest = max(len(row) for row in rows)
        max_new = config.max_new_tokens if config.max_new_tokens is not None else config.max_length - longest
        eos = config.eos_token_id if config.eos_token_id is not None else self.config.eos_token_id
        out = _generate(
            self,
            rows,
            max(int(max_new), 0),
            do_sample=bool(config.do_sample),
            top_k=int(config.top_k or 0),
            top_p=float(config.top_p or 1.0),
            temperature=float(config.temperature or 1.0),
            eos_token_id=eos,
            seed=seed,
        )
        eos_set = set(eos) if isinstance(eos, (list, tuple)) else ({eos} if eos is not None else set())
        results = []
        for row, prompt in zip(out, rows, strict=True):
            new = list(row[longest:])
            stop = next((i + 1 for i, t in enumerate(new) if int(t) in eos_set), len(new))
            results.append(np.asarray(list(prompt) + new[:stop], dtype=np.int32))
        if getattr(config, "return_dict_in_generate", False):  # what MindFormers' text_generation pipeline asks for
            from mindformers.generation.utils import GenerateOutput

            return GenerateOutput(sequences=results, scores=None, logits=None)
        return results

    def prepare_inputs_for_predict_layout(self, input_ids, **kwargs):
        """Positional inputs MindFormers compiles the predict graph with (checkpoint transform / layout)."""
        input_ids = Tensor(np.asarray(input_ids, dtype=np.int32), ms.int32)
        labels = Tensor(kwargs["labels"], ms.int32) if "labels" in kwargs else None
        return input_ids, labels

    def to_embeddings(self, tokens):
        """Token embeddings (MindFormers' hook used by multimodal wrappers)."""
        return self.model.tok_embeddings(tokens)
