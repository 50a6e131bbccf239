"""Fixtures shared by the search tests: the tiny trained index, built once per session."""

from __future__ import annotations

from pathlib import Path

import pytest
from search_helpers import tiny_search_setup


@pytest.fixture(scope="session")
def setup(tmp_path_factory) -> dict[str, Path]:
    base = tmp_path_factory.getbasetemp() / "search_setup"
    base.mkdir(exist_ok=True)
    return tiny_search_setup(base)
