"""Reference hook for the parity tests: HF initialises the router's ``e_score_correction_bias`` (a buffer, not a
parameter) at zero, where it changes nothing; random values large enough to change which experts are chosen make a
lost or misplaced bias fail the parity test."""

from __future__ import annotations


def random_correction_bias(model) -> None:
    import torch

    gen = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for name, buf in model.named_buffers():
            if name.endswith("e_score_correction_bias"):
                buf.copy_(torch.randn(buf.shape, generator=gen) * 0.3)
