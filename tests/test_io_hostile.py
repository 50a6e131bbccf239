"""mcsan.io under hostile input: outputs that cannot be written, bytes that are not text,
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

from mcsan.errors import CheckpointError, DataError, OutputError
from mcsan.io import (
    atomic_dir,
    atomic_path,
    atomic_write_text,
    load_npy,
    load_torch,
    make_dir,
    read_jsonl,
    read_text_lines,
)


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
        with atomic_dir(tmp_path / "index") as folder:
            (folder / "meta.json").write_text("{}")
    finally:
        os.umask(old)
    # mcsan.io reads the umask once, at import; this test runs under the usual 022
    for path, mode in ((tmp_path / "metrics.json", 0o644), (tmp_path / "last.pt", 0o644),
                       (tmp_path / "index", 0o755)):
        assert stat.S_IMODE(path.stat().st_mode) == mode, path


def test_atomic_dir_cleans_what_a_killed_swap_left(tmp_path: Path) -> None:
    target = tmp_path / "index"
    with atomic_dir(target) as folder:
        (folder / "v").write_text("1")
    # a kill between "move the old aside" and "move the new in": target gone, .old kept
    os.rename(target, tmp_path / ".index.abc.old")
    (tmp_path / ".index.def.tmp").mkdir()
    with atomic_dir(target) as folder:
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
    for path in (names, raw):
        with pytest.raises(DataError, match="pickled Python objects, which mcsan never loads"):
            load_npy(path, what="id list")
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
