"""Caption parsing: hand-written captions with their expected levels, records, cache, errors."""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mcsan.core.errors import ParseError
from mcsan.data.captions.parse import (
    ParsedCaption,
    Relation,
    Span,
    caption_problem,
    empty_level_counts,
    parse_with_cache,
)

# (caption, entities, actions, relation keys, kind). Entities/actions in caption order;
# relation keys as a set. kind: "synthetic" (shape world) or "real" (MSR-VTT style).
EXPECTED: list[tuple[str, list[str], list[str], set[str], str]] = [
    # simple present tagged NOUN by the small model
    (
        "a chef cuts onions and garlic",
        ["chef", "onion", "garlic"],
        ["cut"],
        {"chef|cut|onion", "chef|cut|garlic"},
        "real",
    ),
    (
        "a purple cube moves toward an orange ball",
        ["cube", "ball"],
        ["move"],
        {"cube|move toward|ball"},
        "synthetic",
    ),
    (
        "a small purple square moves toward a red triangle",
        ["square", "triangle"],
        ["move"],
        {"square|move toward|triangle"},
        "synthetic",
    ),
    ("an orange star spins", ["star"], ["spin"], set(), "synthetic"),
    (
        "a big red circle collides with a tiny blue square",
        ["circle", "square"],
        ["collide"],
        {"circle|collide with|square"},
        "synthetic",
    ),
    (
        "a cube spins and moves toward the ball",
        ["cube", "ball"],
        ["spin", "move"],
        {"cube|move toward|ball"},
        "synthetic",
    ),
    # colour words are attributes
    (
        "the green star jumps over the blue circle",
        ["star", "circle"],
        ["jump"],
        {"star|jump over|circle"},
        "synthetic",
    ),
    ("the orange circle", ["circle"], [], set(), "synthetic"),
    (
        "the cyan cube is to the right of the magenta sphere",
        ["cube", "sphere"],
        [],
        {"cube|to the right of|sphere"},
        "synthetic",
    ),
    # passive voice
    (
        "a red ball is being approached by a blue cube",
        ["ball", "cube"],
        ["approach"],
        {"cube|approach|ball"},
        "synthetic",
    ),
    (
        "a purple ball is pushed by a green cube",
        ["ball", "cube"],
        ["push"],
        {"cube|push|ball"},
        "synthetic",
    ),
    ("a ball pushed by a cube", ["ball", "cube"], ["push"], {"cube|push|ball"}, "synthetic"),
    (
        "a man is being interviewed by a reporter",
        ["man", "reporter"],
        ["interview"],
        {"reporter|interview|man"},
        "real",
    ),
    # multi-word prepositions
    (
        "a white star spins next to a green box",
        ["star", "box"],
        ["spin"],
        {"star|spin next to|box"},
        "synthetic",
    ),
    (
        "the red cube is to the left of the green ball",
        ["cube", "ball"],
        [],
        {"cube|to the left of|ball"},
        "synthetic",
    ),
    (
        "a blue triangle is in front of a yellow star",
        ["triangle", "star"],
        [],
        {"triangle|in front of|star"},
        "synthetic",
    ),
    (
        "the red box is on top of the blue ball",
        ["box", "ball"],
        [],
        {"box|on top of|ball"},
        "synthetic",
    ),
    (
        "a red ball moves away from a green cube",
        ["ball", "cube"],
        ["move"],
        {"ball|move away from|cube"},
        "synthetic",
    ),
    (
        "a man is standing next to a woman",
        ["man", "woman"],
        ["stand"],
        {"man|stand next to|woman"},
        "real",
    ),
    # progressive forms, copulas and auxiliaries
    (
        "the blue cube is colliding with the yellow star",
        ["cube", "star"],
        ["collide"],
        {"cube|collide with|star"},
        "synthetic",
    ),
    (
        "the yellow star is above the purple circle",
        ["star", "circle"],
        [],
        {"star|above|circle"},
        "synthetic",
    ),
    ("a green ball is growing", ["ball"], ["grow"], set(), "synthetic"),
    (
        "a white square is shrinking and blinking",
        ["square"],
        ["shrink", "blink"],
        set(),
        "synthetic",
    ),
    (
        "a pink triangle hops over a gray square",
        ["triangle", "square"],
        ["hop"],
        {"triangle|hop over|square"},
        "synthetic",
    ),
    # conjoined subjects / objects
    ("a man and a woman are dancing", ["man", "woman"], ["dance"], set(), "real"),
    (
        "a red cube and a blue ball are moving toward a green star",
        ["cube", "ball", "star"],
        ["move"],
        {"cube|move toward|star", "ball|move toward|star"},
        "synthetic",
    ),
    (
        "the green triangle is approaching the red circle and the blue star",
        ["triangle", "circle", "star"],
        ["approach"],
        {"triangle|approach|circle", "triangle|approach|star"},
        "synthetic",
    ),
    # (head, preposition, object)
    ("a man in a red shirt", ["man", "shirt"], [], {"man|in|shirt"}, "real"),
    (
        "a man plays guitar on the stage",
        ["man", "guitar", "stage"],
        ["play"],
        {"man|play|guitar", "man|on|stage"},
        "real",
    ),
    ("playing guitar on the stage", ["guitar", "stage"], ["play"], {"play|on|stage"}, "real"),
    (
        "a man in a black shirt talks about cars",
        ["man", "shirt", "car"],
        ["talk"],
        {"man|in|shirt", "man|talk about|car"},
        "real",
    ),
    (
        "a chef in a white hat cooks pasta",
        ["chef", "hat", "pasta"],
        ["cook"],
        {"chef|in|hat", "chef|cook|pasta"},
        "real",
    ),
    # participles, relative clauses, expletives, verb chains
    (
        "there is a man shooting other people",
        ["man", "people"],
        ["shoot"],
        {"man|shoot|people"},
        "real",
    ),
    (
        "a woman who is wearing a hat is talking",
        ["woman", "hat"],
        ["wear", "talk"],
        {"woman|wear|hat"},
        "real",
    ),
    (
        "a man sings and plays guitar",
        ["man", "guitar"],
        ["sing", "play"],
        {"man|play|guitar"},
        "real",
    ),
    ("a man picks up a ball", ["man", "ball"], ["pick"], {"man|pick up|ball"}, "real"),
    # lemmatizer repairs, collectives, no verb at all
    (
        "a girl is riding a horse in the field",
        ["girl", "horse", "field"],
        ["ride"],
        {"girl|ride|horse", "girl|in|field"},
        "real",
    ),
    ("the girl rides a bike", ["girl", "bike"], ["ride"], {"girl|ride|bike"}, "real"),
    (
        "a group of people are dancing at a party",
        ["people", "party"],
        ["dance"],
        {"people|dance at|party"},
        "real",
    ),
    (
        "someone is cooking food in a kitchen",
        ["food", "kitchen"],
        ["cook"],
        {"someone|cook|food", "someone|in|kitchen"},
        "real",
    ),
    ("cartoon show for kids", ["cartoon", "show", "kid"], [], {"show|for|kid"}, "real"),
    (
        "a woman is slicing a tomato with a knife",
        ["woman", "tomato", "knife"],
        ["slice"],
        {"woman|slice|tomato", "woman|slice with|knife"},
        "real",
    ),
]


