"""Family-driven checks against each family's independent reference (``Family.reference``).

Everything here is read from the Family: the HF reference model and config classes, the tiny configurations, the
remote-code ``to_format`` (if any), the converter entry point (``convert_weight.py``), the predict YAML and the model
class it names. Nothing names a family, so a new family folder is covered the day it is added.

* :func:`reference_checkpoint` -- a tiny random reference model (1-D parameters perturbed: HF initialises norms and
  biases to constants, which would hide a dropped or swapped one), saved with ``save_pretrained`` or, for a
  remote-code layout, synthesised through ``reference.to_format``.
* :func:`check_parity` -- convert it with the family's converter, load it into the family's model through its
  predict YAML (``mf_ext.load_model``), compare fp32 logits with the reference's (``<= reference.atol``) over the
  prompt and the reference's 32 greedy tokens, the teacher-forced argmax with those tokens, and greedy ``generate``
  (32 tokens with the KV cache, 4 without; graph mode: 32 with the cache).
"""

from __future__ import annotations

import importlib
import json
from pathlib import Path

import numpy as np

GREEDY_TOKENS = 32
NO_CACHE_TOKENS = 4  # generate() without the cache: its own loop; the forward itself is teacher-forced
PROMPT_LEN = 10
SEQ_LENGTH = 128  # the model's context in the parity runs: prompt + 32 tokens, rounded up to generate()'s bucket


def import_object(ref: str):
    """``"transformers:LlamaForCausalLM"`` -> the object."""
    module, _, attr = ref.partition(":")
    return getattr(importlib.import_module(module), attr)


def reference_cases(plugins) -> list[tuple]:
    """``(plugin, tiny_name)`` for every tiny configuration of every family with a reference."""
    return [(p, name) for p in plugins if p.family.reference is not None for name in p.family.reference.tiny]


def case_id(case) -> str:
    plugin, name = case
    return f"{plugin.family.name}-{name}"


def reference_model(family, tiny: str, seed: int = 0):
    """The reference HF model of ``family`` with tiny configuration ``tiny``, random weights, eval mode, fp32."""
    import torch

    ref = family.reference
    cfg = import_object(ref.config)(**dict(ref.tiny[tiny]))
    cfg._attn_implementation = "eager"
    torch.manual_seed(seed)
    model = import_object(ref.model)(cfg).eval().float()
    with torch.no_grad():
        for p in model.parameters():
            if p.ndim == 1:  # norms (init 1) and biases (init 0): perturbed, so a lost or swapped one shows
                p.add_(torch.randn_like(p) * 0.1)
        prepare = family.reference_prepare()
        if prepare is not None:  # what the remote-code model computes and the twin holds in its weights
            prepare(model)
    return model


def reference_checkpoint(family, model, out: Path) -> Path:
    """Write ``model`` as the checkpoint the family's converter reads: HF ``save_pretrained``, or the remote-code
    layout from ``reference.to_format(state_dict, config) -> (state_dict, config_json)``."""
    out = Path(out)
    to_format = family.reference_to_format()
    if to_format is None:
        model.save_pretrained(out)
        return out
    from safetensors.numpy import save_file

    state = {k: v.detach().cpu().numpy() for k, v in model.state_dict().items()}
    tensors, config = to_format(state, model.config.to_dict())
    out.mkdir(parents=True, exist_ok=True)
    save_file({k: np.ascontiguousarray(v) for k, v in tensors.items()}, str(out / "model.safetensors"),
              metadata={"format": "pt"})  # fmt: skip
    (out / "config.json").write_text(json.dumps(config, indent=2))
    return out


def prompt_ids(vocab_size: int, seed: int = 0) -> np.ndarray:
    return np.random.RandomState(seed).randint(0, vocab_size, (1, PROMPT_LEN))


def hf_logits(model, ids: np.ndarray) -> np.ndarray:
    import torch

    with torch.no_grad():
        return model(torch.tensor(ids)).logits.float().numpy()


def hf_greedy(model, ids: np.ndarray, n: int = GREEDY_TOKENS) -> list[int]:
    """Greedy tokens of the reference by plain argmax over full forwards (no generate(): no eos stop, no cache)."""
    import torch

    seq = torch.tensor(ids)
    out = []
    with torch.no_grad():
        for _ in range(n):
            nxt = int(model(seq).logits[0, -1].argmax())
            out.append(nxt)
            seq = torch.cat([seq, torch.tensor([[nxt]])], dim=1)
    return out


def load_family_model(plugin, checkpoint: Path, *, mode: int, use_past: bool = True):
    """The family's model built from its predict YAML (architecture from the config.json the converter keeps beside
    the checkpoint), weights loaded strictly."""
    import mf_ext

    yaml_path = plugin.family.yaml("predict")
    assert yaml_path is not None, f"family {plugin.family.name!r} declares no predict YAML"
    return mf_ext.load_model(
        config=str(yaml_path),
        register_path=str(plugin.root),
        checkpoint=str(checkpoint),
        mode=mode,
        seq_length=SEQ_LENGTH,
        batch_size=1,
        use_past=use_past,
    )


def check_parity(plugin, tiny: str, workdir: Path, *, graph: bool = False, seed: int = 0) -> dict:
    """Reference -> family converter -> family model, against the reference's 32 greedy tokens (``want``).

    One full forward (no cache) over prompt + ``want``: logits at every position within ``reference.atol`` of the
    reference's forward over the same ids, and the argmax at every position from the prompt's last on is the next
    token of ``want`` -- teacher forcing: causal attention makes position ``i`` of this pass the last position of
    the full recompute over the first ``i + 1`` ids, so this is the 32-step greedy decode without a cache, in one
    pass. Then ``generate`` with the KV cache must give ``want`` (32 tokens), and in PyNative ``generate`` without
    it the first 4 (its own loop and padding; each step repeats the forward checked above). ``graph=True`` runs
    the model in graph mode. Returns numbers.
    """
    import mf_ext

    family = plugin.family
    ref = reference_model(family, tiny, seed=seed)
    src = reference_checkpoint(family, ref, Path(workdir) / "src")
    ckpt = Path(workdir) / "model.ckpt"
    plugin.convert_pt_to_ms(str(src), str(ckpt), progress=False)  # the family's convert_weight.py entry point
    ids = prompt_ids(ref.config.vocab_size, seed)
    want_tokens = hf_greedy(ref, ids)
    model = load_family_model(plugin, ckpt, mode=0 if graph else 1)
    full = np.concatenate([ids, np.asarray([want_tokens])], axis=1)
    want_logits, got = hf_logits(ref, full), mf_ext.logits(model, full)
    diff = float(np.abs(got.astype(np.float64) - want_logits.astype(np.float64)).max())
    assert diff <= family.reference.atol, f"{family.name}/{tiny}: max |delta logits| {diff:.3e}"
    forced = [int(t) for t in got[0, PROMPT_LEN - 1 : -1].argmax(-1)]
    assert forced == want_tokens, (
        f"{family.name}/{tiny} greedy without cache (teacher-forced): {forced} != {want_tokens}"
    )
    runs = [("cache", True, GREEDY_TOKENS)] + ([] if graph else [("no cache", False, NO_CACHE_TOKENS)])
    for what, use_cache, n in runs:
        out = np.asarray(mf_ext.generate(model, ids, n, do_sample=False, use_cache=use_cache))
        tokens = [int(t) for t in out[0, PROMPT_LEN:]]
        assert tokens == want_tokens[:n], f"{family.name}/{tiny} greedy ({what}): {tokens} != {want_tokens[:n]}"
    return {"max_abs_logits_diff": diff}
