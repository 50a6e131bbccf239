"""The run configuration: ``RunConfig`` (data, model, matcher, loss, train sections), the
configs shipped with the package (``presets/``: ``world``, ``msrvtt``, ``vatex``) and
``load_config(name_or_path, overrides)``.

May import: core, data (its ``DataConfig``), model (its ``ModelConfig``, ``LossConfig``).
"""
