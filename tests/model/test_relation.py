"""The geometric relation branch and the text relation level are order-aware."""

from __future__ import annotations

import torch

from mcsan.batch import TextBatch
from mcsan.model.relation import GeometricRelations, grid_coordinates, slot_trajectories
from tests.model.test_model import make_model, tiny_config


def test_grid_coordinates_are_row_major_cell_centres() -> None:
    coords = grid_coordinates([4, 3])
    assert coords[:4].tolist() == [[0.25, 0.25], [0.75, 0.25], [0.25, 0.75], [0.75, 0.75]]
    assert torch.allclose(coords[4:, 1], torch.full((3,), 0.5))


def test_slot_trajectory_follows_the_attended_cell() -> None:
    coords = grid_coordinates([4])
    # one slot, 3 frames; per frame: 1 frame token + 4 cells; it looks at cells 0, 1, 3
    weights = torch.zeros(1, 1, 3, 5)
    for t, cell in enumerate((0, 1, 3)):
        weights[0, 0, t, 0] = 0.5  # the frame token carries no position
        weights[0, 0, t, 1 + cell] = 0.5
    centre, spread = slot_trajectories(weights.reshape(1, 1, 15), coords, 3, 5)
    assert centre[0, 0].tolist() == [[0.25, 0.25], [0.75, 0.25], [0.75, 0.75]]
    assert torch.allclose(spread, torch.zeros_like(spread), atol=1e-2)


def _pooled(module: GeometricRelations, slots, centre) -> torch.Tensor:
    mask = torch.ones(1, centre.shape[2], dtype=torch.bool)
    spread = torch.full(centre.shape[:3], 0.1)
    return module(slots, centre, spread, mask).mean(dim=1)


def test_ordered_pairs_tell_a_left_of_b_from_b_left_of_a() -> None:
    torch.manual_seed(0)
    module = GeometricRelations(16)
    slots = torch.randn(1, 2, 16)  # slot 0 = object a, slot 1 = object b
    left, right = torch.tensor([0.25, 0.5]), torch.tensor([0.75, 0.5])
    a_left_of_b = torch.stack([left, right])[None, :, None].expand(1, 2, 4, 2)
    b_left_of_a = torch.stack([right, left])[None, :, None].expand(1, 2, 4, 2)
    first, second = _pooled(module, slots, a_left_of_b), _pooled(module, slots, b_left_of_a)
    assert (first - second).abs().max() > 1e-3
    # the same scene with the slots listed the other way round is the same set of pairs
    relisted = _pooled(module, slots.flip(1), a_left_of_b.flip(1))
    assert torch.allclose(first, relisted, atol=1e-6)


def test_a_approaching_b_differs_from_b_approaching_a() -> None:
    torch.manual_seed(1)
    module = GeometricRelations(16)
    slots = torch.randn(1, 2, 16)
    time = torch.linspace(0, 1, 5)[:, None]
    still = torch.tensor([0.8, 0.5]).expand(5, 2)
    moving = torch.stack([0.2 + 0.4 * time[:, 0], torch.full((5,), 0.5)], -1)
    a_moves = torch.stack([moving, still])[None]
    b_moves = torch.stack([still, moving])[None]
    assert (_pooled(module, slots, a_moves) - _pooled(module, slots, b_moves)).abs().max() > 1e-3


def _relation_caption(subject: tuple[int, int], obj: tuple[int, int]) -> TextBatch:
    """'a 5 6 7 8 a 9 10' with subject and object noun phrases at the given spans."""
    tokens = torch.tensor([[2, 5, 6, 7, 8, 2, 9, 10]])
    if subject[0] > obj[0]:  # swapped caption: the phrases trade places
        tokens = torch.tensor([[2, 9, 10, 7, 8, 2, 5, 6]])
    spans = torch.tensor([[[1, 3], [6, 8]]])
    rel = torch.tensor([[[list(subject), [3, 5], list(obj)]]])
    one = torch.ones(1, 1, dtype=torch.bool)
    return TextBatch(tokens, torch.ones_like(tokens, dtype=torch.bool), spans,
                     torch.ones(1, 2, dtype=torch.bool), torch.tensor([[[3, 4]]]), one, rel, one)


def test_swapping_subject_and_object_changes_the_text_relation_embedding() -> None:
    model = make_model(tiny_config()).eval()
    original = model.encode_text(_relation_caption((1, 3), (6, 8))).embeddings
    # "b is left of a": same words, roles exchanged (phrases swapped in the sentence)
    swapped = model.encode_text(_relation_caption((6, 8), (1, 3))).embeddings
    assert (original["relation"] - swapped["relation"]).abs().max() > 1e-3
    # the entity level only sees which nouns occur: nearly the same bag of phrases
    assert torch.isfinite(swapped["entity"]).all()
