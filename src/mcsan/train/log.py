"""Run logs of the Trainer: ``metrics.csv`` (one row per epoch), one log line per epoch
(logger ``mcsan.train.trainer``) and TensorBoard events under ``RUN/tb`` when the ``[tensorboard]``
extra is installed (``tensorboard --logdir RUN/tb``)."""

from __future__ import annotations

import csv
import io
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from mcsan.core.io import atomic_write_text, make_dir, output_errors

log = logging.getLogger("mcsan.train")

CSV_METRICS: tuple[str, ...] = (
    "t2v_r1", "t2v_r5", "t2v_r10", "t2v_medr", "v2t_r1", "v2t_r5", "v2t_r10", "v2t_medr", "rsum",
)  # fmt: skip


def epoch_line(record: Mapping[str, Any]) -> str:
    """``epoch   3  loss 0.4123  450 pairs/s  val rsum 210.4 (t2v R@1 20.1, v2t R@1 25.3)``."""
    line = (
        f"epoch {record['epoch']:3d}  loss {record['loss'].get('total', float('nan')):.4f}  "
        f"{record['pairs_per_second']:.0f} pairs/s"
    )
    val = record.get("val")
    if val:
        fused = val["fused"]
        line += (
            f"  val rsum {fused['rsum']:.1f} (t2v R@1 {fused['t2v_r1']:.1f}, "
            f"v2t R@1 {fused['v2t_r1']:.1f})"
        )
    return line


def history_rows(history: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Flatten per-epoch history records into CSV rows (loss parts, val metrics per level)."""
    rows = []
    for entry in history:
        row: dict[str, Any] = {"epoch": entry["epoch"], "step": entry["step"], "lr": entry["lr"]}
        for key, value in entry.get("loss", {}).items():
            row[f"loss_{key}"] = value
        for level, metrics in entry.get("val", {}).items():
            for name in CSV_METRICS if level == "fused" else ("rsum",):
                row[f"val_{level}_{name}"] = metrics[name]
        row["pairs_per_second"] = entry.get("pairs_per_second", "")
        rows.append(row)
    return rows


class RunLog:
    """Writes ``metrics.csv`` and TensorBoard events under a run folder (rank 0 only)."""

    def __init__(self, out_dir: Path, purge_step: int = 0) -> None:
        self.out_dir = out_dir
        make_dir(out_dir)
        self.tb_dir = out_dir / "tb"
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:  # torch raises ImportError when tensorboard is absent
            log.info("tensorboard not installed: no RUN/tb events "
                     "(pip install 'mcsan[tensorboard]' to get them)")  # fmt: skip
            self.writer = None
            return
        # purge_step hides older events at steps >= purge_step (a killed run's tail)
        with output_errors(self.tb_dir, "create"):
            self.writer = SummaryWriter(str(self.tb_dir), purge_step=purge_step or None)

    def scalars(self, prefix: str, values: Mapping[str, float], step: int) -> None:
        """Log ``prefix/name`` scalars at ``step``."""
        if self.writer is None:
            return
        with output_errors(self.tb_dir, "write events to"):  # the writer thread's errors
            for name, value in values.items():
                self.writer.add_scalar(f"{prefix}/{name}", value, step)

    def epoch(self, record: Mapping[str, Any]) -> None:
        """Log one epoch's line, mean losses, throughput and validation metrics."""
        log.info(epoch_line(record))
        if self.writer is None:
            return
        step = int(record["step"])
        self.scalars("epoch_loss", record["loss"], step)
        self.scalars("train", {k: record[k] for k in ("pairs_per_second", "lr")}, step)
        for level, metrics in record.get("val", {}).items():
            self.scalars(f"val_{level}", metrics, step)
        with output_errors(self.tb_dir, "write events to"):
            self.writer.flush()

    def rewrite_csv(self, history: list[dict[str, Any]]) -> None:
        """Write ``metrics.csv`` (atomically) from the full history: one row per epoch."""
        rows = history_rows(history)
        columns: list[str] = []
        for row in rows:
            columns += [key for key in row if key not in columns]
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=columns or ["epoch"], restval="")
        writer.writeheader()
        writer.writerows(rows)
        atomic_write_text(self.out_dir / "metrics.csv", buffer.getvalue())

    def close(self) -> None:
        """Flush and close the event file."""
        if self.writer is not None:
            with output_errors(self.tb_dir, "write events to"):
                self.writer.close()
