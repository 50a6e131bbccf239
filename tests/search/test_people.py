"""People in zero-example search: photo clips of people are found by invented phrasings, and
GloVe's noise neighbours no longer answer for words like "kitten", "woman" or "tv"."""

from __future__ import annotations

import numpy as np
import pytest
from search_helpers import photo_frames, photo_index_setup

from mcsan.search.concepts import PEOPLE_CONCEPTS, default_bank
from mcsan.search.server import open_searcher


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    base = tmp_path_factory.getbasetemp() / "photo_setup"
    base.mkdir(exist_ok=True)
    paths = photo_index_setup(base)
    return open_searcher(paths["index"], bank=default_bank())


@pytest.mark.parametrize("query", [
    "a person", "someone standing", "an astronaut", "a man", "a woman in a suit",
    "a face", "somebody smiling at the camera", "a human",
])
def test_invented_phrasings_find_the_person_photo_first(photos, query):
    answer = photos.answer(query, 8)
    assert answer.hits and answer.hits[0].video_id == "astronaut"
    assert "chelsea" not in [h.video_id for h in answer.hits[:2]]
    assert answer.hits[0].concepts[0]["concept"] in PEOPLE_CONCEPTS


def test_words_the_detector_cannot_tell_map_to_person_with_a_note(photos):
    answer = photos.answer("a woman", 8)
    assert {m["name"] for m in answer.matched_concepts} == {"person"}
    assert any("cannot tell a woman" in note for note in answer.notes)
    crowd = photos.answer("a crowd", 8)
    assert {m["name"] for m in crowd.matched_concepts} == {"people"}
    assert any("cannot count a crowd" in note for note in crowd.notes)
    assert crowd.hits == [] and "nothing is listed" in crowd.warnings[-1]  # no padding


@pytest.mark.parametrize(("word", "noise"), [
    ("kitten", {"axolotl", "lipstick", "tarantula"}), ("coins", {"vase"}),
    ("tv", {"red fox", "kit fox", "radio"}), ("woman", {"dragonfly"}),
    ("man", {"Maltese dog", "German shepherd"}), ("child", {"dragonfly"}),
    ("baby", {"tabby"}), ("puppy", {"axolotl"}), ("kitchen", {"butcher shop"}),
    ("meat", {"prairie chicken"}), ("football", {"basketball"}), ("a person", {"groom"}),
])
def test_noise_neighbours_do_not_survive(word, noise):
    names = {m.name for m in default_bank().match(word).matches}
    assert not names & noise


def test_synonyms_reach_the_right_concepts(photos):
    kitten = photos.answer("a kitten", 3)
    assert kitten.hits[0].video_id == "chelsea" and "domestic cat" in kitten.notes[0]
    tv = default_bank().match("a tv")
    assert [m.name for m in tv.matches] == ["television"]


def test_only_clips_above_the_floor_are_listed(photos):
    from mcsan.search.modes import HIT_FLOOR

    answer = photos.answer("a person", 8)
    assert [h.video_id for h in answer.hits] == ["astronaut"]  # no 0.000 padding
    assert all(h.concept_score >= HIT_FLOOR for h in answer.hits)


def test_the_detector_counts_two_people_and_no_cat():
    import skimage.data

    from mcsan.search.people import detect_frame

    astronaut = skimage.data.astronaut()
    two = np.concatenate([astronaut[:, 100:400], astronaut[:, 100:400]], axis=1)
    frames = photo_frames(two, frames=2, size=224)
    assert detect_frame(frames[0]).tolist() == [1.0, 1.0, 1.0]  # person, people, face
    cat = photo_frames(skimage.data.chelsea(), frames=1, size=224)[0]
    assert detect_frame(cat).tolist() == [0.0, 0.0, 0.0]
