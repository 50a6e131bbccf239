"""The oracle ceiling's consistency check on hand-made scenes, and the evaluation-only world."""

from __future__ import annotations

from pathlib import Path

import pytest

from mcsan.cli import main
from mcsan.core.errors import ConfigError
from mcsan.core.io import read_jsonl
from mcsan.data.native import read_captions, read_card
from mcsan.world import STRUCTURE_NAME, TRUTH_NAME, generate_world
from mcsan.world.oracle import (
    CaptionFacts,
    ClipFacts,
    consistent_clips,
    consistent_counts,
    oracle_recalls,
    world_oracle,
)
from mcsan.world.scene import Scene, WorldObject
from mcsan.world.splits import make_holdout

FRAMES = 8


def _obj(colour: str, shape: str, x: float, size: str = "medium", action: str = "spin",
         **motion: float) -> WorldObject:  # fmt: skip
    return WorldObject(colour, shape, size, "plain", action, x, 0.5, **motion)


def _clip(name: str, *objects: WorldObject, relations=()) -> ClipFacts:
    scene = Scene(name, 0, 0, {}, tuple(objects), tuple(relations), "test")
    return ClipFacts.from_structure(scene.to_json(FRAMES), FRAMES)


@pytest.fixture(scope="module")
def clips() -> list[ClipFacts]:
    return [
        # a large red ball spinning to the left of a small blue cube that blinks
        _clip("a", _obj("red", "circle", 0.3, "large"), _obj("blue", "square", 0.7, "small", "blink")),
        # the colours exchanged between the two shapes
        _clip("b", _obj("blue", "circle", 0.3, "large"), _obj("red", "square", 0.7, "small", "blink")),
        # the roles swapped: the cube is left of the ball (the ball small)
        _clip("c", _obj("blue", "square", 0.3, "small", "blink"), _obj("red", "circle", 0.7, "small")),
        # the red ball moves left toward the cube: not "to the left of" (it moves), not spinning
        _clip("d", _obj("blue", "square", 0.2, "small", "blink"),
              _obj("red", "circle", 0.8, "large", "move_left", dx=-0.3),
              relations=[(1, "approach", 0)]),
    ]  # fmt: skip


def _ref(index: int, noun: str, colour: str | None = None, size: str | None = None) -> dict:
    return {"object": index, "noun": noun, "colour": colour, "size": size}


def _consistent(truth: dict, clips: list[ClipFacts]) -> list[str]:
    return [clips[i].video_id for i in consistent_clips(CaptionFacts.from_truth(truth), clips)]


def test_colour_and_size_omitted_or_stated(clips):
    assert _consistent({"refs": [_ref(0, "ball")]}, clips) == ["a", "b", "c", "d"]
    assert _consistent({"refs": [_ref(0, "ball", "red")]}, clips) == ["a", "c", "d"]
    assert _consistent({"refs": [_ref(0, "circle", "red", "big")]}, clips) == ["a", "d"]
    assert _consistent({"refs": [_ref(0, "ball", "red", "little")]}, clips) == ["c"]
    assert _consistent({"refs": [_ref(0, "block", "green")]}, clips) == []


def test_the_action_belongs_to_the_referred_object(clips):
    spinning_red_ball = {"refs": [_ref(0, "ball", "red")], "object_actions": [[0, "spin"]]}
    assert _consistent(spinning_red_ball, clips) == ["a", "c"]
    blinking_ball = {"refs": [_ref(0, "ball")], "object_actions": [[0, "blink"]]}
    assert _consistent(blinking_ball, clips) == []  # a cube blinks, never a ball
    two = {"refs": [_ref(0, "ball", "red"), _ref(1, "cube", "blue")],
           "object_actions": [[0, "spin"], [1, "blink"]]}  # fmt: skip
    assert _consistent(two, clips) == ["a", "c"]


def test_relations_bind_roles_and_hold_on_the_trajectories(clips):
    left = {"refs": [_ref(0, "ball", "red"), _ref(1, "cube", "blue")],
            "relation_ids": [[0, "left_of", 1]]}  # fmt: skip
    # b: colours exchanged, c: roles swapped, d: the ball moves (no static relation)
    assert _consistent(left, clips) == ["a"]
    swapped = {"refs": [_ref(1, "cube", "blue"), _ref(0, "ball", "red")],
               "relation_ids": [[1, "left_of", 0]]}  # fmt: skip
    assert _consistent(swapped, clips) == ["c"]
    approach = {"refs": [_ref(1, "ball"), _ref(0, "cube")], "relation_ids": [[1, "approach", 0]]}
    assert _consistent(approach, clips) == ["d"]


