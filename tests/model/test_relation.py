"""The geometric relation branch and the text relation level are order-aware."""

from __future__ import annotations

import pytest
import torch

from mcsan.core.batch import TextBatch
from mcsan.model.cells import CellPairTensor, TripletTensor, cell_coordinates
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
    return TextBatch(tokens, torch.ones_like(tokens, dtype=torch.bool),
                     {"entity": spans, "action": torch.tensor([[[3, 4]]]), "relation": rel},
                     {"entity": torch.ones(1, 2, dtype=torch.bool), "action": one,
                      "relation": one})  # fmt: skip


@pytest.mark.parametrize("relation_mode", ["geometric", "cell_tensor"])
def test_swapping_subject_and_object_changes_the_text_relation_embedding(
    relation_mode: str,
) -> None:
    model = make_model(tiny_config(relation_mode=relation_mode)).eval()
    original = model.encode_text(_relation_caption((1, 3), (6, 8))).embeddings
    # "b is left of a": same words, roles exchanged (phrases swapped in the sentence)
    swapped = model.encode_text(_relation_caption((6, 8), (1, 3))).embeddings
    assert (original["relation"] - swapped["relation"]).abs().max() > 1e-3
    # the entity level only sees which nouns occur: nearly the same bag of phrases
    assert torch.isfinite(swapped["entity"]).all()


def _scene(cells: int, frames: int, where: dict[int, list[int]]) -> torch.Tensor:
    """(1, T, G, 8) cell tokens: background zeros, object k (a one-hot feature) in the cell
    ``where[k][t]`` at frame t."""
    tokens = torch.zeros(1, frames, cells, 8)
    for k, path in where.items():
        for t, cell in enumerate(path):
            tokens[0, t, cell, k] = 1.0
    return tokens


def _cells_only(module: CellPairTensor) -> CellPairTensor:
    """Zero the cell projections' biases: empty cells (zero tokens) then add nothing, so the
    output is made of the object cells alone."""
    with torch.no_grad():
        for layer in (module.reduce, module.subject, module.object):
            layer.bias.zero_()
    return module.eval()


def _differ(first: torch.Tensor, second: torch.Tensor) -> float:
    """Largest difference of the two L2-normalised vectors (the model normalises too)."""
    return float((first / first.norm() - second / second.norm()).abs().max().detach())


def test_cell_pairs_tell_a_left_of_b_from_b_left_of_a() -> None:
    torch.manual_seed(0)
    module = _cells_only(CellPairTensor(8, cell_coordinates([4])))
    mask = torch.ones(1, 3, dtype=torch.bool)
    a_left = module(_scene(4, 3, {0: [0, 0, 0], 1: [1, 1, 1]}), mask)
    b_left = module(_scene(4, 3, {0: [1, 1, 1], 1: [0, 0, 0]}), mask)
    assert _differ(a_left, b_left) > 0.05


def test_cell_pairs_tell_who_moves() -> None:
    torch.manual_seed(1)
    module = _cells_only(CellPairTensor(8, cell_coordinates([9])))
    mask = torch.ones(1, 3, dtype=torch.bool)
    a_approaches = module(_scene(9, 3, {0: [3, 4, 4], 1: [5, 5, 5]}), mask)
    b_approaches = module(_scene(9, 3, {0: [3, 3, 3], 1: [5, 4, 4]}), mask)
    assert _differ(a_approaches, b_approaches) > 0.05


def test_cell_pairs_ignore_padding_frames_and_need_no_grid() -> None:
    torch.manual_seed(2)
    module = CellPairTensor(8, cell_coordinates([4])).eval()
    scene = _scene(4, 3, {0: [0, 0, 2], 1: [1, 3, 3]})
    padded = torch.cat([scene, torch.randn(1, 2, 4, 8)], dim=1)
    mask = torch.tensor([[True, True, True, False, False]])
    full = module(scene, torch.ones(1, 3, dtype=torch.bool))
    assert torch.allclose(module(padded, mask), full, atol=1e-5)
    frame_only = CellPairTensor(8, cell_coordinates([]))
    out = frame_only(torch.randn(2, 3, 1, 8), torch.ones(2, 3, dtype=torch.bool))
    assert out.shape == (2, frame_only.out_dim)


def test_triplet_binding_is_role_typed() -> None:
    torch.manual_seed(3)
    binding = TripletTensor(8)
    subject, predicate, obj = torch.randn(3, 8)
    forward = binding(torch.stack([subject, predicate, obj])[None, None])
    backward = binding(torch.stack([obj, predicate, subject])[None, None])
    assert (forward - backward).abs().max() > 1e-3
