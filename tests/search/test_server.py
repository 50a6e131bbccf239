"""Search end to end with a real 1-epoch checkpoint: library, CLI, HTTP API, hostile input."""

from __future__ import annotations

import http.client
import json
import shutil
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np
import pytest
from fastapi.testclient import TestClient
from search_helpers import running_server

from mcsan.cli import main as cli_main
from mcsan.core.errors import SearchError
from mcsan.search import VideoIndex, fused_search
from mcsan.search.server import create_app

QUERY = "a red square moves left"


@pytest.fixture(scope="module")
def app(setup):
    return create_app(setup["index"])


@pytest.fixture(scope="module")
def client(app):
    with TestClient(app) as test_client:
        yield test_client


@pytest.fixture(scope="module")
def server(app):
    with running_server(app) as base_url:
        yield base_url


def fused_reference(retriever, index_dir: Path, query: str) -> dict[str, float]:
    """The model's own fused scores (Retriever.score) of every indexed clip for ``query``."""
    from mcsan.data.video.store import FeatureStore

    index = VideoIndex.load(index_dir)
    with FeatureStore.open(index_dir / "features.h5") as store:
        videos = retriever.encode_features([store.read(v) for v in index.ids])
    fused = retriever.score(retriever.encode_captions([query]), videos)["fused"][0]
    return dict(zip(index.ids, fused.tolist(), strict=True))


def test_search_ranks_by_the_models_fused_score(app, setup):
    retriever = app.state.retriever
    index = app.state.index
    hits = fused_search(index, retriever, QUERY, k=16)
    assert [h.rank for h in hits] == list(range(1, 17))
    assert {h.video_id for h in hits} == set(index.ids)
    reference = fused_reference(retriever, setup["index"], QUERY)
    for hit in hits:
        assert hit.score == pytest.approx(reference[hit.video_id], abs=1e-4)
        assert sum(hit.level_scores.values()) == pytest.approx(hit.score, abs=1e-5)
        assert hit.path == f"{hit.video_id}.mp4"
    assert all(a.score >= b.score - 1e-6 for a, b in zip(hits, hits[1:], strict=False))


def test_api_search_and_health(client, app):
    health = client.get("/api/health").json()
    assert health["status"] == "ok" and health["videos"] == 16
    assert health["levels"] == ["global", "entity", "action", "relation"]
    assert health["checkpoint_sha256"] == app.state.retriever.checkpoint_sha256
    response = client.get("/api/search", params={"q": QUERY, "k": 5})
    assert response.status_code == 200
    body = response.json()
    expected = fused_search(app.state.index, app.state.retriever, QUERY, 5)
    assert [h["video_id"] for h in body["hits"]] == [h.video_id for h in expected]
    assert body["hits"][0]["media_url"] == f"/media/{expected[0].video_id}.mp4"
    assert body["hits"][0]["media_kind"] == "video"
    clip = client.get(body["hits"][0]["media_url"])
    assert clip.status_code == 200 and clip.content[4:8] == b"ftyp"
    page = client.get("/")
    assert page.status_code == 200 and "search-form" in page.text
    assert client.get("/static/app.js").status_code == 200


@pytest.mark.parametrize(
    "params, message",
    [
        ({"q": ""}, "empty"),
        ({"q": "   "}, "empty"),
        ({"q": "x" * 10_000}, "10000 characters"),
        ({"q": "a\x00b"}, "control character"),
        ({"q": QUERY, "k": "0"}, "k must"),
        ({"q": QUERY, "k": "-3"}, "k must"),
        ({"q": QUERY, "k": str(10**9)}, "k must"),
        ({"q": QUERY, "k": "2.5"}, "k must"),
        ({"q": QUERY, "k": "ten"}, "k must"),
        ({"q": QUERY, "k": ""}, "k must"),
        ({"q": QUERY, "sort": "asc"}, "unknown parameter"),
        ({"k": "3"}, "missing parameter q"),
        ([("q", "a"), ("q", "b")], "more than once"),
    ],
)
def test_hostile_search_requests_get_a_4xx_with_a_message(client, params, message):
    response = client.get("/api/search", params=params)
    assert 400 <= response.status_code < 500
    assert message in response.json()["error"]


def test_unknown_routes_and_methods_answer_json(client):
    missing = client.get("/api/nothing")
    assert missing.status_code == 404 and "error" in missing.json()
    wrong = client.post("/api/search", params={"q": QUERY})
    assert wrong.status_code == 405 and "error" in wrong.json()


def raw_get(base_url: str, target: str) -> tuple[int, bytes]:
    """GET ``target`` exactly as written (no client-side path normalisation)."""
    host, port = base_url.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=30)
    try:
        connection.putrequest("GET", target, skip_host=False, skip_accept_encoding=True)
        connection.endheaders()
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


