"""Compacting an index drops its removed clips from disk and retrains FAISS; it ranks as a
fresh build of the clips it keeps, and a killed compaction leaves the old index usable."""

from __future__ import annotations

import shutil
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from search_helpers import BACKENDS, photo_index_setup
from test_grow import answers, build

from mcsan.search import VideoIndex
from mcsan.search.compact import compact_index
from mcsan.search.grow import add_to_index, remove_from_index


@pytest.mark.parametrize("backend", BACKENDS)
def test_compacting_equals_a_fresh_build_of_the_live_clips(matcher_index, tmp_path, backend):
    retriever = matcher_index["retriever"]
    ids = VideoIndex.load(matcher_index["index"]).live_ids()
    grown = tmp_path / "grown"
    build(matcher_index, ids[:30], grown, backend)
    add_to_index(grown, ids[30:], retriever)
    gone = [ids[0], ids[7], ids[33], ids[-1]]
    remove_from_index(grown, gone)
    before = VideoIndex.load(grown)
    rows_before = len(before.ids)
    summary = compact_index(grown)
    assert summary.removed == 4 and summary.videos == len(ids) - 4
    index = VideoIndex.load(grown)
    assert index.kind == before.kind == backend
    assert len(index.segments) == 1 and len(index.ids) == rows_before - 4
    assert index.live_mask() is None and index.version == before.version + 1
    assert len(index.embeddings["global"]) == len(index.matcher) == len(ids) - 4
    on_disk = {p.name for p in grown.iterdir()}
    assert "emb_global.npy" not in on_disk and "matcher.v1.npy" not in on_disk  # old segments gone
    fresh = tmp_path / "fresh"
    build(matcher_index, [v for v in ids if v not in gone], fresh, backend)
    assert answers(grown, retriever) == answers(fresh, retriever)
    kept = [v for v in ids if v not in gone]
    np.testing.assert_array_equal(index.embeddings["entity"],
                                  VideoIndex.load(fresh).embeddings["entity"])  # fmt: skip
    assert index.live_ids() == kept


def test_compacting_can_change_the_kind(matcher_index, tmp_path):
    retriever = matcher_index["retriever"]
    ids = VideoIndex.load(matcher_index["index"]).live_ids()
    index_dir, fresh = tmp_path / "index", tmp_path / "fresh"
    build(matcher_index, ids, index_dir)
    remove_from_index(index_dir, ids[:2])
    compact_index(index_dir, "ivf")
    assert VideoIndex.load(index_dir).kind == "ivf_flat"  # few clips: one list, exact
    build(matcher_index, ids[2:], fresh)
    assert answers(index_dir, retriever) == answers(fresh, retriever)


def test_concept_scores_follow_a_compaction(tmp_path_factory, tmp_path):
    from mcsan.search.build import CONCEPT_CACHE_NAME, index_videos
    from mcsan.search.concepts import default_bank
    from mcsan.search.searcher import Searcher

    base = tmp_path_factory.getbasetemp() / "photo_setup"
    base.mkdir(exist_ok=True)
    photos = photo_index_setup(base)
    index_dir = tmp_path / "index"
    index_dir.mkdir()
    shutil.copy(photos["index"] / CONCEPT_CACHE_NAME, index_dir)  # the extraction cache: reused
    index_videos(None, photos["clips"], index_dir)
    remove_from_index(index_dir, ["chelsea"])
    bank = default_bank()
    queries = ("a cat", "a rocket", "a motorcycle", "a clock on the wall")

    def hits() -> list[list[tuple]]:
        searcher = Searcher(VideoIndex.load(index_dir), bank=bank)
        return [[(h.video_id, round(h.score, 5)) for h in searcher.answer(
            q, k=8, mode="concepts").hits] for q in queries]  # fmt: skip

    before = hits()
    summary = compact_index(index_dir)
    assert summary.removed == 1 and "chelsea" not in VideoIndex.load(index_dir).ids
    assert hits() == before


KILL_DURING_SAVE = textwrap.dedent("""
    import os, sys
    import mcsan.search.index_files as files
    def die(*args, **kwargs):
        os._exit(9)
    files.atomic_write_json = die
    from mcsan.search.compact import compact_index
    compact_index(sys.argv[1])
""")


def test_a_killed_compaction_leaves_the_old_index_usable(matcher_index, tmp_path):
    retriever = matcher_index["retriever"]
    ids = VideoIndex.load(matcher_index["index"]).live_ids()
    index_dir = tmp_path / "index"
    build(matcher_index, ids, index_dir)
    remove_from_index(index_dir, ids[:3])
    before = answers(index_dir, retriever)
    done = subprocess.run([sys.executable, "-c", KILL_DURING_SAVE, str(index_dir)], check=False)
    assert done.returncode == 9
    assert answers(index_dir, retriever) == before
    compact_index(index_dir)  # the next compaction clears what the killed one left
    assert not [p for p in tmp_path.iterdir() if ".compact" in p.name]
    assert VideoIndex.load(index_dir).live_ids() == ids[3:]


def test_the_cli_compacts(matcher_index, tmp_path, capsys):
    from mcsan.cli import main

    ids = VideoIndex.load(matcher_index["index"]).live_ids()
    index_dir = tmp_path / "index"
    build(matcher_index, ids, index_dir)
    remove_from_index(index_dir, ids[:2])
    assert main(["index", "--compact", "--out", str(index_dir)]) == 0
    assert f"{len(ids) - 2} videos kept, 2 removed rows dropped" in capsys.readouterr().out
