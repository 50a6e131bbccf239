"""The synthetic world: determinism, splits, compositional exclusion, twins, captions, clips."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mcsan.cli import main
from mcsan.core.errors import ConfigError, DataError
from mcsan.core.io import read_jsonl
from mcsan.data.native import read_captions, read_card, split_counts
from mcsan.world import generate_world, structure_levels
from mcsan.world.describe import MAX_CAPTIONS, MIN_CAPTIONS, write_captions
from mcsan.world.lexicon import SHAPE_NOUNS, SIZE_WORDS, SIZES
from mcsan.world.scene import relation_holds, scene_valid
from mcsan.world.splits import assign_splits, make_holdout, make_twins, sample_scene

N, SEED, FRAMES, SIZE = 30, 7, 8, 64
OUTPUT_FILES = ("captions.jsonl", "captions_truth.jsonl", "structure.jsonl", "twins.jsonl")


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("world2")
    generate_world(root, N, SEED, frames=FRAMES, size=SIZE, workers=2)
    return root


@pytest.fixture(scope="module")
def world_serial(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("world1")
    generate_world(root, N, SEED, frames=FRAMES, size=SIZE, workers=1)
    return root


def _structure(root: Path) -> dict[str, dict]:
    return {r["video_id"]: r for r in read_jsonl(root / "structure.jsonl")}


def _decode(path: Path) -> np.ndarray:
    with av.open(str(path)) as container:
        return np.stack([f.to_ndarray(format="rgb24") for f in container.decode(video=0)])


def test_same_seed_same_files_and_frames_whatever_the_workers(world: Path, world_serial: Path):
    for name in OUTPUT_FILES:
        assert (world / name).read_bytes() == (world_serial / name).read_bytes(), name
    for video_id in _structure(world):
        a = _decode(world / "videos" / f"{video_id}.mp4")
        b = _decode(world_serial / "videos" / f"{video_id}.mp4")
        assert np.array_equal(a, b), video_id


def test_other_seed_gives_other_world(tmp_path: Path, world: Path):
    generate_world(tmp_path, N, SEED + 1, frames=FRAMES, size=SIZE)
    assert (tmp_path / "captions.jsonl").read_bytes() != (world / "captions.jsonl").read_bytes()


def test_every_clip_and_twin_decodes_to_the_right_shape(world: Path):
    structure = _structure(world)
    assert len(list((world / "videos").glob("*.mp4"))) == len(structure)
    for video_id in structure:
        frames = _decode(world / "videos" / f"{video_id}.mp4")
        assert frames.shape == (FRAMES, SIZE, SIZE, 3), video_id
        assert frames.std() > 5  # something was drawn


def test_card_counts_and_dataset_md(world: Path):
    card = read_card(world)
    assert card["name"] == "mcsan-world" and card["seed"] == SEED
    assert card["frames"] == FRAMES and card["size"] == SIZE
    counts = split_counts(read_captions(world))
    assert {k: v["videos"] for k, v in counts.items()} == card["counts"]["videos_per_split"]
    text = (world / "DATASET.md").read_text()
    for needle in ("## Vocabulary", "## Counts", "imbalance", "Held-out", "contact_sheet.png"):
        assert needle in text
    from PIL import Image

    with Image.open(world / "contact_sheet.png") as sheet:
        assert sheet.size[0] > 0 and sheet.size[1] > 0


def test_splits_are_disjoint_by_clip(world: Path):
    records = read_captions(world)
    split_of: dict[str, set[str]] = {}
    for record in records:
        split_of.setdefault(record.video_id, set()).add(record.split)
    assert all(len(s) == 1 for s in split_of.values())
    assert {s for v in split_of.values() for s in v} == {"train", "val", "test", "comp"}
    twins = {r["twin_id"] for r in read_jsonl(world / "twins.jsonl")}
    assert twins and not twins & set(split_of)  # twins have no captions
    per_clip = {v: sum(r.video_id == v for r in records) for v in split_of}
    assert all(MIN_CAPTIONS <= n <= MAX_CAPTIONS for n in per_clip.values())


def _combos(record: dict) -> set[tuple[str, ...]]:
    objects = record["objects"]
    triples = {("t", o["colour"], o["shape"], o["action"]) for o in objects}
    roles = {("r", objects[r["subject"]]["shape"], r["predicate"], objects[r["object"]]["shape"])
             for r in record["relations"]}
    return triples | roles


def test_comp_combinations_never_occur_in_training(world: Path):
    structure = [r for r in _structure(world).values() if r["split"] != "twin"]
    train = set().union(*(_combos(r) for r in structure if r["split"] == "train"))
    comp = [r for r in structure if r["split"] == "comp"]
    assert comp
    for record in comp:
        assert _combos(record) - train, record["video_id"]
    holdout = read_card(world)["holdout"]
    held = {("t", *h.split("|")) for h in holdout["triples"]}
    held |= {("r", *h.split("|")) for h in holdout["roles"]}
    for record in structure:
        assert bool(_combos(record) & held) == (record["split"] == "comp"), record["video_id"]


def test_twins_differ_from_their_original_at_exactly_one_level(world: Path):
    structure = _structure(world)
    twins = list(read_jsonl(world / "twins.jsonl"))
    assert {t["level"] for t in twins} == {"entity", "action", "relation"}
    for twin in twins:
        original = structure_levels(structure[twin["original_id"]])
        changed = structure_levels(structure[twin["twin_id"]])
        differing = [level for level in original if original[level] != changed[level]]
        if twin["twin_id"].endswith("_relation_swap"):
            # "b approaches a": the mover changes with the roles, so per-object actions too
            assert differing in (["relation"], ["action", "relation"]), twin
        else:
            assert differing == [twin["level"]], twin
        assert structure[twin["original_id"]]["split"] == "test"
        same = structure[twin["original_id"]]["background"] == structure[twin["twin_id"]][
            "background"]
        assert same


def _radius(obj: dict, t: int) -> float:
    return SIZES[obj["size"]] * obj["trajectory"]["scale"][t]


def _relation_true(objects: list[dict], subject: int, predicate: str, obj: int) -> bool:
    """An independent check of a relation from the stored per-frame trajectories."""
    a, b = objects[subject]["trajectory"], objects[obj]["trajectory"]
    dist = np.hypot(np.subtract(a["x"], b["x"]), np.subtract(a["y"], b["y"]))
    if predicate == "approach":
        return dist[-1] < dist[0] - 0.1
    if predicate == "move_away":
        return dist[-1] > dist[0] + 0.1
    if predicate == "collide":
        last = len(dist) - 1
        return dist[-1] <= _radius(objects[subject], last) + _radius(objects[obj], last)
    if predicate == "jump_over":
        return np.sign(a["x"][0] - b["x"][0]) != np.sign(a["x"][-1] - b["x"][-1])
    if predicate == "left_of":
        return all(xa < xb for xa, xb in zip(a["x"], b["x"], strict=True))
    if predicate == "above":
        return all(ya < yb for ya, yb in zip(a["y"], b["y"], strict=True))
    raise AssertionError(predicate)


def test_captions_are_consistent_with_the_structure(world: Path):
    structure = _structure(world)
    truths = list(read_jsonl(world / "captions_truth.jsonl"))
    captions = [r.caption for r in read_captions(world)]
    assert [t["caption"] for t in truths] == captions
    for truth in truths:
        record = structure[truth["video_id"]]
        objects = record["objects"]
        words = truth["caption"].replace(",", " ").split()
        for ref in truth["refs"]:
            obj = objects[ref["object"]]
            assert ref["noun"] in SHAPE_NOUNS[obj["shape"]] and ref["noun"] in words
            assert ref["colour"] in (None, obj["colour"])
            assert ref["size"] is None or ref["size"] in SIZE_WORDS[obj["size"]]
        for index, action in truth["object_actions"]:
            assert objects[index]["action"] == action, truth
        relations = {(r["subject"], r["predicate"], r["object"]) for r in record["relations"]}
        for subject, predicate, obj in truth["relation_ids"]:
            assert (subject, predicate, obj) in relations, truth
            assert _relation_true(objects, subject, predicate, obj), truth
        assert "still" not in words and "nothing" not in words


def test_rerun_with_same_arguments_renders_nothing(world: Path, tmp_path: Path):
    summary = generate_world(world, N, SEED, frames=FRAMES, size=SIZE, workers=1)
    assert summary.rendered == 0 and summary.videos == N


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**31), index=st.integers(0, 10_000), split=st.sampled_from(
    ["train", "comp"]))
def test_any_scene_is_valid_and_its_twins_change_one_level(seed: int, index: int, split: str):
    holdout = make_holdout(seed)
    scene = sample_scene(seed, index, split, holdout, 16)
    assert scene_valid(scene, 16)
    assert all(relation_holds(scene, r, 16) for r in scene.relations)
    assert holdout.hits(scene.objects, scene.relations) == (split == "comp")
    assert MIN_CAPTIONS <= len(write_captions(scene, seed)) <= MAX_CAPTIONS
    original = structure_levels(scene.to_json(16))
    for twin in make_twins(seed, scene, holdout, 16):
        levels = structure_levels(twin.to_json(16))
        assert [k for k in levels if levels[k] != original[k]] == [twin.meta["twin_level"]]


def test_split_assignment_covers_every_clip():
    splits = assign_splits(1000, 0)
    assert len(splits) == 1000 and splits.count("test") >= 200
    assert splits == assign_splits(1000, 0)


def test_parser_recovers_ground_truth(world: Path, caption_parser):
    truths = list(read_jsonl(world / "captions_truth.jsonl"))
    parsed = caption_parser.parse([t["caption"] for t in truths])
    correct = 0
    for truth, caption in zip(truths, parsed, strict=True):
        entities = sorted(e.lemma for e in caption.entities)
        actions = sorted(a.lemma for a in caption.actions)
        relations = sorted((r.subject.lemma, r.predicate.lemma, r.object.lemma)
                           for r in caption.relations)
        correct += (entities == sorted(truth["entities"]) and actions == sorted(truth["actions"])
                    and relations == sorted(tuple(r) for r in truth["relations"]))
    assert correct / len(truths) >= 0.95


def test_cli_synth_prints_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    assert main(["--quiet", "synth", "--out", str(tmp_path), "--videos", "6", "--seed", "1",
                 "--frames", "4", "--size", "32", "--twins", "1"]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1 and "6 clips" in out[0]
    assert main(["synth", "--out", str(tmp_path), "--videos", "5", "--size", "33"]) == 2
    assert "--size 33" in capsys.readouterr().err


def test_bad_arguments_raise_config_error(tmp_path: Path):
    with pytest.raises(ConfigError, match="--frames"):
        generate_world(tmp_path, 5, 0, frames=1)


def test_another_world_in_the_same_folder_needs_overwrite_and_drops_stale_files(tmp_path: Path):
    generate_world(tmp_path, 12, 0, frames=4, size=32)
    (tmp_path / "features").mkdir()
    (tmp_path / "features" / "world.h5").write_bytes(b"features of the 12 clips")
    with pytest.raises(DataError, match="already holds another dataset .* --overwrite"):
        generate_world(tmp_path, 6, 0, frames=4, size=32)
    generate_world(tmp_path, 6, 0, frames=4, size=32, overwrite=True)
    assert not (tmp_path / "features").exists()  # derived from the old clips: gone
    ids = {r["video_id"] for r in read_jsonl(tmp_path / "structure.jsonl")}
    assert {p.stem for p in (tmp_path / "videos").glob("*.mp4")} == ids


def test_no_twins_when_asked_for_none(tmp_path: Path):
    summary = generate_world(tmp_path, 10, 0, frames=4, size=32, n_twin_originals=0)
    assert summary.twins == 0 and (tmp_path / "twins.jsonl").read_text() == ""
