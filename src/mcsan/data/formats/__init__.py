"""Built-in dataset formats; importing this package registers them.

Each module holds one :class:`mcsan.data.datasets.DatasetFormat` subclass that only
reads its own annotation files; the shared pipeline does the rest.
"""

from mcsan.data.formats import bigfile, hgr, msrvtt, vatex

__all__ = ["bigfile", "hgr", "msrvtt", "vatex"]
