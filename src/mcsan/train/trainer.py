"""The Trainer: one process, or data-parallel under torchrun; checkpoints and exact resume.

Per epoch: every training caption once, in an order drawn from (seed, epoch); the global
batch is split into contiguous per-rank shards and the embeddings / logits / keys /
targets are gathered, so the loss sees the global batch (see :mod:`mcsan.train.distributed`).
Then rank 0 validates on the ``val`` split (test is never used for selection), appends to
``metrics.csv`` and TensorBoard, and atomically writes ``best.pt`` (best fused val rsum)
and ``last.pt``. ``resume=True`` continues from ``last.pt``: model, optimizer, scheduler,
scaler, RNG states, history; the data order depends only on (seed, epoch), so a resumed run
retraces the uninterrupted one exactly on CPU.

Run folder: ``config.yaml``, ``best.pt``, ``last.pt``, ``metrics.csv``, ``metrics.json``, ``tb/``.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from mcsan.config.run import RunConfig, save_config
from mcsan.core.errors import CheckpointError, TrainingError
from mcsan.core.io import atomic_write_json
from mcsan.core.progress import track
from mcsan.data.loading.collate import TrainBatch
from mcsan.data.loading.dataset import RetrievalData
from mcsan.evaluate.split import evaluate_split
from mcsan.inference.checkpoint import (
    attributes_from_state,
    attributes_to_state,
    load_checkpoint,
    restore_rng_state,
    rng_state,
    save_checkpoint,
    vocab_from_state,
    vocab_to_state,
)
from mcsan.model import MCSAN
from mcsan.model.losses import MCSANLoss
from mcsan.train import distributed as dist_utils
from mcsan.train import loader as loading
from mcsan.train.log import RunLog
from mcsan.train.negatives import global_rows, negative_maker
from mcsan.train.setup import (
    JointForward,
    amp_dtype,
    check_resume_features,
    check_world_size,
    float_output,
    hard_negative_clips,
    make_optimizer,
    make_scheduler,
    resume_differences,
    seed_everything,
    select_device,
)

EpochCallback = Callable[[dict[str, Any]], None]
logger = logging.getLogger(__name__)


@dataclass
class TrainResult:
    """What a finished run produced."""

    out_dir: Path
    best_epoch: int
    best_metrics: dict[str, dict[str, float]]
    """Validation metrics (fused and per level) of the best epoch."""
    final_metrics: dict[str, dict[str, float]]
    """Validation metrics after the last epoch."""
    epochs: int
    steps: int
    pairs_per_second: float
    dropped_captions: int
    world_size: int = 1
    """Processes that trained (2+ under torchrun)."""
    history: list[dict[str, Any]] = field(default_factory=list)


class Trainer:
    """Trains MCSAN on a native dataset into ``out_dir`` (see the module docstring)."""

    def __init__(
        self, cfg: RunConfig, out_dir: str | Path, resume: bool = False, parser: Any = None
    ) -> None:
        """Set up data, model and optimizer (restored from ``last.pt`` with ``resume``).

        ``parser``: a CaptionParser to reuse (default: one is made when captions are parsed).
        """
        self.cfg = cfg
        self.parser = parser
        self.out_dir = Path(out_dir)
        self.device = select_device(cfg.train.device)
        self.ctx = dist_utils.init_from_env(self.device.type)
        if self.device.type == "cuda" and self.ctx.enabled:
            self.device = torch.device("cuda", self.ctx.local_rank)
        self.amp = amp_dtype(cfg.train.amp, self.device)
        self.threads = loading.training_threads(cfg.train, self.device)
        self.load_settings = loading.loader_settings(cfg.train, self.device)
        check_world_size(cfg, self.ctx.world_size)
        state = self._resume_state() if resume else None
        if not resume and (self.out_dir / "last.pt").exists():
            raise CheckpointError(
                f"{self.out_dir / 'last.pt'}: this run folder already holds a run; pass "
                "--resume to continue it or choose another --out"
            )
        self.data = self._load_data(state)
        check_resume_features(state, self.data, self.out_dir / "last.pt")
        if self.ctx.is_main:
            logger.info(loading.setup_line(self.device, self.threads, self.load_settings,
                                           self.data.features))  # fmt: skip
        seed_everything(cfg.seed)  # identical initial weights on every rank
        vectors = self._word_vectors(state)
        self.model = MCSAN(
            cfg.model, len(self.data.vocab), self.data.stream_shapes,
            self.data.attributes.sizes, word_vectors=vectors,
        ).to(self.device)  # fmt: skip
        self.word_dim = None if vectors is None else int(vectors.shape[1])
        self.joint: nn.Module = JointForward(self.model, cfg.loss.match_predicates,
                                               cfg.loss.lambda_distill > 0)
        if self.ctx.enabled:
            ids = [self.device.index] if self.device.type == "cuda" else None
            self.joint = nn.parallel.DistributedDataParallel(
                self.joint, device_ids=ids, find_unused_parameters=True
            )
        self.loss_fn = MCSANLoss(cfg.loss)
        self.negatives = negative_maker(cfg.loss.negative_kinds(), self.data.vocab)
        self.optimizer = make_optimizer(self.model, self.cfg.train)
        self.scheduler = make_scheduler(self.optimizer, self.cfg.train)
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.amp == torch.float16)
        self.epoch, self.step = 0, 0
        self.history: list[dict[str, Any]] = []
        self.best: dict[str, Any] = {"epoch": 0, "rsum": -math.inf}
        seed_everything(cfg.seed + self.ctx.rank)  # per-rank streams (dropout)
        if state is not None:
            self._restore(state)

    # ---------------------------------------------------------------- setup
    def _resume_state(self) -> dict[str, Any]:
        state = load_checkpoint(path := self.out_dir / "last.pt")
        if differing := resume_differences(state, self.cfg):
            raise CheckpointError(
                f"{path}: --resume with a different config ({', '.join(differing)}); resume "
                "with the run's own config.yaml or start a new --out (only train.epochs and "
                "the loading/threads keys may change)"
            )
        return state

    def _load_data(self, state: dict[str, Any] | None) -> RetrievalData:
        vocab = attributes = None
        if state is not None:
            vocab = vocab_from_state(state["vocab"])
            attributes = attributes_from_state(state["attributes"])
        # rank 0 first: it parses and writes the caption cache that the others then read
        data = None
        splits = ("train", "val")
        if self.ctx.is_main:
            data = RetrievalData.load(self.cfg.data, splits, vocab, attributes, parser=self.parser)
        dist_utils.barrier(self.ctx)
        if data is None:
            data = RetrievalData.load(self.cfg.data, splits, vocab, attributes, parser=self.parser)
        return data

    def _word_vectors(self, state: dict[str, Any] | None) -> np.ndarray | None:
        if state is not None:  # the weights come from the checkpoint; only the shape matters
            word_dim = state.get("word_dim")
            return None if not word_dim else np.zeros((len(self.data.vocab), word_dim), np.float32)
        self.data.load_word_vectors(self.cfg.data.word_vectors)
        return self.data.word_vectors

    def _restore(self, state: dict[str, Any]) -> None:
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        if state.get("scaler"):
            self.scaler.load_state_dict(state["scaler"])
        self.epoch, self.step = int(state["epoch"]), int(state["step"])
        self.history = list(state["history"])
        self.best = dict(state["best"])
        restore_rng_state(state["rng"])

    # ---------------------------------------------------------------- checkpoints
    def checkpoint_state(self) -> dict[str, Any]:
        """Everything needed to continue exactly, or to use the model elsewhere."""
        data = self.data
        return {
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict() if self.scaler.is_enabled() else None,
            "epoch": self.epoch,
            "step": self.step,
            "rng": rng_state(),
            "config": self.cfg.to_dict(),
            "vocab": vocab_to_state(data.vocab),
            "attributes": attributes_to_state(data.attributes),
            "attribute_sizes": dict(data.attributes.sizes),
            "word_dim": self.word_dim,
            "feature_set": data.feature_set,
            "feature_spec": data.feature_spec.to_json(),
            "feature_identity": data.feature_identity,
            "streams": list(data.streams),
            "stream_shapes": {k: list(v) for k, v in data.stream_shapes.items()},
            "history": self.history,
            "best": self.best,
        }

    # ---------------------------------------------------------------- training
    def train_step(self, batch: TrainBatch) -> dict[str, float]:
        """One optimizer step on this rank's shard of a global batch; returns loss parts."""
        batch = batch.to(self.device)
        negatives = None if self.negatives is None else self.negatives(batch.text)
        with torch.autocast(self.device.type, dtype=self.amp, enabled=self.amp is not None):
            video_out, text_out, weights, neg_out, match, clip_out = self.joint(batch, negatives)
        gather = dist_utils.gather_with_grad
        if self.negatives is not None:
            rows = global_rows(negatives, len(batch), self.ctx)
            negatives = None if neg_out is None else (float_output(neg_out, None), rows)
        data = self.cfg.data
        clips = hard_negative_clips(clip_out, batch, self.ctx,
                                    bool(data.hard_negatives or data.edit_negatives))
        loss, parts = self.loss_fn(
            float_output(video_out, self.ctx),
            float_output(text_out, self.ctx),
            {k: w.float() for k, w in weights.items()},
            gather(batch.video_keys, self.ctx),
            {k: gather(v, self.ctx) for k, v in batch.text_targets.items()},
            {k: gather(v, self.ctx) for k, v in batch.video_targets.items()},
            negatives=negatives,
            match=match,
            match_scale=1.0 / self.ctx.world_size,
            hard_negatives=clips,
        )
        if not torch.isfinite(loss):
            last = self.out_dir / "last.pt"
            kept = (
                f"{last} holds epoch {self.epoch}, the last good one"
                if self.epoch > 0 and last.is_file()
                else "no epoch finished, so no checkpoint was written"
            )
            raise TrainingError(
                f"loss is {loss.item()} at epoch {self.epoch + 1}, step {self.step + 1}; the "
                f"run stopped, {kept}. Lower train.lr, set train.amp=off or train.grad_clip"
            )
        self.optimizer.zero_grad(set_to_none=True)
        # every rank computes the same global loss; DDP averages, so scale by the world size
        self.scaler.scale(loss * self.ctx.world_size).backward()
        if self.cfg.train.grad_clip is not None:
            self.scaler.unscale_(self.optimizer)
            nn.utils.clip_grad_norm_(self.model.parameters(), self.cfg.train.grad_clip)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.step += 1
        return {k: float(v) for k, v in parts.items()}

    def _epoch_loader(self) -> torch.utils.data.DataLoader:
        t = self.cfg.train
        return loading.epoch_loader(self.data, t.batch_size, self.cfg.seed, self.epoch,
                                    self.ctx, self.load_settings)  # fmt: skip

    def validate(self) -> dict[str, dict[str, float]]:
        """Fused and per-level metrics on the val split (model in eval mode meanwhile; no
        re-ranking: the best epoch is chosen on the fused rsum)."""
        self.model.eval()
        try:
            return evaluate_split(self.model, self.data, "val", self.cfg.train.eval_batch_size,
                                  self.device, rerank=False)  # fmt: skip
        finally:
            self.model.train()

    def fit(self, on_epoch: EpochCallback | None = None) -> TrainResult:
        """Train the remaining epochs; return the result (metrics.json is written)."""
        # on resume, hide events a killed run logged after its last checkpoint (step > saved)
        log = RunLog(self.out_dir, purge_step=self.step + 1) if self.ctx.is_main else None
        if log is not None:
            save_config(self.cfg, self.out_dir / "config.yaml")
            log.rewrite_csv(self.history)
        total_time, total_pairs = 0.0, 0
        try:
            while self.epoch < self.cfg.train.epochs:
                record = self._run_epoch(log)
                total_time += record["train_seconds"]
                total_pairs += record["pairs"]
                if on_epoch is not None and self.ctx.is_main:
                    on_epoch(record)
        finally:
            if log is not None:
                log.close()
        done_before = self.history[-1].get("pairs_per_second", 0.0) if self.history else 0.0
        result = self._result(total_pairs / total_time if total_time else done_before)
        if self.ctx.is_main:
            atomic_write_json(self.out_dir / "metrics.json", _result_json(result))
        dist_utils.barrier(self.ctx)
        return result

    def _run_epoch(self, log: RunLog | None) -> dict[str, Any]:
        self.model.train()
        sums: dict[str, float] = {}
        steps, pairs = 0, 0
        started = time.perf_counter()
        loader = self._epoch_loader()
        bar = track(loader, total=len(loader), desc=f"epoch {self.epoch + 1}", unit="batch")
        for batch in bar:
            parts = self.train_step(batch)
            steps += 1
            pairs += len(batch) * self.ctx.world_size
            for key, value in parts.items():
                sums[key] = sums.get(key, 0.0) + value
            if log is not None and self.step % self.cfg.train.log_every == 0:
                log.scalars("train", parts, self.step)
        seconds = time.perf_counter() - started
        self.scheduler.step()
        self.epoch += 1
        record: dict[str, Any] = {
            "epoch": self.epoch, "step": self.step,
            "lr": float(self.optimizer.param_groups[0]["lr"]),
            "loss": {k: v / max(steps, 1) for k, v in sums.items()},
            "pairs": pairs, "train_seconds": seconds,
            "pairs_per_second": pairs / seconds if seconds else 0.0,
        }  # fmt: skip
        last = self.epoch == self.cfg.train.epochs
        if self.ctx.is_main and (self.epoch % self.cfg.train.eval_every == 0 or last):
            record["val"] = self.validate()
        self.history.append(_history_entry(record))
        if log is not None:
            self._save(record, log)
        dist_utils.barrier(self.ctx)
        return record

    def _save(self, record: dict[str, Any], log: RunLog) -> None:
        log.epoch(record)
        log.rewrite_csv(self.history)
        val = record.get("val")
        if val is not None and val["fused"]["rsum"] > self.best["rsum"]:
            self.best = {"epoch": self.epoch, "rsum": val["fused"]["rsum"], "metrics": val}
            self.history[-1]["best"] = True
            save_checkpoint(self.out_dir / "best.pt", self.checkpoint_state())
        save_checkpoint(self.out_dir / "last.pt", self.checkpoint_state())

    def _result(self, pairs_per_second: float) -> TrainResult:
        validated = [h for h in self.history if "val" in h]
        return TrainResult(
            out_dir=self.out_dir,
            best_epoch=int(self.best["epoch"]),
            best_metrics=dict(self.best.get("metrics", {})),
            final_metrics=dict(validated[-1]["val"]) if validated else {},
            epochs=self.epoch,
            steps=self.step,
            pairs_per_second=pairs_per_second,
            dropped_captions=self.data.dropped_captions,
            world_size=self.ctx.world_size,
            history=list(self.history),
        )


def _history_entry(record: dict[str, Any]) -> dict[str, Any]:
    keep = ("epoch", "step", "lr", "loss", "val", "pairs_per_second")
    return {k: record[k] for k in keep if k in record}


def _result_json(result: TrainResult) -> dict[str, Any]:
    data = dataclasses.asdict(result)
    data["out_dir"] = str(result.out_dir)
    return data


def train(
    cfg: RunConfig,
    out_dir: str | Path,
    resume: bool = False,
    on_epoch: EpochCallback | None = None,
    parser: Any = None,
) -> TrainResult:
    """Train ``cfg`` into ``out_dir`` (continuing from ``last.pt`` with ``resume``).

    ``on_epoch(record)`` is called on rank 0 after each epoch (the CLI prints from it);
    ``parser`` is an optional CaptionParser to reuse.
    """
    trainer = Trainer(cfg, out_dir, resume, parser)
    try:
        return trainer.fit(on_epoch)
    finally:
        dist_utils.shutdown()
