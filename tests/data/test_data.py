"""`mf-ext data`: reading, Llama 3 template, label masking (hand-checked), packing, MindRecord, bad input."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mf_ext.data.chat import IGNORE_INDEX, encode_conversation  # noqa: E402
from mf_ext.data.preprocess import main, preprocess  # noqa: E402
from mf_ext.data.sources import DataError, Record, to_messages  # noqa: E402
from tests.data.sft_tokenizers import (
    DEMO_DATA,
    FAMILY_DIR,
    family_chat_template,
    make_bpe_tokenizer_dir,
    make_wordlevel_tokenizer,
)

REPO = Path(__file__).resolve().parents[2]
X = IGNORE_INDEX
TEMPLATE = family_chat_template()


def read_mindrecord(path: Path) -> list[dict]:
    import mindspore.dataset as ds

    d = ds.MindDataset(str(path), columns_list=["input_ids", "labels"], shuffle=False)
    return [{k: v.tolist() for k, v in row.items()} for row in d.create_dict_iterator(output_numpy=True)]


def leftovers(tmp_path: Path, name: str = "out.mindrecord") -> list[str]:
    return sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(name) or p.name.startswith("." + name))


# ---------------------------------------------------------------- label masking, checked by hand


def test_label_mask_hand_checked_multi_turn():
    # ids: 0 <|begin_of_text|> 1 <|end_of_text|> 2 <|start_header_id|> 3 <|end_header_id|> 4 <|eot_id|>
    #      5 <unk> 6 "\n\n" 7 " " 8 system 9 user 10 assistant 11 be 12 brief 13 hi 14 ok 15 bye 16 "." 17 "!"
    tok = make_wordlevel_tokenizer(["system", "user", "assistant", "be", "brief", "hi", "ok", "bye", ".", "!"])
    msgs = [
        {"role": "system", "content": "be brief."},
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": "ok!"},
        {"role": "user", "content": "bye"},
        {"role": "assistant", "content": "bye ok"},
    ]
    ids, labels = encode_conversation(tok, msgs, chat_template=TEMPLATE)
    # <bot> <sh> system <eh> \n\n be ␠ brief . <eot>
    # <sh> user <eh> \n\n hi <eot>
    # <sh> assistant <eh> \n\n [ok ! <eot>]
    # <sh> user <eh> \n\n bye <eot>
    # <sh> assistant <eh> \n\n [bye ␠ ok <eot>]
    expected_ids = (
        [0, 2, 8, 3, 6, 11, 7, 12, 16, 4]
        + [2, 9, 3, 6, 13, 4]
        + [2, 10, 3, 6, 14, 17, 4]
        + [2, 9, 3, 6, 15, 4]
        + [2, 10, 3, 6, 15, 7, 14, 4]
    )
    expected_labels = [X] * 10 + [X] * 6 + [X, X, X, X, 14, 17, 4] + [X] * 6 + [X, X, X, X, 15, 7, 14, 4]
    assert ids == expected_ids
    assert labels == expected_labels
    # train on everything: labels are the ids
    assert encode_conversation(tok, msgs, train_on="all", chat_template=TEMPLATE) == (expected_ids, expected_ids)


def test_label_mask_gpt2_style_tokenizer_falls_back_to_segments(tmp_path):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(make_bpe_tokenizer_dir(tmp_path / "t", pretokenizer="gpt2"))
    msgs = [{"role": "user", "content": "Add the two numbers."}, {"role": "assistant", "content": "3 + 4 = 7."}]
    ids, labels = encode_conversation(tok, msgs, chat_template=TEMPLATE)
    assert len(ids) == len(labels)
    trained = [t for t in labels if t != X]
    assert tok.decode(trained) == "3 + 4 = 7.<|eot_id|>"
    assert tok.decode(ids[: len(ids) - len(trained)]).endswith("<|start_header_id|>assistant<|end_header_id|>\n\n")


def test_formats_normalise_to_the_same_messages():
    alpaca = Record("a", {"instruction": "Say hi.", "input": "to Bob", "output": "Hi Bob.", "system": "Be nice."})
    share = Record(
        "s",
        {
            "system": "Be nice.",
            "conversations": [{"from": "human", "value": "Say hi.\n\nto Bob"}, {"from": "gpt", "value": "Hi Bob."}],
        },
    )
    openai = Record(
        "o",
        {
            "messages": [
                {"role": "system", "content": "Be nice."},
                {"role": "user", "content": "Say hi.\n\nto Bob"},
                {"role": "assistant", "content": "Hi Bob."},
                {"role": "user", "content": "trailing turn without answer is dropped"},
            ]
        },
    )
    assert to_messages(alpaca) == to_messages(share) == to_messages(openai)
    with pytest.raises(DataError, match=r"^x\[3\]: no assistant/gpt response"):
        to_messages(Record("x[3]", {"conversations": [{"from": "human", "value": "hi"}]}))
    with pytest.raises(DataError, match=r"role 'robot'"):
        to_messages(Record("x", {"conversations": [{"from": "robot", "value": "hi"}]}))


# ---------------------------------------------------------------- end to end, MindRecord


@pytest.fixture(scope="module")
def tok_dir(tmp_path_factory):
    return make_bpe_tokenizer_dir(tmp_path_factory.mktemp("tok") / "hf")


def test_cli_demo_data_pad_and_pack(tok_dir, tmp_path, capsys):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tok_dir)
    n = len(json.loads(DEMO_DATA.read_text()))
    out = tmp_path / "out.mindrecord"
    rc = main(
        [
            "--tokenizer",
            str(tok_dir),
            "--register_path",
            str(FAMILY_DIR),
            "--input",
            str(DEMO_DATA),
            "--output",
            str(out),
            "--seq_length",
            "96",
        ]
    )
    assert rc == 0
    summary = capsys.readouterr().out
    assert f"read {n}, written {n}, truncated 0" in summary
    rows = read_mindrecord(out)
    assert len(rows) == n
    pad = tok.pad_token_id
    for row, sample in zip(rows, json.loads(DEMO_DATA.read_text()), strict=True):
        ids, labels = row["input_ids"], row["labels"]
        assert len(ids) == len(labels) == 97
        assert all(lab in (X, t) for lab, t in zip(labels, ids, strict=True))
        assert tok.decode([t for t in labels if t != X]) == sample["output"] + "<|eot_id|>"
        assert ids[0] == tok.convert_tokens_to_ids("<|begin_of_text|>")
        real = [t for t in ids if t != pad]
        assert ids[len(real) :] == [pad] * (97 - len(real))  # right padding only
    # packing keeps every sample whole and needs fewer rows
    packed = tmp_path / "packed.mindrecord"
    assert main(["--tokenizer", str(tok_dir), "--register_path", str(FAMILY_DIR), "--input", str(DEMO_DATA), "--output", str(packed),
                 "--seq_length", "255", "--packing", "pack"]) == 0  # fmt: skip
    prow = read_mindrecord(packed)
    assert len(prow) < n / 3
    bot = tok.convert_tokens_to_ids("<|begin_of_text|>")
    assert sum(r["input_ids"].count(bot) for r in prow) == n
    n_trained = sum(sum(t != X for t in r["labels"]) for r in rows)
    assert sum(sum(t != X for t in r["labels"]) for r in prow) == n_trained


def test_truncation_is_counted(tok_dir, tmp_path):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tok_dir)
    data = tmp_path / "d.jsonl"
    rows = [{"instruction": "Describe the sea in one sentence.", "output": "The sea is wide. " * 20}]
    rows.append({"instruction": "hi", "output": "ok"})
    rows.append({"instruction": "Describe a cat in one sentence. " * 20, "output": "A cat."})  # prompt fills the row
    data.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    stats = preprocess(tok, data, tmp_path / "out.mindrecord", 32, progress=False, chat_template=TEMPLATE)
    assert (stats.samples_read, stats.samples_truncated, stats.samples_dropped, stats.samples_written) == (3, 2, 1, 2)
    got = read_mindrecord(tmp_path / "out.mindrecord")
    assert [len(r["input_ids"]) for r in got] == [33, 33]
    assert got[0]["input_ids"][-1] != tok.pad_token_id  # the long one is cut, not padded


def test_sharegpt_jsonl_and_parquet_agree(tok_dir, tmp_path):
    import datasets
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tok_dir)
    convs = [
        {
            "conversations": [
                {"from": "human", "value": f"Is the number even or odd? {i}"},
                {"from": "gpt", "value": f"{i} is {'even' if i % 2 == 0 else 'odd'}."},
            ]
        }  # fmt: skip
        for i in range(6)
    ]
    jl = tmp_path / "c.jsonl"
    jl.write_text("".join(json.dumps(c) + "\n" for c in convs))
    pq = tmp_path / "c.parquet"
    datasets.Dataset.from_list(convs).to_parquet(str(pq))
    preprocess(tok, jl, tmp_path / "a.mindrecord", 48, progress=False, chat_template=TEMPLATE)
    preprocess(tok, pq, tmp_path / "b.mindrecord", 48, progress=False, chat_template=TEMPLATE)
    assert read_mindrecord(tmp_path / "a.mindrecord") == read_mindrecord(tmp_path / "b.mindrecord")


# ---------------------------------------------------------------- bad input: one line, nothing half-written


def run_cli(*args: str) -> subprocess.CompletedProcess:
    code = "import sys; from mf_ext.data import main; sys.exit(main(sys.argv[1:]))"
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, cwd=REPO, timeout=120)


def test_malformed_jsonl_line_stop_and_skip(tok_dir, tmp_path):
    data = tmp_path / "d.jsonl"
    good = json.dumps({"instruction": "hi", "output": "ok"})
    data.write_text(f"{good}\n{good}\n{{'instruction': broken\n{good}\n")
    out = tmp_path / "out.mindrecord"
    r = run_cli(
        "--tokenizer",
        str(tok_dir),
        "--register_path",
        str(FAMILY_DIR),
        "--input",
        str(data),
        "--output",
        str(out),
        "--seq_length",
        "32",
    )
    assert r.returncode == 2
    err = [line for line in r.stderr.splitlines() if "error" in line]  # (the rest is the progress bar)
    assert len(err) == 1 and err[0].startswith("mf-ext data: error: ") and r.stderr.rstrip().endswith(err[0])
    assert f"{data}:3: malformed JSON line" in err[0] and "--on_error skip" in err[0]
    assert leftovers(tmp_path) == []
    import contextlib
    import io

    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):  # in-process: the stop case above already covered the subprocess exit
        rc = main(["--tokenizer", str(tok_dir), "--register_path", str(FAMILY_DIR), "--input", str(data), "--output", str(out), "--seq_length", "32",
                   "--on_error", "skip"])  # fmt: skip
    assert rc == 0
    text = buf.getvalue()
    assert "read 3, written 3" in text and "skipped (bad) 1" in text and f"{data}:3" in text
    assert leftovers(tmp_path) == ["out.mindrecord", "out.mindrecord.db"]
    assert len(read_mindrecord(out)) == 3


def test_empty_missing_and_bad_records(tok_dir, tmp_path):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tok_dir)
    out = tmp_path / "out.mindrecord"
    empty = tmp_path / "e.json"
    empty.write_text("[]")
    with pytest.raises(DataError, match=r"yielded no usable samples .*nothing written"):
        preprocess(tok, empty, out, 32, progress=False, chat_template=TEMPLATE)
    with pytest.raises(DataError, match=r"dataset path '.*nope.json' does not exist"):
        preprocess(tok, tmp_path / "nope.json", out, 32, progress=False, chat_template=TEMPLATE)
    broken = tmp_path / "b.json"
    broken.write_text('[{"instruction": "a", "output": "b"},\n {"instruction": ]')
    with pytest.raises(DataError, match=r"b.json:2:\d+: malformed JSON"):
        preprocess(tok, broken, out, 32, progress=False, chat_template=TEMPLATE)
    wrong = tmp_path / "w.json"
    wrong.write_text(json.dumps([{"instruction": "a", "output": "b"}, {"question": "a"}]))
    with pytest.raises(DataError, match=r"w.json\[1\]: cannot tell the format from keys \['question'\]"):
        preprocess(tok, wrong, out, 32, progress=False, chat_template=TEMPLATE)
    stats = preprocess(tok, wrong, out, 32, on_error="skip", progress=False, chat_template=TEMPLATE)
    assert (stats.samples_written, stats.samples_bad) == (1, 1)
    # an old output is replaced as a pair, never left half-written: a failing run leaves the previous one intact
    before = read_mindrecord(out)
    with pytest.raises(DataError):
        preprocess(tok, empty, out, 32, progress=False, chat_template=TEMPLATE)
    assert read_mindrecord(out) == before
    assert leftovers(tmp_path) == ["out.mindrecord", "out.mindrecord.db"]


def test_help_is_fast_and_has_examples():
    t0 = time.perf_counter()
    r = run_cli("--help")
    dt = time.perf_counter() - t0
    assert r.returncode == 0 and "examples:" in r.stdout and "--seq_length" in r.stdout
    assert dt < 1.0, f"--help took {dt:.2f} s"


def test_failure_mid_write_leaves_nothing(tmp_path):
    from mf_ext.data.mindrecord import write_mindrecord

    def rows():
        for i in range(2500):  # more than one write chunk reaches the temporary file before the failure
            if i == 2100:
                raise RuntimeError("boom")
            yield [1, 2, 3], [X, 2, 3]

    with pytest.raises(RuntimeError, match="boom"):
        write_mindrecord(rows(), tmp_path / "out.mindrecord")
    assert list(tmp_path.iterdir()) == []


def test_plugin_tokenizer_from_register_path(tmp_path, capsys):
    """The README path: no --tokenizer, the plug-in YAML's tokenizer (tiktoken Llama3Tokenizer, demo vocab)."""
    from mf_ext.api import load_tokenizer

    plugin = REPO / "research" / "llama3_1"
    out = tmp_path / "out.mindrecord"
    assert (
        main(["--register_path", str(plugin), "--input", str(DEMO_DATA), "--output", str(out), "--seq_length", "128"])
        == 0
    )
    tok = load_tokenizer(config=str(plugin / "finetune.yaml"), register_path=str(plugin))
    rows = read_mindrecord(out)
    samples = json.loads(DEMO_DATA.read_text())
    assert len(rows) == len(samples)
    for row, sample in zip(rows, samples, strict=True):
        assert tok.decode([t for t in row["labels"] if t != X]) == sample["output"] + "<|eot_id|>"
        assert row["input_ids"][0] == tok.convert_tokens_to_ids("<|begin_of_text|>")


