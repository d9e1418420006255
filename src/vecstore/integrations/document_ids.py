"""Frameworks' string ids as VecStore point ids: a fixed UUIDv5 of the string.

The point id is a function of the framework's id alone, so writing the same id again
replaces the point, and `get`/`delete` by the framework's id need no lookup table.
"""

from __future__ import annotations

import uuid

NAMESPACE = uuid.UUID("abfaaedb-958a-533a-984e-9d353be7cb44")
"""uuid5(NAMESPACE_URL, "vecstore-cluster:integrations"): fixed forever, or ids move."""


def point_id_of(document_id: str) -> str:
    """The point id (a UUID string) that stores the document with this id."""
    if not isinstance(document_id, str) or not document_id:
        raise ValueError(f"document id must be a non-empty string, got {document_id!r}")
    return str(uuid.uuid5(NAMESPACE, document_id))
