"""Applications built on the library: the ablation runner (``ablation``) and the demo
(``demo/``).

May import: every layer below (core, data, world, model, config, evaluate, inference,
train); never search or the CLI.
"""
