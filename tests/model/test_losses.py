"""Losses: triplet ranking (with same-video positives), focal BCE, attribute KL, MCSANLoss."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from mcsan.core.errors import ConfigError
from mcsan.model import LevelOutput
from mcsan.model.losses import (
    LossConfig,
    MCSANLoss,
    attribute_kl,
    focal_bce_with_logits,
    triplet_loss,
)

finite = st.floats(-30, 30, allow_nan=False, width=32)


def reference_triplet(sim, positive, margin, hardest):
    """Loop-by-loop VSE++ over every positive pair (the definition, slowly)."""
    n_t, n_v = sim.shape
    costs = []
    for i, j in itertools.product(range(n_t), range(n_v)):
        if not positive[i, j]:
            continue
        to_video = [
            max(0.0, margin + sim[i, k] - sim[i, j]) for k in range(n_v) if not positive[i, k]
        ]
        to_caption = [
            max(0.0, margin + sim[c, j] - sim[i, j]) for c in range(n_t) if not positive[c, j]
        ]

        def pick(values: list[float]) -> float:
            return max(values, default=0.0) if hardest else sum(values)

        costs.append(pick(to_video) + pick(to_caption))
    return sum(costs) / max(1, len(costs))


@settings(max_examples=40, deadline=None)
@given(
    keys=st.lists(st.integers(0, 3), min_size=1, max_size=6),
    seed=st.integers(0, 10_000),
    hardest=st.booleans(),
)
def test_triplet_matches_the_loop_definition(keys: list[int], seed: int, hardest: bool) -> None:
    ids = torch.tensor(keys)
    positive = ids[:, None] == ids[None, :]
    sim = torch.rand(len(keys), len(keys), generator=torch.Generator().manual_seed(seed)) * 2 - 1
    got = triplet_loss(sim, positive, 0.2, hardest)
    want = reference_triplet(sim.numpy(), positive.numpy(), 0.2, hardest)
    assert float(got) == pytest.approx(want, abs=1e-5)


@settings(max_examples=30, deadline=None)
@given(n=st.integers(1, 6), gap=st.floats(0.2, 1.0), seed=st.integers(0, 1000))
def test_triplet_is_zero_when_positives_beat_negatives_by_the_margin(n, gap, seed) -> None:
    rng = np.random.default_rng(seed)
    sim = torch.as_tensor(rng.uniform(-1.0, 0.5 - gap, size=(n, n)), dtype=torch.float32)
    sim.fill_diagonal_(0.5 + 1e-4)
    positive = torch.eye(n, dtype=torch.bool)
    for hardest in (True, False):
        assert float(triplet_loss(sim, positive, margin=gap - 1e-3, hardest=hardest)) == 0.0


def test_same_video_pairs_are_never_negatives() -> None:
    # Captions 0 and 1 both describe video id 7, which sits in rows/columns 0 and 1.
    keys = torch.tensor([7, 7, 3, 4])
    emb = torch.eye(4)
    emb[1] = emb[0]  # the duplicated video (and its two captions) are identical
    sim = emb @ emb.t()
    positive = keys[:, None] == keys[None, :]
    assert float(triplet_loss(sim, positive, 0.2, True)) == 0.0
    # Treating column 1 as a negative of caption 0 would have cost the margin.
    assert float(triplet_loss(sim, torch.eye(4, dtype=torch.bool), 0.2, True)) > 0.1


def test_triplet_sum_reduction_and_gradient() -> None:
    sim = torch.tensor([[0.5, 0.4], [0.1, 0.2]], requires_grad=True)
    positive = torch.eye(2, dtype=torch.bool)
    total = triplet_loss(sim, positive, 0.2, True, reduction="sum")
    # (0.2+0.4-0.5) + (0.2+0.1-0.5 -> 0) for pair (0,0); (0.2+0.1-0.2) + (0.2+0.4-0.2) for (1,1)
    assert float(total.detach()) == pytest.approx(0.1 + 0.0 + 0.1 + 0.4)
    total.backward()
    assert torch.isfinite(sim.grad).all()


@settings(max_examples=50, deadline=None)
@given(arrays(np.float32, (3, 5), elements=finite), arrays(np.bool_, (3, 5)))
def test_focal_with_gamma_0_alpha_half_is_half_bce(logits, targets) -> None:
    x = torch.as_tensor(logits)
    y = torch.as_tensor(targets).float()
    got = focal_bce_with_logits(x, y, alpha=0.5, gamma=0.0)
    want = 0.5 * F.binary_cross_entropy_with_logits(x, y, reduction="none")
    torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)


def test_focal_matches_the_formula_and_is_stable_for_huge_logits() -> None:
    x = torch.tensor([-2.0, -0.3, 0.0, 0.7, 3.0])
    y = torch.tensor([1.0, 0.0, 1.0, 1.0, 0.0])
    p = torch.sigmoid(x)
    alpha, gamma = 0.25, 2.0
    want = -(
        alpha * y * (1 - p) ** gamma * torch.log(p)
        + (1 - alpha) * (1 - y) * p**gamma * torch.log(1 - p)
    )
    torch.testing.assert_close(focal_bce_with_logits(x, y, alpha, gamma), want)
    huge = torch.tensor([-1e4, 1e4, -1e4, 1e4], requires_grad=True)
    loss = focal_bce_with_logits(huge, torch.tensor([1.0, 0.0, 0.0, 1.0]), alpha, gamma)
    assert torch.isfinite(loss).all() and loss[2:].abs().max() < 1e-6
    loss.sum().backward()
    assert torch.isfinite(huge.grad).all()
    # Easy examples are down-weighted relative to BCE; hard ones much less so.
    bce = F.binary_cross_entropy_with_logits(x, y, reduction="none")
    ratio = focal_bce_with_logits(x, y, 0.5, gamma) / bce
    assert ratio[3] < ratio[0]  # y=1: x=0.7 is easier than x=-2
    assert ratio[1] < ratio[4]  # y=0: x=-0.3 is easier than x=3
    assert focal_bce_with_logits(x, y, reduction="mean") == pytest.approx(float(want.mean()))


@settings(max_examples=30, deadline=None)
@given(arrays(np.float32, (4, 6), elements=finite), st.floats(0.1, 5.0))
def test_kl_is_zero_for_identical_distributions(logits, temperature) -> None:
    x = torch.as_tensor(logits)
    for direction in ("video_to_text", "text_to_video", "symmetric"):
        assert float(attribute_kl(x, x.clone(), temperature, direction)) == pytest.approx(
            0.0, abs=1e-5
        )
    # Adding a per-row constant does not change a softmax distribution either.
    assert float(attribute_kl(x, x + 3.0, temperature)) == pytest.approx(0.0, abs=1e-4)


def test_kl_directions_match_torch_kldiv() -> None:
    gen = torch.Generator().manual_seed(0)
    video, text = torch.randn(5, 7, generator=gen), torch.randn(5, 7, generator=gen)
    v2t = F.kl_div(F.log_softmax(video, -1), F.softmax(text, -1), reduction="batchmean")
    t2v = F.kl_div(F.log_softmax(text, -1), F.softmax(video, -1), reduction="batchmean")
    torch.testing.assert_close(attribute_kl(video, text, 1.0, "video_to_text"), v2t)
    torch.testing.assert_close(attribute_kl(video, text, 1.0, "text_to_video"), t2v)
    torch.testing.assert_close(attribute_kl(video, text, 1.0, "symmetric"), (v2t + t2v) / 2)
    assert float(v2t) > 0
    with pytest.raises(ValueError):
        attribute_kl(video, text, 1.0, "sideways")


def level_outputs(n: int, seed: int, levels=("global", "entity"), attributes=("entity",)):
    """Random unit embeddings and attribute logits for n items."""
    gen = torch.Generator().manual_seed(seed)
    emb = {lvl: F.normalize(torch.randn(n, 8, generator=gen), dim=1) for lvl in levels}
    logits = {lvl: torch.randn(n, 5, generator=gen, requires_grad=True) for lvl in attributes}
    return LevelOutput(emb, logits)


def test_mcsan_loss_total_is_the_weighted_sum_of_its_parts() -> None:
    cfg = LossConfig(lambda_fbce=0.3, lambda_kl=0.7)
    video, text = level_outputs(4, 1), level_outputs(4, 2)
    weights = {"global": torch.tensor(0.6), "entity": torch.tensor(0.4)}
    targets = {"entity": (torch.rand(4, 5, generator=torch.Generator().manual_seed(3)) > 0.5)}
    keys = torch.tensor([5, 5, 6, 8])
    total, parts = MCSANLoss(cfg)(video, text, weights, keys, targets, targets)
    assert set(parts) == {
        "triplet/global",
        "triplet/entity",
        "triplet/fused",
        "fbce/video/entity",
        "fbce/text/entity",
        "kl/entity",
        "triplet",
        "fbce",
        "kl",
        "negatives",  # 0: no binding negatives given
        "match",  # 0: no binding matcher
        "total",
    }
    assert not any(v.requires_grad for v in parts.values())
    assert float(total.detach()) == pytest.approx(
        float(parts["triplet"] + 0.3 * parts["fbce"] + 0.7 * parts["kl"]), rel=1e-6
    )
    positive = keys[:, None] == keys[None, :]
    fused = 0.6 * text.embeddings["global"] @ video.embeddings["global"].t() + 0.4 * (
        text.embeddings["entity"] @ video.embeddings["entity"].t()
    )
    assert float(parts["triplet/fused"]) == pytest.approx(float(triplet_loss(fused, positive)))
    want_fbce = focal_bce_with_logits(text.attribute_logits["entity"], targets["entity"])
    assert float(parts["fbce/text/entity"]) == pytest.approx(
        float(want_fbce.sum(1).mean().detach())
    )
    total.backward()
    assert text.attribute_logits["entity"].grad is not None


def test_mcsan_loss_switches() -> None:
    video, text = level_outputs(3, 1), level_outputs(3, 2)
    weights = {"global": 0.5, "entity": 0.5}
    targets = {"entity": torch.zeros(3, 5)}
    keys = torch.arange(3)
    _, parts = MCSANLoss(LossConfig(use_kl=False, per_level_triplet=False))(
        video, text, weights, keys, targets, targets
    )
    assert "kl/entity" not in parts and float(parts["kl"]) == 0.0
    assert [k for k in parts if k.startswith("triplet/")] == ["triplet/fused"]
    _, plain = MCSANLoss(LossConfig(use_focal=False))(video, text, weights, keys, targets, targets)
    bce = F.binary_cross_entropy_with_logits(
        video.attribute_logits["entity"].detach(), targets["entity"]
    )
    assert float(plain["fbce/video/entity"]) == pytest.approx(float(bce) * 5)
    # Global-only: the single level's triplet is not counted twice.
    solo_v, solo_t = level_outputs(3, 1, ("global",), ()), level_outputs(3, 2, ("global",), ())
    _, solo = MCSANLoss()(solo_v, solo_t, {"global": 1.0}, keys, {}, {})
    assert [k for k in solo if k.startswith("triplet/")] == ["triplet/global"]
    with pytest.raises(KeyError):
        MCSANLoss()(video, text, weights, keys, {}, {})


def test_mcsan_loss_with_separate_caption_keys_uses_the_matched_video_for_kl() -> None:
    video, text = level_outputs(2, 1), level_outputs(3, 2)
    text.attribute_logits["entity"] = video.attribute_logits["entity"][[1, 0, 1]].detach()
    targets_t = {"entity": torch.zeros(3, 5)}
    targets_v = {"entity": torch.zeros(2, 5)}
    _, parts = MCSANLoss()(
        video,
        text,
        {"global": 0.5, "entity": 0.5},
        torch.tensor([10, 20]),
        targets_t,
        targets_v,
        caption_keys=torch.tensor([20, 10, 20]),
    )
    assert float(parts["kl/entity"]) == pytest.approx(0.0, abs=1e-6)


def test_loss_config_validation() -> None:
    for bad in (
        {"kl_direction": "up"},
        {"triplet_reduction": "max"},
        {"per_level_triplet": False, "fused_triplet": False},
        {"kl_temperature": 0.0},
        {"fbce_alpha": 1.5},
    ):
        with pytest.raises(ConfigError):
            LossConfig(**bad)


@settings(max_examples=30, deadline=None)
@given(
    keys=st.lists(st.integers(0, 3), min_size=2, max_size=6),
    seed=st.integers(0, 10_000),
    hardest=st.booleans(),
)
def test_triplet_rows_restrict_anchors_and_caption_negatives(keys, seed, hardest) -> None:
    ids = torch.tensor(keys)
    positive = ids[:, None] == ids[None, :]
    gen = torch.Generator().manual_seed(seed)
    sim = torch.rand(len(keys), len(keys), generator=gen) * 2 - 1
    rows = torch.rand(len(keys), generator=gen) > 0.4
    got = triplet_loss(sim, positive, 0.2, hardest, rows=rows)
    # The same as the loss over the present captions' rows only (all videos kept).
    want = reference_triplet(sim[rows].numpy(), positive[rows].numpy(), 0.2, hardest)
    assert float(got) == pytest.approx(want, abs=1e-5)


def test_binding_negatives_hinge_against_their_caption_on_its_video() -> None:
    from mcsan.model.losses import negative_terms
    from mcsan.model.scoring import LevelOutput, level_similarities

    e = torch.eye(3)
    video = LevelOutput({"global": e[:2]}, {})
    text = LevelOutput({"global": e[:2]}, {})  # caption i matches video i (cos 1)
    weights = {"global": torch.tensor(1.0)}
    sims = level_similarities(text.embeddings, video.embeddings, weights)
    # negative 0 of caption 1 scores as well as it (cos 1): hinge = margin;
    # negative 1 of caption 0 is orthogonal to video 0: no loss
    neg = LevelOutput({"global": torch.stack([e[1], e[2]])}, {})
    rows = torch.tensor([1, 0])
    out = negative_terms(sims, (neg, rows), video, torch.tensor([0, 1]), weights, ["global"],
                         0.2, {})  # fmt: skip
    assert out["fused"].item() == pytest.approx(0.1)  # mean of 0.2 and 0
    assert out["global"].item() == pytest.approx(0.1)
