"""Cell branches bind what a pooled vector cannot: colour with shape, subject with object."""

from __future__ import annotations

import torch

from mcsan.model.cells import CellEntities, PhraseEntities, cell_coordinates
from tests.model.test_model import make_model, make_text, make_video, tiny_config


def _two_objects(first: list[int], second: list[int]) -> torch.Tensor:
    """(1, 2 frames, 4 cells, 6) tokens: feature dims red, blue, circle, square, -, -;
    object one in cell 0, object two in cell 3, the other cells empty."""
    tokens = torch.zeros(1, 2, 4, 6)
    tokens[0, :, 0, first] = 1.0
    tokens[0, :, 3, second] = 1.0
    return tokens


def test_cell_entities_bind_colour_to_shape_where_a_mean_cannot() -> None:
    torch.manual_seed(0)
    module = CellEntities(6, role_dim=4).eval()
    with torch.no_grad():
        module.reduce.bias.zero_()
        module.first.bias.zero_()
        module.second.bias.zero_()
    mask = torch.ones(1, 2, dtype=torch.bool)
    red_circle_blue_square = _two_objects([0, 2], [1, 3])
    blue_circle_red_square = _two_objects([1, 2], [0, 3])
    # the same colours and shapes: a mean over cells cannot tell the two scenes apart
    assert torch.equal(red_circle_blue_square.mean(2), blue_circle_red_square.mean(2))
    first = module(red_circle_blue_square, mask)
    second = module(blue_circle_red_square, mask)
    assert (first / first.norm() - second / second.norm()).abs().max() > 0.05


def test_phrase_entities_are_outer_products() -> None:
    torch.manual_seed(1)
    module = PhraseEntities(5, role_dim=3)
    phrases = torch.randn(2, 4, 5)
    out = module(phrases)
    assert out.shape == (2, 4, 9)
    expected = module.first(phrases)[..., :, None] * module.second(phrases)[..., None, :]
    assert torch.allclose(out, expected.flatten(start_dim=-2))


def test_cell_coordinates_without_a_grid_is_the_frame_centre() -> None:
    assert cell_coordinates([]).tolist() == [[0.5, 0.5]]


def test_a_model_with_both_cell_branches_encodes_and_takes_gradients() -> None:
    cfg = tiny_config(entity_mode="cell_tensor", relation_mode="cell_tensor",
                      action_mode="cell_tensor", relation_phrases=True)  # fmt: skip
    model = make_model(cfg)
    assert not hasattr(model.video_encoder, "slots")  # no slot branch left to train
    video_out, text_out = model(make_video(2, 4, [4, 2], 9), make_text([3, 5], 10))
    for out in (video_out, text_out):
        assert set(out.embeddings) == set(cfg.levels)
        assert all(torch.isfinite(e).all() for e in out.embeddings.values())
    total = sum(v.sum() for v in video_out.embeddings.values()) + sum(
        t.sum() for t in text_out.embeddings.values()
    )
    total.backward()
    assert model.video_encoder.entities.first.weight.grad is not None
    assert model.text_encoder.phrase.weight.grad is not None
    assert model.video_encoder.cell_action.motion.weight.grad is not None


def test_each_action_takes_the_nearest_entity_before_it_as_agent() -> None:
    from mcsan.core.batch import TextBatch
    from mcsan.model.text_encoder import action_agents

    # "a pink diamond is hopping while a blue diamond is spinning" / "spinning" (no entity)
    tokens = torch.ones(2, 11, dtype=torch.long)
    spans = {"entity": torch.tensor([[[2, 3], [8, 9]], [[0, 1], [0, 1]]]),
             "action": torch.tensor([[[4, 5], [10, 11]], [[0, 1], [0, 1]]]),
             "relation": torch.zeros(2, 1, 3, 2, dtype=torch.long)}  # fmt: skip
    masks = {"entity": torch.tensor([[True, True], [False, False]]),
             "action": torch.tensor([[True, True], [True, False]]),
             "relation": torch.zeros(2, 1, dtype=torch.bool)}  # fmt: skip
    agents = action_agents(TextBatch(tokens, tokens.bool(), spans, masks))
    assert agents[0].tolist() == [[2, 3], [8, 9]]
    assert agents[1, 0].tolist() == [0, 1]  # no entity: the action itself
