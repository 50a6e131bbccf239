"""Run configuration: YAML loading, key/type checks, overrides, round trip."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from mcsan.config.run import RunConfig, config_from_dict, load_config, save_config
from mcsan.core.errors import ConfigError
from mcsan.core.typed_yaml import parse_override

REPO = Path(__file__).resolve().parents[1]


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "run.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_unknown_nested_key_names_path_and_file(tmp_path):
    path = write(tmp_path, "model:\n  levles: [global]\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert "model.levles" in str(info.value)
    assert str(path) in str(info.value)


def test_unknown_top_level_key(tmp_path):
    with pytest.raises(ConfigError, match="'trian'"):
        load_config(write(tmp_path, "trian:\n  epochs: 3\n"))


@pytest.mark.parametrize(
    "text, key",
    [
        ("train:\n  epochs: three\n", "train.epochs"),
        ("train:\n  lr: [1]\n", "train.lr"),
        ("train:\n  amp: fp8\n", "train.amp"),
        ("data:\n  attribute_sizes: {entity: big}\n", "data.attribute_sizes.entity"),
        ("model:\n  levels: global\n", "model.levels"),
        ("train:\n  epochs: 0\n", "train.epochs"),
    ],
)
def test_bad_values_name_the_key(tmp_path, text, key):
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, text))
    assert key in str(info.value)


def test_model_validation_error_names_file(tmp_path):
    path = write(tmp_path, "model:\n  levels: [global, colour]\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert str(path) in str(info.value) and "colour" in str(info.value)


def test_missing_file_and_bad_yaml(tmp_path):
    with pytest.raises(ConfigError, match="not found") as info:
        load_config(tmp_path / "nope.yaml")
    assert "world" in str(info.value)  # the built-in names are offered
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(write(tmp_path, "train: [unclosed\n"))


def test_overrides_parse_yaml_values(tmp_path):
    cfg = load_config(
        write(tmp_path, "train:\n  epochs: 3\n"),
        [
            "model.levels=[global,entity]",
            "train.epochs=7",
            "train.grad_clip=null",
            "data.attribute_sizes={entity: 5, action: 4}",
            "loss.use_kl=false",
            "train.lr=3e-4",
            "train.amp=off",
        ],
    )
    assert cfg.train.amp == "off"
    assert cfg.model.levels == ("global", "entity")
    assert cfg.train.epochs == 7 and cfg.train.grad_clip is None
    assert cfg.data.attribute_sizes == {"entity": 5, "action": 4}
    assert cfg.loss.use_kl is False and cfg.train.lr == pytest.approx(3e-4)


@pytest.mark.parametrize("text", ["train.epochs", "=3", "train..epochs=3"])
def test_malformed_override(text):
    with pytest.raises(ConfigError):
        parse_override(text)


def test_override_of_unknown_key_is_an_error():
    with pytest.raises(ConfigError, match="train.epoch'"):
        load_config(None, ["train.epoch=3"])


def test_relative_paths_resolve_against_cwd(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cfg = load_config(write(tmp_path, "data:\n  root: data/x\n  parse_cache: c.jsonl\n"))
    assert cfg.data.root == str(tmp_path / "data" / "x")
    assert cfg.data.parse_cache == str(tmp_path / "c.jsonl")
    assert cfg.data.word_vectors == "glove-6b-50d"


def test_save_then_load_round_trip(tmp_path):
    cfg = load_config(None, ["model.levels=[global,action]", "train.epochs=4", "seed=9"])
    save_config(cfg, tmp_path / "config.yaml")
    again = load_config(tmp_path / "config.yaml")
    assert again == cfg
    assert yaml.safe_load((tmp_path / "config.yaml").read_text())["seed"] == 9


@pytest.mark.parametrize("name", ["world", "msrvtt", "vatex"])
def test_shipped_configs_load_by_name_from_any_folder(name, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cfg = load_config(name)
    assert isinstance(cfg, RunConfig)
    assert Path(cfg.data.root).is_relative_to(tmp_path)  # relative paths: from the cwd
    if name != "world":
        assert cfg.train.lr == pytest.approx(1e-4) and cfg.train.batch_size == 128
        assert cfg.train.epochs == 50 and cfg.loss.margin == pytest.approx(0.2)
        assert cfg.model.embed_dim == 1024 and cfg.train.optimizer == "adam"


@settings(max_examples=40, deadline=None)
@given(
    epochs=st.integers(1, 500),
    lr=st.floats(1e-6, 1.0),
    levels=st.lists(
        st.sampled_from(["global", "entity", "action", "relation"]), min_size=1, unique=True
    ),
    clip=st.one_of(st.none(), st.floats(0.1, 10.0)),
    amp=st.sampled_from(["auto", "off", "bf16", "fp16"]),
)
def test_dict_round_trip_property(epochs, lr, levels, clip, amp):
    data = {
        "train": {"epochs": epochs, "lr": lr, "grad_clip": clip, "amp": amp},
        "model": {"levels": levels},
        "data": {"root": "/abs/root"},
    }
    cfg = config_from_dict(data)
    assert config_from_dict(cfg.to_dict()) == cfg
    assert cfg.model.levels == tuple(levels) and cfg.train.epochs == epochs


def test_an_existing_file_wins_over_a_builtin_name(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "world").write_text("seed: 5\n")
    assert load_config("world").seed == 5


def test_defaults_are_written_once_and_point_nowhere_special():
    from mcsan import ATTRIBUTE_LEVELS
    from mcsan.data.captions.attributes import DEFAULT_SIZES
    from mcsan.data.data_config import DataConfig

    data = DataConfig()
    assert data.attribute_sizes == DEFAULT_SIZES and set(DEFAULT_SIZES) == set(ATTRIBUTE_LEVELS)
    assert data.attribute_sizes is not DEFAULT_SIZES  # each config owns its copy
    assert "runs" not in Path(data.root).parts
    assert load_config(None).data == DataConfig(root=str(Path.cwd() / data.root))


def test_attribute_sizes_of_an_unknown_level_are_refused(tmp_path):
    with pytest.raises(ConfigError, match="data.attribute_sizes.colour"):
        load_config(write(tmp_path, "data:\n  attribute_sizes: {colour: 4}\n"))
