"""Every bad input of the issue: a one-line error naming the thing, exit status != 0, and nothing at the
destination that looks like a valid output (no file, no folder, no temporaries)."""

from __future__ import annotations

import json
import os
import signal
import struct
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mf_ext.convert.cli import main
from tests.convert.convert_helpers import REPO, listing, plugin, synth_hf


def _run(argv, capsys) -> tuple[int, str]:
    rc = main([str(a) for a in argv])
    err = capsys.readouterr().err.strip()
    return rc, err


def _assert_clean_failure(rc, err, match, out_parent: Path, before: list[str]):
    assert rc != 0
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith("mf-ext convert: error: "), err
    assert match in lines[0], err
    assert listing(out_parent) == before, "output folder changed"


def _break_missing_dir(src: Path):
    return src.parent / "nope"


def _break_no_weights(src: Path):
    for f in src.glob("*.safetensors*"):
        f.unlink()
    return src


def _break_no_config(src: Path):
    (src / "config.json").unlink()
    return src


def _break_truncated(src: Path):
    f = src / "model.safetensors"
    data = f.read_bytes()
    f.write_bytes(data[: len(data) - 100])
    return src


def _break_header(src: Path):
    f = src / "model.safetensors"
    data = bytearray(f.read_bytes())
    (n,) = struct.unpack("<Q", data[:8])
    data[8:12] = b"{{{{"
    f.write_bytes(bytes(data))
    return src


def _break_header_len(src: Path):
    f = src / "model.safetensors"
    data = f.read_bytes()
    f.write_bytes(struct.pack("<Q", 10**12) + data[8:])
    return src


def _rewrite(src: Path, fn):
    from safetensors.torch import load_file, save_file

    f = src / "model.safetensors"
    tensors = load_file(f)
    fn(tensors)
    save_file(tensors, f, metadata={"format": "pt"})
    return src


def _break_missing_tensor(src):
    return _rewrite(src, lambda t: t.pop("model.layers.1.mlp.up_proj.weight"))


def _break_unexpected_tensor(src):
    import torch

    return _rewrite(src, lambda t: t.__setitem__("model.layers.0.mlp.extra.weight", torch.zeros(2)))


def _break_shape(src):
    cfg = json.loads((src / "config.json").read_text())
    cfg["intermediate_size"] += 1
    (src / "config.json").write_text(json.dumps(cfg))
    return src


CASES = {
    "missing_dir": (_break_missing_dir, "does not exist"),
    "no_weights": (_break_no_weights, "no weights found in"),
    "no_config": (_break_no_config, "no config.json"),
    "truncated": (_break_truncated, "is truncated: tensor"),
    "corrupt_header": (_break_header, "corrupt safetensors header"),
    "corrupt_header_len": (_break_header_len, "corrupt safetensors header"),
    "missing_tensor": (_break_missing_tensor, "missing tensors in"),
    "unexpected_tensor": (_break_unexpected_tensor, "unexpected tensors in"),
    "shape_mismatch": (_break_shape, "has shape [48, 32] but"),
}


@pytest.mark.parametrize("fmt", ["ckpt", "safetensors"])
@pytest.mark.parametrize("case", list(CASES))
def test_bad_hf_input(tmp_path, capsys, case, fmt):
    breaker, match = CASES[case]
    src = breaker(synth_hf(tmp_path / "hf"))
    out_parent = tmp_path / "out"
    out_parent.mkdir()
    out = out_parent / ("w.ckpt" if fmt == "ckpt" else "w")
    rc, err = _run(["hf_to_ms", "--model", "llama", "--input_path", src, "--output_path", out, "--format", fmt], capsys)
    _assert_clean_failure(rc, err, match, out_parent, [])
    if case in ("missing_tensor", "unexpected_tensor"):
        assert (
            "model.layers.1.mlp.up_proj.weight" if case == "missing_tensor" else "model.layers.0.mlp.extra.weight"
        ) in err


def test_index_names_missing_shard(tmp_path, capsys):
    src = synth_hf(tmp_path / "hf", shards=3)
    (src / "model-00002-of-00003.safetensors").unlink()
    rc, err = _run(["hf_to_ms", "--model", "llama", "--input_path", src, "--output_path", tmp_path / "w.ckpt"], capsys)
    _assert_clean_failure(
        rc, err, "names shard 'model-00002-of-00003.safetensors', which does not exist", tmp_path, ["hf"]
    )


