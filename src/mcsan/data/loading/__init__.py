"""The one input path from a dataset on disk to model batches: ``RetrievalData`` (captions,
features, vocabularies per split), features resident or read on demand, and collation
into ``VideoBatch`` / ``TextBatch``.

May import: core and the rest of ``mcsan.data`` (never the model, never training).
"""
