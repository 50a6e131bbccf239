"""Data side: clips, frame features, captions, attribute labels, dataset formats.

Nothing here knows about the model.
"""
