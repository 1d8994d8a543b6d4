"""Which tensors of a MindSpore training checkpoint are training state rather than model weights.

A checkpoint saved from a train step holds the network's parameters, the optimizer's state and the run's
counters. The optimizer state is a copy of (some of) the parameters under a prefix -- MindSpore's and
MindFormers' optimizers clone them as ``<prefix>.<parameter name>`` (``adam_m.``/``adam_v.`` for
AdamWeightDecay and MindFormers' AdamW, ``accum.``/``stat.`` for SGD, ``moments.`` for Momentum, ``exp_avg.`` for
the fused AdamW ...); the counters are top-level scalars (``global_step``, ``learning_rate``, SGD's ``momentum``,
``epoch_num`` ...). A prefixed name counts as state only when the parameter it shadows is in the same checkpoint,
so a model weight that happens to start with ``stat.`` or ``linear.`` is never taken for state.

One filter for every consumer: ``mf-ext convert ms_to_hf``, finetune export and the launcher's checkpoint loading.
No MindSpore import here.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable

# Prefixes the optimizers of MindSpore (mindspore.nn.optim: Adam, AdamWeightDecay, AdamOffload, Lamb, LARS,
# Momentum, SGD, RMSProp, Adagrad, Adadelta, Adamax, ASGD, Rprop, FTRL, ...) and MindFormers (AdamW, FusedAdamW,
# PmaAdamW, Came, Muon; gradient accumulation) clone parameters under.
STATE_PREFIXES = frozenset(
    {
        "adam_m", "adam_v", "moment1", "moment2", "moment", "moments", "accum", "accum_update", "stat",
        "exp_avg", "exp_avg_sq", "max_exp_avg_sq", "exp_inf", "lamb_m", "lamb_v", "mean_grad", "mean_square",
        "linear", "prev", "ax", "ax_", "step_size", "vhat", "accu_grads",
    }
)  # fmt: skip

# Top-level scalars optimizers, loss-scale wrappers and checkpoint callbacks add.
STATE_NAMES = frozenset(
    {
        "global_step", "learning_rate", "momentum", "beta1_power", "beta2_power", "cov_step", "afactor_step",
        "epoch_num", "step_num", "loss_scale", "scale_sense", "scale_window", "scale_window_down_count",
        "scale_window_up_count", "global_batch_size", "current_iterator_step", "last_overflow_iterator_step",
        "list_index",
    }
)  # fmt: skip


def is_train_state(name: str, names: Collection[str]) -> bool:
    """True if ``name`` is optimizer state or a run counter of a checkpoint holding ``names``."""
    if name in STATE_NAMES:
        return True
    prefix, dot, rest = name.partition(".")
    return bool(dot) and prefix in STATE_PREFIXES and rest in names


def train_state(names: Iterable[str]) -> list[str]:
    """The training-state names among ``names`` (every tensor name of one checkpoint), in their order."""
    names = list(names)
    known = set(names)
    return [n for n in names if is_train_state(n, known)]
