"""Option ranges checked at the edge: config load and argument parsing."""

from __future__ import annotations

import argparse

import pytest
import torch

from mcsan.config.run import config_from_dict
from mcsan.core.errors import ConfigError
from mcsan.core.validate import RANGES, Range, check_device, device_arg, float_in, int_in


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("model.attention_heads=0", r"'model.attention_heads' must be in \[1, 1024\], got 0"),
        ("model.embed_dim=-4", r"'model.embed_dim' must be in \[1, 65536\], got -4"),
        ("model.embed_dim=1000000000", r"'model.embed_dim' must be in \[1, 65536\]"),
        ("data.attribute_sizes={entity: 0}", r"'data.attribute_sizes.entity' must be in"),
        ("model.video_hidden=-2", r"'model.video_hidden' must be in \[2, 65536\]"),
        ("model.dropout=1.0", r"'model.dropout' must be in \[0, 1\), got 1.0"),
        ("model.dropout=-0.1", r"'model.dropout' must be in \[0, 1\)"),
        ("train.weight_decay=-1", r"'train.weight_decay' must be >= 0"),
        ("train.lr=.nan", r"'train.lr' must be > 0, got nan"),
        ("train.gamma=0", r"'train.gamma' must be in \(0, 1\]"),
        ("loss.kl_temperature=0", r"'loss.kl_temperature' must be > 0"),
        ("data.max_frames=0", r"'data.max_frames' must be in \[1, 65536\] \(or null\)"),
        ("train.device=potato", r"'train.device' 'potato': not a device"),
    ],
)
def test_config_values_out_of_range_are_refused_with_the_range(override: str, message: str):
    with pytest.raises(ConfigError, match=message) as info:
        config_from_dict({}, [override], source="run.yaml")
    assert str(info.value).startswith("run.yaml: ")


def test_every_range_names_a_real_field() -> None:
    cfg = config_from_dict({})
    for section, fields in RANGES.items():
        for name, valid in fields.items():
            value = getattr(getattr(cfg, section), name)
            assert (value is None and valid.optional) or valid.contains(value), (section, name)


def test_argparse_types_refuse_with_the_range() -> None:
    parser = argparse.ArgumentParser(exit_on_error=False)
    parser.add_argument("--fps", type=float_in(0.0, 240.0))
    parser.add_argument("--frames", type=int_in(1, 1024))
    for argv, message in (
        (["--fps", "-1"], r"must be in \(0, 240\]"),
        (["--fps", "inf"], "must be"),
        (["--frames", "0"], r"\[1, 1024\]"),
        (["--frames", "x"], "not an integer"),
    ):
        with pytest.raises(argparse.ArgumentError, match=message):
            parser.parse_args(argv)
    assert parser.parse_args(["--fps", "2.5", "--frames", "8"]).frames == 8
    assert str(Range(0, 1, high_open=True)) == "in [0, 1)"


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a build without CUDA")
def test_devices_this_build_lacks_are_refused() -> None:
    for name in ("cuda", "cuda:1"):
        with pytest.raises(ConfigError, match="no CUDA device; use cpu"):
            check_device(name)
    assert check_device("cuda:0", present=False) == "cuda:0"  # a stored config may name it
    with pytest.raises(argparse.ArgumentTypeError, match="'potato': not a device"):
        device_arg("potato")
    assert device_arg("auto") == "cpu"
