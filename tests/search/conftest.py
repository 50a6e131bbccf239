"""Fixtures shared by the search tests: the tiny trained index, built once per session."""

from __future__ import annotations

from pathlib import Path

import pytest
from search_helpers import matcher_search_setup, tiny_search_setup


@pytest.fixture(scope="session")
def setup(tmp_path_factory) -> dict[str, Path]:
    base = tmp_path_factory.getbasetemp() / "search_setup"
    base.mkdir(exist_ok=True)
    return tiny_search_setup(base)


@pytest.fixture(scope="session")
def matcher_index(tmp_path_factory, caption_parser) -> dict:
    """The tiny matcher run (top 4, weight 2) and its index, with a retriever for it."""
    from mcsan.inference.retriever import Retriever

    base = tmp_path_factory.getbasetemp() / "matcher_setup"
    base.mkdir(exist_ok=True)
    paths = matcher_search_setup(base, caption_parser)
    retriever = Retriever.from_checkpoint(paths["checkpoint"])
    retriever._parser = caption_parser
    return {**paths, "retriever": retriever}
