"""Evaluation of a model in memory: the retrieval protocol (``protocol``, dense) and its
chunked engine (``engine``), batched encoding (``embed``), ``evaluate_split`` (``split``)
and the matcher's re-ranked metrics (``reranked``). Never reads a checkpoint: that is
``mcsan.inference``.

May import: core, data, model.
"""
