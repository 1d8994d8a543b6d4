"""One training-state filter (``mf_ext.convert.train_state``) for convert, export and checkpoint loading, checked
against the state tensors real optimizers create: every optimizer our trainer builds (``optimizer.type``), and
every optimizer MindFormers' registry offers to the ``trainer_backend: mindformers`` path. The expected names are
never listed here: each optimizer is built in MindSpore on a tiny net and the state is what it adds to the
network's own parameters. Plus a real SGD (momentum) finetune whose checkpoint ``ms_to_hf`` and export accept."""

from __future__ import annotations

import numpy as np
import pytest

from mf_ext.convert.train_state import is_train_state, train_state

ms = pytest.importorskip("mindspore")


def _tiny_net():
    from mindspore import nn, ops

    class Net(nn.Cell):
        """Embedding (2-D), dense with bias (2-D + 1-D), LayerNorm (1-D): both weight-decay groups are used."""

        def __init__(self):
            super().__init__()
            self.embed = nn.Embedding(11, 8)
            self.proj = nn.Dense(8, 11)
            self.norm = nn.LayerNorm((8,))

        def construct(self, input_ids, labels):
            logits = self.proj(self.norm(self.embed(input_ids)))
            return ops.cross_entropy(logits.reshape(-1, 11), labels.reshape(-1))

    return Net()


def _check_split(names: list[str], model: set[str]) -> None:
    state = set(train_state(names))
    assert state == set(names) - model, (sorted(state ^ (set(names) - model)), names)
    assert len(state) > len({"global_step", "learning_rate"})  # the optimizer did add per-parameter state


# the optimizer types mf_ext.train.runner._build_optimizer accepts (its error message lists them)
RUNNER_OPTIMIZERS = [
    {"type": "AdamW", "weight_decay": 0.1},
    {"type": "AdamWeightDecay"},
    {"type": "FusedAdamWeightDecay"},
    {"type": "adamw"},
    {"type": "SGD", "momentum": 0.0},
    {"type": "SGD", "momentum": 0.9},
    {"type": "sgd", "momentum": 0.9, "weight_decay": 0.01},
]


@pytest.mark.parametrize("opt", RUNNER_OPTIMIZERS, ids=lambda o: "-".join(f"{v}" for v in o.values()))
def test_trainer_checkpoint_state_is_exactly_the_filtered_names(tmp_path, opt):
    from mf_ext.convert.readers import CkptReader
    from mf_ext.train import runner

    net = _tiny_net()
    optimizer = runner._build_optimizer(opt, net.trainable_params(), np.full(4, 1e-3, np.float32))
    step = runner._train_step_cell(net, optimizer, 1.0)
    step(ms.Tensor(np.array([[1, 2, 3]], np.int32)), ms.Tensor(np.array([[2, 3, 4]], np.int32)))
    path = tmp_path / "run.ckpt"
    runner._save_checkpoint(step, path, 1, 1, None)  # what a finetune writes: net + optimizer + counters
    reader = CkptReader(path)
    names = list(reader.tensors) + reader.skipped
    reader.close()
    _check_split(names, {p.name for p in net.get_parameters()})


def test_trainer_refuses_other_optimizer_types():
    """So the list above is every type the trainer accepts."""
    from mf_ext.config import ConfigError
    from mf_ext.train import runner

    with pytest.raises(ConfigError, match="expected AdamW .AdamWeightDecay. or SGD"):
        runner._build_optimizer({"type": "Lamb"}, _tiny_net().trainable_params(), np.ones(2, np.float32))


