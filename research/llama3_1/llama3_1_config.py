"""Llama 3.1 model config: MindFormers' legacy ``LlamaConfig`` field names plus Llama 3.1 ``rope_scaling``.

Registered into ``MindFormerRegister`` (module type CONFIG) by ``auto_register: llama3_1_config.Llama3Config``;
importing this file registers nothing by itself.
"""

from __future__ import annotations

from typing import Any

from mindformers.models.configuration_utils import PretrainedConfig
from mindformers.models.utils import convert_mstype
from mindformers.modules.transformer.transformer import TransformerOpParallelConfig, default_transformer_config

from . import hf_config as _hf
from .hf_config import LLAMA3_ROPE_KEYS as _LLAMA3_ROPE_KEYS
from .hf_config import normalize_rope_scaling as _normalize_rope_scaling

__all__ = ["Llama3Config"]

_DTYPE_NAMES = ("float32", "float16", "bfloat16")


class Llama3Config(PretrainedConfig):
    """Llama 3 / 3.1 architecture config (MindFormers legacy-style ``PretrainedConfig``).

    Field names follow MindFormers' ``LlamaConfig`` (``num_layers``, ``num_heads``, ``n_kv_heads``, ``theta``,
    ``max_position_embedding`` ...) so YAMLs written for MindFormers' Llama work unchanged. Additions:

    Args:
        rope_scaling: ``None`` or ``{"type": "llama3", "factor", "low_freq_factor", "high_freq_factor",
            "original_max_position_embeddings"}`` (Llama 3.1), or ``{"type": "linear", "factor"}``.
        head_dim: defaults to ``hidden_size // num_heads``.

    Use :meth:`from_hf_config` to build one from a HuggingFace ``config.json`` dict and :meth:`to_hf_config`
    for the way back.
    """

    model_type = "llama3"

    # Fields that describe the architecture (what from_hf_config takes from config.json): see hf_config.py.
    HF_ARCHITECTURE_KEYS = _hf.ARCH_KEYS

    def __init__(
        self,
        batch_size: int = 1,
        seq_length: int = 2048,
        hidden_size: int = 4096,
        num_layers: int = 32,
        num_heads: int = 32,
        n_kv_heads: int | None = None,
        head_dim: int | None = None,
        max_position_embedding: int | None = None,
        intermediate_size: int | None = None,
        vocab_size: int = 128256,
        multiple_of: int = 256,
        ffn_dim_multiplier: float | None = None,
        rms_norm_eps: float = 1e-5,
        bos_token_id: int = 128000,
        eos_token_id: int | list[int] = 128001,
        pad_token_id: int | None = None,
        ignore_token_id: int = -100,
        theta: float = 500000.0,
        rope_scaling: dict | None = None,
        compute_dtype: str = "float32",
        layernorm_compute_type: str = "float32",
        softmax_compute_type: str = "float32",
        rotary_dtype: str = "float32",
        param_init_type: str = "float32",
        embedding_init_type: str | None = None,
        qkv_concat: bool = False,
        tie_word_embeddings: bool = False,
        use_past: bool = False,
        use_flash_attention: bool = False,
        is_dynamic: bool = False,
        parallel_config: dict | TransformerOpParallelConfig = default_transformer_config,
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
        if isinstance(parallel_config, dict):
            parallel_config = TransformerOpParallelConfig(**parallel_config)
        for name, value in (
            ("hidden_size", hidden_size),
            ("num_layers", num_layers),
            ("num_heads", num_heads),
            ("vocab_size", vocab_size),
            ("seq_length", seq_length),
            ("batch_size", batch_size),
        ):
            if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
                raise ValueError(f"Llama3Config.{name}: expected a positive int, got {value!r}")
        n_kv_heads = num_heads if n_kv_heads is None else n_kv_heads
        if not isinstance(n_kv_heads, int) or n_kv_heads <= 0 or num_heads % n_kv_heads:
            raise ValueError(
                f"Llama3Config.n_kv_heads: expected a positive divisor of num_heads={num_heads}, got {n_kv_heads!r}"
            )
        if head_dim is None:
            if hidden_size % num_heads:
                raise ValueError(
                    f"Llama3Config.hidden_size: {hidden_size!r} is not divisible by "
                    f"num_heads={num_heads!r} (set head_dim explicitly)"
                )
            head_dim = hidden_size // num_heads
        if head_dim % 2:
            raise ValueError(f"Llama3Config.head_dim: rotary embedding needs an even head_dim, got {head_dim!r}")
        self.batch_size = batch_size
        self.seq_length = seq_length
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.num_heads = num_heads
        self.n_kv_heads = n_kv_heads
        self.head_dim = head_dim
        self.max_position_embedding = max_position_embedding if max_position_embedding else seq_length
        self.intermediate_size = intermediate_size
        self.vocab_size = vocab_size
        self.multiple_of = multiple_of
        self.ffn_dim_multiplier = ffn_dim_multiplier
        self.rms_norm_eps = rms_norm_eps
        self.bos_token_id = bos_token_id
        self.eos_token_id = eos_token_id
        self.pad_token_id = pad_token_id
        self.ignore_token_id = ignore_token_id
        self.theta = float(theta)
        self.rope_scaling = _normalize_rope_scaling(rope_scaling, "Llama3Config.rope_scaling")
        for name, value in (
            ("compute_dtype", compute_dtype),
            ("layernorm_compute_type", layernorm_compute_type),
            ("softmax_compute_type", softmax_compute_type),
            ("rotary_dtype", rotary_dtype),
            ("param_init_type", param_init_type),
        ):
            if isinstance(value, str) and value.lower() not in _DTYPE_NAMES:
                raise ValueError(f"Llama3Config.{name}: expected one of {_DTYPE_NAMES}, got {value!r}")
        self.compute_dtype = convert_mstype(compute_dtype)
        self.layernorm_compute_type = convert_mstype(layernorm_compute_type)
        self.softmax_compute_type = convert_mstype(softmax_compute_type)
        self.rotary_dtype = convert_mstype(rotary_dtype)
        self.param_init_type = convert_mstype(param_init_type)
        self.embedding_init_type = convert_mstype(embedding_init_type) if embedding_init_type else self.param_init_type
        self.qkv_concat = bool(qkv_concat)
        self.tie_word_embeddings = bool(tie_word_embeddings)
        self.use_past = use_past
        self.use_flash_attention = use_flash_attention
        self.is_dynamic = is_dynamic
        self.parallel_config = parallel_config
        self.init_method_std = init_method_std
        self.checkpoint_name_or_path = checkpoint_name_or_path
        self.repetition_penalty = repetition_penalty
        self.max_decode_length = max_decode_length
        self.top_k = top_k
        self.top_p = top_p
        self.do_sample = do_sample

    @property
    def ffn_hidden_size(self) -> int:
        """SwiGLU hidden size: ``intermediate_size`` if set, else MindFormers' ``multiple_of`` rule."""
        if self.intermediate_size is not None:
            return int(self.intermediate_size)
        hidden = 4 * self.hidden_size
        if self.ffn_dim_multiplier is not None:
            hidden = int((self.ffn_dim_multiplier + 0.01) * hidden)
        hidden = int(2 * hidden / 3)
        multiple_of = self.multiple_of or 256
        return multiple_of * ((hidden + multiple_of - 1) // multiple_of)

    @classmethod
    def from_hf_config(cls, hf_config: dict, **overrides: Any) -> Llama3Config:
        """Build a config from a HuggingFace Llama ``config.json`` dict; ``overrides`` win over mapped values.

        Raises ``ValueError`` naming the HF key for architectures this model does not compute (biases, a non-SiLU
        activation, an unsupported ``rope_scaling``). The mapping itself is ``hf_config.to_model_config``.
        """
        kwargs = _hf.to_model_config(hf_config)
        kwargs.update(overrides)
        return cls(**kwargs)

    def to_mindformers_llama_kwargs(self) -> dict:
        """Keyword arguments for MindFormers' built-in ``LlamaConfig`` describing the same network (CPU-safe).

        Llama 3.1 ``rope_scaling`` becomes MindFormers' ``extend_method: LLAMA3`` + ``scaling_factor``.
        """
        extend, scaling = "None", 1.0
        if self.rope_scaling is not None:
            params = {k: v for k, v in self.rope_scaling.items() if k != "type"}
            if self.rope_scaling["type"] == "llama3":
                extend = "LLAMA3"
                scaling = {
                    k: (float(v) if k != "original_max_position_embeddings" else int(v))
                    for k, v in params.items()
                    if k in _LLAMA3_ROPE_KEYS
                }
            else:
                extend, scaling = "linear", {"factor": float(params["factor"])}
        dtype = {convert_mstype(n): n for n in _DTYPE_NAMES}
        return {
            "batch_size": self.batch_size,
            "seq_length": self.seq_length,
            "hidden_size": self.hidden_size,
            "num_layers": self.num_layers,
            "num_heads": self.num_heads,
            "n_kv_heads": self.n_kv_heads,
            "intermediate_size": self.ffn_hidden_size,
            "vocab_size": self.vocab_size,
            "rms_norm_eps": self.rms_norm_eps,
            "theta": self.theta,
            "max_position_embedding": self.max_position_embedding,
            "tie_word_embeddings": self.tie_word_embeddings,
            "qkv_concat": self.qkv_concat,
            "extend_method": extend,
            "scaling_factor": scaling,
            "compute_dtype": dtype[self.compute_dtype],
            "param_init_type": dtype[self.param_init_type],
            "layernorm_compute_type": dtype[self.layernorm_compute_type],
            "softmax_compute_type": dtype[self.softmax_compute_type],
            "rotary_dtype": dtype[self.rotary_dtype],
            "embedding_init_type": dtype[self.embedding_init_type],
            # What MindFormers' Llama needs to run on CPU (its fused kernels are Ascend-only).
            "fused_rms_norm": False,
            "use_rope_slice": True,
            "use_flash_attention": False,
            "use_past": False,
            "pad_token_id": self.pad_token_id if self.pad_token_id is not None else 0,
            "ignore_token_id": self.ignore_token_id,
        }

    def to_hf_config(self) -> dict:
        """Return the HuggingFace ``LlamaConfig`` dict (``config.json`` content) for this architecture."""
        dtype_name = {v: k for k, v in ((n, convert_mstype(n)) for n in _DTYPE_NAMES)}[self.param_init_type]
        mc = {key: getattr(self, key) for key in _hf.ARCH_KEYS}
        mc.update(intermediate_size=self.ffn_hidden_size, init_method_std=self.init_method_std)
        return {**_hf.to_hf_config(mc), "torch_dtype": dtype_name, "use_cache": True}
