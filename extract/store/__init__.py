"""The sharded HDF5 feature store: what ``extract`` writes and ``detect`` reads.

See ``docs/FORMAT.md`` for the on-disk layout.
"""
from .errors import BadArrayError, CorruptStoreError, CorruptVideoError, ShardLockedError, StoreError, UnknownVideoError
from .grid import SnippetGrid, count_snippets
from .meta import StoreInfo, VideoMeta
from .reader import FeatureStore, load_store_info, open_store
from .writer import StoreWriter, recover_store

__all__ = [
    "BadArrayError", "CorruptStoreError", "CorruptVideoError", "FeatureStore", "ShardLockedError", "SnippetGrid", "StoreError", "StoreInfo",
    "StoreWriter", "UnknownVideoError", "VideoMeta", "count_snippets", "load_store_info", "open_store",
    "recover_store",
]
