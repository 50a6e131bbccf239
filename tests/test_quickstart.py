"""The README's Python quickstart runs as written, and the library answers as the CLI does."""

from __future__ import annotations

import contextlib
import io
import json
import re
from pathlib import Path

import pytest

pytest.importorskip("faiss")
pytest.importorskip("av")

README = Path(__file__).resolve().parents[1] / "README.md"


def quickstart() -> str:
    text = README.read_text(encoding="utf-8")
    section = text[text.index("### From Python"):]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


@pytest.mark.slow
def test_readme_quickstart_runs_and_search_matches_the_cli(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        exec(compile(quickstart(), "README.md quickstart", "exec"), {"__name__": "quickstart"})
    lines = printed.getvalue().splitlines()
    assert lines[0].startswith("test rsum ")
    assert (tmp_path / "qs" / "index").is_dir()

    from mcsan.cli import main
    from mcsan.search import search

    query = "a red ball is moving toward a blue cube"
    library = search("qs/index", query, k=3)
    assert library.hits and library.reranked  # the world config re-ranks with its matcher
    cli = io.StringIO()
    with contextlib.redirect_stdout(cli):
        assert main(["search", "--index", "qs/index", query, "-k", "3", "--json"]) == 0
    answer = json.loads(cli.getvalue())
    assert [h["video_id"] for h in answer["hits"]] == [h.video_id for h in library.hits]
    assert answer["mode"] == library.mode
