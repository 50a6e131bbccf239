"""Plumbing every layer uses: errors, atomic I/O, safe loaders, option ranges, progress
and logging, optional extras, typed YAML and the model's input batches.

May import: nothing of mcsan but ``mcsan`` itself (``LEVELS``) and its own modules.
"""
