"""`track`: silent in library use, periodic plain lines when INFO logging is on."""

from __future__ import annotations

import logging

import pytest

from mcsan.core import progress
from mcsan.core.progress import duration, progress_line, track


@pytest.fixture
def every_item():
    progress.set_log_interval(0.0)
    yield
    progress.set_log_interval(progress.LOG_INTERVAL_S)


def test_silent_without_logging(caplog, every_item) -> None:
    with caplog.at_level(logging.WARNING, logger="mcsan"):
        assert list(track(range(3), total=3, desc="x")) == [0, 1, 2]
    assert caplog.records == []


def test_lines_with_count_rate_and_eta(caplog, every_item) -> None:
    with caplog.at_level(logging.INFO, logger="mcsan"):
        assert list(track(range(4), total=4, desc="extract", unit="clip")) == [0, 1, 2, 3]
    lines = [r.getMessage() for r in caplog.records]
    assert lines[0].startswith("extract: 1/4 clip (25%), ") and "clip/s, ETA " in lines[0]
    assert lines[-1].startswith("extract: done, 4 clip in ")


def test_formats() -> None:
    assert [duration(s) for s in (5, 65, 3725)] == ["5s", "1m05s", "1h02m"]
    assert progress_line("parse", 10, None, 2.0, "caption") == "parse: 10 caption, 5.0 caption/s"
    assert progress_line("e", 1, 3, 1.0, "batch").endswith("1.0 batch/s, ETA 2s")
    assert progress_line("e", 2, 4, 20.0, "batch") == "e: 2/4 batch (50%), 10.0 s/batch, ETA 20s"