def test_unknown_model_name(tmp_path, capsys):
    src = synth_hf(tmp_path / "hf")
    rc, err = _run(["hf_to_ms", "--model", "lama", "--input_path", src, "--output_path", tmp_path / "w.ckpt"], capsys)
    _assert_clean_failure(rc, err, "unknown model 'lama' (did you mean 'llama'", tmp_path, ["hf"])


@pytest.mark.parametrize("fmt", ["ckpt", "safetensors"])
def test_unwritable_output(tmp_path, capsys, fmt):
    src = synth_hf(tmp_path / "hf")
    # /sys refuses file creation even for root (a chmod'ed folder would not stop root)
    out = "/sys/mf_ext_test.ckpt" if fmt == "ckpt" else "/sys/mf_ext_test"
    rc, err = _run(["hf_to_ms", "--model", "llama", "--input_path", src, "--output_path", out, "--format", fmt], capsys)
    assert rc != 0 and len(err.splitlines()) == 1 and f"cannot write output {out!r}" in err
    assert not Path(out).exists()


def test_missing_output_folders_are_created_and_removed_again_on_failure(tmp_path, capsys):
    src = synth_hf(tmp_path / "hf")
    rc, err = _run(
        ["hf_to_ms", "--model", "llama", "--input_path", src, "--output_path", tmp_path / "a" / "b" / "w.ckpt"], capsys
    )
    assert rc == 0, err
    assert (tmp_path / "a" / "b" / "w.ckpt").is_file()
    rc, err = _run(
        [
            "ms_to_hf",
            "--model",
            "llama",
            "--input_path",
            tmp_path / "a" / "b" / "w.ckpt",
            "--output_path",
            tmp_path / "c" / "d" / "hf_out",
        ],
        capsys,
    )
    assert rc == 0, err
    assert (tmp_path / "c" / "d" / "hf_out" / "config.json").is_file()
    # a conversion failing after the folders were made (fp16 overflow, found while streaming) removes them again
    big = synth_hf(tmp_path / "big")
    _rewrite(big, lambda t: t["model.layers.1.self_attn.k_proj.weight"].__setitem__((0, 0), 1e6))
    for fmt in ("ckpt", "safetensors"):
        rc, err = _run(
            [
                "hf_to_ms",
                "--model",
                "llama",
                "--input_path",
                big,
                "--output_path",
                tmp_path / "x" / "y" / "w",
                "--format",
                fmt,
                "--dtype",
                "fp16",
            ],
            capsys,
        )
        _assert_clean_failure(rc, err, "model.layers.1.self_attn.k_proj.weight", tmp_path, ["a", "big", "c", "hf"])


def test_fp16_overflow_names_the_tensor(tmp_path, capsys):
    import torch

    src = synth_hf(tmp_path / "hf")
    _rewrite(src, lambda t: t["model.layers.1.self_attn.k_proj.weight"].__setitem__((0, 0), 1e6))
    for fmt in ("ckpt", "safetensors"):
        rc, err = _run(
            [
                "hf_to_ms",
                "--model",
                "llama",
                "--input_path",
                src,
                "--output_path",
                tmp_path / "w",
                "--format",
                fmt,
                "--dtype",
                "fp16",
            ],
            capsys,
        )
        _assert_clean_failure(
            rc, err, "tensor 'model.layers.1.self_attn.k_proj.weight': value 1e+06 overflows float16", tmp_path, ["hf"]
        )
    del torch


