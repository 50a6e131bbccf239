"""A growing index: --add and --remove give what a fresh build of the same clips gives,
atomically (a process killed mid-save leaves the old index usable)."""

from __future__ import annotations

import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from search_helpers import BACKENDS, photo_index_setup

from mcsan.core.errors import SearchError
from mcsan.inference.retriever import Retriever
from mcsan.search import VideoIndex
from mcsan.search.build import CONCEPT_CACHE_NAME, build_from_store, index_videos
from mcsan.search.grow import add_to_index, remove_from_index
from mcsan.search.searcher import Searcher

QUERIES = ("a red ball is jumping", "a blue cube left of a green ball", "a yellow ball",
           "a purple cube is above a red cube")


def build(setup: dict, ids: list[str], out: Path, backend: str = "flat") -> VideoIndex:
    """A fresh index of the dataset clips ``ids`` (FAISS flat or another backend)."""
    retriever = setup["retriever"]
    store = setup["root"] / "features" / f"{retriever.feature_set}.h5"
    return build_from_store(retriever, store, ids, [None] * len(ids), out, media_root=None,
                            approx=False, checkpoint=setup["checkpoint"],
                            source={"dataset": str(setup["root"])}, index_type=backend)  # fmt: skip


def answers(index_dir: Path, retriever: Retriever) -> list[list[tuple]]:
    searcher = Searcher(VideoIndex.load(index_dir), retriever)
    out = []
    for query in QUERIES:
        answer = searcher.answer(query, k=12, mode="model")
        assert answer.reranked > 0
        out.append([(h.video_id, round(h.score, 5), round(h.match_score or 0.0, 5))
                    for h in answer.hits])  # fmt: skip
    return out


@pytest.mark.parametrize("backend", BACKENDS)
def test_add_then_remove_equals_a_fresh_build(matcher_index, tmp_path, backend):
    retriever = matcher_index["retriever"]
    ids = VideoIndex.load(matcher_index["index"]).live_ids()
    grown = tmp_path / "grown"
    build(matcher_index, ids[:30], grown, backend)
    assert VideoIndex.load(grown).kind == backend
    summary = add_to_index(grown, ids[25:], retriever)  # 25..29 are there already
    assert summary.added == len(ids) - 30 and summary.skipped == ids[25:30]
    index = VideoIndex.load(grown)
    assert len(index.segments) == 2 and index.version == 1 and len(index) == len(ids)
    assert answers(grown, retriever) == answers(matcher_index["index"], retriever)
    # the new segment's files sit beside the build's; the build's are hard links, not copies
    assert (grown / "matcher.v1.npy").is_file() and (grown / "emb_global.v1.npy").is_file()

    gone = [ids[3], ids[31], ids[40]]
    summary = remove_from_index(grown, gone)
    assert summary.removed == 3 and summary.videos == len(ids) - 3
    fresh = tmp_path / "fresh"
    build(matcher_index, [v for v in ids if v not in gone], fresh, backend)
    assert answers(grown, retriever) == answers(fresh, retriever)
    index = VideoIndex.load(grown)
    assert ids[3] not in index and len(index) == len(ids) - 3
    with pytest.raises(SearchError, match="not in the index"):
        remove_from_index(grown, ["no-such-clip"])
    # adding a removed clip back is an add like any other
    add_to_index(grown, [ids[3]], retriever)
    assert ids[3] in VideoIndex.load(grown)


KILL_DURING_SAVE = textwrap.dedent("""
    import os, sys
    import mcsan.search.index_files as files
    def die(*args, **kwargs):
        os._exit(9)  # killed after the new segment and FAISS index are written, before meta
    files.atomic_write_json = die
    from mcsan.search.grow import add_to_index
    add_to_index(sys.argv[1], sys.argv[2:])
""")


def test_a_killed_add_leaves_the_old_index_usable(matcher_index, tmp_path):
    retriever = matcher_index["retriever"]
    ids = VideoIndex.load(matcher_index["index"]).live_ids()
    index_dir = tmp_path / "index"
    build(matcher_index, ids[:20], index_dir)
    before = answers(index_dir, retriever)
    run = subprocess.run([sys.executable, "-c", KILL_DURING_SAVE, str(index_dir), *ids[20:]],
                         capture_output=True, text=True, timeout=300)  # fmt: skip
    assert run.returncode == 9, run.stderr
    assert len(VideoIndex.load(index_dir)) == 20
    assert answers(index_dir, retriever) == before
    add_to_index(index_dir, ids[20:], retriever)  # the next add cleans up and works
    assert len(VideoIndex.load(index_dir)) == len(ids)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_adding_clips_to_a_folder_index(setup, tmp_path):
    retriever = Retriever.from_checkpoint(setup["checkpoint"])
    clips = sorted(setup["clips"].glob("*.mp4"))
    folder = tmp_path / "clips"
    folder.mkdir()
    for clip in clips[:10]:
        shutil.copy(clip, folder)
    index_dir = tmp_path / "index"
    index_videos(retriever, folder, index_dir, checkpoint=setup["checkpoint"], concepts=False)
    for clip in clips[10:]:
        shutil.copy(clip, folder)
    summary = add_to_index(index_dir, [str(folder)], retriever)
    assert summary.added == len(clips) - 10 and len(summary.skipped) == 10
    grown, fresh = VideoIndex.load(index_dir), VideoIndex.load(setup["index"])
    assert sorted(grown.live_ids()) == sorted(fresh.live_ids())
    assert all(grown.paths[grown.row_of(v)] == f"{v}.mp4" for v in grown.live_ids())
    for query in ("a red square moves left", "a blue square", "the green box"):
        a = Searcher(grown, retriever).answer(query, k=5, mode="model").hits
        b = Searcher(fresh, retriever).answer(query, k=5, mode="model").hits
        assert [(h.video_id, round(h.score, 5)) for h in a] == [
            (h.video_id, round(h.score, 5)) for h in b]
    again = add_to_index(index_dir, [str(folder)], retriever)
    assert again.added == 0 and len(again.skipped) == len(clips)


