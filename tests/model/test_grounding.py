"""Dense scoring at inference grounds each distinct phrase once (mcsan.model.grounding): the
scores are those of grounding every term's phrases on its own (the training path)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

import mcsan.model.matcher as matcher_module
from mcsan.model.matcher import BindingMatcher
from mcsan.model.matcher_inputs import MatcherText, MatcherVideo

LEVELS = ["global", "entity", "action", "relation"]


def _unit(*shape: int) -> torch.Tensor:
    return F.normalize(torch.randn(*shape), dim=-1)


def _case(cells: int, presence: bool) -> tuple[BindingMatcher, MatcherText, MatcherVideo]:
    """A random matcher, 7 captions whose agents and subjects repeat their entity phrases
    (and one caption repeats another), 40 clips with padding frames."""
    torch.manual_seed(cells)
    shapes = {"grid": (cells, 24)} if cells > 1 else {"frame": (24,)}
    matcher = BindingMatcher(shapes, 12, LEVELS, dim=16, presence=presence).eval()
    clips, frames = 40, 5
    video = MatcherVideo(_unit(clips, frames, cells, 16), torch.randn(clips, frames, cells, 16),
                         torch.arange(frames)[None] < torch.randint(1, frames + 1, (clips, 1)))  # fmt: skip
    entity = _unit(7, 3, 16)
    entity[4] = entity[1]  # the same caption twice
    parts = {"entity": (entity,), "action": (entity[:, :2].clone(), _unit(7, 2, 16)),
             "relation": (entity[:, :1].clone(), _unit(7, 1, 16), _unit(7, 1, 16))}  # fmt: skip
    masks = {"entity": torch.rand(7, 3) > 0.3, "action": torch.rand(7, 2) > 0.4,
             "relation": torch.tensor([[True], [False], [True], [True], [False], [False], [True]])}  # fmt: skip
    masks["entity"][4] = masks["entity"][1]
    return matcher, MatcherText(parts, masks), video


@pytest.mark.parametrize(("cells", "presence"), [(16, False), (16, True), (1, False)])
def test_shared_groundings_score_as_each_term_grounding_its_own(monkeypatch, cells, presence):
    matcher, text, video = _case(cells, presence)
    calls = []
    shared = matcher_module.shared_groundings
    monkeypatch.setattr(matcher_module, "shared_groundings",
                        lambda *a: calls.append(1) or shared(*a))  # fmt: skip
    with torch.enable_grad():  # training: every term grounds its own phrases
        each = {t: v.detach() for t, (_, v) in matcher.term_scores(text, video).items()}
    assert not calls
    with torch.no_grad():
        found = matcher.term_scores(text, video)
    assert calls == [1]
    assert set(found) == set(each) == {"entity", "action", "relation"}
    for term, (_, value) in found.items():
        assert value.shape == each[term].shape
        torch.testing.assert_close(value, each[term], atol=1e-6, rtol=0)
    relation_rows = found["relation"][0].tolist()
    assert relation_rows == [0, 2, 3, 6]  # only the captions that name a relation
    with torch.no_grad():  # a pass with nothing to ground (one cell: the action term alone)
        alone = matcher.term_scores(text, video, terms=("action",))
    with torch.enable_grad():
        reference = matcher.term_scores(text, video, terms=("action",))
    torch.testing.assert_close(alone["action"][1], reference["action"][1].detach())


def test_derived_cell_values_follow_the_module():
    matcher, _, video = _case(16, False)
    computed = []

    def compute() -> torch.Tensor:
        computed.append(1)
        return matcher.role_motion(video.change)

    with torch.no_grad():
        first = video.derive("role_motion", matcher.role_motion, compute)
        again = video.derive("role_motion", matcher.role_motion, compute)
        assert again is first and len(computed) == 1
        assert video.to("cpu") is video  # kept with the clips
        matcher.role_motion.weight.add_(1.0)  # a changed module: computed again
        changed = video.derive("role_motion", matcher.role_motion, compute)
    assert len(computed) == 2 and not torch.equal(changed, first)
    assert video.rows(torch.arange(3)).derived == {}  # other clips derive their own
