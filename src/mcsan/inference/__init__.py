"""A trained model from its checkpoint: the checkpoint format (``checkpoint``), the
``Encoder`` protocol search and twins use (``encoder``), ``Retriever`` and
``evaluate_checkpoint`` (``retriever``), and twin accuracy (``twins``).

May import: core, data, model, config, evaluate.
"""
