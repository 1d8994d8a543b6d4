"""No traceback for a user error, at any entry point; no side effects in the current directory; token ids that fit.

Issue 8 items 7-9: each failure the issue measured is reproduced here through the real launcher (a subprocess), and
must end in one ``error:`` line with exit status 2 (130 for Ctrl-C), with nothing half-written left behind.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from tests.hf_fixtures import make_hf_llama

REPO = Path(__file__).resolve().parent.parent
PLUGIN = REPO / "research" / "llama3_1"
DEMO_YAML = PLUGIN / "predict_demo.yaml"
PREDICT_YAML = PLUGIN / "predict.yaml"
DEMO_HF = PLUGIN / "demo" / "hf"
DEMO_VOCAB = PLUGIN / "demo" / "tokenizer.model"
LAUNCHER = REPO / "run_mindformer_ext.py"


def launch(args: list[str], cwd: Path, cache: Path, **kw) -> subprocess.CompletedProcess:
    env = dict(os.environ, MF_EXT_CACHE=str(cache))
    env.pop("MF_EXT_VERBOSE", None)
    env.pop("LOG_MF_PATH", None)
    return subprocess.run(
        [sys.executable, str(LAUNCHER), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=600, **kw
    )


def assert_one_error_line(res: subprocess.CompletedProcess, needle: str, code: int = 2) -> str:
    assert res.returncode == code, (res.returncode, res.stderr[-3000:])
    assert "Traceback" not in res.stderr, res.stderr[-3000:]
    lines = [line for line in res.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, res.stderr[-3000:]
    assert needle in lines[0], lines[0]
    return lines[0]


def plugin_copy(tmp_path: Path, name: str = "llama_copy") -> Path:
    dst = tmp_path / name
    shutil.copytree(PLUGIN, dst, ignore=shutil.ignore_patterns("demo", "demo_data", "__pycache__"))
    return dst


# ---------------------------------------------------------------------------------------------------- item 8
def test_truncated_safetensors_through_convert_is_one_line(tmp_path):
    hf = make_hf_llama(tmp_path / "hf", vocab_size=1280, seed=1)
    st = hf / "model.safetensors"
    data = st.read_bytes()
    st.write_bytes(data[: len(data) - 4096])  # header intact, the last tensor's bytes cut off
    cache = tmp_path / "cache"
    res = launch(
        ["--config", str(DEMO_YAML), "--register_path", str(PLUGIN), "--convert", str(hf), "--predict_data", "x"],
        tmp_path,
        cache,
    )
    assert_one_error_line(res, "model.safetensors")
    assert not (cache / "convert").exists() or not any((cache / "convert").iterdir()), list(cache.rglob("*"))


CHEAP_CASES = {
    "missing config": (["--config", "nope.yaml"], "config 'nope.yaml' does not exist"),
    "missing register path": (
        ["--config", str(DEMO_YAML), "--register_path", "no_such_dir", "--predict_data", "x"],
        "--register_path: folder 'no_such_dir' does not exist",
    ),
    "no predict data": (["--config", str(DEMO_YAML), "--register_path", str(PLUGIN)], "predict needs --predict_data"),
    "no weights": (
        ["--config", str(PREDICT_YAML), "--register_path", str(PLUGIN), "--predict_data", "x"],
        "predict needs weights",
    ),
    "read-only output dir": (
        ["--config", str(DEMO_YAML), "--register_path", str(PLUGIN), "--predict_data", "x", "--output_dir", "/sys/o"],
        "--output_dir: '/sys/o' is not writable",
    ),
    "output dir is a file": (
        ["--config", str(DEMO_YAML), "--register_path", str(PLUGIN), "--predict_data", "x", "--output_dir", "f/o"],
        "is not a folder",
    ),
    "convert folder without config.json": (
        ["--config", str(DEMO_YAML), "--register_path", str(PLUGIN), "--predict_data", "x", "--convert", "."],
        "has no config.json",
    ),
    "missing eval data": (
        ["--config", str(DEMO_YAML), "--register_path", str(PLUGIN), "--run_mode", "eval"]
        + ["--eval_dataset_dir", "none.mindrecord"],
        "--eval_dataset_dir: 'none.mindrecord' does not exist",
    ),
}


@pytest.mark.parametrize("case", list(CHEAP_CASES))
def test_cheap_checks_fail_before_mindspore_is_imported(tmp_path, case):
    argv, needle = CHEAP_CASES[case]
    (tmp_path / "f").write_text("a file, not a folder")
    code = (
        "import sys\nfrom mf_ext.launcher import main\nrc = main(sys.argv[1:])\n"
        "print('heavy:', sorted(m for m in ('mindspore', 'mindformers', 'torch') if m in sys.modules))\n"
        "sys.exit(rc)\n"
    )
    env = dict(os.environ, PYTHONPATH=str(REPO), MF_EXT_CACHE=str(tmp_path / "cache"))
    t0 = time.perf_counter()
    res = subprocess.run(
        [sys.executable, "-c", code, *argv], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120
    )
    assert_one_error_line(res, needle)
    assert "heavy: []" in res.stdout, res.stdout
    assert time.perf_counter() - t0 < 60  # generous: the point is that nothing heavy was imported


def test_ctrl_c_during_convert_exits_130_and_leaves_no_cache_folder(tmp_path):
    plugin = plugin_copy(tmp_path)
    started = tmp_path / "started"
    # A converter that starts writing, then takes long: the user presses Ctrl-C meanwhile.
    (plugin / "convert_weight.py").write_text(
        "import os, time\nfrom pathlib import Path\n\nMODEL_NAMES = ()\n\n\n"
        "def convert_pt_to_ms(input_path, output_path, dtype=None, **kw):\n"
        "    Path(output_path).with_name('.model.ckpt.tmp').write_bytes(b'partial')\n"
        f"    Path({str(started)!r}).write_text('started')\n"
        "    time.sleep(300)\n"
    )
    cache = tmp_path / "cache"
    env = dict(os.environ, MF_EXT_CACHE=str(cache))
    # --convert_dtype: predict would load the demo's rename-only safetensors in place, without converting
    argv = ["--config", str(DEMO_YAML), "--register_path", str(plugin), "--convert", str(DEMO_HF)]
    argv += ["--convert_dtype", "float32"]
    proc = subprocess.Popen(
        [sys.executable, str(LAUNCHER), *argv, "--predict_data", "x", "--output_dir", str(tmp_path / "out")],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.time() + 300
        while not started.exists() and proc.poll() is None and time.time() < deadline:
            time.sleep(0.2)
        assert started.exists(), proc.communicate(timeout=60)
        assert any((cache / "convert").iterdir())  # the conversion had begun writing into the cache
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    res = subprocess.CompletedProcess(proc.args, proc.returncode, out, err)
    assert_one_error_line(res, "interrupted", code=130)
    assert not any((cache / "convert").iterdir()), list(cache.rglob("*"))


def test_cpu_op_missing_names_model_class_and_op(tmp_path):
    plugin = plugin_copy(tmp_path)
    model_py = plugin / "llama3_1_model.py"
    # MindFormers' internlm2/telechat2 layers call the fused RmsNorm kernel, which MindSpore has only on Ascend:
    # the copied model's norms do the same.
    fused = (
        "\n\nimport mindspore.ops as _ops\n"
        "from mf_ext.modules import layers as _layers\n\n\n"
        "def _fused_rms_norm(self, x):\n"
        "    return _ops.rms_norm(x, self.weight, self.eps)[0]\n\n\n"
        "_layers.RMSNorm.construct = _fused_rms_norm\n"
    )
    model_py.write_text(model_py.read_text() + fused)
    res = launch(
        ["--config", str(DEMO_YAML), "--register_path", str(plugin), "--predict_data", "x", "--max_new_tokens", "2"]
        + ["--output_dir", str(tmp_path / "out")],
        tmp_path,
        tmp_path / "cache",
    )
    line = assert_one_error_line(res, "Llama3ForCausalLM cannot run on CPU")
    assert "'RmsNorm'" in line
    assert not (tmp_path / "out" / "text_generation_result.txt").exists()


def test_mf_ext_subcommands_print_one_line(tmp_path):
    """The dispatcher catches MfExtError once, whatever the subcommand raises."""
    env = dict(os.environ, PYTHONPATH=str(REPO), MF_EXT_CACHE=str(tmp_path / "cache"))
    cases = [
        (["data", "--register_path", "nope", "--input", "x.json", "--output", "o.mindrecord", "--seq_length", "8"],
         "register path 'nope' does not exist"),
        (["export", "--register_path", str(PLUGIN), "--checkpoint", "none.ckpt", "--output", "hf"],
         "checkpoint 'none.ckpt' does not exist"),
        (["verify", "--register_path", str(PLUGIN), "--hf_path", "nohf", "--ms_path", "x.ckpt"], "does not exist"),
        (["convert", "hf_to_ms", "--model", "llama", "--input_path", "nohf", "--output_path", "o.ckpt"], "nohf"),
    ]  # fmt: skip
    for argv, needle in cases:
        res = subprocess.run(
            [sys.executable, "-m", "mf_ext.cli", *argv], cwd=tmp_path, env=env, capture_output=True, text=True
        )
        assert res.returncode != 0, (argv, res.stderr)
        assert "Traceback" not in res.stderr, res.stderr
        lines = [line for line in res.stderr.splitlines() if "error:" in line]
        assert len(lines) == 1 and needle in lines[0], (argv, res.stderr)
    # python -m mf_ext.train.export is an entry point of its own
    res = subprocess.run(
        [sys.executable, "-m", "mf_ext.train.export", "--register_path", "nope", "--checkpoint", "c.ckpt"]
        + ["--output", "hf"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
    )
    assert res.returncode == 2 and "Traceback" not in res.stderr
    assert [line for line in res.stderr.splitlines() if "error:" in line] == [
        line for line in res.stderr.splitlines() if line.strip()
    ]


# ------------------------------------------------------------------------------------------ items 7, 9 and 11
@pytest.fixture(scope="module")
def llama31_yaml_on_demo_weights(tmp_path_factory):
    """README's predict example: predict.yaml (Llama 3.1 8B's ids: pad 128004) with --convert of the demo's HF folder
    (vocab 1280; its config.json has no pad id) and its tokenizer, run in an empty cwd with --output_dir elsewhere."""
    tmp = tmp_path_factory.mktemp("readme_predict")
    cwd = tmp / "cwd"
    cwd.mkdir()
    prompt = "On a small island at the edge of a cold grey sea"
    argv = ["--config", str(PREDICT_YAML), "--register_path", str(PLUGIN), "--convert", str(DEMO_HF)]
    argv += ["--processor.tokenizer.vocab_file", str(DEMO_VOCAB), "--predict_data", prompt, "--max_new_tokens", "8"]
    argv += ["--output_dir", str(tmp / "out")]
    return launch(argv, cwd, tmp / "cache"), cwd, tmp / "out", prompt


def test_yaml_pad_id_outside_the_vocab_is_taken_from_the_hf_folder(llama31_yaml_on_demo_weights):
    res, _, out, prompt = llama31_yaml_on_demo_weights
    assert res.returncode == 0, res.stderr[-3000:]
    assert "pad_token_id 128004 is outside vocab_size 1280; using 1028" in res.stdout
    from tests.test_launcher import hf_greedy_text

    assert (out / "text_generation_result.txt").read_text().strip() == hf_greedy_text(DEMO_HF, prompt, 8)


def test_nothing_written_to_cwd_and_no_warnings(llama31_yaml_on_demo_weights):
    res, cwd, out, _ = llama31_yaml_on_demo_weights
    assert res.returncode == 0, res.stderr[-3000:]
    assert list(cwd.iterdir()) == []
    assert "WARNING" not in res.stderr and "WARNING" not in res.stdout, res.stdout + res.stderr
    logs = sorted(p.name for p in (out / "log" / "rank_0").iterdir())
    assert logs == ["error.log", "info.log"]
    assert "Import PyNative" in (out / "log" / "rank_0" / "info.log").read_text()  # kept in the file


def test_convert_progress_leaves_no_bar_and_text_on_its_own_line(llama31_yaml_on_demo_weights):
    res, _, out, _ = llama31_yaml_on_demo_weights
    assert "%|" not in res.stderr and "\r" not in res.stderr, res.stderr
    text = (out / "text_generation_result.txt").read_text().strip()
    assert text in res.stdout.splitlines()
    # predict loads the demo's rename-only safetensors in place: no conversion, so no bar to leave behind
    assert any(line.startswith("[mf-ext] loading ") and "in place" in line for line in res.stdout.splitlines())


def test_pad_id_without_any_source_is_refused_naming_the_key(tmp_path):
    hf = tmp_path / "hf"
    hf.mkdir()
    for name in ("config.json", "model.safetensors"):  # no generation_config.json, no tokenizer files
        shutil.copy(DEMO_HF / name, hf / name)
    res = launch(
        ["--config", str(PREDICT_YAML), "--register_path", str(PLUGIN), "--convert", str(hf), "--predict_data", "x"]
        + ["--processor.tokenizer.pad_token", "<|no such token|>", "--output_dir", str(tmp_path / "out")],
        tmp_path,
        tmp_path / "cache",
    )
    assert_one_error_line(res, "model.model_config.pad_token_id: 128004 is outside the vocabulary")


def test_verify_readme_example_on_the_demo(tmp_path):
    """README's `mf-ext verify` example uses predict.yaml (pad 128004): it crashed on a 1280-token model."""
    from mf_ext.registry import load_plugin

    ckpt = tmp_path / "demo.ckpt"
    load_plugin(PLUGIN).convert_pt_to_ms(str(DEMO_HF), str(ckpt), progress=False)
    env = dict(os.environ, PYTHONPATH=str(REPO), MF_EXT_CACHE=str(tmp_path.parent / "verify_cache"))
    env.pop("GLOG_v", None)
    res = subprocess.run(
        [sys.executable, "-m", "mf_ext.cli", "verify", "--register_path", str(PLUGIN), "--hf_path", str(DEMO_HF)]
        + ["--ms_path", str(ckpt), "--steps", "4", "--mode", "1"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert res.returncode == 0, res.stdout + res.stderr[-3000:]
    assert "PASS" in res.stdout and "greedy tokens: 4/4 agree" in res.stdout
    assert "WARNING" not in res.stdout + res.stderr, res.stderr  # item 9: MindSpore / MindFormers warnings to the log
    assert not (tmp_path / "output").exists()  # item 9: MindFormers' log went to the cache, not into the cwd


def test_generate_refuses_pad_and_eos_outside_the_vocab(tmp_path, monkeypatch):
    import mf_ext
    from mf_ext.generation import GenerationError

    monkeypatch.setenv("MF_EXT_CACHE", str(tmp_path / "cache"))
    model = mf_ext.load_model(DEMO_YAML, register_path=PLUGIN, mode=1)
    ids = np.array([[1024, 5, 6]], dtype=np.int32)
    model.config.pad_token_id = 128004
    with pytest.raises(GenerationError, match=r"pad_token_id: 128004 is outside the model's vocabulary \[0, 1280\)"):
        mf_ext.generate(model, ids, 2)
    model.config.pad_token_id = 1028
    with pytest.raises(GenerationError, match=r"eos_token_id: \[128009\] outside the model's vocabulary"):
        mf_ext.generate(model, ids, 2, eos_token_id=[1025, 128009])
    assert mf_ext.generate(model, ids, 2, eos_token_id=1025).shape[1] >= 4
