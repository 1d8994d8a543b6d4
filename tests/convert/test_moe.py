"""MoE conversion: experts stacked over ``{E}`` (compared with ``np.stack`` of the HF tensors, and the mcore
flattened layout with MindFormers' own ``ExpertsConvertOp``), per-layer rule selection (dense first-k layers, MoE
layers, an MTP layer past ``num_hidden_layers``, mapped or dropped), and memory flat in the number of experts."""

from __future__ import annotations

import json

import numpy as np
import pytest

from mf_ext.convert import ConversionError, hf_to_ms, ms_to_hf
from mf_ext.convert.spec import (
    Drop,
    Option,
    Rename,
    Spec,
    Stack,
    Transpose,
    both,
    layers_below,
    layers_from,
    mcore_experts,
    negate,
)

CFG = {
    "hidden_size": 8,
    "num_attention_heads": 2,
    "intermediate_size": 12,
    "moe_intermediate_size": 6,
    "n_routed_experts": 4,
    "n_shared_experts": 1,
    "num_hidden_layers": 2,
    "first_k_dense_replace": 1,
    "num_nextn_predict_layers": 1,
    "vocab_size": 20,
}

L = "model.layers.{L}."
X = L + "mlp.experts.{E}."
F = L + "feed_forward."
DENSE = layers_below("first_k_dense_replace")
MOE = layers_from("first_k_dense_replace")
MTP = layers_from("num_hidden_layers")
UP, DOWN = ("moe_inter", "hidden"), ("hidden", "moe_inter")


def dims(cfg: dict) -> dict[str, int]:
    return {
        "layers": cfg["num_hidden_layers"] + cfg.get("num_nextn_predict_layers", 0),
        "hidden": cfg["hidden_size"],
        "inter": cfg["intermediate_size"],
        "moe_inter": cfg["moe_intermediate_size"],
        "shared_inter": cfg["moe_intermediate_size"] * cfg["n_shared_experts"],
        "experts": cfg["n_routed_experts"],
        "vocab": cfg["vocab_size"],
    }


def moe_spec(mtp: str = "map") -> Spec:
    """A DeepSeek-V3-like layout: dense first-k layers, MoE after, one MTP layer (``mtp``: "map" or "drop")."""
    decoder = None if mtp == "map" else negate(MTP)  # the decoder rules stop short of the MTP layer when it drops
    moe = MOE if mtp == "map" else both(MOE, negate(MTP))
    rules = [
        Rename("model.embed_tokens.weight", "model.tok_embeddings.embedding_weight", ("vocab", "hidden")),
        Rename("model.norm.weight", "model.norm_out.weight", ("hidden",)),
        Rename("lm_head.weight", "lm_head.weight", ("vocab", "hidden")),
        Rename(L + "self_attn.o_proj.weight", L + "attention.wo.weight", ("hidden", "hidden"), layers=decoder),
        Rename(L + "input_layernorm.weight", L + "attention_norm.weight", ("hidden",), layers=decoder),
        # dense MLP: only the first k layers
        Rename(L + "mlp.gate_proj.weight", F + "w1.weight", ("inter", "hidden"), layers=DENSE),
        Rename(L + "mlp.up_proj.weight", F + "w3.weight", ("inter", "hidden"), layers=DENSE),
        Rename(L + "mlp.down_proj.weight", F + "w2.weight", ("hidden", "inter"), layers=DENSE),
        # MoE: router, shared expert, routed experts stacked
        Rename(L + "mlp.gate.weight", F + "router.dense.weight", ("experts", "hidden"), layers=moe),
        Rename(
            L + "mlp.shared_experts.up_proj.weight",
            F + "shared_experts.w3.weight",
            ("shared_inter", "hidden"),
            layers=moe,
        ),  # fmt: skip
        Stack(X + "gate_proj.weight", F + "ffn.w1.weight", UP, layers=moe, when="!mcore+!transposed"),
        Stack(X + "up_proj.weight", F + "ffn.w3.weight", UP, layers=moe, when="!mcore+!transposed"),
        Stack(X + "down_proj.weight", F + "ffn.w2.weight", DOWN, layers=moe, when="!mcore+!transposed"),
        Stack(X + "gate_proj.weight", F + "ffn.w1.weight", UP, op=Transpose(), layers=moe, when="transposed"),
        Stack(X + "up_proj.weight", F + "ffn.w3.weight", UP, op=Transpose(), layers=moe, when="transposed"),
        Stack(X + "down_proj.weight", F + "ffn.w2.weight", DOWN, op=Transpose(), layers=moe, when="transposed"),
        *mcore_experts(
            X + "gate_proj.weight",
            X + "up_proj.weight",
            X + "down_proj.weight",
            L + "mlp.experts.weight1",
            L + "mlp.experts.weight2",
            up_shape=UP,
            down_shape=DOWN,
            layers=moe,
            when="mcore",
        ),  # fmt: skip
    ]
    if mtp == "map":  # the MTP layer's own tensors
        rules += [
            Rename(L + "enorm.weight", L + "enorm.weight", ("hidden",), layers=MTP),
            Rename(L + "eh_proj.weight", L + "eh_proj.weight", ("hidden", "2*hidden"), layers=MTP),
        ]
    else:
        rules.append(Drop(L + "*", "multi-token-prediction layer: not used for inference", layers=MTP))
    return Spec(
        "moe-test",
        tuple(rules),
        dims,
        options={
            "mcore": Option(detect=lambda names: any(n.endswith(".weight1") for n in names)),
            "transposed": Option(),
        },
    )


