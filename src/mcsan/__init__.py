"""mcsan: text-to-video and video-to-text retrieval with the Multi-Level Cross-Modal
Semantic Alignment Network (Nian et al., Mathematics 2022, 10(18), 3346).

The public API (imported on first use, so ``import mcsan`` stays light):

- ``generate_world(out, n_videos, seed)``: the embedded default, a synthetic world;
- ``extract_features`` / ``extract_dataset(root)``: frame features into a dataset;
- ``load_config(name_or_path, overrides)``, ``train_model(config, out)``;
- ``evaluate_checkpoint(path, split)``, ``evaluate_twins(path, root)``, ``Retriever``;
- ``build_index(out, checkpoint=..., dataset=... | videos=...)``,
  ``open_searcher(index_dir)`` (a ``Searcher``) and ``mcsan.search.search(index_dir, query)``:
  the same answers as ``mcsan index`` / ``mcsan search``.

See the README's Python quickstart.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

LEVELS: tuple[str, ...] = ("global", "entity", "action", "relation")
"""The four semantic levels, in their canonical order."""

ATTRIBUTE_LEVELS: tuple[str, ...] = ("entity", "action", "relation")
"""Levels that carry attribute labels (entity words, action words, relation triplets)."""

_API: dict[str, tuple[str, str]] = {
    "generate_world": ("mcsan.world", "generate_world"),
    "extract_features": ("mcsan.data.video.extract", "extract_features"),
    "extract_dataset": ("mcsan.data.video.extract", "extract_dataset"),
    "load_config": ("mcsan.config.run", "load_config"),
    "RunConfig": ("mcsan.config.run", "RunConfig"),
    "train_model": ("mcsan.train.trainer", "train"),
    "evaluate_checkpoint": ("mcsan.inference.retriever", "evaluate_checkpoint"),
    "evaluate_twins": ("mcsan.inference.twins", "evaluate_twins"),
    "Retriever": ("mcsan.inference.retriever", "Retriever"),
    "build_index": ("mcsan.search.build", "build_index"),
    "open_searcher": ("mcsan.search.library", "open_searcher"),
    "Searcher": ("mcsan.search.searcher", "Searcher"),
}
"""Public name -> (module, attribute); ``mcsan.search`` and ``mcsan.train`` are packages,
so training is ``train_model`` and searching ``mcsan.search.search``."""

__all__ = ["ATTRIBUTE_LEVELS", "LEVELS", "__version__", *_API]


def __getattr__(name: str) -> Any:
    if name in _API:
        module, attribute = _API[name]
        return getattr(importlib.import_module(module), attribute)
    raise AttributeError(f"module 'mcsan' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_API))
