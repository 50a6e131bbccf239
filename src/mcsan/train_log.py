"""Run logs of the Trainer: ``metrics.csv`` (one row per epoch) and TensorBoard events."""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from mcsan.io import atomic_write_text, make_dir, output_errors

CSV_METRICS: tuple[str, ...] = (
    "t2v_r1", "t2v_r5", "t2v_r10", "t2v_medr", "v2t_r1", "v2t_r5", "v2t_r10", "v2t_medr", "rsum",
)  # fmt: skip


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
        from torch.utils.tensorboard import SummaryWriter

        self.out_dir = out_dir
        make_dir(out_dir)
        # purge_step hides older events at steps >= purge_step (a killed run's tail)
        self.tb_dir = out_dir / "tb"
        with output_errors(self.tb_dir, "create"):
            self.writer = SummaryWriter(str(self.tb_dir), purge_step=purge_step or None)

    def scalars(self, prefix: str, values: Mapping[str, float], step: int) -> None:
        """Log ``prefix/name`` scalars at ``step``."""
        with output_errors(self.tb_dir, "write events to"):  # the writer thread's errors
            for name, value in values.items():
                self.writer.add_scalar(f"{prefix}/{name}", value, step)

    def epoch(self, record: Mapping[str, Any]) -> None:
        """Log one epoch's mean losses, throughput and validation metrics."""
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
        with output_errors(self.tb_dir, "write events to"):
            self.writer.close()
