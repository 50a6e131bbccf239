"""Serving many users: the model work of concurrent queries runs in batches on one thread.

The server answers requests on a thread pool with no lock around a query. What costs time
in a query is the model: parsing and encoding the caption, and the binding matcher over
its shortlist. :class:`BatchedEncoder` stands in for the encoder (a
:class:`mcsan.inference.retriever.Retriever`) and sends that work to one worker thread;
whatever requests are waiting when the worker is free go in together as one batch: the
queries' encoding with the index search (:meth:`BatchedEncoder.encode_search`: one parse,
one caption encoding, one FAISS search), then their re-ranking
(:meth:`BatchedEncoder.match_rows`: one matcher pass over every query's shortlist, see
:func:`mcsan.search.matcher_store.match_rows`). A lone query is a batch of one and waits
for no timer; after a batch of several, the worker gathers the next stage's requests while
they keep arriving (gaps under :data:`GATHER_GAP`), so that 30 concurrent queries are not
split into a batch of one and one of 29. The worker is the only thread that runs the
model, so the model and its parser are never used by two threads at once.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from typing import Any

import numpy as np

from mcsan.core.errors import SearchError
from mcsan.search.matcher_store import match_rows

log = logging.getLogger(__name__)

MAX_BATCH = 64
"""Most requests of one kind merged into one model call."""
GATHER_GAP = 0.005
GATHER_MOST = 0.03
"""When fewer requests wait than the last batch held, the worker waits for more until none
came for ``GATHER_GAP`` seconds, at most ``GATHER_MOST`` in all (a query after a lone query
never waits; the first after a batch of several waits ``GATHER_GAP`` at most)."""


def one_blas_thread() -> Any:
    """Put numpy's and FAISS's BLAS (OpenBLAS) on one thread in this process, for serving:
    request threads score their candidates with small numpy products, and OpenBLAS's threaded
    ones called from 30 threads at once spin-waited on the 2 cores (30 concurrent late-stage
    queries, in-process: rounds of 2.1-3.4 s, against ~0.5 s when they did not collide;
    BENCHMARKS.md). Returns the limiter (``restore_original_limits()`` undoes it); None
    without threadpoolctl."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # the search extra installs it
        log.warning("threadpoolctl is missing: numpy's BLAS keeps its threads, concurrent "
                    "queries may spin-wait (pip install threadpoolctl)")  # fmt: skip
        return None
    return threadpool_limits(limits=1, user_api="blas")


def _by_object(requests: Sequence[Sequence[Any]], position: int) -> list[tuple[Any, list[int]]]:
    """The requests grouped by the object at ``position`` (the same store or clips; several
    after an index reload): (object, request numbers) in first-seen order."""
    groups: dict[int, tuple[Any, list[int]]] = {}
    for number, request in enumerate(requests):
        groups.setdefault(id(request[position]), (request[position], []))[1].append(number)
    return list(groups.values())


