"""The config reference: generated from the dataclasses, complete, and docs/CONFIG.md in step."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from mcsan.cli import main
from mcsan.config.reference import field_docs, first_sentence, reference, reference_markdown
from mcsan.config.run import RunConfig
from mcsan.core.errors import ConfigError
from mcsan.core.validate import RANGES
from mcsan.model import ModelConfig

DOC = Path(__file__).resolve().parents[1] / "docs" / "CONFIG.md"


def test_every_key_is_listed_with_a_doc() -> None:
    keys = {k.key: k for k in reference()}
    cfg = RunConfig()
    for section in ("data", "model", "loss", "train"):
        for f in dataclasses.fields(getattr(cfg, section)):
            assert f"{section}.{f.name}" in keys
    assert not [k.key for k in keys.values() if not k.doc]
    assert keys["loss.kl_direction"].valid == "video_to_text | text_to_video | symmetric"
    assert keys["model.dropout"].valid == "in [0, 1)"


def test_every_range_names_a_field() -> None:
    cfg = RunConfig()
    for section, ranges in RANGES.items():
        names = {f.name for f in dataclasses.fields(getattr(cfg, section))}
        assert set(ranges) <= names, section


def test_docs_config_md_matches_the_code() -> None:
    assert DOC.read_text(encoding="utf-8") == reference_markdown(), (
        "docs/CONFIG.md is stale: run `mcsan config --show --markdown > docs/CONFIG.md`"
    )


def test_cli_shows_defaults_and_a_configs_values(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["config", "--show"]) == 0
    default = capsys.readouterr().out
    assert main(["config", "--show", "--config", "world"]) == 0
    world = capsys.readouterr().out
    line = next(x for x in default.splitlines() if x.startswith("model.rerank "))
    assert " false " in line
    line = next(x for x in world.splitlines() if x.startswith("model.rerank "))
    assert " true " in line
    assert len(default.splitlines()) == len(reference()) + 1


def test_choices_are_checked_from_the_literal_type() -> None:
    with pytest.raises(ConfigError, match="model.action_mode' must be one of 'frames'"):
        ModelConfig(action_mode="frame")


def test_docs_come_from_docstrings_or_the_comment_above() -> None:
    @dataclasses.dataclass
    class Example:
        # The comment above.
        # Second line.
        a: int = 1
        b: int = 2
        """Its own docstring. More words."""

    docs = field_docs(Example)
    assert docs == {"a": "The comment above. Second line.", "b": "Its own docstring. More words."}
    assert first_sentence("Uses e.g. three. Then more.") == "Uses e.g. three."
