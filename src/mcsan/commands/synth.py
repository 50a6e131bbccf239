"""`mcsan synth`: generate the embedded synthetic video-text world."""

from __future__ import annotations

import argparse

from mcsan.core.validate import MAX_FRAMES, MAX_SIZE, int_in, non_negative_int


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `synth` subcommand."""
    parser = subparsers.add_parser(
        "synth", help="generate the synthetic compositional video-text world",
        description="Render a synthetic world of shaded shapes doing actions and standing in "
        "relations as H.264 clips, with true captions, ground-truth structure, a "
        "compositional test split (comp) and per-level twin clips, in the native format.")
    parser.add_argument("--out", required=True, help="output folder (the dataset root)")
    parser.add_argument(
        "--videos", type=int_in(1, 1_000_000), required=True, help="number of clips"
    )
    parser.add_argument("--seed", type=non_negative_int, default=None,
                        help="random seed (default 0)")
    parser.add_argument(
        "--frames", type=int_in(2, MAX_FRAMES), default=None, help="frames per clip (default 16)"
    )
    parser.add_argument(
        "--size", type=int_in(16, MAX_SIZE), default=None, help="frame side in px (default 128)"
    )
    parser.add_argument(
        "--eval-for", metavar="WORLD",
        help="make an evaluation-only world for the world at WORLD: --videos test clips (no "
        "train/val/comp) drawn like WORLD's test clips (its seed, so its held-out "
        "combinations; its frames and size), none of them a clip of WORLD, with twins; "
        "evaluate a model trained on WORLD on it with `mcsan evaluate --dataset OUT`")
    parser.add_argument("--workers", type=int_in(1, 64), default=1,
                        help="processes rendering and encoding clips (default 1)")
    parser.add_argument("--twins", type=non_negative_int, default=None, metavar="K",
                        help="test clips that get twins (default: 20%% of --videos)")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace another dataset in --out (its features are deleted)")
    parser.add_argument("--train-twins", type=non_negative_int, default=0, metavar="N",
                        help="training clips that get twins too, written as hard negative "
                        "clips of the captions they make false (hard_negatives.jsonl, for "
                        "--set data.hard_negatives=K in training; default 0)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Generate the world and print a one-line summary."""
    from mcsan.core.errors import ConfigError
    from mcsan.world import generate_world
    from mcsan.world.generate import eval_world_settings

    settings = {"seed": 0, "frames": 16, "size": 128, "eval_from": None}
    if args.eval_for:
        settings = eval_world_settings(args.eval_for)
    for name in ("seed", "frames", "size"):
        given = getattr(args, name)
        if given is not None and args.eval_for and given != settings[name]:
            raise ConfigError(f"--{name} {given}: the world at {args.eval_for} has {name} "
                              f"{settings[name]}; leave --{name} out with --eval-for")
        settings[name] = given if given is not None else settings[name]
    summary = generate_world(args.out, args.videos, settings["seed"], frames=settings["frames"],
                             size=settings["size"], workers=args.workers,
                             n_twin_originals=args.twins, eval_from=settings["eval_from"],
                             overwrite=args.overwrite,
                             n_train_twins=args.train_twins)
    print(summary.line())
    return 0
