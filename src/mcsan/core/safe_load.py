"""The only loaders of arrays and checkpoints: they never unpickle what a user hands over.

``np.load(allow_pickle=False)`` and ``torch.load(weights_only=True)``; an object array, a
pickle or a checkpoint holding other Python objects is refused by name, and the message
never suggests lifting the restriction.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from mcsan.core.errors import CheckpointError, DataError


def load_npy(
    path: str | os.PathLike[str], mmap_mode: Any = None, what: str = "array"
) -> Any:
    """``np.load`` that never unpickles: object arrays and pickles are refused by name."""
    import numpy as np

    source = Path(path)
    if not source.is_file():
        raise DataError(f"{source}: {what} (.npy) not found; check the path")
    with source.open("rb") as handle:
        if handle.read(6) != b"\x93NUMPY":
            raise DataError(
                f"{source}: not a .npy file (no NPY header); mcsan reads .npy arrays written "
                "by np.save, never pickles"
            )
    try:
        return np.load(source, mmap_mode=mmap_mode, allow_pickle=False)
    except ValueError as exc:
        if "pickle" in str(exc):
            raise DataError(
                f"{source}: the {what} holds pickled Python objects, which mcsan never loads "
                "(unpickling runs code); re-save it as a plain numeric or string array "
                "(np.save(path, np.asarray(values, dtype=str or float))), or give a .txt/.json "
                "list where a names list is asked for"
            ) from exc
        raise DataError(f"{source}: not a readable .npy {what} ({exc})") from exc
    except (OSError, EOFError) as exc:
        raise DataError(f"{source}: not a readable .npy {what} ({exc})") from exc


def load_torch(
    path: str | os.PathLike[str], map_location: Any = "cpu", what: str = "checkpoint",
    fix: str = "use another file or retrain",
) -> Any:
    """``torch.load(weights_only=True)``: tensors and plain containers only, never code.

    Any failure is a CheckpointError naming the file; a file that holds other Python
    objects is refused as such (the message never suggests lifting the restriction).
    """
    import pickle

    import torch

    source = Path(path)
    if not source.is_file():
        raise CheckpointError(f"{source}: {what} not found; check the path")
    try:
        return torch.load(source, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as exc:
        raise CheckpointError(
            f"{source}: the {what} holds Python objects other than tensors and plain "
            f"containers; mcsan never loads those (loading them could run code); {fix}"
        ) from exc
    except Exception as exc:  # torch raises many kinds for corrupt files
        name = type(exc).__name__
        detail = name if "weights_only" in str(exc) else f"{name}: {exc}"
        raise CheckpointError(
            f"{source}: not a readable {what} ({detail}); the file is corrupt or truncated: "
            f"{fix}"
        ) from exc
