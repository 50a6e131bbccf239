"""A vector database behind the first stage: Qdrant, embedded or a cluster (``--index-type qdrant``).

FAISS (in the process, in the index folder) stays the default. ``qdrant`` keeps the fused
vectors (:mod:`mcsan.search.fusion`) in a Qdrant collection instead, scored by dot product,
one point per clip whose id is its row; everything else of the index (ids, per-level
embeddings, the matcher store, concept scores) stays in the folder, and search re-scores the
returned rows exactly as with FAISS, so the answers are the same.

- **Embedded** (default; ``pip install 'mcsan[qdrant]'``): Qdrant's local mode, in this
  process. The collection is not written to the folder: loading the index re-creates it from
  the stored embeddings (O(N): for tests and small collections; FAISS is faster here).
- **Cluster**: set ``MCSAN_QDRANT_URL`` (e.g. ``http://qdrant:6333``, plus
  ``MCSAN_QDRANT_API_KEY`` if needed) when building. The collection lives on the cluster
  (sharded and replicated as the cluster is configured), named in meta.json; a loaded index
  connects to it and checks its size. ``--add`` / ``--remove`` change that collection in place
  (the folder still swaps atomically; the cluster's points change before the swap).
"""

from __future__ import annotations

import os
import uuid
from typing import Any

import numpy as np

from mcsan.core.errors import CheckpointError
from mcsan.core.extras import require

URL_ENV = "MCSAN_QDRANT_URL"
KEY_ENV = "MCSAN_QDRANT_API_KEY"
UPSERT_BATCH = 2048


def _client(url: str | None) -> Any:
    require("qdrant_client")
    from qdrant_client import QdrantClient

    if url:
        return QdrantClient(url=url, api_key=os.environ.get(KEY_ENV) or None)
    return QdrantClient(location=":memory:")


class QdrantVectors:
    """The FAISS calls an index makes (``d``, ``ntotal``, ``search``, ``add_with_ids``,
    ``remove_ids``), answered by a Qdrant collection."""

    def __init__(self, dim: int, url: str | None = None, collection: str | None = None,
                 create: bool = True) -> None:  # fmt: skip
        """A new (``create``) or existing collection of ``dim``-d vectors; ``url`` None:
        embedded."""
        from qdrant_client import models

        self.d = int(dim)
        self.url = url
        self.collection = collection or f"mcsan-{uuid.uuid4().hex[:16]}"
        self.client = _client(url)
        if create:
            self.client.create_collection(self.collection, vectors_config=models.VectorParams(
                size=self.d, distance=models.Distance.DOT))  # fmt: skip

    @classmethod
    def new(cls, dim: int) -> QdrantVectors:
        """A new collection: on the cluster of ``MCSAN_QDRANT_URL``, else embedded."""
        return cls(dim, os.environ.get(URL_ENV) or None)

    @property
    def ntotal(self) -> int:
        """Points in the collection."""
        return int(self.client.count(self.collection, exact=True).count)

    def info(self) -> dict[str, Any]:
        """What meta.json records to find the collection again."""
        return {"url": self.url, "collection": self.collection}

    def add_with_ids(self, vectors: np.ndarray, labels: np.ndarray) -> None:
        """Upsert ``vectors`` as points ``labels``."""
        from qdrant_client import models

        for start in range(0, len(labels), UPSERT_BATCH):
            stop = start + UPSERT_BATCH
            self.client.upsert(self.collection, wait=True, points=models.Batch(
                ids=[int(v) for v in labels[start:stop]],
                vectors=np.asarray(vectors[start:stop], np.float32).tolist()))  # fmt: skip

    def remove_ids(self, labels: np.ndarray) -> int:
        """Delete points ``labels``; how many there were."""
        from qdrant_client import models

        before = self.ntotal
        self.client.delete(self.collection, wait=True, points_selector=models.PointIdsList(
            points=[int(v) for v in labels]))  # fmt: skip
        return before - self.ntotal

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """(scores, labels) of the top ``k`` points per query, -1 where fewer exist."""
        from qdrant_client import models

        requests = [models.QueryRequest(query=np.asarray(q, np.float32).tolist(), limit=int(k))
                    for q in queries]  # fmt: skip
        found = self.client.query_batch_points(self.collection, requests=requests)
        scores = np.full((len(queries), k), -np.inf, np.float32)
        labels = np.full((len(queries), k), -1, np.int64)
        for row, answer in enumerate(found):
            for column, point in enumerate(answer.points[:k]):
                scores[row, column], labels[row, column] = point.score, int(point.id)
        return scores, labels


def open_vectors(info: dict[str, Any] | None, dim: int, rows: Any) -> QdrantVectors:
    """The collection of a loaded index: the cluster's (checked), or an embedded one filled
    with ``rows()`` -> (fused vectors, labels) chunks."""
    info = info or {}
    if info.get("url"):
        vectors = QdrantVectors(dim, info["url"], info.get("collection"), create=False)
        try:
            count = vectors.ntotal
        except Exception as exc:  # the client raises several transport errors
            raise CheckpointError(f"the index's Qdrant collection {info.get('collection')!r} at "
                                  f"{info['url']} cannot be reached ({exc}); start the cluster "
                                  "or rebuild the index") from exc  # fmt: skip
        del count
        return vectors
    vectors = QdrantVectors(dim)
    for block, labels in rows():
        vectors.add_with_ids(block, labels)
    return vectors


def is_qdrant(index: Any) -> bool:
    """Whether ``index`` is a :class:`QdrantVectors`."""
    return isinstance(index, QdrantVectors)