def test_concept_scores_follow_an_add_and_a_remove(tmp_path_factory, tmp_path):
    from mcsan.search.concepts import default_bank

    base = tmp_path_factory.getbasetemp() / "photo_setup"
    base.mkdir(exist_ok=True)
    photos = photo_index_setup(base)
    clips = sorted(photos["clips"].glob("*.mp4"))
    folder, index_dir = tmp_path / "clips", tmp_path / "index"
    folder.mkdir()
    index_dir.mkdir()
    shutil.copy(photos["index"] / CONCEPT_CACHE_NAME, index_dir)  # the extraction cache: reused
    for clip in clips[:5]:
        shutil.copy(clip, folder)
    index_videos(None, folder, index_dir)
    for clip in clips[5:]:
        shutil.copy(clip, folder)
    add_to_index(index_dir, [str(folder)])
    grown, fresh = VideoIndex.load(index_dir), VideoIndex.load(photos["index"])
    bank = default_bank()
    for query in ("a cat", "a rocket", "a motorcycle", "a clock on the wall"):
        a = Searcher(grown, bank=bank).answer(query, k=3, mode="concepts").hits
        b = Searcher(fresh, bank=bank).answer(query, k=3, mode="concepts").hits
        assert [(h.video_id, round(h.score, 5)) for h in a] == [
            (h.video_id, round(h.score, 5)) for h in b]
    before = Searcher(grown, bank=bank).answer("a cat", k=8, mode="concepts").hits
    assert before[0].video_id == "chelsea"
    remove_from_index(index_dir, ["chelsea"])
    shrunk = Searcher(VideoIndex.load(index_dir), bank=bank)
    hits = shrunk.answer("a cat", k=8, mode="concepts").hits
    # the only cat is gone: the other clips score below the floor and are not padded in
    assert "chelsea" not in [h.video_id for h in hits]
    assert np.isfinite([h.score for h in hits]).all()
    rocket = shrunk.answer("a rocket", k=8, mode="concepts").hits
    assert rocket and rocket[0].video_id == "rocket"


def test_the_cli_adds_and_removes(matcher_index, tmp_path, capsys):
    from mcsan.cli import main as cli_main

    ids = VideoIndex.load(matcher_index["index"]).live_ids()
    index_dir = tmp_path / "index"
    build(matcher_index, ids[:40], index_dir)
    assert cli_main(["index", "--out", str(index_dir), "--add", *ids[38:]]) == 0
    assert f"added {len(ids) - 40} videos" in capsys.readouterr().out
    assert cli_main(["index", "--out", str(index_dir), "--remove", ids[0], ids[1]]) == 0
    assert "removed 2 videos" in capsys.readouterr().out
    assert cli_main(["index", "--out", str(index_dir), "--remove", "nope"]) == 2
    assert "not in the index" in capsys.readouterr().err
    assert len(VideoIndex.load(index_dir)) == len(ids) - 2


def test_shards_merged_rank_like_one_build(matcher_index, tmp_path, capsys):
    from mcsan.cli import main as cli_main

    checkpoint, root = str(matcher_index["checkpoint"]), str(matcher_index["root"])
    parts = [tmp_path / f"part{i}" for i in range(3)]
    for number, part in enumerate(parts):
        assert cli_main(["index", "--checkpoint", checkpoint, "--dataset", root, "--out",
                         str(part), "--shard", f"{number}/3"]) == 0  # fmt: skip
    sizes = [len(VideoIndex.load(part)) for part in parts]
    whole = VideoIndex.load(matcher_index["index"])
    assert sum(sizes) == len(whole) and min(sizes) > 0
    merged = tmp_path / "merged"
    assert cli_main(["index", "--merge", *map(str, parts), "--out", str(merged)]) == 0
    assert "merged 3 shard indexes" in capsys.readouterr().out
    index = VideoIndex.load(merged)
    assert sorted(index.live_ids()) == sorted(whole.live_ids()) and index.matcher is not None
    retriever = matcher_index["retriever"]
    for query in QUERIES:
        a = Searcher(index, retriever).answer(query, k=8, mode="model").hits
        b = Searcher(whole, retriever).answer(query, k=8, mode="model").hits
        assert [(h.video_id, round(h.score, 5)) for h in a] == [
            (h.video_id, round(h.score, 5)) for h in b]
    with pytest.raises(SearchError, match="both"):
        from mcsan.search.index_shards import merge_indexes

        merge_indexes([parts[0], parts[0]], tmp_path / "twice")
