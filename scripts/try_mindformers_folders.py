#!/usr/bin/env python
"""Run MindFormers' own research folders unchanged through run_mindformer_ext.py and ``mf-ext convert`` on CPU.

    R=/work/.mirror/mindspore-lab+mindformers/repo
    git -C $R archive r1.8.0 research/llama3_1 research/qwen2_5 research/telechat2 research/deepseek3 \\
        | tar -x -C /tmp/mf_r18
    git -C $R archive r1.5.0 research/internlm2 | tar -x -C /tmp/mf_r15
    python scripts/try_mindformers_folders.py /tmp/mf_r18 /tmp/mf_r15 [--only qwen2_5,telechat2] [--work DIR]

Each ROOT holds ``research/<name>/`` as MindFormers ships it (this script contains none of its code and changes none of
its files). For every folder found it runs, in a fresh process each:

* ``predict --load_checkpoint``  the folder's own predict (or finetune) YAML with tiny CPU-sized
  ``--model.model_config.*`` overrides, a tokenizer made here, and weights: converted by MindFormers' own converter
  (llama3_1), by the folder's converter (qwen2_5) or random from the folder's model (telechat2);
* ``predict --convert``          the same YAML with an HF folder made here (a tiny random transformers model, or the
  folder's own reverse converter's output for telechat2, whose HF model is remote code);
* ``mf-ext convert``             ``hf_to_ms --register_path FOLDER`` (the folder's ``convert_weight.py``);

and prints one table: the result, the generated text or the one-line error, and whether the text equals the
reference (HF transformers' greedy text for the same weights; for telechat2 the ``--load_checkpoint`` run's).
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DEMO = REPO / "research" / "llama3_1" / "demo"
PROMPT = "The keeper climbed the stairs"
NEW_TOKENS = 12
CPU = ["--context.device_target", "CPU", "--max_new_tokens", str(NEW_TOKENS), "--model.model_config.eos_token_id", "-1"]


def mc(**values) -> list[str]:
    """``--model.model_config.KEY VALUE`` overrides."""
    out = []
    for key, value in values.items():
        out += [f"--model.model_config.{key}", str(value)]
    return out


def run(cmd: list[str], work: Path, timeout: int = 1200) -> tuple[int, str, str, float]:
    # this checkout's mf_ext, whatever an installed mf-ext points at
    path = os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH", "")) if p)
    env = dict(os.environ, MF_EXT_CACHE=str(work / "cache"), GLOG_v="3", PYTHONPATH=path)
    t0 = time.perf_counter()
    res = subprocess.run(cmd, cwd=work, env=env, capture_output=True, text=True, timeout=timeout)
    return res.returncode, res.stdout, res.stderr, time.perf_counter() - t0


def python(code: str, work: Path) -> None:
    """Run a helper snippet in a fresh process (MindSpore contexts do not mix); fail loudly."""
    rc, out, err, _ = run([sys.executable, "-c", textwrap.dedent(code)], work)
    if rc:
        raise SystemExit(f"helper failed:\n{code}\n{err[-3000:]}")


def launcher(yaml: Path, folder: Path, *args: str) -> list[str]:
    return [
        sys.executable,
        str(REPO / "run_mindformer_ext.py"),
        "--config",
        str(yaml),
        "--register_path",
        str(folder),
        "--predict_data",
        PROMPT,
        *CPU,
        *args,
    ]


def convert_cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "mf_ext.cli", "convert", *args]


def summary(rc: int, out_dir: Path, err: str) -> tuple[str, str]:
    """(result, detail): the generated text (the launcher's text_generation_result.txt) or the one-line error."""
    if rc == 0:
        result = out_dir / "text_generation_result.txt"
        return "ok", (result.read_text().strip() if result.is_file() else "")
    tb = "Traceback" in err
    errors = [line for line in err.splitlines() if "error:" in line]
    detail = errors[-1] if errors else (err.strip().splitlines() or ["(no output)"])[-1]
    return ("TRACEBACK" if tb else "error"), detail


# ------------------------------------------------------------------------------------------------ references
def hf_greedy(hf_dir: Path, tokenizer: str, work: Path, add_special_tokens: bool = False) -> str:
    """HF transformers' greedy text for the prompt; ``tokenizer`` is Python building ``tok`` (transformers)."""
    out = work / f"ref_{hf_dir.name}.txt"
    python(
        f"""
        import torch, transformers
        {tokenizer}
        ids = tok({PROMPT!r}, add_special_tokens={add_special_tokens})["input_ids"]
        model = transformers.AutoModelForCausalLM.from_pretrained({str(hf_dir)!r}, dtype=torch.float32).eval()
        with torch.no_grad():
            gen = model.generate(torch.tensor([ids]), max_new_tokens={NEW_TOKENS}, do_sample=False,
                                 eos_token_id=None, pad_token_id=0)
        open({str(out)!r}, "w").write(tok.decode(gen[0].tolist(), skip_special_tokens=True))
        """,
        work,
    )
    return out.read_text()


def bpe_files(work: Path, vocab_size: int = 400) -> Path:
    """vocab.json + merges.txt (+ tokenizer.json) of a byte-level BPE trained here with the `tokenizers` library."""
    folder = work / "bpe"
    if not (folder / "vocab.json").is_file():
        from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

        tok = Tokenizer(models.BPE())
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        tok.decoder = decoders.ByteLevel()
        trainer = trainers.BpeTrainer(
            vocab_size=vocab_size, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False
        )
        tok.train([str(DEMO / "corpus.txt")], trainer)
        folder.mkdir(parents=True, exist_ok=True)
        tok.model.save(str(folder))
        tok.save(str(folder / "tokenizer.json"))
    return folder


def sentencepiece_model(work: Path) -> Path:
    path = work / "sp" / "sp.model"
    if not path.is_file():
        import sentencepiece as spm

        path.parent.mkdir(parents=True, exist_ok=True)
        spm.SentencePieceTrainer.train(
            input=str(DEMO / "corpus.txt"),
            model_prefix=str(path.with_suffix("")),
            vocab_size=512,
            model_type="bpe",
            unk_id=0,
            bos_id=1,
            eos_id=2,
            pad_id=3,
            minloglevel=2,
        )
    return path


# ------------------------------------------------------------------------------------------------ folders
def llama3_1(folder: Path, work: Path) -> list[tuple]:
    """r1.8.0 research/llama3_1: built-in LlamaForCausalLM + its Llama3Tokenizer (tiktoken file), no converter."""
    yaml = folder / "llama3_1_8b" / "predict_llama3_1_8b.yaml"
    hf = DEMO / "hf"  # mf-ext's embedded demo model (a Llama 3.1 architecture trained on demo/corpus.txt)
    cfg = json.loads((hf / "config.json").read_text())
    args = [
        "--processor.tokenizer.vocab_file",
        str(DEMO / "tokenizer.model"),
        *mc(
            seq_length=64,
            hidden_size=cfg["hidden_size"],
            num_layers=cfg["num_hidden_layers"],
            num_heads=cfg["num_attention_heads"],
            n_kv_heads=cfg["num_key_value_heads"],
            intermediate_size=cfg["intermediate_size"],
            vocab_size=cfg["vocab_size"],
            max_position_embedding=cfg["max_position_embeddings"],
            compute_dtype="float32",
            param_init_type="float32",
            pad_token_id=1026,  # the YAML's pad token <|reserved_special_token_0|> in the demo vocabulary
        ),
        "--model.model_config.scaling_factor.original_max_position_embeddings",
        str(cfg["rope_scaling"]["original_max_position_embeddings"]),
    ]
    ckpt = work / "llama3_1_mindformers.ckpt"
    python(
        f"""
        from mindformers.models.llama.convert_weight import convert_pt_to_ms
        convert_pt_to_ms({str(hf)!r}, {str(ckpt)!r})  # MindFormers' own Llama converter
        """,
        work,
    )
    ref = hf_greedy(
        hf, f"tok = transformers.PreTrainedTokenizerFast(tokenizer_file={str(hf / 'tokenizer.json')!r})", work
    )
    return [
        ("predict --load_checkpoint", launcher(yaml, folder, *args, "--load_checkpoint", str(ckpt)), ref),
        ("predict --convert", launcher(yaml, folder, *args, "--convert", str(hf)), ref),
        (
            "mf-ext convert",
            convert_cli(
                "hf_to_ms",
                "--register_path",
                str(folder),
                "--input_path",
                str(hf),
                "--output_path",
                str(work / "llama3_1.ckpt"),
            ),
            None,
        ),
    ]


def qwen2_5(folder: Path, work: Path) -> list[tuple]:
    """r1.8.0 research/qwen2_5: built-in LlamaForCausalLM (q/k/v biases) + its Qwen2Tokenizer; qkv_concat True."""
    yaml = folder / "predict_qwen2_5_7b_instruct.yaml"
    bpe = bpe_files(work)
    hf = work / "qwen2_hf"
    from transformers import Qwen2Tokenizer

    # the model's vocabulary is exactly the tokenizer's (the BPE's tokens + Qwen2Tokenizer's special tokens)
    vocab = len(Qwen2Tokenizer(vocab_file=str(bpe / "vocab.json"), merges_file=str(bpe / "merges.txt")))
    python(
        f"""
        import torch
        from transformers import Qwen2Config, Qwen2ForCausalLM
        torch.manual_seed(0)
        cfg = Qwen2Config(vocab_size={vocab}, hidden_size=64, intermediate_size=160, num_hidden_layers=2,
                          num_attention_heads=4, num_key_value_heads=2, tie_word_embeddings=False,
                          rope_theta=1000000.0, rms_norm_eps=1e-6, max_position_embeddings=1024)
        Qwen2ForCausalLM(cfg).eval().save_pretrained({str(hf)!r})
        """,
        work,
    )
    tok = (
        f"tok = transformers.Qwen2Tokenizer(vocab_file={str(bpe / 'vocab.json')!r}, "
        f"merges_file={str(bpe / 'merges.txt')!r})"
    )
    ref = hf_greedy(hf, tok, work)
    args = [
        "--processor.tokenizer.vocab_file",
        str(bpe / "vocab.json"),
        "--processor.tokenizer.merges_file",
        str(bpe / "merges.txt"),
        *mc(
            seq_length=64,
            hidden_size=64,
            num_layers=2,
            num_heads=4,
            n_kv_heads=2,
            intermediate_size=160,
            vocab_size=vocab,
            max_position_embedding=1024,
            compute_dtype="float32",
            param_init_type="float32",
            rotary_dtype="float32",
            do_sample=False,
            pad_token_id=vocab - 1,  # the YAML's pad token <|endoftext|>, the tokenizer's last id here
        ),
    ]
    ckpt = work / "qwen2_5.ckpt"
    no_fuse = mc(qkv_concat=False)  # the folder's converter writes separate q/k/v (it cannot fuse)
    return [
        (
            "mf-ext convert",
            convert_cli(
                "hf_to_ms", "--register_path", str(folder), "--input_path", str(hf), "--output_path", str(ckpt)
            ),
            None,
        ),
        (
            "predict --load_checkpoint (qkv_concat False)",
            launcher(yaml, folder, *args, *no_fuse, "--load_checkpoint", str(ckpt)),
            ref,
        ),
        ("predict --convert (qkv_concat False)", launcher(yaml, folder, *args, *no_fuse, "--convert", str(hf)), ref),
        ("predict --convert (YAML's qkv_concat True)", launcher(yaml, folder, *args, "--convert", str(hf)), None),
        (
            "mf-ext convert --dtype bf16 --dry-run",
            convert_cli(
                "hf_to_ms",
                "--register_path",
                str(folder),
                "--input_path",
                str(hf),
                "--output_path",
                str(work / "qwen_dry.ckpt"),
                "--dtype",
                "bf16",
                "--dry-run",
            ),
            None,
        ),
    ]


def telechat2(folder: Path, work: Path) -> list[tuple]:
    """r1.8.0 research/telechat2: its own TelechatForCausalLM (decoder layers hard-wire RmsNorm); finetune YAML only."""
    yaml = folder / "telechat2-7b" / "finetune_telechat_7b.yaml"
    sp = sentencepiece_model(work)
    arch = dict(seq_length=64, hidden_size=64, num_layers=2, num_heads=4, vocab_size=512, intermediate_size=128)
    args = [
        "--run_mode",
        "predict",
        "--processor.tokenizer.type",
        "TelechatTokenizer",
        "--processor.tokenizer.auto_register",
        "telechat_tokenizer.TelechatTokenizer",
        "--processor.tokenizer.vocab_file",
        str(sp),
        *mc(**arch, compute_dtype="float32"),
    ]
    ckpt = work / "telechat2_random.ckpt"
    python(
        f"""
        import mindspore as ms, mf_ext
        model = mf_ext.load_model({str(yaml)!r}, register_path={str(folder)!r}, mode=1,
                                  overrides={{"run_mode": "predict"}}, **{arch!r}, compute_dtype="float32")
        ms.save_checkpoint(model, {str(ckpt)!r})  # random weights of the folder's own model
        """,
        work,
    )
    hf = work / "telechat2_hf"
    hf.mkdir(exist_ok=True)
    (hf / "config.json").write_text(json.dumps({"architectures": ["TelechatForCausalLM"], "model_type": "telechat"}))
    return [
        ("predict --load_checkpoint", launcher(yaml, folder, *args, "--load_checkpoint", str(ckpt)), None),
        (
            "mf-ext convert --reversed (their convert_reversed.py)",
            convert_cli(
                "--register_path",
                str(folder),
                "--input_path",
                str(ckpt),
                "--output_path",
                str(hf / "pytorch_model.bin"),
                "--reversed",
            ),
            None,
        ),
        ("predict --convert (their reversed output)", launcher(yaml, folder, *args, "--convert", str(hf)), "=#0"),
        (
            "mf-ext convert",
            convert_cli(
                "hf_to_ms",
                "--register_path",
                str(folder),
                "--input_path",
                str(hf),
                "--output_path",
                str(work / "telechat2.ckpt"),
                "--dtype",
                "fp32",
            ),
            None,
        ),
    ]


def deepseek3(folder: Path, work: Path) -> list[tuple]:
    """r1.8.0 research/deepseek3: a factory model.arch picking its parallel-core inference network for predict."""
    yaml = folder / "deepseek3_671b" / "predict_deepseek3_671b.yaml"
    bpe = bpe_files(work)
    arch = dict(
        seq_length=64,
        hidden_size=64,
        num_layers=2,
        num_heads=4,
        max_position_embeddings=8192,
        intermediate_size=128,
        kv_lora_rank=16,
        q_lora_rank=32,
        qk_rope_head_dim=8,
        v_head_dim=16,
        qk_nope_head_dim=16,
        vocab_size=448,
    )
    dtypes = dict(
        compute_dtype="float32",
        layernorm_compute_type="float32",
        softmax_compute_type="float32",
        rotary_dtype="float32",
        router_dense_type="float32",
        param_init_type="float32",
    )
    moe = [
        "--moe_config.expert_num",
        "4",
        "--moe_config.num_experts_chosen",
        "2",
        "--moe_config.moe_intermediate_size",
        "32",
        "--moe_config.first_k_dense_replace",
        "1",
        "--moe_config.topk_group",
        "1",
        "--moe_config.n_group",
        "1",
    ]
    args = [
        "--processor.tokenizer.vocab_file",
        str(bpe / "tokenizer.json"),
        "--processor.tokenizer.tokenizer_file",
        str(bpe / "tokenizer.json"),
        *mc(**arch, **dtypes),
        *moe,
    ]
    hf = work / "deepseek3_hf"
    python(
        f"""
        import torch
        from transformers import DeepseekV3Config, DeepseekV3ForCausalLM
        torch.manual_seed(0)
        cfg = DeepseekV3Config(vocab_size=448, hidden_size=64, intermediate_size=128, moe_intermediate_size=32,
                               num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=4, n_routed_experts=4,
                               num_experts_per_tok=2, n_group=1, topk_group=1, first_k_dense_replace=1,
                               kv_lora_rank=16, q_lora_rank=32, qk_rope_head_dim=8, v_head_dim=16, qk_nope_head_dim=16)
        DeepseekV3ForCausalLM(cfg).eval().save_pretrained({str(hf)!r})
        """,
        work,
    )
    placeholder = work / "deepseek3_placeholder.ckpt"  # the model cannot be built on CPU to make real weights
    placeholder.write_bytes(b"")
    return [
        ("predict --load_checkpoint", launcher(yaml, folder, *args, "--load_checkpoint", str(placeholder)), None),
        ("predict --convert", launcher(yaml, folder, *args, "--convert", str(hf)), None),
        (
            "mf-ext convert",
            convert_cli(
                "hf_to_ms",
                "--register_path",
                str(folder),
                "--input_path",
                str(hf),
                "--output_path",
                str(work / "deepseek3_ms"),
            ),
            None,
        ),
    ]


def internlm2(folder: Path, work: Path) -> list[tuple]:
    """r1.5.0 research/internlm2: siblings imported as top-level modules; decoder layers hard-wire RmsNorm.

    Written for MindFormers 1.5, it imports ``LayerSetting`` from where MindFormers 1.9 no longer has it; the last rows
    run a work copy with that one import pointed at its MindFormers 1.9 home (nothing else changed).
    """
    yaml = Path("internlm2_7b") / "predict_internlm2_7b.yaml"
    sp = sentencepiece_model(work)
    arch = dict(
        seq_length=64, hidden_size=64, num_layers=2, num_heads=4, n_kv_heads=2, vocab_size=512, intermediate_size=128
    )
    args = [
        "--processor.tokenizer.vocab_file",
        str(sp),
        *mc(**arch, compute_dtype="float32", param_init_type="float32", checkpoint_name_or_path=""),
    ]
    hf = work / "internlm2_hf"  # the layout of an InternLM2 HF folder (remote code: config.json with auto_map)
    python(
        f"""
        import json, torch, transformers
        torch.manual_seed(0)
        cfg = transformers.LlamaConfig(vocab_size=512, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                                       num_attention_heads=4, num_key_value_heads=2)
        transformers.LlamaForCausalLM(cfg).save_pretrained({str(hf)!r})
        c = json.load(open({str(hf / "config.json")!r}))
        c.update(architectures=["InternLM2ForCausalLM"], model_type="internlm2",
                 auto_map={{"AutoConfig": "configuration_internlm2.InternLM2Config",
                           "AutoModelForCausalLM": "modeling_internlm2.InternLM2ForCausalLM"}})
        json.dump(c, open({str(hf / "config.json")!r}, "w"))
        """,
        work,
    )
    placeholder = work / "internlm2_placeholder.ckpt"
    placeholder.write_bytes(b"")
    rows = [
        (
            "predict --load_checkpoint",
            launcher(folder / yaml, folder, *args, "--load_checkpoint", str(placeholder)),
            None,
        ),
        ("predict --convert", launcher(folder / yaml, folder, *args, "--convert", str(hf)), None),
        (
            "mf-ext convert",
            convert_cli(
                "hf_to_ms",
                "--register_path",
                str(folder),
                "--input_path",
                str(hf),
                "--output_path",
                str(work / "internlm2.ckpt"),
            ),
            None,
        ),
    ]
    port = work / "port" / "research" / "internlm2"
    if not port.is_dir():
        shutil.copytree(folder, port)
        model_py = port / "internlm2_model.py"
        model_py.write_text(
            model_py.read_text().replace(
                "from mindformers.models.utils import LayerSetting",
                "from mindformers.parallel_core.training_graph.transformer.utils import LayerSetting",
            )
        )
    ckpt = work / "internlm2_random.ckpt"
    python(
        f"""
        import mindspore as ms, mf_ext
        model = mf_ext.load_model({str(port / yaml)!r}, register_path={str(port)!r}, mode=1,
                                  overrides={{"load_checkpoint": ""}}, **{arch!r}, compute_dtype="float32",
                                  param_init_type="float32", checkpoint_name_or_path="")
        ms.save_checkpoint(model, {str(ckpt)!r})  # random weights of the folder's own model
        """,
        work,
    )
    rows += [
        (
            "work copy: predict --load_checkpoint",
            launcher(port / yaml, port, *args, "--load_checkpoint", str(ckpt)),
            None,
        ),
        (
            "work copy: mf-ext convert --reversed",
            convert_cli(
                "--register_path",
                str(port),
                "--input_path",
                str(ckpt),
                "--output_path",
                str(work / "internlm2_back.bin"),
                "--reversed",
            ),
            None,
        ),
    ]
    return rows


FOLDERS = {
    "llama3_1": llama3_1,
    "qwen2_5": qwen2_5,
    "telechat2": telechat2,
    "deepseek3": deepseek3,
    "internlm2": internlm2,
}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__
    )
    p.add_argument("roots", nargs="+", type=Path, help="folders holding research/<name>/ of a MindFormers release")
    p.add_argument("--only", default=None, help="comma-separated folder names (default: every one found)")
    p.add_argument("--work", type=Path, default=None, help="scratch folder (default: a new temporary one)")
    p.add_argument("--verbose", action="store_true", help="print every command and its stderr tail")
    args = p.parse_args(argv)
    work = args.work or Path(tempfile.mkdtemp(prefix="mf_folders_"))
    work.mkdir(parents=True, exist_ok=True)
    wanted = set(args.only.split(",")) if args.only else set(FOLDERS)
    rows = []
    for root in args.roots:
        for name, make in FOLDERS.items():
            folder = (root / "research" / name).resolve()
            if name not in wanted or not folder.is_dir():
                continue
            sub = work / name
            sub.mkdir(exist_ok=True)
            texts = []
            for i, (label, cmd, ref) in enumerate(make(folder, sub)):
                out_dir = sub / f"out{i}"
                if cmd[1].endswith("run_mindformer_ext.py"):
                    cmd = [*cmd, "--output_dir", str(out_dir)]
                rc, out, err, dt = run(cmd, sub)
                result, detail = summary(rc, out_dir, err)
                texts.append(detail if rc == 0 else None)
                if ref == "=#0":
                    ref = texts[0] or ""
                same = "" if ref is None or rc else ("yes" if detail == ref.strip() else f"NO (ref: {ref.strip()!r})")
                shown = repr(detail) if rc == 0 else detail
                rows.append((f"{name} ({root.name})", label, result, same, f"{dt:.0f}s", shown))
                if args.verbose:
                    print(shlex.join(cmd), "\n", err[-2000:], file=sys.stderr)
                print(" | ".join(rows[-1]), flush=True)
    print("\n| folder | command | result | = reference | time | text or error |")
    print("|---|---|---|---|---|---|")
    for row in rows:
        print("| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |")
    print(f"\n(work folder: {work})")
    return 0 if all(r[2] != "TRACEBACK" for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