def hf_tensors(cfg: dict = CFG, seed: int = 0, dtype=np.float32) -> dict[str, np.ndarray]:
    """HF tensors of the layout above, written by hand (not from the spec)."""
    rng = np.random.default_rng(seed)
    h, i, mi, e, v = (cfg[k] for k in ("hidden_size", "intermediate_size", "moe_intermediate_size",
                                      "n_routed_experts", "vocab_size"))  # fmt: skip
    shapes = {"model.embed_tokens.weight": (v, h), "model.norm.weight": (h,), "lm_head.weight": (v, h)}
    n_layers = cfg["num_hidden_layers"] + cfg["num_nextn_predict_layers"]
    for layer in range(n_layers):
        p = f"model.layers.{layer}."
        shapes |= {p + "self_attn.o_proj.weight": (h, h), p + "input_layernorm.weight": (h,)}
        if layer < cfg["first_k_dense_replace"]:
            shapes |= {p + "mlp.gate_proj.weight": (i, h), p + "mlp.up_proj.weight": (i, h),
                       p + "mlp.down_proj.weight": (h, i)}  # fmt: skip
        else:
            shapes |= {p + "mlp.gate.weight": (e, h), p + "mlp.shared_experts.up_proj.weight": (mi, h)}
            for x in range(e):
                q = f"{p}mlp.experts.{x}."
                shapes |= {
                    q + "gate_proj.weight": (mi, h),
                    q + "up_proj.weight": (mi, h),
                    q + "down_proj.weight": (h, mi),
                }
        if layer >= cfg["num_hidden_layers"]:
            shapes |= {p + "enorm.weight": (h,), p + "eh_proj.weight": (h, 2 * h)}
    return {n: rng.standard_normal(s).astype(dtype) for n, s in shapes.items()}


def save_hf(path, tensors, cfg: dict = CFG):
    from safetensors.numpy import save_file

    path.mkdir(parents=True)
    save_file(tensors, str(path / "model.safetensors"), metadata={"format": "pt"})
    (path / "config.json").write_text(json.dumps(cfg))
    return path


def load_dir(path) -> dict[str, np.ndarray]:
    from safetensors.numpy import load_file

    out = {}
    for f in sorted(path.glob("*.safetensors")):
        out.update(load_file(str(f)))
    return out


def _raw(d):
    return {k: (v.dtype.str, v.shape, v.tobytes()) for k, v in d.items()}


