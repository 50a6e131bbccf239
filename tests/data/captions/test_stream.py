"""Streaming parse: records come one at a time, in order, each distinct caption parsed once,
and the cache is rewritten only when an iteration completes."""

from __future__ import annotations

import json

from mcsan.data.captions.parse import in_caption_order, iter_parse_with_cache, parse_with_cache


def test_iter_parse_matches_parse_and_repeats_records(caption_parser):
    captions = ["a dog runs", "a cat sleeps", "a dog runs", "a bird sings", "a cat sleeps"]
    streamed = list(caption_parser.iter_parse(captions))
    assert [r.caption for r in streamed] == captions
    assert streamed == caption_parser.parse(captions)
    assert streamed[0] is streamed[2]  # parsed once


def test_in_caption_order_is_lazy_and_keeps_only_repeats():
    pulled = []

    def source():
        for caption in ["a", "b", "c"]:
            pulled.append(caption)
            yield caption

    order = in_caption_order(["a", "b", "a", "c"], source())
    assert next(order) == "a" and pulled == ["a"]
    assert next(order) == "b" and pulled == ["a", "b"]
    assert next(order) == "a" and pulled == ["a", "b"]  # the kept repeat, nothing pulled
    assert list(order) == ["c"]


def test_abandoned_iteration_leaves_the_cache_untouched(caption_parser, tmp_path):
    cache = tmp_path / "cache.jsonl"
    parse_with_cache(["a dog runs"], cache, caption_parser)
    before = cache.read_bytes()
    stream = iter_parse_with_cache(
        ["a dog runs", "a cat sleeps", "a cow moos"], cache, caption_parser
    )
    assert next(stream).caption == "a dog runs"
    stream.close()
    assert cache.read_bytes() == before
    assert not list(tmp_path.glob(".*.tmp"))
    report: dict[str, int] = {}
    records = list(
        iter_parse_with_cache(["a cow moos", "a dog runs"], cache, caption_parser, report=report)
    )
    assert report == {"parsed": 1, "cached": 1}
    assert [r.caption for r in records] == ["a cow moos", "a dog runs"]
    lines = [json.loads(line) for line in cache.read_text(encoding="utf-8").splitlines()]
    assert [line.get("caption") for line in lines[1:]] == ["a dog runs", "a cow moos"]
    # fully cached: served from the file without rewriting it
    stamp = cache.stat().st_mtime_ns
    assert [r.caption for r in iter_parse_with_cache(["a dog runs"], cache, caption_parser)] == [
        "a dog runs"
    ]
    assert cache.stat().st_mtime_ns == stamp
