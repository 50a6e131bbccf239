"""`mcsan evaluate`: retrieval metrics of a checkpoint on a split, per level and fused."""

from __future__ import annotations

import argparse

from mcsan.core.validate import RANGES, device_arg, float_in, int_in

DEFAULT_SHORTLISTS = "1%,5%"


def shortlist_list(text: str) -> list[tuple[str, float]]:
    """``1%,5%,100`` -> [("fraction", 0.01), ("fraction", 0.05), ("top_k", 100)]."""
    if text.strip().lower() == "none":
        return []
    out: list[tuple[str, float]] = []
    for part in (p.strip() for p in text.split(",") if p.strip()):
        try:
            if part.endswith("%"):
                value = float(part[:-1]) / 100.0
                if not 0.0 < value <= 1.0:
                    raise ValueError
                out.append(("fraction", value))
            else:
                count = int(part)
                if count < 1:
                    raise ValueError
                out.append(("top_k", count))
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"{part!r}: give percentages in (0%, 100%] or counts >= 1, e.g. 1%,5%,100"
            ) from None
    return out


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``evaluate`` subcommand."""
    parser = subparsers.add_parser(
        "evaluate",
        help="evaluate a checkpoint on a split (t2v/v2t R@1/5/10, MedR, MnR, rsum)",
        description=(
            "Evaluate RUN/best.pt on a split of the dataset it was trained on (or another "
            "native dataset with the same feature spec): every caption queries the videos "
            "(t2v), every video queries all captions (v2t); ties count against the model."
        ),
    )
    parser.add_argument("--checkpoint", required=True, help="a checkpoint, e.g. RUN/best.pt")
    parser.add_argument("--split", default="test", help="split to evaluate (default: test)")
    parser.add_argument("--dataset", help="native dataset folder (default: the training one)")
    parser.add_argument("--out", help="write the metrics as JSON here")
    parser.add_argument(
        "--device", type=device_arg, default="cpu", help="cpu (default), cuda or cuda:N"
    )
    parser.add_argument(
        "--rerank-top-k", type=int_in(1, RANGES["rerank"]["top_k"].high),
        help="with a binding matcher: re-rank each query's top K (default: the checkpoint's)",
    )
    parser.add_argument(
        "--rerank-fraction", type=float_in(0.0, 1.0), metavar="F",
        help="with a binding matcher: re-rank each query's top F of the collection, e.g. 0.01 "
        "(replaces --rerank-top-k; default: the checkpoint's)",
    )
    parser.add_argument(
        "--rerank-weight", type=float_in(0.0, low_open=False),
        help="with a binding matcher: reranked = first + W x match (default: the checkpoint's)",
    )
    parser.add_argument(
        "--late-weight", type=float_in(0.0, low_open=False), metavar="W",
        help="with a binding matcher: the first stage scores every clip by fused + W x the "
        "matcher's entity and action terms (late interaction); 0: the fused score alone "
        "(default: the checkpoint's rerank.late_weight)",
    )
    parser.add_argument(
        "--late-terms", type=lambda text: tuple(t.strip() for t in text.split(",") if t.strip()),
        metavar="LIST",
        help="the matcher's terms the first stage adds, a comma list of entity, action, "
        "relation (default: the checkpoint's rerank.late_terms)",
    )
    parser.add_argument(
        "--twins", action="store_true",
        help="also the twin accuracy per twin kind with 95%% intervals (a dataset with a twin "
        "set, e.g. the synthetic world of `mcsan synth`; with a binding matcher fused and "
        "re-ranked)",
    )
    parser.add_argument(
        "--shortlists", type=shortlist_list, default=DEFAULT_SHORTLISTS, metavar="LIST",
        help="with a binding matcher: also re-rank at these shortlists, a comma list of "
        "percentages of the collection and counts (default: 1%%,5%%; 'none': only the "
        "checkpoint's)",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Evaluate and print the table; write JSON when asked."""
    from mcsan.core.io import atomic_write_json
    from mcsan.evaluate.ceiling import ceiling_lines, with_oracle_row
    from mcsan.evaluate.split import SMALL_SAMPLE_VIDEOS, format_metrics_table, small_sample_warning
    from mcsan.inference.retriever import evaluate_checkpoint

    report = evaluate_checkpoint(args.checkpoint, args.split, args.dataset, device=args.device,
                                 rerank_top_k=args.rerank_top_k,
                                 rerank_weight=args.rerank_weight,
                                 rerank_fraction=args.rerank_fraction,
                                 late_weight=args.late_weight, late_terms=args.late_terms,
                                 shortlists=[dict([item]) for item in args.shortlists])  # fmt: skip
    print(
        f"{report['checkpoint']} (epoch {report['epoch']}) on {report['dataset']} "
        f"split {report['split']}: {report['captions']} captions, {report['videos']} videos"
    )
    print(format_metrics_table(with_oracle_row(report["metrics"], report["oracle"])))
    if report["rerank"] is None and (args.rerank_top_k or args.rerank_weight is not None
                                     or args.rerank_fraction is not None):
        print("note: the checkpoint has no binding matcher; --rerank-top-k / --rerank-fraction "
              "/ --rerank-weight change nothing")
    if report["rerank"] and "reranked" in report["metrics"]:
        rerank = report["rerank"]
        first = (f"fused + {rerank['late_weight']:g} x late interaction"
                 if rerank.get("late_weight") else "fused")  # fmt: skip
        if rerank.get("late_weight"):
            terms = " and ".join(rerank.get("late_terms", ("entity", "action")))
            print(f"first stage: every clip by {first} (the matcher's {terms} terms)")
        print(f"reranked: each query's top {rerank['shortlist']} by the first stage ({first}), "
              f"re-ordered by fused + {rerank['weight']:g} x the binding matcher's score (other "
              "rows: the same at their shortlist)")
    for line in ceiling_lines(report["metrics"], report["oracle"]):
        print(line)
    if report["videos"] < SMALL_SAMPLE_VIDEOS:
        print(small_sample_warning(report["videos"]))
    if args.twins:
        report["twins"] = _twins(args, report)
    if args.out:
        atomic_write_json(args.out, report)
        print(f"wrote {args.out}")
    return 0


def _twins(args: argparse.Namespace, report: dict) -> dict:
    """Twin accuracy of the checkpoint on its dataset's twin set: print the table, return it."""
    from pathlib import Path

    from mcsan.core.errors import DataError
    from mcsan.inference.twins import TWINS_FILE, evaluate_twin_scores, format_twin_table

    root = Path(args.dataset or report["dataset"])
    if not (root / TWINS_FILE).is_file():
        raise DataError(
            f"{root / TWINS_FILE}: this dataset has no twin set; --twins needs one (the "
            "synthetic world of `mcsan synth` writes it); pass --dataset WORLD or drop --twins"
        )
    scores: tuple[str, ...] = ("fused",)
    if report["rerank"]:
        late = report["rerank"].get("late_weight")
        scores = ("fused", "first", "reranked") if late else ("fused", "reranked")
    twins = evaluate_twin_scores(args.checkpoint, root, scores, args.rerank_weight,
                                 args.late_weight, args.late_terms)  # fmt: skip
    print(f"\ntwin accuracy (%) on {root}: a clip against a copy changed in one respect; "
          "'mention': captions that name the change; 50 is chance; [95% interval over "
          "caption-twin pairs]")  # fmt: skip
    print(format_twin_table(twins))
    return twins
