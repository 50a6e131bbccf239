"""Twin accuracy: the arithmetic over (caption, twin) pairs and the focused variant."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from mcsan.core.errors import DataError
from mcsan.data.native import CaptionRecord, write_captions
from mcsan.evaluate.shortlist import ShortlistPolicy
from mcsan.inference.twins import (
    TwinPair,
    mentions_change,
    read_twins,
    twin_accuracies,
    twin_accuracy,
    twin_kind,
)


class TableScorer:
    """Scores from a fixed (caption, clip) table: a real scorer with known answers."""

    def __init__(self, table: dict[tuple[str, str], float], clips: list[str]) -> None:
        self.table = table
        self.clips = clips

    def encode_captions(self, captions):
        return {"global": np.array(list(captions), dtype=object)}

    def encode_features(self, features):
        return {"global": np.array([f["id"][0] for f in features], dtype=object)}

    def score(self, text_emb, video_emb):
        rows = [[self.table[(c, v)] for v in video_emb["global"]] for c in text_emb["global"]]
        return {"fused": np.array(rows, dtype=float)}


def _write(root: Path, twins: list[dict], truth: list[dict] | None) -> None:
    write_captions(root, [CaptionRecord("a", "a red ball", "test"),
                          CaptionRecord("a", "a red ball is moving left", "test")])  # fmt: skip
    (root / "twins.jsonl").write_text("".join(json.dumps(t) + "\n" for t in twins))
    if truth is not None:
        (root / "captions_truth.jsonl").write_text("".join(json.dumps(t) + "\n" for t in truth))


TWINS = [
    {"twin_id": "a_e", "original_id": "a", "level": "entity",
     "change": {"object": 0, "attribute": "colour", "from": "red", "to": "blue"}},
    {"twin_id": "a_x", "original_id": "a", "level": "action",
     "change": {"object": 1, "from": "grow", "to": "spin"}},
]  # fmt: skip
TRUTH = [
    {"video_id": "a", "caption": "a red ball", "refs": [{"object": 0}], "object_actions": [],
     "relation_ids": []},
    {"video_id": "a", "caption": "a red ball is moving left", "refs": [{"object": 0}],
     "object_actions": [[0, "move_left"]], "relation_ids": []},
]  # fmt: skip


def _features(ids):
    return {vid: {"id": np.array([vid], dtype=object)} for vid in ids}


def test_accuracy_counts_strict_wins_per_level_and_focused(tmp_path: Path) -> None:
    _write(tmp_path, TWINS, TRUTH)
    c1, c2 = "a red ball", "a red ball is moving left"
    table = {(c1, "a"): 0.9, (c1, "a_e"): 0.1, (c1, "a_x"): 0.9,  # tie with the action twin
             (c2, "a"): 0.8, (c2, "a_e"): 0.85, (c2, "a_x"): 0.2}  # fmt: skip
    result = twin_accuracy(TableScorer(table, []), tmp_path, _features(["a", "a_e", "a_x"]))
    assert result["entity"]["accuracy"] == pytest.approx(50.0)  # c1 wins, c2 loses
    assert result["entity"]["focused_accuracy"] == pytest.approx(50.0)  # both mention object 0
    assert result["action"]["accuracy"] == pytest.approx(50.0)  # tie counts as wrong
    assert "focused_accuracy" not in result["action"]  # no caption mentions object 1's action
    assert result["all"]["pairs"] == 4 and result["all"]["twins"] == 2
    assert list(result) == ["action", "action/changed", "entity", "entity/changed", "all"]
    assert result["entity/changed"] == result["entity"]


def test_without_truth_file_only_the_plain_accuracy(tmp_path: Path) -> None:
    _write(tmp_path, TWINS[:1], None)
    table = {("a red ball", "a"): 1.0, ("a red ball", "a_e"): 0.0,
             ("a red ball is moving left", "a"): 1.0, ("a red ball is moving left", "a_e"): 0.0}
    result = twin_accuracy(TableScorer(table, []), tmp_path, _features(["a", "a_e"]))
    assert result["entity"] == {"accuracy": 100.0, "pairs": 2, "twins": 1}


def test_missing_features_name_the_clip(tmp_path: Path) -> None:
    _write(tmp_path, TWINS, TRUTH)
    with pytest.raises(DataError, match="a_e"):
        twin_accuracy(TableScorer({}, []), tmp_path, _features(["a", "a_x"]))


def test_mentions_change_per_level() -> None:
    relation = TwinPair("a", "a_r", "relation", {"kind": "swapped", "from": [0, "above", 1]})
    assert mentions_change({"relation_ids": [[0, "above", 1]]}, relation)
    assert not mentions_change({"relation_ids": [[1, "above", 0]]}, relation)
    action = TwinPair("a", "a_x", "action", {"object": 1})
    assert mentions_change({"object_actions": [[1, "grow"]]}, action)
    assert not mentions_change({"object_actions": [[0, "grow"]]}, action)


def test_binding_twins_have_their_kind_and_focus() -> None:
    colours = TwinPair("a", "a_eb", "entity", {"kind": "binding", "objects": [0, 1]})
    assert twin_kind(colours) == "binding"
    assert twin_kind(TwinPair("a", "a_e", "entity", {"object": 0})) == "changed"
    # only a caption that ties a swapped object to its colour can tell the twins apart
    assert mentions_change({"refs": [{"object": 1, "colour": "red"}]}, colours)
    assert not mentions_change({"refs": [{"object": 1, "colour": None}]}, colours)
    assert not mentions_change({"refs": [{"object": 2, "colour": "red"}]}, colours)
    actions = TwinPair("a", "a_xb", "action", {"kind": "binding", "objects": [0, 2]})
    assert mentions_change({"object_actions": [[2, "spin"]]}, actions)
    assert not mentions_change({"object_actions": [[1, "spin"]]}, actions)


def test_accuracy_per_kind(tmp_path: Path) -> None:
    twins = [*TWINS, {"twin_id": "a_eb", "original_id": "a", "level": "entity",
                      "change": {"kind": "binding", "objects": [0, 1]}}]  # fmt: skip
    _write(tmp_path, twins, None)
    c1, c2 = "a red ball", "a red ball is moving left"
    table = {(c, v): (1.0 if v == "a" else 0.0) for c in (c1, c2) for v in ("a", "a_e", "a_x")}
    table.update({(c1, "a_eb"): 1.0, (c2, "a_eb"): 0.0})
    result = twin_accuracy(TableScorer(table, []), tmp_path, _features(["a", "a_e", "a_x", "a_eb"]))
    assert result["entity/changed"]["accuracy"] == 100.0
    assert result["entity/binding"]["accuracy"] == 50.0
    assert result["entity"]["accuracy"] == 75.0


def test_malformed_twins_file_names_the_record(tmp_path: Path) -> None:
    (tmp_path / "twins.jsonl").write_text('{"twin_id": "x"}\n')
    with pytest.raises(DataError, match="record 1"):
        read_twins(tmp_path)


class MatcherTableScorer(TableScorer):
    """A TableScorer with a binding matcher whose pair scores come from a second table."""

    has_matcher = True
    shortlist = ShortlistPolicy(weight=2.0)

    late_terms = ("entity", "action")

    def __init__(self, table, match, late=None) -> None:
        super().__init__(table, [])
        self.match, self.late = match, late
        self.pairs_asked = 0

    def match_pairs(self, captions, features, rows, cols, terms=None):
        self.pairs_asked += len(rows)
        table = self.match if terms is None else self.late
        return np.array([table[(captions[r], features[c]["id"][0])]
                         for r, c in zip(rows, cols, strict=True)])  # fmt: skip


def test_reranked_and_match_scores_decide_with_the_matcher(tmp_path: Path) -> None:
    _write(tmp_path, TWINS[:1], TRUTH)
    c1, c2 = "a red ball", "a red ball is moving left"
    table = {(c1, "a"): 0.5, (c1, "a_e"): 0.6, (c2, "a"): 0.5, (c2, "a_e"): 0.6}
    # c1: the matcher prefers the clip by 0.1 (x2 outweighs the fused 0.1); c2 by 0.01 only
    match = {(c1, "a"): 0.4, (c1, "a_e"): 0.3, (c2, "a"): 0.31, (c2, "a_e"): 0.3}
    features = _features(["a", "a_e"])
    scorer = MatcherTableScorer(table, match)
    assert twin_accuracy(scorer, tmp_path, features)["entity"]["accuracy"] == 0.0
    reranked = twin_accuracy(scorer, tmp_path, features, "reranked")
    assert reranked["entity"]["accuracy"] == pytest.approx(50.0)
    assert scorer.pairs_asked == 4  # only the pairs the decisions read
    assert twin_accuracy(scorer, tmp_path, features, "match")["entity"]["accuracy"] == 100.0
    with pytest.raises(DataError, match="binding matcher"):
        twin_accuracy(TableScorer(table, []), tmp_path, features, "reranked")


def test_first_stage_adds_the_late_terms_and_reranking_keeps_fused_plus_match(
        tmp_path: Path) -> None:  # fmt: skip
    _write(tmp_path, TWINS[:1], TRUTH)
    c1, c2 = "a red ball", "a red ball is moving left"
    table = {(c1, "a"): 0.5, (c1, "a_e"): 0.6, (c2, "a"): 0.5, (c2, "a_e"): 0.6}
    late = {(c1, "a"): 0.3, (c1, "a_e"): 0.2, (c2, "a"): 0.2, (c2, "a_e"): 0.2}
    match = {key: 0.0 for key in table}
    features = _features(["a", "a_e"])
    scorer = MatcherTableScorer(table, match, late)
    assert twin_accuracy(scorer, tmp_path, features, "first")["entity"]["accuracy"] == 0.0
    scorer.shortlist = ShortlistPolicy(weight=2.0, late_weight=2.0)  # c1: 0.5+0.6 > 0.6+0.4
    assert twin_accuracy(scorer, tmp_path, features, "first")["entity"]["accuracy"] == 50.0
    # re-ranked = fused + weight x match (the match has the late terms already): a zero
    # match leaves the fused decisions
    assert twin_accuracy(scorer, tmp_path, features, "reranked")["entity"]["accuracy"] == 0.0


def test_several_scores_at_once_equal_each_alone_and_share_the_matcher(
        tmp_path: Path) -> None:  # fmt: skip
    _write(tmp_path, TWINS[:1], TRUTH)
    c1, c2 = "a red ball", "a red ball is moving left"
    table = {(c1, "a"): 0.5, (c1, "a_e"): 0.6, (c2, "a"): 0.5, (c2, "a_e"): 0.6}
    late = {(c1, "a"): 0.3, (c1, "a_e"): 0.2, (c2, "a"): 0.2, (c2, "a_e"): 0.25}
    match = {(c1, "a"): 0.4, (c1, "a_e"): 0.3, (c2, "a"): 0.31, (c2, "a_e"): 0.3}
    features = _features(["a", "a_e"])
    scores = ("fused", "first", "reranked", "match")
    scorer = MatcherTableScorer(table, match, late)
    scorer.shortlist = ShortlistPolicy(weight=2.0, late_weight=2.0)
    together = twin_accuracies(scorer, tmp_path, features, scores)
    assert scorer.pairs_asked == 8  # 4 pairs for the late terms, 4 for the whole matcher
    for score in scores:
        assert together[score] == twin_accuracy(scorer, tmp_path, features, score)
    # a first stage with all the matcher's terms is the matcher's mean: scored once
    scorer.match_terms = scorer.late_terms
    scorer.pairs_asked = 0
    shared = twin_accuracies(scorer, tmp_path, features, scores)
    assert scorer.pairs_asked == 4
    assert shared["reranked"] == together["reranked"]
    assert shared["first"]["entity"]["accuracy"] == 50.0  # c1 by 0.5 + 2 x 0.4 vs 0.6 + 2 x 0.3


def test_twin_table_shows_each_score_with_intervals() -> None:
    from mcsan.inference.twins import format_twin_table

    fused = {"entity/binding": {"accuracy": 60.0, "pairs": 50, "twins": 10,
                                "focused_accuracy": 70.0, "focused_pairs": 20},
             "all": {"accuracy": 55.0, "pairs": 100, "twins": 20}}  # fmt: skip
    table = format_twin_table({"fused": fused, "reranked": fused}).splitlines()
    assert table[0].split()[:5] == ["twin", "kind", "fused:", "mention", "fused:"]
    assert table[2].startswith("entity/binding") and "70.0 [48-85]" in table[2]
    assert table[2].split()[-2:] == ["10", "20/50"]
    assert table[3].startswith("all ") and " - " in table[3]  # no focused number: "-"