def test_a_collision_is_also_an_approach():
    crash = _clip("crash", _obj("red", "circle", 0.8, action="move_left", dx=-0.45),
                  _obj("blue", "square", 0.3, action="blink"), relations=[(0, "collide", 1)])
    approach = {"refs": [_ref(0, "ball"), _ref(1, "cube")], "relation_ids": [[0, "approach", 1]]}
    assert crash.holds(0, "collide", 1) and _consistent(approach, [crash]) == ["crash"]
    away = {"refs": [_ref(0, "ball"), _ref(1, "cube")], "relation_ids": [[0, "move_away", 1]]}
    assert _consistent(away, [crash]) == []


def test_two_referents_need_two_objects(clips):
    two_balls = {"refs": [_ref(0, "ball"), _ref(1, "ball")]}
    assert _consistent(two_balls, clips) == []
    same_object_twice = {"refs": [_ref(0, "ball", "red"), _ref(0, "ball", None, "big")]}
    assert _consistent(same_object_twice, clips) == ["a", "d"]


def test_counts_and_expected_recall(clips):
    truths = [{"refs": [_ref(0, "ball")]}, {"refs": [_ref(0, "ball", "red", "little")]},
              {"refs": [_ref(0, "ball")]}]  # fmt: skip
    assert consistent_counts(truths, clips).tolist() == [4, 1, 4]
    recalls = oracle_recalls([4, 1, 4], ks=(1, 5))
    assert recalls["t2v_r1"] == pytest.approx(100 * (0.25 + 1 + 0.25) / 3)
    assert recalls["t2v_r5"] == pytest.approx(100.0)


@pytest.fixture(scope="module")
def worlds(tmp_path_factory) -> tuple[Path, Path]:
    base = tmp_path_factory.mktemp("base")
    generate_world(base, 40, 3, frames=4, size=32, n_twin_originals=2)
    extra = tmp_path_factory.mktemp("eval")
    assert main(["synth", "--out", str(extra), "--videos", "30", "--eval-for", str(base),
                 "--twins", "3"]) == 0  # fmt: skip
    return base, extra


def test_eval_world_shares_holdout_and_draws_new_test_clips(worlds):
    base, extra = worlds
    card = read_card(extra)
    assert card["holdout"] == read_card(base)["holdout"] == make_holdout(3).to_json()
    assert (card["seed"], card["frames"], card["size"]) == (3, 4, 32)
    assert "evaluation-only world" in (extra / "DATASET.md").read_text(encoding="utf-8")
    records = read_captions(extra)
    assert {r.split for r in records} == {"test"}
    ids = {r.video_id for r in records}
    assert len(ids) == 30 and not ids & {r.video_id for r in read_captions(base)}
    twins = [r for r in read_jsonl(extra / STRUCTURE_NAME) if r["split"] == "twin"]
    assert twins and {t["twin_of"] for t in twins} <= ids
    holdout = make_holdout(3)
    for record in read_jsonl(extra / STRUCTURE_NAME):
        objects = {(o["colour"], o["shape"], o["action"]) for o in record["objects"]}
        assert not objects & set(holdout.triples)


def test_every_world_caption_is_true_of_its_own_clip(worlds):
    _, extra = worlds
    truth = list(read_jsonl(extra / TRUTH_NAME))
    ids = list(dict.fromkeys(r["video_id"] for r in truth))
    oracle = world_oracle(extra, [(r["video_id"], r["caption"]) for r in truth], ids)
    assert oracle is not None and oracle["captions"] == len(truth) and oracle["clips"] == 30
    assert oracle["median_consistent"] >= 1
    structure = {r["video_id"]: r for r in read_jsonl(extra / STRUCTURE_NAME)}
    for r in truth:
        assert ClipFacts.from_structure(structure[r["video_id"]], 4).satisfies(
            CaptionFacts.from_truth(r))
    assert world_oracle(extra, [("clip99999", "nothing")], ids) is None


def test_eval_for_refuses_another_seed_and_non_worlds(worlds, tmp_path, capsys):
    base, extra = worlds
    assert main(["synth", "--out", str(tmp_path), "--videos", "5", "--eval-for", str(base),
                 "--seed", "1"]) == 2  # fmt: skip
    assert "has seed 3" in capsys.readouterr().err
    assert main(["synth", "--out", str(tmp_path / "x"), "--videos", "5", "--eval-for",
                 str(extra)]) == 2  # fmt: skip
    assert "evaluation-only" in capsys.readouterr().err
    with pytest.raises(ConfigError, match="first clip index"):
        generate_world(tmp_path / "y", 5, 0, frames=4, size=32, eval_from=-1)
