"""The binding matcher: one score per (caption, clip) pair, dense and paired alike; roles
matter; padding does not; the re-ranked protocol against a brute-force reference."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import example, given, settings
from hypothesis import strategies as st

from mcsan.evaluate.protocol import METRIC_KEYS, retrieval_metrics
from mcsan.evaluate.reranked import reranked_metrics
from mcsan.evaluate.shortlist import ShortlistPolicy, shortlist_orders
from mcsan.model.losses import LossConfig, MatchScores, MCSANLoss, match_terms
from tests.model.test_model import make_model, make_text, make_video, tiny_config


def _matcher_model(**overrides: object):
    return make_model(tiny_config(rerank=True, rerank_dim=8, **overrides)).eval()


@pytest.mark.parametrize("presence", [False, True])
def test_dense_scores_equal_the_paired_scores(presence: bool) -> None:
    model = _matcher_model(rerank_presence=presence)
    text = model.match_text(make_text([3, 5, 4], 1))
    video = model.match_video(make_video(2, 4, [4, 2], 2))
    with torch.no_grad():
        dense = model.matcher.score(text, video)
        rows = torch.tensor([0, 0, 1, 1, 2, 2])
        cols = torch.tensor([0, 1, 0, 1, 0, 1])
        paired = model.matcher.score(text.rows(rows), video.rows(cols), pairs=True)
    assert dense.shape == (3, 2)
    assert torch.allclose(dense[rows, cols], paired, atol=1e-6)
    assert dense.abs().max() <= 1.0 + 1e-6  # a mean of cosines


def test_late_scores_are_the_late_terms_of_every_pair() -> None:
    from mcsan.evaluate.first_stage import LATE_PAIRS, first_stage_scores, late_scores

    model = _matcher_model()
    assert model.matcher.late_terms == ("entity", "action")
    text = model.match_text(make_text([3, 5, 4, 6], 11))
    video = model.match_video(make_video(5, 4, [4, 2, 3, 4, 1], 12))
    late = late_scores(model, text, video)
    rows, cols = (t.reshape(-1) for t in torch.meshgrid(torch.arange(4), torch.arange(5),
                                                        indexing="ij"))  # fmt: skip
    with torch.no_grad():
        paired = model.matcher.score(text.rows(rows), video.rows(cols), pairs=True,
                                     terms=("entity", "action"))  # fmt: skip
        full = model.matcher.score(text, video)
    assert late.shape == (4, 5)
    assert np.allclose(late[rows, cols], paired.numpy(), atol=1e-6)
    assert not np.allclose(late, full.numpy(), atol=1e-3)  # the relation term is left out
    every = late_scores(model, text, video, terms=model.matcher.terms)
    assert np.allclose(every, full.numpy(), atol=1e-6)  # all terms: the re-ranking's match
    fused = np.arange(20.0).reshape(4, 5)
    assert np.array_equal(first_stage_scores(fused, late, 0.0), fused)
    assert np.allclose(first_stage_scores(fused, late, 2.0), fused + 2.0 * late)
    assert LATE_PAIRS >= 5  # one block here; blocks are covered below
    relation = late_scores(model, text, video, terms=("relation", "no-such-term"))
    with torch.no_grad():
        alone = model.matcher.score(text, video, terms=("relation",)).numpy()
    assert np.allclose(relation, alone, atol=1e-6)


def test_late_scores_in_blocks_equal_one_block(monkeypatch: pytest.MonkeyPatch) -> None:
    import mcsan.evaluate.first_stage as first_stage

    model = _matcher_model()
    text = model.match_text(make_text([3, 5, 4], 13))
    video = model.match_video(make_video(7, 3, [3, 2, 3, 1, 3, 2, 3], 14))
    whole = first_stage.late_scores(model, text, video)
    monkeypatch.setattr(first_stage, "LATE_PAIRS", 3)  # clip blocks of 3, one caption each
    assert np.allclose(first_stage.late_scores(model, text, video), whole, atol=1e-6)


@pytest.mark.parametrize("scattered", [False, True])
def test_pairs_of_captions_without_a_term_score_as_the_dense_ones(scattered: bool) -> None:
    # caption 1 has no relation, caption 2 no action: those terms score only the other pairs,
    # on views of each run of consecutive pairs (a server's batch) or, scattered, on a copy
    model = _matcher_model()
    batch = make_text([3, 5, 4, 6], 1)
    batch.span_masks["relation"][1] = False
    batch.span_masks["action"][2] = False
    text = model.match_text(batch)
    video = model.match_video(make_video(10, 4, [4, 2, 3, 4, 1, 4, 4, 2, 3, 4], 2))
    rows = torch.arange(4).repeat(10) if scattered else torch.arange(4).repeat_interleave(10)
    cols = torch.arange(10).repeat_interleave(4) if scattered else torch.arange(10).repeat(4)
    with torch.no_grad():
        dense = model.matcher.score(text, video)
        paired = model.matcher.score(text.rows(rows), video.rows(cols), pairs=True)
    assert torch.allclose(dense[rows, cols], paired, atol=1e-6)


def test_padding_frames_change_nothing() -> None:
    model = _matcher_model()
    text = model.match_text(make_text([4, 4], 3))
    short = make_video(1, 3, [3], 4)
    padded = make_video(1, 5, [3], 5)
    for name in short.streams:
        padded.streams[name][:, :3] = short.streams[name]
    with torch.no_grad():
        a = model.matcher.score(text, model.match_video(short))
        b = model.matcher.score(text, model.match_video(padded))
    assert torch.allclose(a, b, atol=1e-5)


def test_exchanging_subject_and_object_changes_the_relation_term() -> None:
    model = _matcher_model()
    batch = make_text([6, 6], 6)
    batch.spans["relation"][:, 0] = torch.tensor([[0, 2], [2, 4], [4, 6]])  # "a b | p q | c d"
    batch.span_masks["relation"][:, 0] = True
    swapped = make_text([6, 6], 6)
    swapped.spans["relation"] = batch.spans["relation"][:, :, [2, 1, 0]]
    swapped.span_masks["relation"] = batch.span_masks["relation"]
    video = model.match_video(make_video(1, 4, [4], 7))
    with torch.no_grad():
        a = model.matcher.score(model.match_text(batch), video, terms=("relation",))
        b = model.matcher.score(model.match_text(swapped), video, terms=("relation",))
        same = model.matcher.score(model.match_text(batch), video, terms=("relation",))
    assert torch.equal(a, same)
    assert (a - b).abs().min() > 1e-6


def test_terms_follow_the_levels_and_a_caption_without_items_scores_zero() -> None:
    model = _matcher_model(levels=("global", "entity"))
    assert model.matcher.terms == ("entity",)
    text = model.match_text(make_text([4, 4], 8, empty_rows=(1,)))
    with torch.no_grad():
        scores = model.matcher.score(text, model.match_video(make_video(2, 3, [3, 3], 9)))
    assert torch.equal(scores[1], torch.zeros(2))


def test_no_grid_stream_still_scores() -> None:
    streams = {"frame": (24,)}
    model = make_model(tiny_config(rerank=True, rerank_dim=8), streams=streams).eval()
    with torch.no_grad():
        scores = model.matcher.score(model.match_text(make_text([3, 4], 10)),
                                     model.match_video(make_video(2, 3, [3, 2], 11, streams)))
    assert scores.shape == (2, 2) and torch.isfinite(scores).all()


@pytest.mark.parametrize("pairs", [False, True])
def test_one_cell_action_term_equals_grounding_in_that_cell(pairs: bool) -> None:
    streams = {"frame": (24,)}  # frame-level features: one cell per frame
    model = make_model(tiny_config(rerank=True, rerank_dim=8), streams=streams)
    text = model.match_text(make_text([3, 5, 4], 15))
    video = model.match_video(make_video(3, 4, [4, 2, 3], 16, streams))
    assert video.keys.shape[-2] == 1
    matcher = model.matcher
    if pairs:
        text = text.rows(torch.tensor([0, 1, 2, 2]))
        video = video.rows(torch.tensor([2, 0, 1, 2]))
    parts = text.parts["action"]
    frames = video.mask[..., None, :] if pairs else video.mask[None][..., None, :]
    fast = matcher._action_match(parts, video, frames, pairs)
    grounded = matcher._grounded_action_match(parts, video, frames, pairs)
    assert fast.shape == grounded.shape
    assert torch.allclose(fast, grounded, atol=1e-6)
    fast_grad = torch.autograd.grad(fast.sum(), matcher.motion[0].weight, retain_graph=True)[0]
    grounded_grad = torch.autograd.grad(grounded.sum(), matcher.motion[0].weight)[0]
    assert torch.allclose(fast_grad, grounded_grad, atol=1e-5)


def test_the_match_loss_trains_every_matcher_parameter() -> None:
    model = make_model(tiny_config(rerank=True, rerank_dim=8))
    text_batch, video_batch = make_text([4, 5, 6], 12), make_video(3, 4, [4, 3, 4], 13)
    video = model.match_video(video_batch)
    pairs = model.matcher.score(model.match_text(text_batch), video)
    rows = torch.tensor([0, 2])
    negatives = model.matcher.score(model.match_text(make_text([4, 6], 14)), video.rows(rows),
                                    pairs=True)  # fmt: skip
    scores = MatchScores(pairs, torch.eye(3, dtype=torch.bool), negatives, rows)
    terms = match_terms(scores, 0.2)
    assert set(terms) == {"pairs", "negatives"}
    with_predicates = MatchScores(pairs.detach(), scores.positive, predicates=torch.tensor(2.0))
    assert float(match_terms(with_predicates, 0.2)["predicates"]) == 2.0
    assert float(match_terms(with_predicates, 0.2, predicate_weight=0.25)["predicates"]) == 0.5
    sum(terms.values()).backward()
    for name, param in model.matcher.named_parameters():
        assert param.grad is not None and param.grad.abs().sum() > 0, name
    # through MCSANLoss: its own weighted part
    video_out, text_out = model(video_batch, text_batch)
    keys = torch.arange(3)
    targets = {lvl: torch.zeros(3, n) for lvl, n in model.attribute_sizes.items()}
    loss_fn = MCSANLoss(LossConfig(lambda_match=0.5))
    _, parts = loss_fn(video_out, text_out, model.level_weights(), keys, targets, targets,
                       match=MatchScores(pairs.detach(), torch.eye(3, dtype=torch.bool)))  # fmt: skip
    assert torch.isclose(parts["match"], terms["pairs"].detach())
    # under DDP each rank's local match loss is weighted 1 / world size
    half, _ = loss_fn(video_out, text_out, model.level_weights(), keys, targets, targets,
                      match=MatchScores(pairs.detach(), torch.eye(3, dtype=torch.bool)),
                      match_scale=0.5)  # fmt: skip
    whole, _ = loss_fn(video_out, text_out, model.level_weights(), keys, targets, targets,
                       match=MatchScores(pairs.detach(), torch.eye(3, dtype=torch.bool)))  # fmt: skip
    assert torch.isclose(whole - half, 0.25 * parts["match"])


def _random_case(seed: int, captions: int, videos: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    gen = np.random.default_rng(seed)
    fused = gen.normal(size=(captions, videos)).round(1)  # ties included
    match = gen.uniform(-1, 1, size=(captions, videos))
    caption_video = np.concatenate([np.arange(videos), gen.integers(0, videos, captions - videos)])
    return fused, match, caption_video


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 10_000), st.integers(3, 9), st.integers(1, 12),
       st.floats(0.0, 3.0))  # fmt: skip
@example(seed=7, videos=6, top_k=1, weight=2.2250738585072014e-308)  # a lift once absorbed it
def test_reranking_everything_is_ranking_by_the_sum(seed: int, videos: int, top_k: int,
                                                    weight: float) -> None:  # fmt: skip
    fused, match, caption_video = _random_case(seed, videos + 4, videos)

    def lookup(rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        return match[rows, cols]

    everything = ShortlistPolicy(top_k=max(top_k, videos + 4), weight=weight)
    got = reranked_metrics(fused, caption_video, lookup, everything)
    expected = retrieval_metrics(fused + weight * match, caption_video)
    assert {k: got[k] for k in METRIC_KEYS} == pytest.approx(expected)
    assert got["first_stage_recall"] == 100.0 and got["shortlist"] == videos
    # weight 0 re-orders nothing
    plain = reranked_metrics(fused, caption_video, lookup, ShortlistPolicy(top_k=top_k, weight=0))
    assert {k: plain[k] for k in METRIC_KEYS} == pytest.approx(
        retrieval_metrics(fused, caption_video))


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 10_000), st.integers(2, 6))
def test_the_shortlist_stays_ahead_and_keeps_the_rest_in_order(seed: int, top_k: int) -> None:
    fused, match, _ = _random_case(seed, 12, 8)
    t2v, v2t = shortlist_orders(fused, lambda r, c: match[r, c],
                                ShortlistPolicy(top_k=top_k, weight=2.0))
    combined = fused + 2.0 * match
    for row in range(fused.shape[0]):
        kth = np.sort(fused[row])[::-1][top_k - 1]
        shortlist = np.flatnonzero(fused[row] >= kth)  # ties with the k-th are in
        order = np.argsort(-t2v[row], kind="stable")
        inside, rest = order[: len(shortlist)], order[len(shortlist):]
        assert set(inside.tolist()) == set(shortlist.tolist())
        assert np.all(np.diff(fused[row, rest]) <= 0)
        assert np.all(np.diff(combined[row, inside]) <= 1e-12)
    for col in range(fused.shape[1]):
        kth = np.sort(fused[:, col])[::-1][top_k - 1]
        shortlist = np.flatnonzero(fused[:, col] >= kth)
        order = np.argsort(-v2t[:, col], kind="stable")[: len(shortlist)]
        assert set(order.tolist()) == set(shortlist.tolist())


def test_predicate_contrast_counts_identical_predicates_as_right() -> None:
    model = make_model(tiny_config(rerank=True, rerank_dim=8))
    batch = make_text([8, 8, 8], 15)
    batch.tokens[:, :8] = torch.arange(2, 10)
    batch.spans["relation"][:, 0] = torch.tensor([[0, 2], [2, 4], [5, 7]])
    batch.span_masks["relation"][:] = False
    batch.span_masks["relation"][:, 0] = True
    video = model.match_video(make_video(3, 4, [4, 4, 3], 16))
    # every relation names the same predicate words: all right, nothing to learn
    same = model.matcher.predicate_contrast(model.match_text(batch), video, batch)
    assert same is not None and abs(same.item()) < 1e-5
    batch.tokens[1, 2:4] = torch.tensor([11, 12])  # the second caption's predicate differs
    loss = model.matcher.predicate_contrast(model.match_text(batch), video, batch)
    assert loss.item() > 1e-3
    loss.backward()
    assert model.matcher.predicate[0].weight.grad.abs().sum() > 0
    assert model.matcher.geometry[0].weight.grad.abs().sum() > 0
    batch.span_masks["relation"][:] = False
    assert model.matcher.predicate_contrast(model.match_text(batch), video, batch) is None


def test_distillation_pulls_each_level_towards_its_matcher_term() -> None:
    from mcsan.model.losses import distill_terms

    model = make_model(tiny_config(rerank=True, rerank_dim=8))
    text_batch, video_batch = make_text([4, 5, 6], 12), make_video(3, 4, [4, 3, 4], 13)
    text, video = model.match_text(text_batch), model.match_video(video_batch)
    found = model.matcher.term_scores(text, video)
    dense = model.matcher.score(text, video)
    assert torch.allclose(model.matcher.combine(found, 3, 3, video.keys), dense)
    scores = MatchScores(dense, torch.eye(3, dtype=torch.bool), terms=found)
    # a level whose similarities equal the matcher's term (up to the caption rows) has KL 0
    same = {term: torch.zeros(3, 3).index_copy(0, rows, values.detach())
            for term, (rows, values) in found.items()}  # fmt: skip
    assert all(float(v) == pytest.approx(0.0, abs=1e-5)
               for v in distill_terms(same, scores, 0.05).values())  # fmt: skip
    student = {term: torch.randn(3, 3, requires_grad=True) for term in found}
    kl = distill_terms({**student, "global": torch.randn(3, 3)}, scores, 0.05)
    assert set(kl) == set(found) and all(float(v.detach()) > 0 for v in kl.values())
    sum(kl.values()).backward()
    assert all(s.grad is not None for s in student.values())
    assert all(p.grad is None for p in model.matcher.parameters())  # the teacher is fixed
    gathered = {term: torch.randn(6, 6) for term in found}  # DDP: not this rank's rows
    assert distill_terms(gathered, scores, 0.05) == {}


def test_presence_is_half_of_the_relation_term_and_equal_for_a_role_swap() -> None:
    plain, present = _matcher_model(), _matcher_model(rerank_presence=True)
    present.load_state_dict(plain.state_dict())
    batch = make_text([6, 6], 6)
    batch.spans["relation"][:, 0] = torch.tensor([[0, 2], [2, 4], [4, 6]])
    batch.span_masks["relation"][:, 0] = True
    swapped = make_text([6, 6], 6)
    swapped.spans["relation"] = batch.spans["relation"][:, :, [2, 1, 0]]
    swapped.span_masks["relation"] = batch.span_masks["relation"]
    video_batch = make_video(2, 4, [4, 3], 7)
    with torch.no_grad():
        def relation(model, text):
            return model.matcher.score(model.match_text(text), model.match_video(video_batch),
                                       terms=("relation",))  # fmt: skip

        a, b = relation(plain, batch), relation(present, batch)
        a_swap, b_swap = relation(plain, swapped), relation(present, swapped)
    found = 2 * b - a  # presence = 2 x (half predicate + half presence) - predicate part
    assert torch.allclose(found, 2 * b_swap - a_swap, atol=1e-5)  # same objects, same presence
    assert torch.allclose(b - b_swap, 0.5 * (a - a_swap), atol=1e-6)  # the roles: half as much
    assert found[0].abs().max() <= 1.0 + 1e-6


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 10_000), st.integers(1, 6))
def test_a_first_stage_picks_the_shortlist_and_orders_the_rest(seed: int, top_k: int) -> None:
    fused, match, caption_video = _random_case(seed, 12, 8)
    first = fused + np.random.default_rng(seed + 1).normal(size=fused.shape)
    policy = ShortlistPolicy(top_k=top_k, weight=1.5, late_weight=1.0)
    t2v, _ = shortlist_orders(fused, lambda r, c: match[r, c], policy, first)
    for row in range(fused.shape[0]):
        kth = np.sort(first[row])[::-1][top_k - 1]
        shortlist = np.flatnonzero(first[row] >= kth)
        order = np.argsort(-t2v[row], kind="stable")
        inside, rest = order[: len(shortlist)], order[len(shortlist):]
        assert set(inside) == set(shortlist)  # picked by the first stage
        by_sum = (fused + 1.5 * match)[row, inside]
        assert np.all(np.diff(by_sum) <= 1e-12)  # ordered by fused + weight x match
        assert np.all(np.diff(first[row, rest]) <= 1e-12)  # the rest by the first stage
    got = reranked_metrics(fused, caption_video, lambda r, c: match[r, c], policy, first)
    own = first[np.arange(len(caption_video)), caption_video]
    kth = np.sort(first, axis=1)[:, ::-1][:, min(top_k, 8) - 1]
    assert got["first_stage_recall"] == pytest.approx(100.0 * np.mean(own >= kth))
