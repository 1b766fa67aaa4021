"""Everything that speaks HTTP to a registry: transport, auth, credentials and the v2 API.

The API lives in private modules; this package exports the curated names below.
"""

from __future__ import annotations

from yardarm.registry.client import (
    BlobSource,
    BlobUpload,
    Registry,
    RegistryOptions,
    Repository,
)
from yardarm.registry.credentials import Credentials, lookup_credentials
from yardarm.registry.transport import HttpTransport, Response, Transport

__all__ = [
    "BlobSource",
    "BlobUpload",
    "Credentials",
    "HttpTransport",
    "Registry",
    "RegistryOptions",
    "Repository",
    "Response",
    "Transport",
    "lookup_credentials",
]
