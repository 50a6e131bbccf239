"""A media path that resolves to a symlink loop is a client error (4xx), never a 500."""

from __future__ import annotations

from pathlib import Path

import faiss  # noqa: F401  (the index needs it)
import numpy as np
import pytest

from mcsan.search import VideoIndex
from mcsan.search.server import ClientError, resolve_media


def test_symlink_loops_and_dangling_links_answer_404(tmp_path: Path) -> None:
    media = tmp_path / "media"
    media.mkdir()
    (media / "loop.mp4").symlink_to(media / "loop.mp4")
    (media / "gone.mp4").symlink_to(media / "nowhere.mp4")
    embeddings = {"global": np.eye(2, 4, dtype=np.float32)}
    index = VideoIndex.build(
        embeddings,
        ["a", "b"],
        ["loop.mp4", "gone.mp4"],
        {"global": 1.0},
        "0" * 64,
        media_root=media,
    )
    for name in ("loop.mp4", "gone.mp4"):
        with pytest.raises(ClientError) as info:
            resolve_media(index, name)
        assert info.value.status == 404 and name in info.value.message
