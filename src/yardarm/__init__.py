"""yardarm: push container images to any Docker/OCI v2 registry, without a daemon.

The public API is what ``__all__`` lists (pinned by a test); everything else is private.
Heavy modules are imported lazily so that ``yardarm --version`` starts fast.
"""

from __future__ import annotations

from yardarm._version import __version__
from yardarm.digest import Digest
from yardarm.errors import YardarmError
from yardarm.reference import Reference, parse

__all__ = [
    "Digest",
    "Reference",
    "YardarmError",
    "__version__",
    "parse",
]
