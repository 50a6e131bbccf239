"""Every subcommand, given bad paths and bad options: a named error and exit 2, never a
Python traceback, nothing unpickled, earlier output intact.

The cases run through the real entry point in a child process (one process for all of
them, so torch is imported once); two also run as ``python -m mcsan`` on their own, and
a full disk is made real with RLIMIT_FSIZE (writes past it fail with EFBIG).
"""

from __future__ import annotations

import json
import resource
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from tiny_world import make_tiny_dataset

from mcsan.cli import build_parser
from mcsan.data.native import captions_path

SRC = str(Path(__file__).resolve().parents[1] / "src")
DRIVER = """
import contextlib, io, json, sys, traceback
from mcsan.cli import main
results = []
for argv in json.loads(sys.argv[1]):
    err = io.StringIO()
    try:
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            code = main(argv)
    except SystemExit as exc:
        code = exc.code
    except BaseException:
        code = "traceback"
        err.write(traceback.format_exc())
    results.append([code, err.getvalue()])
print(json.dumps(results))
"""
PROC = "/proc/mcsan-hostile"


class _Planted:
    """Unpickling this object creates ``marker``."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def _env() -> dict[str, str]:
    import os

    return {**os.environ, "PYTHONPATH": SRC, "OMP_NUM_THREADS": "1"}


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("hostile")
    ds = make_tiny_dataset(base / "ds", {"train": 4, "val": 2, "test": 2})
    leak = base / "leak"
    shutil.copytree(ds, leak)
    records = captions_path(leak).read_text().splitlines()
    first = json.loads(records[0])
    records.append(json.dumps({**first, "split": "test"}))
    captions_path(leak).write_text("\n".join(records) + "\n")
    null = base / "null"
    shutil.copytree(ds, null)
    captions_path(null).write_text(
        json.dumps({"video_id": "v1", "caption": None, "split": "train"}) + "\n"
    )
    marker = base / "pwned"
    torch.save({"model": _Planted(marker)}, base / "evil.pt")
    np.save(base / "feats.npy", np.ones((1, 4), np.float32))
    np.save(base / "names.npy", np.array([_Planted(marker)], dtype=object), allow_pickle=True)
    (base / "MSRVTT_data.json").write_text(
        json.dumps(
            {
                "videos": [{"video_id": "v1", "split": "train"}],
                "sentences": [{"video_id": "v1", "caption": "a man sings"}],
            }
        )
    )
    (base / "latin1.yaml").write_bytes(b"seed: 1 # caf\xe9\n")
    (base / "comments.yaml").write_text("# nothing but a comment\n\n")
    (base / "twice.yaml").write_text("train:\n  epochs: 2\nseed: 1\ntrain:\n  lr: 0.1\n")
    (base / "vatex_private_test.json").write_text(json.dumps([{"videoID": "a"}, {"videoID": "b"}]))
    for name in ("trn_names.npy", "val_names.npy"):  # HGR's lists as released: pickled
        np.save(base / name, np.array([name], dtype=object), allow_pickle=True)
    (base / "ref_captions.json").write_text(json.dumps({"v1": ["a man sings"]}))
    (base / "blank.json").write_text(json.dumps({
        "videos": [{"video_id": "v1", "split": "train"}],
        "sentences": [{"video_id": "v1", "caption": " \t "}]}))  # fmt: skip
    swapped = base / "swapped"
    shutil.copytree(ds, swapped)
    other = make_tiny_dataset(base / "other", {"train": 4, "val": 2, "test": 2}, seed=7)
    shutil.copy(other / "features" / "tiny.h5", swapped / "features" / "tiny.h5")
    (base / "captions.json").write_text(json.dumps([{"caption": "a dog"}]))
    (base / "lines.txt").write_text("a red ball rolls\n")
    (base / "empty").mkdir()
    (base / "clips").mkdir()
    (base / "clips" / "gone.mp4").symlink_to(base / "nowhere.mp4")  # a clip to list
    from mcsan.data.video.extract import shard_path
    from mcsan.data.video.store import FeatureSpec, FeatureStore

    FeatureStore.create(
        shard_path(base / "f.h5", 0, 2), FeatureSpec("t", 8, 2, {"frame": (2,)})
    ).close()
    return {"base": base, "ds": ds, "leak": leak, "null": null, "marker": marker,
            "swapped": swapped}


def cases(f: dict[str, Path]) -> list[tuple[list[str], str]]:
    """(argv, text the error must contain) for every subcommand."""
    b, out = f["base"], str(f["base"] / "out")
    ann = str(b / "MSRVTT_data.json")
    cases_ = [
        (["synth", "--out", f"{PROC}/w", "--videos", "2"], PROC),
        (["config", "--show", "--config", str(b / "missing.yaml")], "missing.yaml"),
        (["config", "--markdown", "--config", "world"], "leave out --config"),
        (["synth", "--out", out, "--videos", "0"], "--videos"),
        (["synth", "--out", out, "--videos", "2", "--size", "100000"], "--size"),
        (["extract", "--videos", str(b / "missing"), "--out", f"{out}/f.h5"], "missing"),
        (["extract", "--videos", str(b / "clips"), "--out", f"{PROC}/f.h5"], PROC),
        (["extract", "--videos", str(b / "empty"), "--out", out], "no clips found"),
        (["extract", "--videos", str(b / "empty"), "--out", out, "--fps", "-1"], "--fps"),
        (["extract", "--videos", str(b / "empty"), "--out", out, "--frames", "0"], "--frames"),
        (["extract", "--videos", str(b / "empty"), "--out", out, "--device", "potato"], "potato"),
        (["extract", "--out", str(b / "f.h5"), "--merge"], "f.shard1of2.h5"),
        (["parse", "--captions", str(b / "missing.txt"), "--out", out], "missing.txt"),
        (["parse", "--captions", str(b / "captions.json"), "--out", out], "JSON document"),
        (
            ["parse", "--captions", str(b / "lines.txt"), "--out", out, "--batch-size", "0"],
            "--batch-size",
        ),
        (
            ["convert", "msrvtt", "--annotations", str(b / "missing.json"), "--out", out],
            "missing.json",
        ),
        (["convert", "msrvtt", "--annotations", ann, "--out", f"{PROC}/c"], PROC),
        (["convert", "msrvtt", "--annotations", ann, ann, "--out", out], "identical content"),
        (
            ["convert", "msrvtt", "--annotations", ann, str(b / "lines.txt"), "--out", out],
            "lines.txt: not an MSR-VTT annotation file",
        ),
        (
            [
                "convert",
                "msrvtt",
                "--annotations",
                ann,
                "--features",
                str(b / "feats.npy"),
                "--feature-names",
                str(b / "names.npy"),
                "--feature-format",
                "npy-mean",
                "--out",
                out,
            ],
            "pickled",
        ),
        (
            ["convert", "msrvtt", "--annotations", ann, "--out", out, "--val-size", "-1"],
            "--val-size",
        ),
        (["info", str(b / "missing")], "no dataset card"),
        (["info", str(f["leak"])], "more than one split: video0000 (test+train)"),
        (["info", str(f["null"])], "captions.jsonl:1: caption of video 'v1' is null"),
        (["train", "--out", out, "--config", str(b / "latin1.yaml")], "latin1.yaml:1: not UTF-8"),
        (["train", "--out", out, "--set", "model.attention_heads=0"], "model.attention_heads"),
        (["train", "--out", out, "--set", "model.dropout=1"], "[0, 1)"),
        (["train", "--out", out, "--set", "train.weight_decay=-0.1"], "train.weight_decay"),
        (["train", "--out", out, "--set", "train.device=potato"], "potato"),
        (["train", "--out", f"{PROC}/t", "--set", f"data.root={f['ds']}"], PROC),
        (["train", "--out", out, "--set", f"data.root={f['leak']}"], "video0000 (test+train)"),
        (["evaluate", "--checkpoint", str(b / "missing.pt")], "missing.pt"),
        (["evaluate", "--checkpoint", str(b / "evil.pt")], "never loads"),
        (["evaluate", "--checkpoint", str(b / "evil.pt"), "--device", "potato"], "potato"),
        (
            [
                "index",
                "--checkpoint",
                str(b / "missing.pt"),
                "--dataset",
                str(f["ds"]),
                "--out",
                out,
            ],
            "missing.pt",
        ),
        (["search", "--index", str(b / "missing"), "a dog"], "not an mcsan index"),
        (["search", "--index", str(b / "missing"), "a dog", "-k", "0"], "-k"),
        (["serve", "--index", str(b / "missing")], "not an mcsan index"),
        (["serve", "--index", str(b / "missing"), "--port", "70000"], "--port"),
        (["ablate", "--config", str(b / "missing.yaml"), "--out", out], "missing.yaml"),
        (["demo", "--out", out, "--frames", "1"], "--frames"),
        (["demo", "--out", out, "--config", str(b / "latin1.yaml")], "latin1.yaml:1: not UTF-8"),
        # issue 28: identity at the joins, configs, real files
        (["synth", "--out", str(f["ds"]), "--videos", "2"], "already holds another dataset"),
        (["train", "--out", out, "--set", f"data.root={f['swapped']}"],
         "tiny.h5: not the features the dataset card"),
        (["train", "--out", out, "--config", str(b / "comments.yaml")], "empty (or only comments)"),
        (["train", "--out", out, "--config", str(b / "twice.yaml")],
         "twice.yaml:4: key 'train' given twice (also on line 1)"),
        (["convert", "vatex", "--annotations", str(b / "vatex_private_test.json"), "--out", out],
         "none of its 2 entries has English captions"),
        (["convert", "hgr", "--annotations", str(b / "ref_captions.json"),
          str(b / "trn_names.npy"), str(b / "val_names.npy"), "--out", out],
         "2 id list(s) hold pickled Python objects"),
        (["convert", "msrvtt", "--annotations", str(b / "blank.json"), "--out", out],
         "no usable caption to convert"),
        (["search", "--index", str(b / "missing"), "a dog", "-k", "1001"], "-k"),
    ]
    if not torch.cuda.is_available():
        cases_.append((["train", "--out", out, "--set", "train.device=cuda"], "no CUDA device"))
    return cases_


def test_every_subcommand_has_cases(files) -> None:
    commands = set(build_parser()._subparsers._group_actions[0].choices)  # noqa: SLF001
    assert commands == {argv[0] for argv, _ in cases(files)}


def test_bad_paths_and_options_give_a_named_error_and_exit_2(files) -> None:
    todo = cases(files)
    run = subprocess.run(
        [sys.executable, "-B", "-c", DRIVER, json.dumps([argv for argv, _ in todo])],
        capture_output=True,
        text=True,
        env=_env(),
        timeout=600,
        cwd=files["base"],
    )
    assert run.returncode == 0, run.stderr[-3000:]
    results = json.loads(run.stdout.strip().splitlines()[-1])
    failures = []
    for (argv, expected), (code, stderr) in zip(todo, results, strict=True):
        named = "error:" in stderr and expected in stderr and "Traceback" not in stderr
        if code != 2 or not named:
            failures.append(f"{' '.join(argv)} -> {code}: {stderr.strip()[-400:]}")
    assert not failures, "\n".join(failures)
    assert not files["marker"].exists()  # no pickle was run


def test_the_entry_point_itself_exits_2_without_traceback(files) -> None:
    for argv in (
        ["search", "--index", "x", "q", "-k", "-3"],
        ["synth", "--out", f"{PROC}/x", "--videos", "1"],
    ):
        run = subprocess.run(
            [sys.executable, "-B", "-m", "mcsan", *argv],
            capture_output=True,
            text=True,
            env=_env(),
            timeout=120,
        )
        assert run.returncode == 2 and "error:" in run.stderr
        assert "Traceback" not in run.stderr


def _file_size_limit(limit: int):
    def apply() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return apply


def test_training_onto_a_full_disk_is_named_without_traceback(files, tmp_path) -> None:
    from tiny_world import tiny_config_yaml

    config = tiny_config_yaml(files["ds"], tmp_path / "tiny.yaml", epochs=1)
    out = tmp_path / "run"
    run = subprocess.run(
        [sys.executable, "-B", "-m", "mcsan", "train", "--config", str(config), "--out", str(out)],
        capture_output=True,
        text=True,
        env=_env(),
        timeout=300,
        preexec_fn=_file_size_limit(3000),
    )
    assert run.returncode == 2 and "Traceback" not in run.stderr, run.stderr[-2000:]
    errors = [line for line in run.stderr.splitlines() if line.startswith("error: ")]
    assert errors and ": cannot write" in errors[-1], run.stderr[-2000:]  # cache or run


def test_a_full_disk_mid_write_is_named_and_keeps_the_earlier_output(files, tmp_path) -> None:
    out = tmp_path / "parsed.jsonl"
    out.write_text("earlier\n")
    run = subprocess.run(
        [
            sys.executable,
            "-B",
            "-m",
            "mcsan",
            "parse",
            "--captions",
            str(files["base"] / "lines.txt"),
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        env=_env(),
        timeout=300,
        preexec_fn=_file_size_limit(64),
    )
    assert run.returncode == 2 and "Traceback" not in run.stderr, run.stderr[-2000:]
    assert f"error: {out}: cannot" in run.stderr
    assert out.read_text() == "earlier\n"
    assert [p.name for p in tmp_path.iterdir()] == ["parsed.jsonl"]