@pytest.fixture(scope="module")
def expected_parsed(caption_parser):
    """The hand-written captions parsed in one batch."""
    return caption_parser.parse([case[0] for case in EXPECTED])


@pytest.mark.parametrize("case", range(len(EXPECTED)), ids=[c[0] for c in EXPECTED])
def test_hand_written_caption(case, expected_parsed):
    caption, entities, actions, relations, _ = EXPECTED[case]
    parsed = expected_parsed[case]
    assert [s.lemma for s in parsed.entities] == entities
    assert [s.lemma for s in parsed.actions] == actions
    assert {r.key for r in parsed.relations} == relations
    assert len(parsed.relations) == len(relations)


def test_spans_point_at_their_words(caption_parser):
    (parsed,) = caption_parser.parse(["A white star spins next to a  green box."])
    assert parsed.tokens == ("a", "white", "star", "spins", "next", "to", "a", "green", "box", ".")
    (relation,) = parsed.relations
    assert parsed.tokens[relation.predicate.start : relation.predicate.end] == (
        "spins",
        "next",
        "to",
    )
    assert parsed.tokens[relation.subject.start] == "star"
    assert parsed.tokens[relation.object.start] == "box"
    (moving,) = caption_parser.parse(["a cube is moving quickly toward a ball"])
    predicate = moving.relations[0].predicate
    assert predicate.lemma == "move toward"
    assert moving.tokens[predicate.start : predicate.end] == ("moving", "quickly", "toward")


