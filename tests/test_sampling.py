"""``mf_ext.generation.sample_next`` samples from the distribution it claims: a frequency test against
``softmax(logits / T)`` (temperature before the softmax), and top-p at an exact boundary (a token is dropped once the
mass before it *reaches* top_p, as HF transformers' ``TopPLogitsWarper`` keeps the smallest set whose mass is at
least top_p). Fixed seeds: the outcome is deterministic."""

from __future__ import annotations

import numpy as np
import pytest

from mf_ext.generation import sample_next

N = 20000
# chi-square critical values at p = 0.001 (df = categories - 1): a correct sampler fails this 1 time in 1000 seeds
CHI2_999 = {1: 10.83, 2: 13.82, 3: 16.27, 4: 18.47}


def _softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max())
    return e / e.sum()


def _chi2(counts: np.ndarray, probs: np.ndarray) -> float:
    expected = probs * counts.sum()
    return float(((counts - expected) ** 2 / expected).sum())


def _frequencies(logits: np.ndarray, seed: int, **kw) -> np.ndarray:
    rng = np.random.default_rng(seed)
    batch = np.repeat(logits[None, :], N, axis=0)  # one call, N independent rows
    tokens = sample_next(batch, True, rng=rng, **kw)
    return np.bincount(tokens, minlength=logits.size)


@pytest.mark.parametrize("temperature", [0.5, 1.0, 2.5])
def test_temperature_scales_logits_before_the_softmax(temperature):
    logits = np.array([2.0, 1.0, 0.5, 0.0, -1.0])
    counts = _frequencies(logits, seed=1, temperature=temperature)
    want = _softmax(logits / temperature)
    stat = _chi2(counts, want)
    assert stat < CHI2_999[4], (temperature, counts, want * N, stat)
    if temperature != 1.0:  # the test can tell: the untempered distribution is far outside the bound
        assert _chi2(counts, _softmax(logits)) > 10 * CHI2_999[4]


def test_top_k_and_temperature_together():
    logits = np.array([3.0, 2.0, 1.5, 1.0, 0.0])
    counts = _frequencies(logits, seed=2, temperature=0.7, top_k=3)
    want = _softmax(logits[:3] / 0.7)
    assert counts[3:].sum() == 0
    assert _chi2(counts[:3], want) < CHI2_999[2]


# Exact boundaries need probabilities that are exact in floating point after the float32 logits' softmax: n equal
# logits give 1/n exactly for n a power of two, so k of them reach k/n exactly.
@pytest.mark.parametrize(
    ("n", "top_p", "kept"),
    [(4, 0.25, 1), (4, 0.5, 2), (4, 0.75, 3), (8, 0.375, 3), (4, 0.5000001, 3), (4, 0.4999999, 2), (4, 1.0, 4)],
)
def test_top_p_keeps_the_smallest_set_reaching_top_p(n, top_p, kept):
    counts = _frequencies(np.zeros(n), seed=3, top_p=top_p)
    assert np.count_nonzero(counts) == kept, counts
    if kept > 1:  # the kept tokens stay equally likely
        assert _chi2(counts[counts > 0], np.full(kept, 1.0 / kept)) < CHI2_999[kept - 1]


def test_top_p_matches_transformers_at_the_boundary():
    """As many tokens kept as HF transformers' TopPLogitsWarper (an independent implementation) keeps at exact
    boundaries (which of tied tokens stay is an ordering detail)."""
    import torch
    from transformers.generation.logits_process import TopPLogitsWarper

    for n, top_p in [(4, 0.5), (4, 0.75), (8, 0.25), (8, 0.625)]:
        hf = TopPLogitsWarper(top_p)(None, torch.zeros(1, n, dtype=torch.float32))[0].numpy()
        counts = _frequencies(np.zeros(n), seed=4, top_p=top_p)
        assert np.count_nonzero(counts) == np.isfinite(hf).sum(), (n, top_p, hf, counts)