def test_chat_template_comes_from_the_family_not_from_core(tok_dir, tmp_path):
    """A tokenizer without a template needs the family's: none given is a one-line error; an HF --tokenizer folder
    whose config.json a family reads gets that family's template; the tokenizer's own template always wins."""
    from transformers import AutoTokenizer

    from mf_ext.data.preprocess import family_chat_template as pick

    tok = AutoTokenizer.from_pretrained(tok_dir)
    msgs = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "ok"}]
    with pytest.raises(DataError, match="carries no chat template and the model family declares none"):
        encode_conversation(tok, msgs)
    assert pick(None, str(tok_dir)) is None  # no config.json beside it: no family
    with_cfg = tmp_path / "hf"
    with_cfg.mkdir()
    (with_cfg / "config.json").write_text(json.dumps({"architectures": ["LlamaForCausalLM"]}))
    assert pick(None, str(with_cfg)) == TEMPLATE
    assert pick([str(FAMILY_DIR)], None) == TEMPLATE
    own = "{% for m in messages %}[{{ m['role'] }}]{{ m['content'] }}{% endfor %}"
    tok.chat_template = own
    ids, _ = encode_conversation(tok, msgs, chat_template=TEMPLATE)
    assert tok.decode(ids) == "[user]hi[assistant]ok"
