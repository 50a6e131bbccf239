"""Shared fixtures. Tests make their own small data; nothing is downloaded."""

from __future__ import annotations

import os

import pytest

# Deterministic, quiet, and kind to a 2-core machine.
os.environ.setdefault("OMP_NUM_THREADS", "2")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


@pytest.fixture(scope="session")
def caption_parser():
    """One spaCy-backed caption parser for the whole session (loading takes ~1 s)."""
    from mcsan.data.captions.parse import CaptionParser

    return CaptionParser()
