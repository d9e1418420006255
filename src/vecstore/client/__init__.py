"""VecStore's Python client: `Client` (blocking) and `AsyncClient` (asyncio).

    from vecstore.client import Client

    with Client("http://127.0.0.1:6333") as client:
        client.create_collection("docs", dimension=384)
        client.upload("docs", ids, vectors, payloads, progress=True)
        hits = client.search("docs", query, k=10)

See docs/client.md. Errors are `vecstore.cluster.errors.VecStoreError` subclasses
(re-exported here): `NotFound`, `InvalidRequest`, `Unavailable`, ...
"""

from vecstore.client.aio import AsyncClient
from vecstore.client.blocking import Client
from vecstore.client.models import CollectionInfo, Hit, Point, PointId, WriteResult
from vecstore.cluster.errors import (
    CollectionConflict,
    Forbidden,
    InvalidRequest,
    NotFound,
    Timeout,
    Unauthorized,
    Unavailable,
    VecStoreError,
)
from vecstore.cluster.schema import CollectionSchema

__all__ = [
    "AsyncClient",
    "Client",
    "CollectionConflict",
    "CollectionInfo",
    "CollectionSchema",
    "Forbidden",
    "Hit",
    "InvalidRequest",
    "NotFound",
    "Point",
    "PointId",
    "Timeout",
    "Unauthorized",
    "Unavailable",
    "VecStoreError",
    "WriteResult",
]
