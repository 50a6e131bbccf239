"""Training: ``Trainer`` and ``train`` (``trainer``), device / precision / seeds / the DDP
module (``setup``), the epoch's DataLoader (``loader``), per-epoch logs and metrics
(``log``), DDP helpers (``distributed``) and the binding hard negatives (``negatives``).

May import: core, data, model, config, evaluate, and ``mcsan.inference.checkpoint`` (to
write checkpoints); nothing else of inference.
"""
