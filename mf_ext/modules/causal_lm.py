"""``CausalLM``: the MindFormers ``PreTrainedModel`` every decoder-only family subclasses.

A family supplies its config class and a ``decoder_spec(config) -> DecoderSpec``; it gets forward with loss or
logits, the static KV cache, MindFormers' generation hooks (``prepare_inputs_for_generation``,
``prepare_inputs_for_predict_layout``, ``generate()`` served by ``mf_ext.generation`` on CPU and Ascend) and
``to_embeddings``. Parameter names default to MindFormers' Llama names (``model.tok_embeddings.embedding_weight``,
``model.layers.{i}.attention.wq.weight``, ``model.norm_out.weight``, ``lm_head.weight``); ``PARAM_RENAMES`` (regex,
replacement) pairs give a family its own layout's names. A minimal family::

    class MyForCausalLM(CausalLM):
        config_class = MyConfig

        @classmethod
        def decoder_spec(cls, config):
            return DecoderSpec(hidden_size=config.hidden_size, ..., rope=RopeConfig.from_hf(...))
"""

from __future__ import annotations

import copy
import re

import mindspore as ms
import numpy as np
from mindformers.models.modeling_utils import PreTrainedModel
from mindspore import Tensor, nn, ops

from .decoder import Decoder, DecoderLayer, DecoderSpec, lm_head

__all__ = ["CausalLM"]