@pytest.fixture(scope="module")
def escaping_media(setup, tmp_path_factory):
    """An index whose media folder holds a real clip and a symlink to a clip outside it."""
    base = tmp_path_factory.mktemp("escape")
    media, outside = base / "media", base / "outside"
    media.mkdir()
    outside.mkdir()
    shutil.copy(setup["clips"] / "red_left.mp4", media / "inside.mp4")
    secret = outside / "secret.mp4"
    shutil.copy(setup["clips"] / "blue_right.mp4", secret)
    (media / "escape.mp4").symlink_to(secret)
    from mcsan.inference.retriever import Retriever
    from mcsan.search.build import index_videos

    index_videos(Retriever.from_checkpoint(setup["checkpoint"]), media, base / "index",
                 checkpoint=setup["checkpoint"])
    (media / "unlisted.mp4").write_bytes(b"not indexed")
    return base / "index", secret.read_bytes()


ESCAPES = [
    "/media/../search_setup.json",
    "/media/../../etc/passwd",
    "/media/..%2f..%2fetc%2fpasswd",
    "/media/%2e%2e%2f%2e%2e%2fetc%2fpasswd",
    "/media/%2e%2e/%2e%2e/etc/passwd",
    "/media//etc/passwd",
    "/media/%2Fetc%2Fpasswd",
    "/media/inside.mp4/../../outside/secret.mp4",
    "/media/..%5c..%5coutside%5csecret.mp4",
    "/media/escape.mp4",
    "/media/unlisted.mp4",
    "/media/inside.mp4%00.png",
    "/media/",
]


def test_media_paths_never_leave_the_root(escaping_media):
    index_dir, secret = escaping_media
    with running_server(create_app(index_dir)) as base_url:
        status, body = raw_get(base_url, "/media/inside.mp4")
        assert status == 200 and body[4:8] == b"ftyp"
        for target in ESCAPES:
            status, body = raw_get(base_url, target)
            assert 400 <= status < 500, target
            assert "error" in json.loads(body), target
            assert secret not in body and b"root:" not in body, target


def test_burst_of_concurrent_requests_all_succeed(server):
    queries = ["a red square", "blue box moves right", "the green square", "yellow"]

    def one(number: int) -> int:
        with httpx.Client(base_url=server, timeout=60) as http:
            if number % 2 == 0:
                return http.get("/api/health").status_code
            return http.get("/api/search", params={"q": queries[number % 4], "k": 5}).status_code

    with ThreadPoolExecutor(max_workers=20) as pool:
        statuses = list(pool.map(one, range(200), timeout=300))
    assert statuses == [200] * 200


def test_an_index_refuses_another_checkpoint(setup, tmp_path):
    import torch

    from mcsan.inference.checkpoint import load_checkpoint, save_checkpoint

    state = load_checkpoint(setup["checkpoint"])
    state["epoch"] = int(state.get("epoch", 0)) + 1  # same weights, different file
    other = tmp_path / "other.pt"
    save_checkpoint(other, {k: v for k, v in state.items() if k != "format"})
    del torch
    with pytest.raises(SearchError, match="sha256") as info:
        create_app(setup["index"], checkpoint=other)
    from mcsan.core.io import file_sha256

    assert file_sha256(other)[:16] in str(info.value)
    assert cli_main(["search", "--index", str(setup["index"]), "--checkpoint", str(other),
                     QUERY]) == 2


def test_cli_search_json_matches_the_api(setup, app, capsys):
    assert cli_main(["search", "--index", str(setup["index"]), QUERY, "-k", "4", "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    expected = fused_search(app.state.index, app.state.retriever, QUERY, 4)
    assert [h["video_id"] for h in printed["hits"]] == [h.video_id for h in expected]
    assert cli_main(["search", "--index", str(setup["index"]), QUERY, "-k", "3"]) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0].startswith("mode: model; checkpoint") and "(dataset 'tiny')" in table[0]
    header = next(i for i, line in enumerate(table) if line.split()[:1] == ["rank"])
    assert table[header].split()[:4] == ["rank", "score", "fused", "global"]
    assert table[header - 1] == "ordered by score = fused" and len(table) == header + 4
    rows = [line.split() for line in table[header + 1:]]
    assert [float(r[1]) for r in rows] == sorted((float(r[1]) for r in rows), reverse=True)
    assert all(float(r[1]) == float(r[2]) for r in rows)  # no matcher: ordered by fused


def test_cli_index_of_a_dataset_is_approximate_and_reuses_features(setup, tmp_path, capsys):
    out = tmp_path / "index"
    assert cli_main(["index", "--checkpoint", str(setup["checkpoint"]), "--dataset",
                     str(setup["dataset"]), "--out", str(out), "--approx"]) == 0
    assert "16 reused" in capsys.readouterr().out
    index = VideoIndex.load(out)
    assert index.approx and len(index) == 16 and index.media_root is None
    exact = VideoIndex.load(setup["index"])
    for level in index.levels:  # same features, same model: same embeddings
        order = [exact.row_of(v) for v in index.ids]
        np.testing.assert_allclose(index.embeddings[level], exact.embeddings[level][order],
                                   atol=1e-3)