# ---------------------------------------------------------------------------------------------- plan
def test_plan_gives_the_exact_name_shape_dict(tmp_path):
    src = save_hf(tmp_path / "hf", hf_tensors())
    plan = hf_to_ms(moe_spec(), src, tmp_path / "w.ckpt", dry_run=True, print_fn=lambda *_: None)
    got = {t.name: t.shape for t in plan.targets}
    want = {
        "model.tok_embeddings.embedding_weight": (20, 8), "model.norm_out.weight": (8,), "lm_head.weight": (20, 8),
        # layer 0: dense
        "model.layers.0.attention.wo.weight": (8, 8), "model.layers.0.attention_norm.weight": (8,),
        "model.layers.0.feed_forward.w1.weight": (12, 8), "model.layers.0.feed_forward.w3.weight": (12, 8),
        "model.layers.0.feed_forward.w2.weight": (8, 12),
    }  # fmt: skip
    for layer in (1, 2):  # layer 1: MoE; layer 2: MTP (a full MoE decoder layer + its own tensors)
        p = f"model.layers.{layer}."
        want |= {
            p + "attention.wo.weight": (8, 8), p + "attention_norm.weight": (8,),
            p + "feed_forward.router.dense.weight": (4, 8), p + "feed_forward.shared_experts.w3.weight": (6, 8),
            p + "feed_forward.ffn.w1.weight": (4, 6, 8), p + "feed_forward.ffn.w3.weight": (4, 6, 8),
            p + "feed_forward.ffn.w2.weight": (4, 8, 6),
        }  # fmt: skip
    want |= {"model.layers.2.enorm.weight": (8,), "model.layers.2.eh_proj.weight": (8, 16)}
    assert got == want
    mcore = hf_to_ms(moe_spec(), src, tmp_path / "w.ckpt", mcore=True, dry_run=True, print_fn=lambda *_: None)
    got = {t.name: t.shape for t in mcore.targets if ".experts." in t.name}
    assert got == {f"model.layers.{n}.mlp.experts.weight{k}": s for n in (1, 2)
                   for k, s in ((1, (4 * 8, 2 * 6)), (2, (4 * 6, 8)))}  # fmt: skip


# ---------------------------------------------------------------------------------------------- data
@pytest.mark.parametrize("fmt", ["safetensors", "ckpt"])
@pytest.mark.parametrize("transposed", [False, True])
def test_stack_equals_np_stack_and_round_trips(tmp_path, fmt, transposed):
    hf = hf_tensors()
    src = save_hf(tmp_path / "hf", hf)
    out = tmp_path / ("ms" if fmt == "safetensors" else "w.ckpt")
    hf_to_ms(moe_spec(), src, out, format=fmt, transposed=transposed, progress=False)
    if fmt == "safetensors":
        ms = load_dir(out)
    else:
        from mf_ext.convert.readers import CkptReader

        r = CkptReader(out)
        ms = {n: np.array(r.array(n)) for n in r.tensors}
        r.close()
    for layer in (1, 2):
        for proj, w in (("gate_proj", "w1"), ("up_proj", "w3"), ("down_proj", "w2")):
            experts = [hf[f"model.layers.{layer}.mlp.experts.{e}.{proj}.weight"] for e in range(4)]
            want = np.stack([x.T for x in experts] if transposed else experts)
            assert np.array_equal(ms[f"model.layers.{layer}.feed_forward.ffn.{w}.weight"], want)
    ms_to_hf(moe_spec(), out, tmp_path / "back", transposed=transposed, progress=False)
    assert _raw(load_dir(tmp_path / "back")) == _raw(hf)


