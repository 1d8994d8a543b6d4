"""Which tensors of a MindSpore training checkpoint are training state rather than model weights.

A checkpoint saved from a train step holds the network's parameters, the optimizer's state and the run's
counters. The optimizer state is a copy of (some of) the parameters under a prefix -- MindSpore's and
MindFormers' optimizers clone them as ``<prefix>.<parameter name>`` (``adam_m.``/``adam_v.`` for
AdamWeightDecay and MindFormers' AdamW, ``accum.``/``stat.`` for SGD, ``moments.`` for Momentum, ``exp_avg.`` for
the fused AdamW ...) or ``<prefix>_<parameter name>`` (Came/AdaFactor's ``exp_avg_sq_row_``, ASGD's ``mu_``);
the counters are top-level scalars (``global_step``, ``learning_rate``, SGD's ``momentum``, ``epoch_num`` ...).
A prefixed name counts as state only when the parameter it shadows is in the same checkpoint, so a model weight
that happens to start with ``stat.`` or ``linear.`` is never taken for state.

One filter for every consumer: ``mf-ext convert ms_to_hf``, finetune export and the launcher's checkpoint loading.
No MindSpore import here.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable

# Prefixes the optimizers of MindSpore (mindspore.nn.optim: Adam, AdamWeightDecay, AdamOffload, LazyAdam, Lamb,
# LARS, Momentum, SGD, RMSProp, Adagrad, ProximalAdagrad, Adadelta, AdaMax, ASGD, Rprop, FTRL, AdaFactor) and
# MindFormers (AdamW, FusedAdamW, PmaAdamW, Came; gradient accumulation) put before a parameter's name.
STATE_PREFIXES = frozenset(
    {
        "adam_m", "adam_v", "moment1", "moment2", "moment", "moments", "accum", "accum_update", "stat",
        "exp_avg", "exp_avg_sq", "max_exp_avg_sq", "exp_inf", "lamb_m", "lamb_v", "mean_grad", "mean_square",
        "linear", "prev", "ax_", "mu", "eta", "step_size", "vhat", "accu_grads", "pma_weight_ema",
        "exp_avg_sq_row", "exp_avg_sq_col", "exp_avg_insta_row", "exp_avg_insta_col",
    }
)  # fmt: skip
_SEPARATORS = (".", "_")

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
    for prefix in STATE_PREFIXES:
        if name.startswith(prefix) and name[len(prefix) : len(prefix) + 1] in _SEPARATORS:
            if name[len(prefix) + 1 :] in names:
                return True
    return False


def train_state(names: Iterable[str]) -> list[str]:
    """The training-state names among ``names`` (every tensor name of one checkpoint), in their order."""
    names = list(names)
    known = set(names)
    return [n for n in names if is_train_state(n, known)]
