"""Data side: clips, frame features, captions, attribute labels, dataset formats.

Nothing here knows about the model.

May import: core only (never the model, the world or training).
"""
