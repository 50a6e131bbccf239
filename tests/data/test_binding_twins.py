"""Binding twins of the synthetic world: same words, bound the other way round."""

from __future__ import annotations

from collections import Counter

from mcsan.world.binding import make_binding_twins
from mcsan.world.lexicon import DYNAMIC_RELATIONS
from mcsan.world.scene import relation_holds, scene_valid
from mcsan.world.splits import make_holdout, make_twins, sample_scene

FRAMES = 8


def _scenes(n: int = 40):
    holdout = make_holdout(0)
    return holdout, [sample_scene(0, i, "test", holdout, FRAMES) for i in range(n)]


def test_binding_twins_keep_every_word_level_fact() -> None:
    holdout, scenes = _scenes()
    kinds: Counter[str] = Counter()
    for scene in scenes:
        for twin in make_binding_twins(0, scene, holdout, FRAMES):
            kind = twin.video_id.split("_twin_")[1]
            kinds[kind] += 1
            assert twin.meta["twin_of"] == scene.video_id and scene_valid(twin, FRAMES)
            assert not holdout.hits(twin.objects, twin.relations)
            before, after = scene.objects, twin.objects
            assert Counter(o.colour for o in before) == Counter(o.colour for o in after)
            assert Counter(o.shape for o in before) == Counter(o.shape for o in after)
            if kind != "relation_swap":  # (the new object may need another still action)
                assert Counter(o.action for o in before) == Counter(o.action for o in after)
            if kind == "entity_binding":
                i, j = twin.meta["change"]["objects"]
                assert (after[i].colour, after[j].colour) == (before[j].colour, before[i].colour)
                assert twin.relations == scene.relations
            elif kind == "action_binding":
                i, j = twin.meta["change"]["objects"]
                assert (after[i].action, after[j].action) == (before[j].action, before[i].action)
                assert twin.relations == scene.relations
            else:
                s, p, o = scene.relations[0]
                assert p in DYNAMIC_RELATIONS and twin.relations[0] == (o, p, s)
                assert relation_holds(twin, (o, p, s), FRAMES)
                assert not relation_holds(twin, (s, p, o), FRAMES)
                assert after[s].colour == before[s].colour and after[s].shape == before[s].shape
    assert set(kinds) == {"entity_binding", "action_binding", "relation_swap"}


def test_binding_twins_leave_the_one_level_twins_unchanged() -> None:
    holdout, scenes = _scenes(6)
    for scene in scenes:
        ids = [t.video_id for t in make_twins(0, scene, holdout, FRAMES)]
        assert all(i.endswith(("_entity", "_action", "_relation")) for i in ids)
        again = [t.video_id for t in make_twins(0, scene, holdout, FRAMES)]
        assert ids == again