class MicroBatcher:
    """Runs ``handlers[kind](items)`` on one worker thread for the items queued together."""

    def __init__(self, handlers: dict[str, Callable[[list[Any]], list[Any]]],
                 max_batch: int = MAX_BATCH) -> None:  # fmt: skip
        """``handlers[kind]`` maps a list of items to a list of results, one per item."""
        self.handlers = handlers
        self.max_batch = max_batch
        self._queue: queue.Queue[tuple[str, Any, Future[Any]]] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._start = threading.Lock()
        self.batches = 0
        """How many model calls ran (for tests and logs)."""

    def submit(self, kind: str, item: Any) -> Any:
        """The handler's result for ``item`` (blocks; re-raises the batch's exception)."""
        with self._start:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._work, name="mcsan-batcher",
                                                daemon=True)  # fmt: skip
                self._thread.start()
        future: Future[Any] = Future()
        self._queue.put((kind, item, future))
        return future.result()

    def _work(self) -> None:
        last = 1
        while True:
            waiting = [self._queue.get()]
            most = self.max_batch * len(self.handlers)
            while len(waiting) < most:
                try:
                    waiting.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            # after a batch of ``last`` requests, theirs (or their next stage) are likely on the
            # way: gather them while they keep coming, rather than run one and keep them waiting
            deadline = time.monotonic() + GATHER_MOST
            while len(waiting) < min(last, most) and (left := deadline - time.monotonic()) > 0:
                try:
                    waiting.append(self._queue.get(timeout=min(GATHER_GAP, left)))
                except queue.Empty:
                    break
            last = len(waiting)
            for kind in dict.fromkeys(entry[0] for entry in waiting):
                group = [entry for entry in waiting if entry[0] == kind]
                for start in range(0, len(group), self.max_batch):
                    self._run(kind, group[start : start + self.max_batch])

    def _run(self, kind: str, group: list[tuple[str, Any, Future[Any]]]) -> None:
        self.batches += 1
        try:
            results = self.handlers[kind]([item for _, item, _ in group])
        except BaseException as exc:  # every waiting request gets the error
            for _, _, future in group:
                future.set_exception(exc)
            return
        for (_, _, future), result in zip(group, results, strict=True):
            future.set_result(result)


