"""`mcsan search`: rank an index's videos for a text query."""

from __future__ import annotations

import argparse

from mcsan.core.validate import MAX_K, int_in


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``search`` subcommand."""
    parser = subparsers.add_parser(
        "search",
        help="search an index with a text query",
        description="Rank the videos of an index for a query. Modes: concepts (the frame "
        "encoder's ImageNet classes, no training), model (a trained checkpoint's fused score "
        "and each level's contribution), auto (both when the index has both).",
    )
    parser.add_argument("--index", required=True, help="index folder built by `mcsan index`")
    parser.add_argument("query", help='the query text, e.g. "a cat on a sofa"')
    parser.add_argument(
        "-k", type=int_in(1, MAX_K), default=10,
        help=f"number of results (1 to {MAX_K}, as the server allows; default 10)",
    )
    parser.add_argument(
        "--mode", default="auto", choices=("auto", "concepts", "model"),
        help="search mode (default auto)",
    )
    parser.add_argument(
        "--checkpoint", help="checkpoint to encode the query (default: the one that built it)"
    )
    parser.add_argument("--json", action="store_true", help="print the answer as JSON")
    parser.add_argument(
        "--no-rerank", action="store_true",
        help="rank by the fused score only, even when the checkpoint has a binding matcher",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Print the ranked hits as a table or JSON, with the mode, concepts and warnings."""
    import json

    from mcsan.search.library import open_searcher, rerank_fields

    searcher = open_searcher(args.index, args.checkpoint)
    answer = searcher.answer(args.query, args.k, args.mode, rerank=not args.no_rerank)
    model = searcher.model or {}
    if args.json:
        body = answer.to_json()
        body.update(dataset=model.get("dataset"), checkpoint=model.get("checkpoint"),
                    rerank=rerank_fields(searcher))
        print(json.dumps(body, indent=2))
        return 0
    where = f"; checkpoint {model['checkpoint']} (dataset {model['dataset']!r})" if model else ""
    print(f"mode: {answer.mode}{where}")
    if answer.mode_reason:
        print(f"why: {answer.mode_reason}")
    if answer.matched_concepts:
        by_word: dict[str, list[str]] = {}
        for match in answer.matched_concepts:
            by_word.setdefault(match["word"], []).append(match["name"])
        print("concepts: " + "; ".join(
            f"{word} -> {', '.join(names[:5])}{' ...' if len(names) > 5 else ''}"
            for word, names in by_word.items()
        ))
    if answer.unknown_words:
        print(f"unknown to the model: {', '.join(answer.unknown_words)}")
    for note in answer.notes:
        print(f"note: {note}")
    for warning in answer.warnings:
        print(f"warning: {warning}")
    reranker = searcher.reranker
    if answer.reranked and reranker is not None:
        shortlist = min(reranker.top_k, len(searcher.index))
        print(f"re-ranked by the binding matcher: the top {shortlist} by fused score re-scored "
              f"as fused + {reranker.weight:g} x match (the match column)")
    print(f"ordered by score = {answer.ranked_by}")
    print(format_hits(answer, list(searcher.index.levels)))
    return 0


def format_hits(answer, index_levels: list[str]) -> str:  # noqa: ANN001 - an Answer
    """The hits as a table: rank, the score they are ordered by, then the fused score, each
    level's part of it, the matcher's and the concept score where the answer has them."""
    levels = index_levels if answer.mode != "concepts" else []
    columns = [("score", lambda h: h.score)]
    if levels:
        columns.append(("fused", lambda h: h.fused_score))
        columns += [(lv, lambda h, lv=lv: h.level_scores.get(lv)) for lv in levels]
    if answer.reranked:
        columns.append(("match", lambda h: h.match_score))
    if answer.mode != "model":
        columns.append(("concept", lambda h: h.concept_score))
    lines = [f"{'rank':>4}  " + "  ".join(f"{name:>8}" for name, _ in columns)
             + "  video  [concepts]"]  # fmt: skip
    for hit in answer.hits:
        values = [get(hit) for _, get in columns]
        cells = "  ".join(f"{v:>8.4f}" if v is not None else f"{'-':>8}" for v in values)
        where = f"{hit.video_id}  {hit.path}" if hit.path else hit.video_id
        concepts = ", ".join(f"{c['concept']} p={c['probability']:.3f}" for c in hit.concepts)
        lines.append(f"{hit.rank:>4}  {cells}  {where}" + (f"  [{concepts}]" if concepts else ""))
    return "\n".join(lines)
