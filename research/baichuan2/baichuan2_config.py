"""Baichuan2 model config: MindFormers' ``LlamaConfig`` field names plus the position encoding (rotary or ALiBi).

Registered into ``MindFormerRegister`` (module type CONFIG) by ``auto_register: baichuan2_config.Baichuan2Config``.
"""

from __future__ import annotations

from typing import Any

from mindformers.models.configuration_utils import PretrainedConfig
from mindformers.models.utils import convert_mstype

from . import hf_config as _hf
from .hf_config import ARCH_KEYS  # this form also makes MindFormers' auto_register copy hf_config.py beside it

__all__ = ["Baichuan2Config"]

_DTYPE_NAMES = ("float32", "float16", "bfloat16")


class Baichuan2Config(PretrainedConfig):
    """Baichuan2 architecture config (MindFormers legacy-style ``PretrainedConfig``).

    Field names follow MindFormers' ``LlamaConfig`` / Baichuan2 YAMLs (``num_layers``, ``num_heads``, ``theta``,
    ``max_position_embedding``, ``qkv_concat``). Addition: ``position_embedding`` -- ``"rope"`` (Baichuan2-7B) or
    ``"alibi"`` (Baichuan2-13B). Multi-head attention only; the output head is always Baichuan2's NormHead.
    ``qkv_concat`` keeps ``W_pack`` whole as ``attention.w_qkv`` (``[q; k; v]``).
    """

    model_type = "baichuan2"
    HF_ARCHITECTURE_KEYS = ARCH_KEYS

    def __init__(
        self,
        batch_size: int = 1,
        seq_length: int = 2048,
        hidden_size: int = 4096,
        num_layers: int = 32,
        num_heads: int = 32,
        intermediate_size: int = 11008,
        vocab_size: int = 125696,
        rms_norm_eps: float = 1e-6,
        position_embedding: str = "rope",
        theta: float = 10000.0,
        max_position_embedding: int | None = None,
        tie_word_embeddings: bool = False,
        bos_token_id: int = 1,
        eos_token_id: int | list[int] = 2,
        pad_token_id: int | None = 0,
        ignore_token_id: int = -100,
        compute_dtype: str = "float32",
        layernorm_compute_type: str = "float32",
        softmax_compute_type: str = "float32",
        rotary_dtype: str = "float32",
        param_init_type: str = "float32",
        embedding_init_type: str | None = None,
        qkv_concat: bool = False,
        use_past: bool = False,
        use_flash_attention: bool = False,
        init_method_std: float = 0.02,
        checkpoint_name_or_path: str = "",
        repetition_penalty: float = 1.0,
        max_decode_length: int = 1024,
        top_k: int = 0,
        top_p: float = 1.0,
        do_sample: bool = False,
        **kwargs: Any,
    ):
        super().__init__(**kwargs)
        for name, value in (("hidden_size", hidden_size), ("num_layers", num_layers), ("num_heads", num_heads),
                            ("vocab_size", vocab_size), ("intermediate_size", intermediate_size),
                            ("seq_length", seq_length), ("batch_size", batch_size)):  # fmt: skip
            if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
                raise ValueError(f"Baichuan2Config.{name}: expected a positive int, got {value!r}")
        if hidden_size % num_heads or (hidden_size // num_heads) % 2:
            raise ValueError(
                f"Baichuan2Config.hidden_size: {hidden_size!r} must split into num_heads={num_heads} heads of an "
                "even size"
            )
        if position_embedding not in _hf.POSITION_EMBEDDINGS:
            raise ValueError(
                f"Baichuan2Config.position_embedding: expected one of {_hf.POSITION_EMBEDDINGS}, got {position_embedding!r}"
            )
        self.batch_size = batch_size
        self.seq_length = seq_length
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.num_heads = num_heads
        self.head_dim = hidden_size // num_heads
        self.intermediate_size = intermediate_size
        self.vocab_size = vocab_size
        self.rms_norm_eps = rms_norm_eps
        self.position_embedding = position_embedding
        self.theta = float(theta)
        self.max_position_embedding = max_position_embedding if max_position_embedding else seq_length
        self.tie_word_embeddings = bool(tie_word_embeddings)
        self.bos_token_id = bos_token_id
        self.eos_token_id = eos_token_id
        self.pad_token_id = pad_token_id
        self.ignore_token_id = ignore_token_id
        for name, value in (("compute_dtype", compute_dtype), ("layernorm_compute_type", layernorm_compute_type),
                            ("softmax_compute_type", softmax_compute_type), ("rotary_dtype", rotary_dtype),
                            ("param_init_type", param_init_type)):  # fmt: skip
            if isinstance(value, str) and value.lower() not in _DTYPE_NAMES:
                raise ValueError(f"Baichuan2Config.{name}: expected one of {_DTYPE_NAMES}, got {value!r}")
        self.compute_dtype = convert_mstype(compute_dtype)
        self.layernorm_compute_type = convert_mstype(layernorm_compute_type)
        self.softmax_compute_type = convert_mstype(softmax_compute_type)
        self.rotary_dtype = convert_mstype(rotary_dtype)
        self.param_init_type = convert_mstype(param_init_type)
        self.embedding_init_type = convert_mstype(embedding_init_type) if embedding_init_type else self.param_init_type
        self.qkv_concat = bool(qkv_concat)
        self.use_past = use_past
        self.use_flash_attention = use_flash_attention
        self.init_method_std = init_method_std
        self.checkpoint_name_or_path = checkpoint_name_or_path
        self.repetition_penalty = repetition_penalty
        self.max_decode_length = max_decode_length
        self.top_k = top_k
        self.top_p = top_p
        self.do_sample = do_sample

    @classmethod
    def from_hf_config(cls, hf_config: dict, **overrides: Any) -> Baichuan2Config:
        """A config from a Baichuan2 ``config.json`` dict (``hf_config.to_model_config``)."""
        kwargs = _hf.to_model_config(hf_config)
        kwargs.update(overrides)
        return cls(**kwargs)

    def to_hf_config(self) -> dict:
        """The ``config.json`` content for this architecture (``hf_config.to_hf_config``)."""
        dtype_name = {convert_mstype(n): n for n in _DTYPE_NAMES}[self.param_init_type]
        mc = {key: getattr(self, key) for key in _hf.ARCH_KEYS}
        mc["init_method_std"] = self.init_method_std
        return {**_hf.to_hf_config(mc), "torch_dtype": dtype_name, "use_cache": True}
