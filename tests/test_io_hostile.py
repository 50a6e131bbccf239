"""mcsan.core.io under hostile input: outputs that cannot be written, bytes that are not text,
data files that carry pickles. Every failure is a named MCSANError; nothing is unpickled."""

from __future__ import annotations

import errno
import json
import os
import pickle
import stat
from pathlib import Path

import numpy as np
import pytest
import torch

from mcsan.core.errors import CheckpointError, DataError, OutputError
from mcsan.core.io import (
    atomic_directory,
    atomic_path,
    atomic_write_text,
    make_dir,
    read_jsonl,
    read_text_lines,
)
from mcsan.core.safe_load import load_npy, load_torch


class _Planted:
    """Unpickling this object creates the file named ``marker``: a stand-in for any code."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def test_unwritable_destinations_are_named(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    for target in (Path("/proc/mcsan-test/out.json"), blocker / "out.json"):
        with pytest.raises(OutputError, match=str(target.parent)) as info:  # or the file
            atomic_write_text(target, "{}")
        assert "cannot" in str(info.value) and "; " in str(info.value)  # what failed; the fix
    with pytest.raises(OutputError, match="create the folder"):
        make_dir(blocker / "sub")


def test_full_disk_mid_write_keeps_the_earlier_output(tmp_path: Path) -> None:
    target = tmp_path / "report.json"
    target.write_text("earlier")
    with pytest.raises(OutputError, match="disk is full") as info, atomic_path(target) as tmp:
        tmp.write_text("half")
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    assert str(target) in str(info.value)
    assert target.read_text() == "earlier"
    assert [p.name for p in tmp_path.iterdir()] == ["report.json"]  # no temp file left


def test_an_input_error_inside_a_write_is_not_called_an_output_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError), atomic_path(tmp_path / "out.txt"):
        (tmp_path / "missing-input.txt").read_text()


def test_outputs_get_the_users_umask_not_0600(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        atomic_write_text(tmp_path / "metrics.json", "{}")
        with atomic_path(tmp_path / "last.pt") as tmp:
            torch.save({"a": 1}, tmp)
        with atomic_directory(tmp_path / "index") as folder:
            (folder / "meta.json").write_text("{}")
    finally:
        os.umask(old)
    # mcsan.core.io reads the umask once, at import; this test runs under the usual 022
    for path, mode in (
        (tmp_path / "metrics.json", 0o644),
        (tmp_path / "last.pt", 0o644),
        (tmp_path / "index", 0o755),
    ):
        assert stat.S_IMODE(path.stat().st_mode) == mode, path


def test_atomic_dir_cleans_what_a_killed_swap_left(tmp_path: Path) -> None:
    target = tmp_path / "index"
    with atomic_directory(target) as folder:
        (folder / "v").write_text("1")
    # a kill between "move the old aside" and "move the new in": target gone, .old kept
    os.rename(target, tmp_path / ".index.abc.old")
    (tmp_path / ".index.def.tmp").mkdir()
    with atomic_directory(target) as folder:
        assert (target / "v").read_text() == "1"  # put back before the new one is built
        (folder / "v").write_text("2")
    assert (target / "v").read_text() == "2"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["index"]


def test_non_utf8_jsonl_names_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "captions.jsonl"
    path.write_bytes(b'{"caption": "ok"}\n{"caption": "caf\xe9"}\n')
    with pytest.raises(DataError, match=rf"{path}:2: not UTF-8 text \(byte 0xe9"):
        list(read_jsonl(path))
    bom = tmp_path / "bom.txt"
    bom.write_bytes(b"\xef\xbb\xbfvideo1\r\nvideo2\n")
    assert list(read_text_lines(bom)) == ["video1", "video2"]


def test_a_json_array_is_not_read_as_json_lines(tmp_path: Path) -> None:
    path = tmp_path / "captions.jsonl"
    path.write_text(json.dumps([{"caption": "a"}, {"caption": "b"}], indent=1))
    with pytest.raises(DataError, match=r":1: .*one JSON document, not JSON lines"):
        list(read_jsonl(path))
    path.write_text('["a", "b"]\n')
    with pytest.raises(DataError, match=r":1: expected a JSON object per line, got list"):
        list(read_jsonl(path))


def test_a_pickled_npy_is_refused_and_never_run(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    names = tmp_path / "trn_names.npy"
    np.save(names, np.array([_Planted(marker)], dtype=object), allow_pickle=True)
    raw = tmp_path / "raw.npy"
    raw.write_bytes(pickle.dumps(_Planted(marker)))
    with pytest.raises(DataError, match="pickled Python objects, which mcsan never loads"):
        load_npy(names, what="id list")
    with pytest.raises(DataError, match="not a .npy file"):
        load_npy(raw, what="id list")
    assert not marker.exists()
    plain = tmp_path / "ok.npy"
    np.save(plain, np.array(["video1", "video2"]))
    assert list(load_npy(plain)) == ["video1", "video2"]


def test_a_pickled_checkpoint_is_refused_without_advising_unsafe_loading(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    path = tmp_path / "best.pt"
    torch.save({"model": _Planted(marker)}, path)
    with pytest.raises(CheckpointError) as info:
        load_torch(path)
    message = str(info.value)
    assert str(path) in message and "never loads those" in message
    assert "weights_only" not in message
    assert not marker.exists()


FULL_DISK_WRITERS = """
import sys
import numpy as np
import torch
from mcsan.inference.checkpoint import save_checkpoint
from mcsan.data.video.store import FeatureSpec, FeatureStore
from mcsan.core.errors import OutputError
from mcsan.core.io import atomic_path
from mcsan.search import VideoIndex