def test_record_round_trip(caption_parser):
    (parsed,) = caption_parser.parse(["a red ball is being approached by a blue cube"])
    record = json.loads(json.dumps(parsed.to_json()))
    assert set(record) == {"caption", "tokens", "lemmas", "entities", "actions", "relations"}
    assert record["relations"][0] == {
        "subject": "cube",
        "predicate": "approach",
        "object": "ball",
        "subject_span": [9, 10],
        "predicate_span": [5, 6],
        "object_span": [2, 3],
    }
    assert ParsedCaption.from_json({**record, "video_id": "v1"}) == parsed
    assert Relation(Span("a", 0, 1), Span("next to", 1, 3), Span("b", 3, 4)).key == "a|next to|b"


@pytest.mark.parametrize("bad", ["", "   ", "a man\x00 walks", "tab\tinside", None])
def test_bad_captions_raise_naming_the_index(caption_parser, bad):
    assert caption_problem(bad) is not None
    with pytest.raises(ParseError, match="caption 1"):
        caption_parser.parse(["a dog runs", bad])


def test_skip_bad_returns_none_and_counts(caption_parser):
    out = caption_parser.parse(["a dog runs", "", "a cat sleeps", "\x07"], skip_bad=True)
    assert out[1] is None and out[3] is None
    assert [p.caption for p in out if p] == ["a dog runs", "a cat sleeps"]
    assert caption_parser.skipped == [1, 3]
    assert empty_level_counts(out) == {"entity": 0, "action": 0, "relation": 2}


def test_parse_with_cache_parses_only_new_captions(caption_parser, tmp_path):
    cache = tmp_path / "cache.jsonl"
    report: dict[str, int] = {}
    first = parse_with_cache(
        ["a dog runs", "a cat sleeps", "a dog runs"], cache, caption_parser, report=report
    )
    assert report == {"parsed": 2, "cached": 0}
    assert first[0] == first[2]
    second = parse_with_cache(
        ["a cat sleeps", "a bird sings"], cache, caption_parser, report=report
    )
    assert report == {"parsed": 1, "cached": 1}
    assert second[0] == first[1]
    lines = cache.read_text(encoding="utf-8").splitlines()
    assert len(lines) == 4  # header + three distinct captions
    assert not list(tmp_path.glob(".*.tmp"))
    # a cache from another parser signature is ignored, not trusted
    header = json.loads(lines[0])
    header["mcsan_parse_cache"] = "other-model"
    cache.write_text("\n".join([json.dumps(header), *lines[1:]]) + "\n", encoding="utf-8")
    parse_with_cache(["a cat sleeps"], cache, caption_parser, report=report)
    assert report == {"parsed": 1, "cached": 0}
    with pytest.raises(ParseError, match="caption 1"):
        parse_with_cache(["a dog", " "], cache, caption_parser)