def test_bad_ms_inputs(tmp_path, capsys):
    src = synth_hf(tmp_path / "hf")
    p = plugin("llama")
    p.convert_pt_to_ms(src, tmp_path / "w.ckpt", progress=False)
    data = (tmp_path / "w.ckpt").read_bytes()
    (tmp_path / "trunc.ckpt").write_bytes(data[:-50])
    (tmp_path / "trunc.ckpt.config.json").write_text((tmp_path / "w.ckpt.config.json").read_text())
    (tmp_path / "junk.ckpt").write_bytes(b"\x00\xff" * 100)
    (tmp_path / "noconf.ckpt").write_bytes(data)
    before = listing(tmp_path)
    for name, match in [
        ("trunc.ckpt", "not a valid MindSpore checkpoint"),
        ("junk.ckpt", "not a valid MindSpore checkpoint"),
        ("noconf.ckpt", "no config.json beside"),
        ("absent.ckpt", "does not exist"),
    ]:
        rc, err = _run(
            ["ms_to_hf", "--model", "llama", "--input_path", tmp_path / name, "--output_path", tmp_path / "back"],
            capsys,
        )
        _assert_clean_failure(rc, err, match, tmp_path, before)
    # a checkpoint of another shape than its config
    cfg = json.loads((tmp_path / "w.ckpt.config.json").read_text())
    cfg["vocab_size"] = 97
    rc, err = _run(
        [
            "ms_to_hf",
            "--model",
            "llama",
            "--input_path",
            tmp_path / "w.ckpt",
            "--output_path",
            tmp_path / "back",
            "--hf_config",
            _write(tmp_path / "c97.json", cfg),
        ],
        capsys,
    )
    _assert_clean_failure(rc, err, "has shape [96, 32] but", tmp_path, sorted(before + ["c97.json"]))


def _write(path: Path, obj) -> Path:
    path.write_text(json.dumps(obj))
    return path


def _cli_cmd(*args) -> list[str]:
    return [
        sys.executable,
        "-c",
        "import sys; from mf_ext.convert.cli import main; sys.exit(main(sys.argv[1:]))",
        *map(str, args),
    ]


@pytest.mark.parametrize("fmt", ["ckpt", "safetensors", "hf"])
def test_sigkill_mid_write_leaves_nothing_valid(tmp_path, fmt):
    src = synth_hf(tmp_path / "hf", hidden=512, heads=8, kv_heads=8, inter=1024, vocab=16000, layers=6)
    out_parent = tmp_path / "out"
    out_parent.mkdir()
    out = out_parent / ("w.ckpt" if fmt == "ckpt" else "w")
    if fmt == "hf":  # ms_to_hf: the HF folder output
        plugin("llama").convert_pt_to_ms(src, tmp_path / "m.ckpt", progress=False)
        args = ("ms_to_hf", "--model", "llama", "--input_path", tmp_path / "m.ckpt", "--output_path", out)
    else:
        args = ("hf_to_ms", "--model", "llama", "--input_path", src, "--output_path", out, "--format", fmt)
    proc = subprocess.Popen(
        _cli_cmd(*args, "--dtype", "bf16", "--no_progress"),
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.time() + 60
    killed = False
    while time.time() < deadline and proc.poll() is None:
        tmps = [p for p in out_parent.iterdir() if ".tmp-" in p.name]
        if tmps and (tmps[0].is_dir() and any(tmps[0].iterdir()) or tmps[0].is_file() and tmps[0].stat().st_size):
            os.kill(proc.pid, signal.SIGKILL)
            killed = True
            break
        time.sleep(0.001)
    proc.wait()
    assert killed, "conversion finished before it could be killed"
    assert not out.exists() and not Path(str(out) + ".config.json").exists()
    assert all(n.startswith(".") and ".tmp-" in n for n in listing(out_parent))  # only hidden temporaries
    # the next run cleans the dead writer's temporaries and succeeds
    rc = subprocess.run(_cli_cmd(*args, "--no_progress"), cwd=REPO, capture_output=True).returncode
    assert rc == 0
    assert not [n for n in listing(out_parent) if ".tmp-" in n]


def test_disk_full_is_one_line_and_leaves_nothing(tmp_path):
    """File-size limit (the same EFBIG/ENOSPC path a full disk takes)."""
    import resource

    src = synth_hf(tmp_path / "hf", hidden=256, vocab=4000)
    out_parent = tmp_path / "out"
    out_parent.mkdir()

    def limit():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (1_000_000, 1_000_000))

    for fmt, out in (("ckpt", out_parent / "w.ckpt"), ("safetensors", out_parent / "w")):
        r = subprocess.run(
            _cli_cmd("hf_to_ms", "--model", "llama", "--input_path", src, "--output_path", out, "--format", fmt),
            cwd=REPO,
            capture_output=True,
            text=True,
            preexec_fn=limit,
        )
        err = r.stderr.strip()
        assert r.returncode == 1 and len(err.splitlines()) == 1, err
        assert f"cannot write output {str(out)!r}: File too large" in err
        assert listing(out_parent) == []