def test_mcore_layout_equals_mindformers_experts_op(tmp_path):
    """weight1/weight2 against MindFormers' own HF->mcore expert converter (``ExpertsConvertOp``)."""
    from mindformers.checkpoint.converter.convert_op import ExpertsConvertOp

    hf = hf_tensors(seed=3)
    src = save_hf(tmp_path / "hf", hf)
    hf_to_ms(moe_spec(), src, tmp_path / "ms", format="safetensors", mcore=True, progress=False)
    ms = load_dir(tmp_path / "ms")
    e, h, mi = CFG["n_routed_experts"], CFG["hidden_size"], CFG["moe_intermediate_size"]
    for layer in (1, 2):

        def cat(proj, layer=layer):  # MindFormers reads all experts of one projection concatenated
            return np.concatenate([hf[f"model.layers.{layer}.mlp.experts.{x}.{proj}.weight"] for x in range(e)])

        op = ExpertsConvertOp(hf_names=["g", "u"], mf_names=["weight1"], num_moe_experts=e, hidden_size=h,
                              moe_ffn_hidden_size=mi, expert_parallel_size=1, optimizer_parallel_size=1)  # fmt: skip
        (w1,) = op._hf_to_mf([cat("gate_proj"), cat("up_proj")])
        (w2,) = op._hf_to_mf([cat("down_proj")])
        assert np.array_equal(ms[f"model.layers.{layer}.mlp.experts.weight1"], w1)
        assert np.array_equal(ms[f"model.layers.{layer}.mlp.experts.weight2"], w2)
    ms_to_hf(moe_spec(), tmp_path / "ms", tmp_path / "back", progress=False)  # mcore detected from the names
    assert _raw(load_dir(tmp_path / "back")) == _raw(hf)


# ---------------------------------------------------------------------------------------------- per-layer selection
def test_per_layer_rules_check_every_tensor(tmp_path):
    hf = hf_tensors()
    extra = dict(hf, **{"model.layers.1.mlp.down_proj.weight": hf["model.layers.0.mlp.down_proj.weight"]})
    with pytest.raises(ConversionError, match=r"unexpected tensors in .*'model.layers.1.mlp.down_proj.weight'"):
        hf_to_ms(moe_spec(), save_hf(tmp_path / "a", extra), tmp_path / "a.ckpt", progress=False)
    less = {k: v for k, v in hf.items() if k != "model.layers.2.mlp.experts.3.up_proj.weight"}
    with pytest.raises(ConversionError, match=r"missing tensors .* 3 layers: 'model.layers.2.mlp.experts.3.up_proj"):
        hf_to_ms(moe_spec(), save_hf(tmp_path / "b", less), tmp_path / "b.ckpt", progress=False)
    no_mtp = {k: v for k, v in hf.items() if not k.startswith("model.layers.2.")}
    with pytest.raises(ConversionError, match=r"missing tensors .* 3 layers: 'model.layers.2.self_attn.o_proj.weight'"):
        hf_to_ms(moe_spec(), save_hf(tmp_path / "c", no_mtp), tmp_path / "c.ckpt", progress=False)
    assert not list(tmp_path.glob("*.ckpt"))


def test_mtp_layer_dropped_by_prefix(tmp_path):
    hf = hf_tensors()
    plan = hf_to_ms(moe_spec("drop"), save_hf(tmp_path / "hf", hf), tmp_path / "w.ckpt", progress=False).plan
    mtp = sorted(n for n in hf if n.startswith("model.layers.2."))
    assert sorted(plan.dropped) == mtp and len(mtp) == 2 + 2 + 3 * 4 + 2
    assert not any(t.name.startswith("model.layers.2.") for t in plan.targets)
    assert {t.name for t in plan.targets} >= {"model.layers.1.feed_forward.ffn.w1.weight"}


def test_layer_filter_that_cannot_read_the_config(tmp_path):
    cfg = {k: v for k, v in CFG.items() if k != "first_k_dense_replace"}
    spec = Spec("f", (Rename(L + "a", L + "a", ("hidden",), layers=lambda i, c: i < c["first_k_dense_replace"]),), dims)
    with pytest.raises(ConversionError, match=r"rule 0 \(Rename 'model.layers.\{L\}.a'\): its layers= filter cannot "
                                              r"read the model config: KeyError\('first_k_dense_replace'\)"):  # fmt: skip
        hf_to_ms(spec, save_hf(tmp_path / "hf", {"x": np.ones(1, np.float32)}, cfg), tmp_path / "w.ckpt")