# MindFormers' registry, built the way its build_optim does for a YAML `optimizer:` section; construction
# arguments beyond params/learning_rate where a type needs them, and the entries that are not optimizers.
_MF_ARGS = {
    "AdaFactor": {"relative_step": False},
    "adafactor": {"relative_step": False},
    "Momentum": {"momentum": 0.9},
}
_NOT_AN_OPTIMIZER = {
    "Optimizer": "the abstract base class",
    "AdaSumByDeltaWeightWrapCell": "a wrapper around another optimizer",
    "AdaSumByGradWrapCell": "a wrapper around another optimizer",
    "OptTFTWrapper": "a wrapper around another optimizer",
    "LARS": "a wrapper around another optimizer (its state is the inner one's)",
    "Muon": "refuses legacy (non-mcore) models such as ours",
}


def _mindformers_optimizers() -> list[str]:
    from mindformers.tools.register import MindFormerModuleType, MindFormerRegister

    return sorted(MindFormerRegister.registry[MindFormerModuleType.OPTIMIZER])


def test_every_mindformers_optimizer_state_is_filtered():
    from mindformers.core.optim import build_optim
    from mindspore import nn

    names = _mindformers_optimizers()
    assert {"AdamW", "Came", "SGD", "Adam", "Lamb"} <= set(names)
    for kind in names:
        if kind in _NOT_AN_OPTIMIZER:
            continue
        net = _tiny_net()
        opt = build_optim(
            {"type": kind, "learning_rate": 1e-3, **_MF_ARGS.get(kind, {})},
            default_args={"params": net.trainable_params()},
        )
        cell = nn.TrainOneStepCell(net, opt)
        _check_split([p.name for p in cell.get_parameters()], {p.name for p in net.get_parameters()})


def test_prefixed_model_weights_are_not_state():
    """A weight that merely starts like optimizer state stays when the parameter it would shadow is absent."""
    names = ["stat.weight", "linear.bias", "mu_head.weight", "model.norm.weight"]
    assert train_state(names) == []
    assert is_train_state("accum.model.norm.weight", {"model.norm.weight"})
    assert not is_train_state("accum.model.norm.weight", {"model.other"})


def test_sgd_momentum_finetune_converts_and_exports(tmp_path_factory):
    """issue 9: a finetune with ``optimizer.type: SGD`` gave a checkpoint both ms_to_hf and export refused."""
    from train.ft_helpers import PLUGIN, YAML, make_workspace

    from mf_ext.api import prepare
    from mf_ext.convert.readers import CkptReader
    from mf_ext.registry import load_plugin
    from mf_ext.train import finetune
    from mf_ext.train.export import export_merged_hf, model_params

    tmp = tmp_path_factory.mktemp("sgd")
    ws = make_workspace(tmp / "ws")
    over = ["optimizer.type=SGD", "optimizer.momentum=0.9", "runner_config.batch_size=4",
            "lr_schedule.learning_rate=0.01"]  # fmt: skip
    cfg, _entries, base = prepare(str(YAML), str(PLUGIN), convert=str(ws["hf"]), overrides=over)
    res = finetune(cfg, train_dataset=ws["data"], output_dir=tmp / "run", load_checkpoint=base, max_steps=2,
                   progress=False, print_fn=lambda *_: None)  # fmt: skip
    ckpt = res.checkpoints[-1]
    reader = CkptReader(ckpt)
    names = list(reader.tensors)
    reader.close()
    model = {p.name for p in res.model.get_parameters()}
    _check_split(names, model)

    plugin = load_plugin(str(PLUGIN))
    notes: list[str] = []
    plugin.convert_ms_to_pt(str(ckpt), str(tmp / "hf_cli"), progress=False, print_fn=notes.append)
    assert any("optimizer/training-state tensors" in n for n in notes)
    hf_out = export_merged_hf(ckpt, tmp / "hf_export", plugin)
    from safetensors.numpy import load_file

    a, b = load_file(str(hf_out / "model.safetensors")), load_file(str(tmp / "hf_cli" / "model.safetensors"))
    assert a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)
    # the weights moved: training happened, and export wrote the trained ones
    trained, start = model_params(ckpt), model_params(base)
    assert trained.keys() == start.keys()
    assert max(float(np.abs(trained[k] - start[k]).max()) for k in start) > 0
