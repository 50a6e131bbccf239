"""Self-contained checkpoints: written atomically, read with clear errors.

A checkpoint is one ``torch.save`` dict (loadable with ``weights_only=True``)::

    format        "mcsan-checkpoint/1"
    model         the model's state_dict
    optimizer, scheduler, scaler   training state (for --resume)
    epoch, step   completed epochs and optimizer steps
    rng           python / numpy / torch (/ cuda) generator states
    config        the resolved RunConfig as a dict
    vocab         the vocabulary's id-ordered tokens
    attributes    the attribute vocabularies (JSON-able dict); attribute_sizes per level
    word_dim      word-embedding size when word vectors initialised it (else None)
    feature_set, feature_spec, streams, stream_shapes   what the video side was trained on
    history       per-epoch metrics; best: {"epoch", "rsum"}

Everything needed for inference travels inside it, so ``Retriever.from_checkpoint`` needs
no other file.
"""

from __future__ import annotations

import json
import os
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from mcsan.core.errors import CheckpointError
from mcsan.core.io import atomic_path
from mcsan.core.safe_load import load_torch
from mcsan.data.captions.attributes import AttributeVocabs
from mcsan.data.captions.parse import Vocabulary

FORMAT = "mcsan-checkpoint/1"
REQUIRED_KEYS: tuple[str, ...] = (
    "model",
    "config",
    "vocab",
    "attributes",
    "attribute_sizes",
    "feature_set",
    "feature_spec",
    "streams",
    "stream_shapes",
)


def save_checkpoint(path: str | os.PathLike[str], state: dict[str, Any]) -> None:
    """Write ``state`` (plus the format tag) to ``path`` atomically."""
    with atomic_path(path) as tmp:
        torch.save({"format": FORMAT, **state}, tmp)


def load_checkpoint(path: str | os.PathLike[str], map_location: str = "cpu") -> dict[str, Any]:
    """Read a checkpoint; a missing, truncated or foreign file raises CheckpointError."""
    source = Path(path)
    if not source.is_file():
        raise CheckpointError(
            f"{source}: checkpoint not found; train first (`mcsan train --out RUN`) and pass "
            "RUN/best.pt or RUN/last.pt"
        )
    state = load_torch(source, map_location, "checkpoint", "use another checkpoint or retrain")
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise CheckpointError(
            f"{source}: not an mcsan checkpoint (format {state.get('format') if isinstance(state, dict) else None!r}, "
            f"expected {FORMAT!r})"
        )
    missing = [key for key in REQUIRED_KEYS if key not in state]
    if missing:
        raise CheckpointError(f"{source}: checkpoint lacks {missing}; it is incomplete")
    wrong = [key for key, kind in _SHAPES.items() if not isinstance(state[key], kind)]
    if wrong:
        raise CheckpointError(
            f"{source}: checkpoint fields {wrong} have the wrong type; the file was altered or "
            "comes from another program: use another checkpoint or retrain"
        )
    return state


_SHAPES: dict[str, type | tuple[type, ...]] = {
    "model": dict, "config": dict, "vocab": (list, tuple), "attributes": dict,
    "attribute_sizes": dict, "feature_set": (str, type(None)), "feature_spec": (dict, type(None)),
    "streams": (list, tuple), "stream_shapes": dict,
}  # fmt: skip


def vocab_to_state(vocab: Vocabulary) -> list[str]:
    """The vocabulary as a plain list (id order)."""
    return list(vocab.itos)


def vocab_from_state(tokens: list[str]) -> Vocabulary:
    """Inverse of :func:`vocab_to_state`."""
    return Vocabulary(tokens)


def attributes_to_state(attributes: AttributeVocabs) -> dict[str, Any]:
    """The attribute vocabularies as a JSON-able dict."""
    return attributes.to_json()


def attributes_from_state(state: dict[str, Any]) -> AttributeVocabs:
    """Inverse of :func:`attributes_to_state`."""
    return AttributeVocabs(state["levels"])


def rng_state() -> dict[str, Any]:
    """Python, numpy and torch (and CUDA) generator states, as weights_only-safe values."""
    np_state = np.random.get_state()
    state: dict[str, Any] = {
        "python": json.dumps(random.getstate()),
        "numpy": [np_state[0], torch.from_numpy(np_state[1].copy()), *np_state[2:]],
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng_state(state: dict[str, Any]) -> None:
    """Inverse of :func:`rng_state`."""
    version, internal, gauss = json.loads(state["python"])
    random.setstate((version, tuple(internal), gauss))
    kind, keys, *rest = state["numpy"]
    np.random.set_state((kind, keys.numpy(), *rest))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def config_from_state(state: dict[str, Any], source: str | os.PathLike[str]) -> Any:
    """The RunConfig stored in a checkpoint."""
    from mcsan.config.run import config_from_dict

    return config_from_dict(state["config"], source=f"{source} (stored config)")


def model_from_state(state: dict[str, Any], source: str | os.PathLike[str]) -> Any:
    """Rebuild the MCSAN model of a checkpoint and load its weights (on CPU, eval mode)."""
    from mcsan.model import MCSAN

    cfg = config_from_state(state, source)
    try:
        vocab_size = len(state["vocab"])
        word_dim = state.get("word_dim")
        vectors = np.zeros((vocab_size, int(word_dim)), dtype=np.float32) if word_dim else None
        shapes = {
            name: tuple(int(n) for n in shape) for name, shape in state["stream_shapes"].items()
        }
        sizes = {level: int(size) for level, size in state["attribute_sizes"].items()}
        model = MCSAN(cfg.model, vocab_size, shapes, sizes, word_vectors=vectors)
        model.load_state_dict(state["model"])
    except (RuntimeError, TypeError, ValueError, KeyError) as exc:
        raise CheckpointError(
            f"{source}: weights do not fit the model its config describes ({exc}); the file "
            "comes from another mcsan version or was altered"
        ) from exc
    model.eval()
    return model