class CausalLM(PreTrainedModel):
    r"""Decoder-only causal LM (MindFormers ``PreTrainedModel``), CPU- and graph-mode-capable.

    ``construct(input_ids, labels=None, ..., past_key_values=None, cache_position=None, return_last_logit=False,
    logit_index=None, rope_len=None)``:

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
      cache, else ``seq``) and ``position_ids`` (``(batch, seq)`` positions) serve left-padded batches;
      both ``None`` = one unpadded length per batch (positions = slots).
    - ``rope_len`` (int32 scalar): dynamic NTK's current length (``prepare_inputs_for_generation`` sets it).

    The other positional arguments mirror MindFormers' ``LlamaForCausalLM.construct`` so its callers line up;
    they are accepted and ignored.
    """

    base_model_prefix = "model"
    #: (regex, replacement) pairs applied in order to every parameter name after the model is built.
    PARAM_RENAMES: tuple[tuple[str, str], ...] = ()
    #: the decoder layer class (a subclass of ``DecoderLayer`` for a family with another block layout).
    layer_cls: type = DecoderLayer
    #: the decoder stack class (a subclass of ``Decoder`` for a family with another embedding or final stage).
    decoder_cls: type = Decoder

    @classmethod
    def decoder_spec(cls, config) -> DecoderSpec:
        """The ``DecoderSpec`` for ``config`` (families implement this)."""
        raise NotImplementedError(f"{cls.__name__}.decoder_spec")

    def __init__(self, config):
        super().__init__(config, auto_prefix=True)
        self.config = config
        spec = self.decoder_spec(config)
        self.spec = spec
        self.ignore_token_id = getattr(config, "ignore_token_id", -100)
        self.vocab_size = spec.vocab_size
        self.dynamic_rope = spec.rope is not None and spec.rope.kind == "dynamic"
        self.model = self.decoder_cls(spec, self.layer_cls)
        self.lm_head = self.build_lm_head(spec)
        if spec.tie_word_embeddings:
            self.lm_head.weight = self.model.tok_embeddings.embedding_weight
            emb_dtype = spec.param_dtype if spec.embedding_dtype is None else spec.embedding_dtype
            self.lm_head.cast_weight = emb_dtype != spec.compute_dtype
        self._rename_parameters()
        self.load_checkpoint(config)

    def build_lm_head(self, spec: DecoderSpec) -> nn.Cell:
        """The output projection (a family with another head, e.g. row-normalised, overrides this); its weight
        must be ``weight`` of shape ``(vocab, hidden)`` for ``tie_word_embeddings``."""
        return lm_head(spec)

    def _rename_parameters(self) -> None:
        if not self.PARAM_RENAMES:
            return
        rules = [(re.compile(pattern), repl) for pattern, repl in self.PARAM_RENAMES]
        seen = set()
        for param in self.get_parameters():
            if id(param) in seen:
                continue
            seen.add(id(param))
            name = param.name
            for pattern, repl in rules:
                name = pattern.sub(repl, name)
            param.name = name

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
        rope_len=None,
    ):
        """Loss (with ``labels``), logits, or ``(logits, past_key_values)`` (with a cache); see class docstring."""
        if labels is not None:
            return self._loss(input_ids, labels, loss_mask)
        hidden, new_cache = self.model(
            input_ids, past_key_values, cache_position, position_ids, attention_mask, rope_len
        )
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
        return self._cross_entropy(hidden, input_ids, labels, loss_mask)

    def _cross_entropy(self, hidden, input_ids, labels, loss_mask):
        """Mean next-token cross-entropy of ``hidden`` (the decoder's output for ``input_ids[:, :-1]``)."""
        seq = input_ids.shape[1]
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
        spec = self.spec
        k_dim, v_dim = spec.cache_head_dims or (spec.dim_per_head, spec.dim_per_head)
        k_shape, v_shape = (batch_size, spec.kv_heads, max_len, k_dim), (batch_size, spec.kv_heads, max_len, v_dim)
        # mutable: graph mode then treats the buffers as inputs, not as constants to recompile for.
        return ms.mutable(
            tuple(ops.zeros(k_shape if i % 2 == 0 else v_shape, spec.compute_dtype) for i in range(2 * spec.num_layers))
        )

    def prepare_inputs_for_generation(self, input_ids, **kwargs):
        """Model inputs for one generation step: with a cache only the tokens from ``cache_position`` on.

        Keyword options: ``past_key_values``, ``cache_position`` (int), ``return_last_logit`` (bool),
        ``logit_index`` (int: the only position whose logits are computed), ``attention_mask`` (numpy
        ``(batch, kv_len)``, 1 = token, 0 = padding; positions are derived from it as HF does), ``valid_length``
        (int: real tokens so far including this call's; sets dynamic NTK's ``rope_len`` when the input is
        right-padded).
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
        positions = None
        if mask is not None:
            mask = np.asarray(mask, dtype=np.int32)
            positions = np.maximum(np.cumsum(mask, axis=1) - 1, 0)  # HF: position = number of real tokens before
            start = cache_position if past_key_values is not None else 0
            inputs["attention_mask"] = Tensor(mask, ms.int32)
            inputs["position_ids"] = Tensor(positions[:, start : start + ids.shape[1]], ms.int32)
        if self.dynamic_rope and kwargs.get("valid_length") is not None:
            valid = int(kwargs["valid_length"])
            # HF: max(position_ids) + 1 over the real tokens seen so far.
            length = valid if positions is None else int(positions[:, :valid].max()) + 1
            inputs["rope_len"] = Tensor(length, ms.int32)
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

        name = type(self).__name__
        if logits_processor or streamer is not None:
            raise ValueError(f"{name}.generate: logits_processor and streamer are not supported")
        config = copy.deepcopy(generation_config or GenerationConfig.from_model_config(self.config))
        config.update(**kwargs)
        if getattr(config, "repetition_penalty", 1.0) not in (None, 1.0):
            raise ValueError(
                f"{name}.generate: repetition_penalty {config.repetition_penalty!r} is not supported (expected 1.0)"
            )
        pad = config.pad_token_id if config.pad_token_id is not None else getattr(self.config, "pad_token_id", None)
        rows = [list(np.asarray(row).reshape(-1)) for row in (input_ids if np.ndim(input_ids[0]) > 0 else [input_ids])]
        if pad is not None and len({len(row) for row in rows}) == 1:  # MindFormers right-pads with pad_token_id
            rows = [row[: max((i + 1 for i, t in enumerate(row) if t != pad), default=len(row))] for row in rows]
        longest = max(len(row) for row in rows)
        max_new = config.max_new_tokens if config.max_new_tokens is not None else config.max_length - longest
        eos = config.eos_token_id if config.eos_token_id is not None else getattr(self.config, "eos_token_id", None)
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