LEXICON = (
    "a the man woman cube ball red blue is are moving toward next to left of in on by "
    "and plays cuts jumps over there being approached , . ! ? ' - ... ( ) 123 😀 é"
).split()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(st.sampled_from(LEXICON), min_size=1, max_size=14),
    st.sampled_from(["", "!!", " .", "?"]),
)
def test_every_caption_yields_a_valid_record(caption_parser, words, tail):
    caption = " ".join(words) + tail
    (parsed,) = caption_parser.parse([caption])
    n = len(parsed.tokens)
    assert n >= 1 and len(parsed.lemmas) == n
    assert all(t and t == t.lower() and not t.isspace() for t in parsed.tokens)
    spans = [*parsed.entities, *parsed.actions]
    spans += [s for r in parsed.relations for s in (r.subject, r.predicate, r.object)]
    for span in spans:
        assert 0 <= span.start < span.end <= n
        assert span.lemma
    for span in parsed.entities:
        assert parsed.lemmas[span.start] == span.lemma
    assert ParsedCaption.from_json(json.loads(json.dumps(parsed.to_json()))) == parsed


def test_world_captions_parse_to_their_ground_truth(caption_parser):
    """The synthetic world states, for every caption, what a parser should recover."""
    world = pytest.importorskip("mcsan.world.describe")
    from mcsan.world.splits import assign_splits, make_holdout, sample_scene

    holdout, splits = make_holdout(0), assign_splits(40, 0)
    truths = [
        truth
        for i in range(40)
        for truth in world.write_captions(sample_scene(0, i, splits[i], holdout, 16), 0)
    ]
    parsed = caption_parser.parse([t.caption for t in truths])
    for truth, record in zip(truths, parsed, strict=True):
        assert sorted(e.lemma for e in record.entities) == sorted(truth.entities), truth.caption
        assert sorted(a.lemma for a in record.actions) == sorted(truth.actions), truth.caption
        keys = sorted(r.key for r in record.relations)
        assert keys == sorted("|".join(t) for t in truth.relations), truth.caption


def test_direction_left_is_not_the_verb_leave(caption_parser):
    (parsed,) = caption_parser.parse(
        ["a red heart is sliding left while a pink star is flickering"]
    )
    assert [a.lemma for a in parsed.actions] == ["slide", "flicker"]
    assert [e.lemma for e in parsed.entities] == ["heart", "star"]


def test_parse_command_writes_records_and_reports(tmp_path, capsys):
    from mcsan.cli import main

    captions = tmp_path / "captions.jsonl"
    lines = [
        json.dumps({"video_id": "v1", "caption": "a chef cuts onions", "split": "train"}),
        json.dumps({"video_id": "v1", "caption": "   ", "split": "train"}),
        json.dumps({"video_id": "v2", "caption": "a cube is above a ball", "split": "val"}),
    ]
    captions.write_text("\n".join(lines) + "\n", encoding="utf-8")
    out = tmp_path / "parsed.jsonl"
    assert main(["parse", "--captions", str(captions), "--out", str(out)]) == 2
    assert "captions.jsonl:2" in capsys.readouterr().err
    args = ["parse", "--captions", str(captions), "--out", str(out), "--skip-bad", "--stats"]
    assert main([*args, "--cache", str(tmp_path / "cache.jsonl")]) == 0
    printed = capsys.readouterr().out
    assert "skipped 1 bad captions: line 2" in printed and "rarest half" in printed
    records = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert [r["video_id"] for r in records] == ["v1", "v2"]
    assert records[1]["relations"][0]["predicate"] == "above"

    text = tmp_path / "captions.txt"
    text.write_bytes(b"a dog runs\n\xff\xfe broken\na cat sleeps\n")
    assert main(["parse", "--captions", str(text), "--out", str(out)]) == 2
    assert "captions.txt:2: not valid UTF-8" in capsys.readouterr().err
    assert main(["parse", "--captions", str(text), "--out", str(out), "--skip-bad"]) == 0
    assert len(out.read_text(encoding="utf-8").splitlines()) == 2