def store(path):
    with atomic_path(path) as tmp, FeatureStore.create(tmp, FeatureSpec("t", 8, 4, {"f": (512,)}),
                                                       overwrite=True) as s:
        for k in range(128):
            s.write(f"v{k}", {"f": np.ones((4, 512), np.float32)})

def index(path):
    emb = {"global": np.eye(4096, 64, dtype=np.float32)}
    VideoIndex.build(emb, [str(i) for i in range(4096)], None, {"global": 1.0}, "0" * 64).save(path)

writers = {"last.pt": lambda p: save_checkpoint(p, {"model": {"w": torch.zeros(100000)}}),
           "features.h5": store, "index": index}
for name, write in writers.items():
    try:
        write(sys.argv[1] + "/" + name)
        print(name, "written")
    except OutputError as exc:
        print(name, "named:", exc)
"""


def test_torch_hdf5_and_faiss_writes_on_a_full_disk_are_named(tmp_path: Path) -> None:
    import resource
    import signal
    import subprocess
    import sys

    def limit() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (200_000, 200_000))

    for name in ("last.pt", "features.h5"):
        (tmp_path / name).write_text("earlier")
    (tmp_path / "index").mkdir()
    (tmp_path / "index" / "meta.json").write_text("earlier")
    src = str(Path(__file__).resolve().parents[1] / "src")
    run = subprocess.run(
        [sys.executable, "-B", "-c", FULL_DISK_WRITERS, str(tmp_path)],
        capture_output=True,
        text=True,
        preexec_fn=limit,
        timeout=300,
        env={**os.environ, "PYTHONPATH": src},
    )
    assert run.returncode == 0, run.stderr[-2000:]
    lines = run.stdout.strip().splitlines()
    assert len(lines) == 3 and all(" named: " in line for line in lines), run.stdout
    for line, name in zip(lines, ("last.pt", "features.h5", "index"), strict=True):
        assert f"{tmp_path / name}: cannot write" in line, line  # mid-write, not at create
    assert (tmp_path / "last.pt").read_text() == (tmp_path / "features.h5").read_text() == "earlier"
    assert (tmp_path / "index" / "meta.json").read_text() == "earlier"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["features.h5", "index", "last.pt"]


def test_no_source_file_unpickles() -> None:
    """np.load refuses pickles unless told otherwise; torch.load only in mcsan.core.safe_load."""
    src = Path(__file__).resolve().parents[1] / "src" / "mcsan"
    for path in src.rglob("*.py"):
        text = path.read_text(encoding="utf-8")
        for unsafe in ("allow_pickle=True", "pickle.load", "weights_only=False", "Unpickler"):
            assert unsafe not in text, (path, unsafe)
        if path.name != "safe_load.py":
            assert "torch.load(" not in text, path


def test_an_altered_checkpoint_is_refused_by_name(tmp_path: Path) -> None:
    from mcsan.inference.checkpoint import FORMAT, REQUIRED_KEYS, load_checkpoint

    path = tmp_path / "best.pt"
    torch.save({"format": FORMAT, **{key: 3 for key in REQUIRED_KEYS}}, path)
    with pytest.raises(CheckpointError, match=rf"{path}: checkpoint fields \['model', "):
        load_checkpoint(path)
