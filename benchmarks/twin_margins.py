"""How far apart does the first stage put a clip and its twin? Per twin kind: how much of
each level's clip vector the twin changes (1 - cos(original, twin), against 1 - cos with
another test clip), and the fused score margin s(caption, original) - s(caption, twin) of
the captions that mention the change, in units of the spread of that caption's scores over
all test clips (issue 25: which cause keeps the fused score from binding).

    PYTHONPATH=src .venv/bin/python benchmarks/twin_levels.py --margins WORLD RUN/best.pt [...]
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import numpy as np

from mcsan.data.native import feature_path, read_captions
from mcsan.data.video.store import FeatureStore
from mcsan.inference.retriever import Retriever
from mcsan.inference.twins import _read_truth, mentions_change, read_twins, twin_kind


def margins(checkpoint: Path, world: Path) -> dict[str, dict[str, float]]:
    """kind -> {level: mean 1 - cos(original, twin), "other/<level>": the same against
    another clip, "margin": mean fused margin / score sd, "right": share of margins > 0}."""
    retriever = Retriever.from_checkpoint(checkpoint)
    pairs = read_twins(world)
    captions: dict[str, list[str]] = defaultdict(list)
    for record in read_captions(world):
        if record.split == "test":
            captions[record.video_id].append(record.caption)
    truth = _read_truth(world) or {}
    clips = sorted(captions)
    ids = sorted({*clips, *(p.twin_id for p in pairs)})
    with FeatureStore.open(feature_path(world, retriever.feature_set)) as store:
        features = store.read_all(ids)
    video = retriever.encode_features([features[v] for v in ids])
    column = {v: i for i, v in enumerate(ids)}
    tests = np.array([column[v] for v in clips])
    rng = np.random.default_rng(0)
    out: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for pair in pairs:
        if pair.original_id not in captions:
            continue
        kind = f"{pair.level}/{twin_kind(pair)}"
        a, b = column[pair.original_id], column[pair.twin_id]
        other = int(rng.choice(tests[tests != a]))
        for level in retriever.levels:
            out[kind][level].append(1 - float(video[level][a] @ video[level][b]))
            out[kind][f"other/{level}"].append(1 - float(video[level][a] @ video[level][other]))
        focus = [c for c, t in zip(captions[pair.original_id], truth.get(pair.original_id, []),
                                   strict=False) if mentions_change(t, pair)]  # fmt: skip
        if not focus:
            continue
        text = retriever.encode_captions(focus)
        fused = retriever.score(text, {k: v[np.r_[a, b, tests]] for k, v in video.items()})["fused"]
        spread = fused[:, 2:].std(axis=1) + 1e-9
        out[kind]["margin"].extend(((fused[:, 0] - fused[:, 1]) / spread).tolist())
        out[kind]["right"].extend((fused[:, 0] > fused[:, 1]).astype(float).tolist())
    return {k: {n: float(np.mean(v)) for n, v in d.items()} for k, d in sorted(out.items())}


def print_margins(world: Path, checkpoints: list[Path]) -> None:
    """One markdown table per checkpoint."""
    for checkpoint in checkpoints:
        table = margins(checkpoint, world)
        names = list(next(iter(table.values())))
        print(f"\n{checkpoint}\n\n| twin kind | " + " | ".join(names) + " |")
        print("|---|" + "---:|" * len(names))
        for kind, row in table.items():
            print(f"| {kind} | " + " | ".join(f"{row.get(n, float('nan')):.3f}" for n in names)
                  + " |")  # fmt: skip
