"""``RowNormLinear`` (``DecoderSpec.lm_head_norm``) against torch: ``F.linear(x, F.normalize(W))``, in both modes."""

from __future__ import annotations

import numpy as np
import pytest


@pytest.mark.parametrize("mode", [1, 0], ids=["pynative", "graph"])
def test_row_norm_linear_matches_torch_normalize(mode):
    import mindspore as ms
    import torch

    from mf_ext.modules import RowNormLinear

    ms.set_context(mode=mode)
    rng = np.random.default_rng(0)
    w = rng.standard_normal((40, 24)).astype(np.float32) * rng.uniform(0.1, 5.0, (40, 1)).astype(np.float32)
    x = rng.standard_normal((2, 5, 24)).astype(np.float32)
    cell = RowNormLinear(24, 40)
    cell.weight.set_data(ms.Tensor(w))
    got = cell(ms.Tensor(x)).asnumpy()
    want = torch.nn.functional.linear(torch.tensor(x), torch.nn.functional.normalize(torch.tensor(w))).numpy()
    assert np.abs(got - want).max() <= 1e-5
    # the stored weight is left as loaded; scaling a row does not change the output
    assert np.array_equal(cell.weight.asnumpy(), w)
    cell.weight.set_data(ms.Tensor(w * 7.0))
    assert np.abs(cell(ms.Tensor(x)).asnumpy() - want).max() <= 1e-5
    # and it differs from a plain projection (the test can fail)
    assert np.abs(x @ w.T - want).max() > 1e-2


def test_lm_head_norm_switch_picks_the_cell():
    from mf_ext.modules import DecoderSpec, Linear, RowNormLinear, lm_head

    base = {"hidden_size": 16, "num_layers": 1, "num_heads": 2, "vocab_size": 32, "intermediate_size": 24}
    assert type(lm_head(DecoderSpec(**base))) is Linear
    assert type(lm_head(DecoderSpec(**base, lm_head_norm=True))) is RowNormLinear