# ---------------------------------------------------------------------------------------------- streaming
def test_stack_streams_one_expert_at_a_time(tmp_path):
    """64 experts of 2 MiB each (128 MiB per stacked tensor, cast fp32 -> bf16 on the way): the conversion's
    anonymous memory stays near one expert block, far below one stacked tensor."""
    from mf_ext.convert.memory import rss_anon

    cfg = dict(CFG, hidden_size=512, moe_intermediate_size=1024, n_routed_experts=64, num_hidden_layers=1,
               first_k_dense_replace=0, num_nextn_predict_layers=0)  # fmt: skip
    src = save_hf(tmp_path / "hf", hf_tensors(cfg), cfg)
    stacked = 64 * 1024 * 512 * 4
    before = rss_anon()
    result = hf_to_ms(moe_spec(), src, tmp_path / "ms", "bf16", format="safetensors", progress=False)
    grew = result.peak_anon - before
    assert grew < stacked / 4, f"conversion grew anonymous memory by {grew / 2**20:.0f} MiB"
    assert result.plan.peak_estimate <= 256 * 2**20 + 3 * stacked // 64  # fixed budget + one expert block


def test_expert_wildcard_outside_a_stack_is_one_tensor_per_expert(tmp_path):
    """An unstacked MindSpore layout: ``{E}`` on both sides of a Rename expands per expert."""
    hf = hf_tensors()
    spec = moe_spec()
    rules = tuple(r for r in spec.rules if not isinstance(r, Stack)) + (
        Rename(X + "gate_proj.weight", F + "experts.{E}.w1.weight", UP, layers=MOE),
        Rename(X + "up_proj.weight", F + "experts.{E}.w3.weight", UP, layers=MOE),
        Rename(X + "down_proj.weight", F + "experts.{E}.w2.weight", DOWN, layers=MOE),
    )
    per_expert = Spec("per-expert", rules, dims, options=spec.options)
    src = save_hf(tmp_path / "hf", hf)
    hf_to_ms(per_expert, src, tmp_path / "ms", format="safetensors", progress=False)
    ms = load_dir(tmp_path / "ms")
    assert np.array_equal(ms["model.layers.2.feed_forward.experts.3.w2.weight"],
                          hf["model.layers.2.mlp.experts.3.down_proj.weight"])  # fmt: skip
    assert sum(".experts." in n for n in ms) == 2 * 4 * 3
    ms_to_hf(per_expert, tmp_path / "ms", tmp_path / "back", progress=False)
    assert _raw(load_dir(tmp_path / "back")) == _raw(hf)


def test_sparse_step_filter_selects_the_layers_hf_qwen3_moe_makes_sparse():
    """``every_nth_layer("decoder_sparse_step", "mlp_only_layers")`` against HF's own Qwen3-MoE layer choice."""
    from transformers import Qwen3MoeConfig, Qwen3MoeForCausalLM

    from mf_ext.convert.spec import every_nth_layer

    for step, only in ((1, []), (2, [3]), (3, [0, 5])):
        cfg = Qwen3MoeConfig(vocab_size=16, hidden_size=8, intermediate_size=8, moe_intermediate_size=4,
                             num_hidden_layers=6, num_attention_heads=2, num_key_value_heads=1, head_dim=4,
                             num_experts=2, num_experts_per_tok=1, decoder_sparse_step=step, mlp_only_layers=only)  # fmt: skip
        model = Qwen3MoeForCausalLM(cfg)
        hf_sparse = [i for i, layer in enumerate(model.model.layers) if hasattr(layer.mlp, "experts")]
        sel = every_nth_layer("decoder_sparse_step", "mlp_only_layers")
        assert [i for i in range(6) if sel(i, cfg.to_dict())] == hf_sparse, (step, only)
