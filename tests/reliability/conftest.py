"""The reliability fixtures live in :mod:`reliability.scenario` with the checks they go with."""

from reliability.scenario import big_store, copy_store, small_store

__all__ = ["big_store", "copy_store", "small_store"]
