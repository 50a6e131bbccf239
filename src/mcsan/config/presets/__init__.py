"""The run configs that ship with the package, found by name.

``mcsan train --config world`` reads ``world.yaml`` from this package (through
:mod:`importlib.resources`, so it works from any folder and from an installed wheel);
``--config path/to/run.yaml`` reads that file. A path that exists always wins over a name.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from importlib import resources
from pathlib import Path

from mcsan.core.errors import ConfigError


def builtin_names() -> list[str]:
    """Names of the packaged configs (``world``, ``msrvtt``, ``vatex``)."""
    return sorted(
        entry.name[: -len(".yaml")]
        for entry in resources.files(__name__).iterdir()
        if entry.name.endswith(".yaml")
    )


@contextmanager
def config_file(value: str | os.PathLike[str]) -> Iterator[Path]:
    """The YAML file of ``value`` (a path, or a packaged config's name) as a real path."""
    check_config_arg(value)
    if not is_builtin(value):
        yield Path(value)
        return
    with resources.as_file(resources.files(__name__).joinpath(f"{os.fspath(value)}.yaml")) as path:
        yield path


def is_builtin(value: str | os.PathLike[str]) -> bool:
    """Whether ``value`` names a packaged config rather than an existing file."""
    text = os.fspath(value)
    return not Path(text).exists() and text in builtin_names()


def check_config_arg(value: str | os.PathLike[str]) -> None:
    """ConfigError unless ``value`` is an existing file or a packaged config's name."""
    if Path(value).is_file() or is_builtin(value):
        return
    raise ConfigError(
        f"{value}: config file not found and not a built-in config name; pass a YAML path "
        f"or one of: {', '.join(builtin_names())}"
    )
