"""The MCSAN model: shapes, masks, gradients, the shared attribute head, overfitting."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mcsan import LEVELS
from mcsan.core.batch import TextBatch, VideoBatch
from mcsan.core.errors import ConfigError, FeatureError
from mcsan.model import MCSAN, ModelConfig
from mcsan.model.losses import LossConfig, MCSANLoss

VOCAB = 40
STREAMS = {"frame": (24,), "grid": (4, 12)}
ATTRIBUTES = {"entity": 9, "action": 7, "relation": 5}


def tiny_config(**overrides: object) -> ModelConfig:
    """A small config that runs in milliseconds."""
    base: dict[str, object] = dict(
        embed_dim=32,
        word_dim=16,
        text_hidden=32,
        video_hidden=32,
        attention_hidden=16,
        action_channels=8,
        entity_slots=3,
        dropout=0.1,
    )
    base.update(overrides)
    return ModelConfig(**base)  # type: ignore[arg-type]


def make_model(cfg: ModelConfig | None = None, streams=STREAMS, seed: int = 0) -> MCSAN:
    """A tiny model with random word vectors."""
    torch.manual_seed(seed)
    vectors = np.random.default_rng(seed).normal(size=(VOCAB, 16)).astype(np.float32)
    return MCSAN(cfg or tiny_config(), VOCAB, streams, ATTRIBUTES, vectors)


def make_video(batch: int, frames: int, lengths: list[int], seed: int, streams=STREAMS):
    """Random stream features; frames past each length are padding (filled with noise)."""
    gen = torch.Generator().manual_seed(seed)
    data = {
        name: torch.randn(batch, frames, *shape, generator=gen) for name, shape in streams.items()
    }
    mask = torch.arange(frames)[None, :] < torch.tensor(lengths)[:, None]
    return VideoBatch(data, mask)


def make_text(lengths: list[int], seed: int, empty_rows: tuple[int, ...] = ()) -> TextBatch:
    """Random captions with valid spans inside each caption; ``empty_rows`` have no items."""
    gen = np.random.default_rng(seed)
    batch, width, slots = len(lengths), max(lengths), 3
    tokens = torch.zeros(batch, width, dtype=torch.long)
    mask = torch.zeros(batch, width, dtype=torch.bool)
    spans = {k: torch.zeros(batch, slots, 2, dtype=torch.long) for k in ("entity", "action")}
    masks = {k: torch.zeros(batch, slots, dtype=torch.bool) for k in ("entity", "action")}
    spans["entity"][..., 1] = 1
    spans["action"][..., 1] = 1
    rel_spans = torch.zeros(batch, 2, 3, 2, dtype=torch.long)
    rel_spans[..., 1] = 1
    rel_mask = torch.zeros(batch, 2, dtype=torch.bool)

    def span(length: int) -> list[int]:
        start = int(gen.integers(0, length))
        return [start, int(gen.integers(start + 1, length + 1))]

    for row, length in enumerate(lengths):
        tokens[row, :length] = torch.as_tensor(gen.integers(2, VOCAB, size=length))
        mask[row, :length] = True
        if row in empty_rows:
            continue
        for kind in ("entity", "action"):
            count = 1 + row % slots
            for i in range(count):
                spans[kind][row, i] = torch.tensor(span(length))
            masks[kind][row, :count] = True
        for i in range(1 + row % 2):
            rel_spans[row, i] = torch.tensor([span(length) for _ in range(3)])
            rel_mask[row, i] = True
    return TextBatch(
        tokens,
        mask,
        {"entity": spans["entity"], "action": spans["action"], "relation": rel_spans},
        {"entity": masks["entity"], "action": masks["action"], "relation": rel_mask},
    )


def assert_outputs_close(a, b, atol: float = 1e-5) -> None:
    """Two LevelOutputs hold the same tensors."""
    assert a.embeddings.keys() == b.embeddings.keys()
    assert a.attribute_logits.keys() == b.attribute_logits.keys()
    for key in a.embeddings:
        torch.testing.assert_close(a.embeddings[key], b.embeddings[key], atol=atol, rtol=1e-4)
    for key in a.attribute_logits:
        torch.testing.assert_close(
            a.attribute_logits[key], b.attribute_logits[key], atol=atol, rtol=1e-4
        )


def test_shapes_unit_norm_and_level_order() -> None:
    model = make_model()
    video_out, text_out = model(make_video(4, 6, [6, 3, 5, 1], 1), make_text([5, 7, 2, 4], 2))
    for out in (video_out, text_out):
        assert tuple(out.embeddings) == LEVELS
        for emb in out.embeddings.values():
            assert emb.shape == (4, 32)
            torch.testing.assert_close(emb.norm(dim=1), torch.ones(4))
        assert {k: v.shape for k, v in out.attribute_logits.items()} == {
            lvl: (4, k) for lvl, k in ATTRIBUTES.items()
        }
    sims = model.similarities(text_out.embeddings, video_out.embeddings)
    assert set(sims) == {*LEVELS, "fused"}
    weights = model.level_weights()
    expected = sum(weights[lvl] * sims[lvl] for lvl in LEVELS)
    torch.testing.assert_close(sims["fused"], expected)
    assert sims["fused"].shape == (4, 4)


def test_padding_frames_change_nothing() -> None:
    model = make_model().eval()
    short = make_video(3, 5, [5, 2, 4], 3)
    longer = make_video(3, 9, [5, 2, 4], 99)  # different noise everywhere ...
    for name in STREAMS:  # ... except in the real frames
        for row, length in enumerate([5, 2, 4]):
            longer.streams[name][row, :length] = short.streams[name][row, :length]
    with torch.no_grad():
        assert_outputs_close(model.encode_video(short), model.encode_video(longer))


def test_padding_words_and_spans_change_nothing() -> None:
    model = make_model().eval()
    text = make_text([4, 6, 3], 5)
    padded = TextBatch(
        tokens=torch.nn.functional.pad(text.tokens, (0, 5)),
        mask=torch.nn.functional.pad(text.mask, (0, 5)),
        spans={
            "entity": torch.cat([text.spans["entity"], torch.tensor([[[1, 3]]] * 3)], 1),
            "action": text.spans["action"],
            "relation": torch.cat([text.spans["relation"], text.spans["relation"]], 1),
        },
        span_masks={
            "entity": torch.nn.functional.pad(text.span_masks["entity"], (0, 1)),
            "action": text.span_masks["action"],
            "relation": torch.nn.functional.pad(text.span_masks["relation"], (0, 2)),
        },
    )
    with torch.no_grad():
        assert_outputs_close(model.encode_text(text), model.encode_text(padded))


def test_empty_levels_get_the_learned_empty_embedding() -> None:
    model = make_model().eval()
    text = make_text([4, 6, 3], 6, empty_rows=(0, 2))
    with torch.no_grad():
        out = model.encode_text(text)
    for lvl in ("entity", "action", "relation"):
        assert torch.isfinite(out.embeddings[lvl]).all()
        torch.testing.assert_close(out.embeddings[lvl][0], out.embeddings[lvl][2])
        assert not torch.allclose(out.embeddings[lvl][0], out.embeddings[lvl][1])


def training_step_loss(model: MCSAN, loss_cfg: LossConfig | None = None):
    """One batch through model and loss (two captions share video id 0)."""
    video = make_video(4, 6, [6, 4, 5, 3], 7)
    text = make_text([5, 7, 3, 4], 8, empty_rows=(3,))
    keys = torch.tensor([0, 0, 1, 2])
    gen = torch.Generator().manual_seed(0)
    targets = {
        lvl: (torch.rand(4, k, generator=gen) < 0.3).float() for lvl, k in ATTRIBUTES.items()
    }
    video_out, text_out = model(video, text)
    return MCSANLoss(loss_cfg)(video_out, text_out, model.level_weights(), keys, targets, targets)


@pytest.mark.parametrize(
    "relation_mode",
    ["geometric", "cell_tensor", "self_attention", "relation_network"],
)
def test_gradients_reach_every_branch_and_the_shared_head(relation_mode: str) -> None:
    model = make_model(tiny_config(relation_mode=relation_mode, learn_level_weights=True))
    total, parts = training_step_loss(model)
    assert torch.isfinite(total) and parts["kl"] >= 0
    total.backward()
    for name, param in model.named_parameters():
        if name.startswith("video_encoder.pools") and name.endswith(".empty"):
            continue  # a video never has an empty level
        if name == "text_encoder.pools.global.empty":
            continue  # every test caption has words
        assert param.grad is not None, name
        assert torch.isfinite(param.grad).all(), name
        assert param.grad.abs().sum() > 0, name


def test_shared_head_is_one_set_of_parameters_for_both_modalities() -> None:
    model = make_model()
    assert model.heads_for("video") is model.heads_for("text")
    head = model.heads_for("video").layers["entity"]
    video_out, text_out = model(make_video(2, 4, [4, 2], 9), make_text([3, 5], 10))
    for out in (video_out, text_out):
        expected = torch.nn.functional.linear(out.embeddings["entity"], head.weight, head.bias)
        torch.testing.assert_close(out.attribute_logits["entity"], expected)
    # Both modalities' losses accumulate into the same tensor.
    video_out.attribute_logits["entity"].sum().backward(retain_graph=True)
    from_video = head.weight.grad.clone()
    text_out.attribute_logits["entity"].sum().backward()
    assert from_video.abs().sum() > 0
    assert (head.weight.grad - from_video).abs().sum() > 0
    shared_names = [n for n, _ in model.named_parameters() if "attribute_heads" in n]
    assert shared_names == [
        f"attribute_heads.layers.{lvl}.{p}" for lvl in ATTRIBUTES for p in ("weight", "bias")
    ]


def test_separate_heads_ablation_has_two_sets() -> None:
    shared = make_model()
    separate = make_model(tiny_config(shared_attribute_heads=False))
    assert separate.heads_for("video") is not separate.heads_for("text")
    head_params = sum(
        v for k, v in separate.parameter_counts().items() if k.startswith("attribute_head")
    )
    shared_params = sum(
        v for k, v in shared.parameter_counts().items() if k.startswith("attribute_head")
    )
    assert head_params == 2 * shared_params
    total, _ = training_step_loss(separate)
    total.backward()
    assert separate.text_attribute_heads.layers["action"].weight.grad is not None


def test_encoders_alone_match_the_joint_path_and_chunking() -> None:
    model = make_model().eval()
    video = make_video(4, 6, [6, 4, 5, 3], 11)
    text = make_text([5, 7, 3, 4], 12)
    with torch.no_grad():
        joint_video, joint_text = model(video, text)
        assert_outputs_close(model.encode_video(video), joint_video)
        assert_outputs_close(model.encode_text(text), joint_text)
        first = model.encode_video(
            VideoBatch({k: v[:2] for k, v in video.streams.items()}, video.mask[:2])
        )
    for lvl in LEVELS:
        torch.testing.assert_close(
            first.embeddings[lvl], joint_video.embeddings[lvl][:2], atol=1e-5, rtol=1e-4
        )


def test_level_ablations_and_global_only_baseline() -> None:
    baseline = make_model(tiny_config(levels=("global",), attribute_levels=()))
    assert ModelConfig.global_only().levels == ("global",)
    video_out, text_out = baseline(make_video(2, 4, [4, 3], 1), make_text([3, 4], 2))
    assert list(video_out.embeddings) == ["global"] and not video_out.attribute_logits
    assert not any(
        k.startswith(("attribute_head", "video.action")) for k in baseline.parameter_counts()
    )
    no_entity = make_model(tiny_config(levels=("global", "action", "relation")))
    video_out, text_out = no_entity(make_video(2, 4, [4, 3], 1), make_text([3, 4], 2))
    assert list(text_out.attribute_logits) == ["action", "relation"]
    weights = no_entity.level_weights()
    assert set(weights) == {"global", "action", "relation"}
    torch.testing.assert_close(sum(weights.values()), torch.tensor(1.0))


def test_configured_level_weights_and_validation() -> None:
    model = make_model(tiny_config(level_weights={"global": 2.0, "entity": 0.0}))
    weights = {k: float(v) for k, v in model.level_weights().items()}
    assert weights == pytest.approx(
        {"global": 0.5, "entity": 0.0, "action": 0.25, "relation": 0.25}
    )
    for bad in (
        {"levels": ()},
        {"levels": ("global", "scene")},
        {"relation_mode": "graph"},
        {"action_kernel_sizes": (2,)},
        {"level_weights": {"global": -1.0}},
    ):
        with pytest.raises(ConfigError):
            tiny_config(**bad)


def test_word_vectors_initialise_and_freeze() -> None:
    vectors = np.arange(VOCAB * 5, dtype=np.float32).reshape(VOCAB, 5)
    model = MCSAN(tiny_config(freeze_words=True), VOCAB, STREAMS, ATTRIBUTES, vectors)
    weight = model.text_encoder.embedding.weight
    assert not weight.requires_grad
    torch.testing.assert_close(weight[3], torch.as_tensor(vectors[3]))
    assert "text.words" not in model.parameter_counts()
    with pytest.raises(ConfigError):
        MCSAN(tiny_config(), VOCAB + 1, STREAMS, ATTRIBUTES, vectors)


def test_wrong_or_missing_stream_is_a_feature_error() -> None:
    model = make_model()
    video = make_video(2, 4, [4, 3], 1)
    with pytest.raises(FeatureError, match="grid"):
        model.encode_video(VideoBatch({"frame": video.streams["frame"]}, video.mask))
    with pytest.raises(FeatureError, match="per-frame shape"):
        bad = dict(video.streams, frame=torch.randn(2, 4, 23))
        model.encode_video(VideoBatch(bad, video.mask))


def test_tiny_model_overfits_a_tiny_batch_to_perfect_retrieval() -> None:
    streams = {"frame": (24,)}
    model = make_model(tiny_config(dropout=0.0), streams=streams, seed=1)
    video = make_video(8, 5, [5, 4, 5, 3, 5, 2, 4, 5], 13, streams=streams)
    text = make_text([5, 6, 4, 7, 5, 3, 6, 4], 14)
    keys = torch.arange(8)
    gen = torch.Generator().manual_seed(1)
    targets = {
        lvl: (torch.rand(8, k, generator=gen) < 0.3).float() for lvl, k in ATTRIBUTES.items()
    }
    loss_fn = MCSANLoss(LossConfig())
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny tensors: one thread is fastest on a busy machine
    try:
        for _ in range(40):  # perfect after ~10-20 steps with three seeds tried
            video_out, text_out = model(video, text)
            total, _ = loss_fn(video_out, text_out, model.level_weights(), keys, targets, targets)
            optimizer.zero_grad()
            total.backward()
            optimizer.step()
    finally:
        torch.set_num_threads(threads)
    model.eval()
    with torch.no_grad():
        video_out, text_out = model(video, text)
        sims = model.similarities(text_out.embeddings, video_out.embeddings)
    fused = sims["fused"]
    assert torch.equal(fused.argmax(dim=1), keys)  # text -> video
    assert torch.equal(fused.argmax(dim=0), keys)  # video -> text


def test_absent_levels_are_left_out_of_the_fused_score() -> None:
    model = make_model().eval()
    text = make_text([4, 6, 3], 6, empty_rows=(0,))
    video = make_video(3, 5, [5, 4, 3], 7)
    with torch.no_grad():
        t_out, v_out = model.encode_text(text), model.encode_video(video)
        sims = model.similarities(t_out.embeddings, v_out.embeddings, t_out.present)
        retrieval = model.text_retrieval_embeddings(t_out)
    weights = {k: float(v) for k, v in model.level_weights().items()}
    assert not t_out.present["relation"][0] and t_out.present["relation"][1]
    # Caption 0 names nothing but its words: its fused score is its global score alone.
    torch.testing.assert_close(sims["fused"][0], sims["global"][0])
    for lvl in ("entity", "action", "relation"):
        assert torch.all(sims[lvl][0] == 0)
    # Caption 1 has every level: the plain weighted sum (weights sum to 1).
    plain = sum(weights[lvl] * t_out.embeddings[lvl][1] @ v_out.embeddings[lvl].T for lvl in LEVELS)
    torch.testing.assert_close(sims["fused"][1], plain)
    # Retrieval embeddings turn the renormalised fused score into a plain weighted sum,
    # which is what the chunked evaluator and the FAISS index compute.
    via_embeddings = sum(weights[lvl] * retrieval[lvl] @ v_out.embeddings[lvl].T for lvl in LEVELS)
    torch.testing.assert_close(via_embeddings, sims["fused"])


def test_absent_levels_empty_mode_scores_every_level() -> None:
    model = make_model(tiny_config(absent_levels="empty")).eval()
    text = make_text([4, 6], 6, empty_rows=(0,))
    with torch.no_grad():
        out = model.encode_text(text)
    assert out.present == {}
    assert model.text_retrieval_embeddings(out).keys() == out.embeddings.keys()
    with pytest.raises(ConfigError, match="absent_levels"):
        tiny_config(absent_levels="drop")
