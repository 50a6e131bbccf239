"""DATASET.md of a generated world: vocabulary, counts, caption lengths, imbalance, sheet."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np

from mcsan.core.io import atomic_path, atomic_write_text
from mcsan.world.describe import CaptionTruth
from mcsan.world.lexicon import (
    ACTION_PHRASES,
    COLOURS,
    RELATION_ACTIVE,
    RELATION_CONVERSE,
    RELATION_PASSIVE,
    SHAPE_NOUNS,
    TEXTURES,
)
from mcsan.world.scene import Scene
from mcsan.world.splits import SPLIT_SHARES, HoldOut
from mcsan.world.summary import WorldSummary

SHEET_NAME = "contact_sheet.png"


def level_frequencies(truths: list[CaptionTruth]) -> dict[str, Counter[str]]:
    """Counts of entity lemmas, action lemmas and relation triplets over captions."""
    return {
        "entity": Counter(e for t in truths for e in t.entities),
        "action": Counter(a for t in truths for a in t.actions),
        "relation": Counter(" / ".join(r) for t in truths for r in t.relations),
    }


def structure_frequencies(scenes: list[Scene]) -> dict[str, Counter[str]]:
    """Counts of (colour shape) entities, actions and relations over clips."""
    return {
        "entity": Counter(f"{o.colour} {o.shape}" for s in scenes for o in s.objects),
        "action": Counter(o.action for s in scenes for o in s.objects),
        "relation": Counter(p for s in scenes for _, p, _ in s.relations),
    }


def imbalance_rows(freq: dict[str, Counter[str]]) -> list[str]:
    """Markdown table rows: level, distinct values, most and least frequent, ratio."""
    rows = []
    for level, counts in freq.items():
        if not counts:
            continue
        (top, top_n), (low, low_n) = counts.most_common()[0], counts.most_common()[-1]
        rows.append(f"| {level} | {len(counts)} | {top} ({top_n}) | {low} ({low_n}) | "
                    f"{top_n / low_n:.1f} |")
    return rows


def _vocabulary() -> list[str]:
    lines = ["| concept | words in captions |", "|---|---|"]
    lines.append("| colours | " + ", ".join(COLOURS) + " |")
    for shape, nouns in SHAPE_NOUNS.items():
        lines.append(f"| shape `{shape}` | " + ", ".join(nouns) + " |")
    lines.append("| textures (not named in captions) | " + ", ".join(TEXTURES) + " |")
    for action, phrases in ACTION_PHRASES.items():
        lines.append(f"| action `{action}` | " + ", ".join(f"is {p}" for p, _ in phrases) + " |")
    for name, table in (("", RELATION_ACTIVE), (" (passive)", RELATION_PASSIVE),
                        (" (converse)", RELATION_CONVERSE)):
        for relation, phrases in table.items():
            lines.append(f"| relation `{relation}`{name} | "
                         + ", ".join(f"is {p}" for p, _ in phrases) + " |")
    return lines


def write_contact_sheet(path: Path, scenes: list[Scene], captions: dict[str, list[CaptionTruth]],
                        frames: int, size: int, clips: int = 6, shown: int = 4) -> None:
    """A PNG of ``shown`` frames of the first clips with two of their captions each."""
    from PIL import Image, ImageDraw

    from mcsan.world.render import render_clip

    picks = scenes[:clips]
    cell = max(size, 96)
    text_h = 34
    sheet = Image.new("RGB", (shown * cell, len(picks) * (cell + text_h)), "white")
    draw = ImageDraw.Draw(sheet)
    steps = np.linspace(0, frames - 1, shown).round().astype(int)
    for row, scene in enumerate(picks):
        video = render_clip(scene, frames, size)
        top = row * (cell + text_h)
        for col, t in enumerate(steps):
            image = Image.fromarray(video[t]).resize((cell, cell), Image.NEAREST)
            sheet.paste(image, (col * cell, top))
        lines = [c.caption for c in captions[scene.video_id][:2]]
        for number, line in enumerate(lines):
            draw.text((4, top + cell + 2 + 15 * number), f"{scene.video_id}: {line}"
                      if number == 0 else line, fill="black")
    with atomic_path(path) as tmp:
        sheet.save(tmp, format="PNG")


def write_dataset_card(root: Path, scenes: list[Scene], captions: dict[str, list[CaptionTruth]],
                       twins: list[Scene], holdout: HoldOut, summary: WorldSummary,
                       seed: int, frames: int, size: int, eval_from: int | None = None) -> None:
    """Write DATASET.md and its contact sheet (``eval_from``: an evaluation-only world's
    first clip index)."""
    write_contact_sheet(root / SHEET_NAME, scenes, captions, frames, size)
    all_truths = [c for s in scenes for c in captions[s.video_id]]
    train_truths = [c for s in scenes if s.split == "train" for c in captions[s.video_id]]
    lengths = np.array([len(c.caption.split()) for c in all_truths])
    per_clip = np.array([len(captions[s.video_id]) for s in scenes])
    kinds = Counter(c.kind for c in all_truths)
    header = "| level | distinct | most frequent | least frequent | ratio |"
    lines = [
        "# mcsan-world: a synthetic compositional video-text world", "",
        (f"Generated by `mcsan synth --seed {seed}`: " if eval_from is None else
         f"An evaluation-only world (`mcsan synth --eval-for`): test clips drawn like those of "
         f"the seed-{seed} world (its held-out combinations), clip indices from {eval_from} (no "
         "clip of that world); ") +
        f"{summary.videos} clips of {frames} frames at {size}x{size} px, H.264 mp4 in `videos/`. "
        "Each clip shows 2-3 shaded shapes (outline, texture, drop shadow) on a muted "
        "background (solid, gradient or light noise). Every object does one action; the first "
        "two objects stand in one relation, and a still third object may add a static one. "
        "Captions are generated from the structure, so each is true of its clip.", "",
        f"![contact sheet]({SHEET_NAME})", "",
        "## Files", "",
        "- `captions.jsonl`: `{video_id, caption, split}`; splits train / val / test / comp.",
        "- `captions_truth.jsonl`: per caption its kind, the entity / action lemmas and "
        "relation triplets it contains, and the objects, actions and relations it states.",
        "- `structure.jsonl`: per clip (and twin) its objects (colour, shape, size, texture, "
        "action, motion), relations with roles, and per-frame trajectories.",
        "- `twins.jsonl`: `{twin_id, original_id, level, change}`.", "",
        "## Counts", "", "| split | clips | captions |", "|---|---|---|",
        *[f"| {k} | {v} | {summary.captions_per_split[k]} |" for k, v in summary.splits.items()],
        f"| twins | {summary.twins} | - |", "",
        "Twins per level: " + ", ".join(f"{k} {v}" for k, v in summary.twins_per_level.items()),
        "", "## Captions", "",
        f"{len(all_truths)} captions, {per_clip.min()}-{per_clip.max()} per clip "
        f"(mean {per_clip.mean():.1f}); length {lengths.min()}-{lengths.max()} words "
        f"(mean {lengths.mean():.1f}). Kinds: "
        + ", ".join(f"{k} {v}" for k, v in sorted(kinds.items())) + ".", "",
        "Examples, one per kind:", "",
        *[f"- {kind}: \"{next(c.caption for c in all_truths if c.kind == kind)}\""
          for kind in sorted(kinds)], "",
        "## Vocabulary", "", *_vocabulary(), "",
        "## Attribute frequency per level (the imbalance)", "",
        "Caption lemmas of the training split (what attribute heads are trained on):", "",
        header, "|---|---|---|---|---|", *imbalance_rows(level_frequencies(train_truths)), "",
        "Structure of all clips (entity = colour + shape):", "",
        header, "|---|---|---|---|---|", *imbalance_rows(structure_frequencies(scenes)), "",
        "## How the splits and twins are built", "",
        "Each clip index gets its split from one seeded permutation "
        f"(comp {SPLIT_SHARES['comp']:.0%}, test {SPLIT_SHARES['test']:.0%}, "
        f"val {SPLIT_SHARES['val']:.0%}, the rest train). A few (colour, shape, action) "
        "triples and (subject shape, relation, object shape) role pairs are held out: every "
        "comp clip contains at least one of them (its scene is drawn with one forced in), and "
        "train, val and test clips are redrawn until they contain none, so comp measures "
        "compositional generalisation: each word is known, the combination is new.", "",
        "Held-out triples: " + ", ".join(" ".join(t) for t in holdout.triples) + ".", "",
        "Held-out role pairs: " + ", ".join(f"{s} {r} {o}" for s, r, o in holdout.roles) + ".",
        "",
        "Twins: for the first test clips, one twin per level copies the clip (background, "
        "noise, every other object) and changes exactly one level: **entity** = the colour or "
        "shape of one object; **action** = the action of one object whose relation allows it; "
        "**relation** = the roles of a static relation swapped (positions exchanged) or the "
        "relation changed by re-placing the pair with the same actions (for example approach "
        "-> move away). Twins are rendered into `videos/` and described in `structure.jsonl`, "
        "but have no captions. Twin accuracy per level = the share of the original's captions "
        "for which a model scores the original above its twin.", "",
    ]
    atomic_write_text(root / "DATASET.md", "\n".join(lines))