class BatchedEncoder:
    """An encoder whose ``encode_captions``, ``match_encoded``, :meth:`encode_search` and
    :meth:`match_rows` calls from many threads are batched (see the module docstring);
    every other attribute is the wrapped encoder's."""

    def __init__(self, encoder: Any, max_batch: int = MAX_BATCH) -> None:
        """Wrap ``encoder`` (a Retriever)."""
        self.encoder = encoder
        self.batcher = MicroBatcher({"encode": self._encode_many, "search": self._search_many,
                                     "match": self._match_many, "rows": self._rows_many,
                                     "late": self._match_many, "queries": self._queries_many,
                                     "every": self._every_many},
                                    max_batch)  # fmt: skip

    def __getattr__(self, name: str) -> Any:
        return getattr(self.encoder, name)

    def encode_captions(self, captions: Sequence[str], batch_size: int = 256
                        ) -> dict[str, np.ndarray]:  # fmt: skip
        """As the encoder's, batched with other threads' calls."""
        return self.batcher.submit("encode", list(captions))

    def match_encoded(self, captions: Sequence[str], video: Any, caption_rows: np.ndarray,
                      clip_rows: np.ndarray, terms: Sequence[str] | None = None
                      ) -> np.ndarray:  # fmt: skip
        """As the encoder's, batched with other threads' calls (the late terms of the first
        stage, ``terms``, in batches of their own)."""
        kind = "match" if terms is None else "late"
        return self.batcher.submit(kind, (list(captions), video, np.asarray(caption_rows),
                                          np.asarray(clip_rows), terms))  # fmt: skip

    def late_every(self, captions: Sequence[str], video: Any) -> np.ndarray:
        """As the encoder's, batched with other threads' calls on the same clips: one pass
        for all their captions (the matcher grounds each distinct phrase of the pass once)."""
        return self.batcher.submit("every", (list(captions), video))

    def _every_many(self, requests: list[tuple[list[str], Any]]) -> list[np.ndarray]:
        out: list[np.ndarray | None] = [None] * len(requests)
        for video, numbers in _by_object(requests, 1):
            texts = [text for n in numbers for text in requests[n][0]]
            scores = self.encoder.late_every(texts, video)
            start = 0
            for n in numbers:
                out[n] = scores[start : start + len(requests[n][0])]
                start += len(requests[n][0])
        return out  # type: ignore[return-value]

    def late_queries(self, captions: Sequence[str]) -> list[np.ndarray]:
        """As the encoder's, batched with other threads' calls."""
        return self.batcher.submit("queries", list(captions))

    def _queries_many(self, requests: list[list[str]]) -> list[list[np.ndarray]]:
        found = self.encoder.late_queries([text for request in requests for text in request])
        out, start = [], 0
        for request in requests:
            out.append(found[start : start + len(request)])
            start += len(request)
        return out

    def encode_search(self, index: Any, text: str, pool: int
                      ) -> tuple[dict[str, np.ndarray], Any, float]:  # fmt: skip
        """``text``'s embeddings of ``index``'s levels (each (1, d)), ``index.search_vectors``
        of them for its top ``pool`` clips, and the milliseconds the batch's search took:
        encoded and searched with other threads' queries (one encoding, one search per
        index and pool)."""
        return self.batcher.submit("search", (index, text, int(pool)))

    def _search_many(self, requests: list[tuple[Any, str, int]]
                     ) -> list[tuple[dict[str, np.ndarray], Any, float]]:  # fmt: skip
        encoded = self.encoder.encode_captions([text for _, text, _ in requests])
        started = time.perf_counter()
        out: list[Any] = [None] * len(requests)
        groups: dict[tuple[int, int], list[int]] = {}
        for number, (index, _, pool) in enumerate(requests):
            groups.setdefault((id(index), pool), []).append(number)
        for (_, pool), numbers in groups.items():
            index = requests[numbers[0]][0]
            missing = [lv for lv in index.levels if lv not in encoded]
            if missing:
                raise SearchError(f"the encoder returned no {missing} embeddings; the index "
                                  "needs them")  # fmt: skip
            found = index.search_vectors({lv: encoded[lv][numbers] for lv in index.levels}, pool)
            for number, result in zip(numbers, found, strict=True):
                out[number] = result
        searching = 1000 * (time.perf_counter() - started)
        return [({lv: encoded[lv][n : n + 1] for lv in requests[n][0].levels}, out[n], searching)
                for n in range(len(requests))]  # fmt: skip

    def match_rows(self, store: Any, key_dim: int, query: str, rows: np.ndarray) -> np.ndarray:
        """The matcher's score of ``query`` against ``rows`` of the matcher store ``store``
        (:func:`mcsan.search.matcher_store.match_rows`), batched with other threads' calls."""
        return self.batcher.submit("rows", (store, key_dim, query, np.asarray(rows)))

    def _rows_many(self, requests: list[tuple[Any, ...]]) -> list[np.ndarray]:
        out: list[np.ndarray | None] = [None] * len(requests)
        for store, numbers in _by_object(requests, 0):
            scores = match_rows(self.encoder, store, requests[numbers[0]][1],
                                [requests[n][2:] for n in numbers])  # fmt: skip
            for number, score in zip(numbers, scores, strict=True):
                out[number] = score
        return out  # type: ignore[return-value]

    def _encode_many(self, requests: list[list[str]]) -> list[dict[str, np.ndarray]]:
        texts = [text for request in requests for text in request]
        encoded = self.encoder.encode_captions(texts)
        out, start = [], 0
        for request in requests:
            out.append({lv: v[start : start + len(request)] for lv, v in encoded.items()})
            start += len(request)
        return out

    def _match_many(self, requests: list[tuple[Any, ...]]) -> list[np.ndarray]:
        from mcsan.evaluate.reranked import _cat_video

        captions: list[str] = []
        caption_rows, clip_rows, sizes = [], [], []
        clips = 0
        for texts, video, text_rows, video_rows, _ in requests:
            caption_rows.append(text_rows + len(captions))
            clip_rows.append(video_rows + clips)
            captions += texts
            clips += len(video.mask)
            sizes.append(len(text_rows))
        video = _cat_video([request[1] for request in requests])
        terms = requests[0][4]  # one kind per batch: all None, or all the late terms
        scores = self.encoder.match_encoded(captions, video, np.concatenate(caption_rows),
                                            np.concatenate(clip_rows),
                                            *(() if terms is None else (terms,)))  # fmt: skip
        return list(np.split(scores, np.cumsum(sizes)[:-1]))
