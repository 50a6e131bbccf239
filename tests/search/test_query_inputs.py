"""Queries as typed (tabs, newlines, only common words), the largest k, and `serve --port 0`
(issue 28)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from mcsan.cli import build_parser
from mcsan.core.errors import SearchError
from mcsan.inference.retriever import Retriever
from mcsan.search import MAX_K, VideoIndex
from mcsan.search.query import validate_k
from mcsan.search.searcher import Searcher

SRC = str(Path(__file__).resolve().parents[2] / "src")


@pytest.fixture(scope="module")
def searcher(setup) -> Searcher:
    return Searcher(VideoIndex.load(setup["index"]), Retriever.from_checkpoint(setup["checkpoint"]))


def test_tabs_and_newlines_are_normalised_not_refused(searcher):
    typed = searcher.answer("a red\tball\n  rolls\r\n", k=3, mode="model")
    plain = searcher.answer("a red ball rolls", k=3, mode="model")
    assert typed.query == "a red ball rolls"
    assert [h.video_id for h in typed.hits] == [h.video_id for h in plain.hits]


def test_a_query_of_common_words_only_is_warned_about_in_model_mode(searcher):
    answer = searcher.answer("the of a", k=3, mode="model")
    assert any("no content word" in w and "not meaningful" in w for w in answer.warnings)


def test_the_cli_and_the_server_agree_on_the_largest_k():
    search = build_parser()._subparsers._group_actions[0].choices["search"]  # noqa: SLF001
    action = next(a for a in search._actions if a.dest == "k")  # noqa: SLF001
    assert action.type(str(MAX_K)) == validate_k(MAX_K) == MAX_K
    assert str(MAX_K) in action.help
    with pytest.raises(SearchError):
        validate_k(MAX_K + 1)
    with pytest.raises(Exception, match=str(MAX_K)):  # argparse's error names the range
        action.type(str(MAX_K + 1))


def test_serve_on_port_0_prints_the_port_it_got(setup):
    env = {**os.environ, "PYTHONPATH": SRC, "OMP_NUM_THREADS": "1"}
    server = subprocess.Popen(
        [sys.executable, "-B", "-m", "mcsan", "serve", "--index", str(setup["index"]),
         "--port", "0"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )  # fmt: skip
    try:
        line = server.stdout.readline()
        assert line.startswith("serving ") and ":0/" not in line, server.stderr.read()
        url = line.split(" on ")[1].split(" ")[0]
        with urllib.request.urlopen(f"{url}api/health", timeout=30) as response:
            assert json.loads(response.read())["status"] == "ok"
    finally:
        server.send_signal(signal.SIGINT)
        server.wait(timeout=30)
