"""GPT2 model config (MindFormers ``PretrainedConfig``), MindFormers' GPT2 field names.

Registered into ``MindFormerRegister`` (module type CONFIG) by ``auto_register: gpt2_config.GPT2LMConfig`` (the
class name differs from MindFormers' own ``GPT2Config``: MindFormers' registry is keyed by class name). The HF
``config.json`` mapping is ``hf_config.py``.
"""

from __future__ import annotations

from typing import Any

from mindformers.models.configuration_utils import PretrainedConfig
from mindformers.models.utils import convert_mstype
from mindformers.modules.transformer.transformer import TransformerOpParallelConfig, default_transformer_config

# 'from .hf_config import' (MindFormers' auto_register copies only such relative imports)
from .hf_config import ACTIVATIONS, ARCH_KEYS
from .hf_config import to_hf_config as _to_hf_config
from .hf_config import to_model_config as _to_model_config

__all__ = ["GPT2LMConfig"]

_DTYPE_NAMES = ("float32", "float16", "bfloat16")


class GPT2LMConfig(PretrainedConfig):
    """GPT2 architecture: LayerNorm pre-norm blocks, MHA with biases, learned positions (``max_position_embedding``
    of them), GELU MLP (``hidden_act``, ``intermediate_size`` default ``4 * hidden_size``), tied head by default."""

    model_type = "gpt2_lm"

    HF_ARCHITECTURE_KEYS = ARCH_KEYS

    def __init__(
        self,
        batch_size: int = 1,
        seq_length: int = 1024,
        hidden_size: int = 768,
        num_layers: int = 12,
        num_heads: int = 12,
        intermediate_size: int | None = None,
        vocab_size: int = 50257,
        max_position_embedding: int | None = None,
        layernorm_epsilon: float = 1e-5,
        hidden_act: str = "gelu_new",
        tie_word_embeddings: bool = True,
        bos_token_id: int = 50256,
        eos_token_id: int | list[int] = 50256,
        pad_token_id: int | None = None,
        ignore_token_id: int = -100,
        compute_dtype: str = "float32",
        layernorm_compute_type: str = "float32",
        softmax_compute_type: str = "float32",
        param_init_type: str = "float32",
        embedding_init_type: str | None = None,
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
                raise ValueError(f"GPT2LMConfig.{name}: expected a positive int, got {value!r}")
        if hidden_size % num_heads:
            raise ValueError(f"GPT2LMConfig.hidden_size: {hidden_size!r} is not divisible by num_heads={num_heads!r}")
        if hidden_act not in ACTIVATIONS:
            raise ValueError(f"GPT2LMConfig.hidden_act: expected one of {ACTIVATIONS}, got {hidden_act!r}")
        for name, value in (
            ("compute_dtype", compute_dtype),
            ("layernorm_compute_type", layernorm_compute_type),
            ("softmax_compute_type", softmax_compute_type),
            ("param_init_type", param_init_type),
        ):
            if isinstance(value, str) and value.lower() not in _DTYPE_NAMES:
                raise ValueError(f"GPT2LMConfig.{name}: expected one of {_DTYPE_NAMES}, got {value!r}")
        self.batch_size = batch_size
        self.seq_length = seq_length
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.num_heads = num_heads
        self.intermediate_size = intermediate_size if intermediate_size else 4 * hidden_size
        self.vocab_size = vocab_size
        self.max_position_embedding = max_position_embedding if max_position_embedding else seq_length
        self.layernorm_epsilon = layernorm_epsilon
        self.hidden_act = hidden_act
        self.tie_word_embeddings = bool(tie_word_embeddings)
        self.bos_token_id = bos_token_id
        self.eos_token_id = eos_token_id
        self.pad_token_id = pad_token_id
        self.ignore_token_id = ignore_token_id
        self.compute_dtype = convert_mstype(compute_dtype)
        self.layernorm_compute_type = convert_mstype(layernorm_compute_type)
        self.softmax_compute_type = convert_mstype(softmax_compute_type)
        self.param_init_type = convert_mstype(param_init_type)
        self.embedding_init_type = convert_mstype(embedding_init_type) if embedding_init_type else self.param_init_type
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

    @classmethod
    def from_hf_config(cls, hf_config: dict, **overrides: Any) -> GPT2LMConfig:
        """Build a config from an HF GPT2 ``config.json`` dict; ``overrides`` win over mapped values."""
        kwargs = _to_model_config(hf_config)
        kwargs.update(overrides)
        return cls(**kwargs)

    def to_hf_config(self) -> dict:
        """The HF ``GPT2Config`` dict (``config.json`` content) for this architecture."""
        dtype_name = {convert_mstype(n): n for n in _DTYPE_NAMES}[self.param_init_type]
        mc = {key: getattr(self, key) for key in ARCH_KEYS}
        mc["init_method_std"] = self.init_method_std
        return {**_to_hf_config(mc), "torch_dtype": dtype_name, "use_cache": True}
