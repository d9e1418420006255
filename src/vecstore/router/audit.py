"""The audit log: one JSON line per write or admin operation, who did it and what came of it.

Off unless `router.audit_log` (or VECSTORE_AUDIT_LOG) names a file; `vecstore up` writes
`<data-dir>/logs/audit.jsonl`. The file is created 0600. A caller is named by its key's
scope and fingerprint (sha256, 12 hex), never the key; reads are not audited.
"""

from __future__ import annotations

import json
import logging
import os
import time
from pathlib import Path
from typing import Any

from aiohttp import web

from vecstore.cluster.errors import VecStoreError
from vecstore.transport.wire import decode_body

log = logging.getLogger(__name__)
WRITE_COUNTS = ("upserted", "deleted", "updated")
"""The fields of a write's answer that count points."""


class AuditLog:
    """Appends audit records to a file (nothing when `path` is empty)."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._logger: logging.Logger | None = None
        if path:
            target = Path(path)
            target.parent.mkdir(parents=True, exist_ok=True)
            os.close(os.open(target, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600))
            handler = logging.FileHandler(target, encoding="utf-8")
            handler.setFormatter(logging.Formatter("%(message)s"))
            logger = logging.getLogger(f"vecstore.audit.{id(self)}")
            logger.handlers = [handler]
            logger.setLevel(logging.INFO)
            logger.propagate = False
            self._logger = logger
            log.info("audit log enabled", extra={"path": path})

    @property
    def enabled(self) -> bool:
        """Whether records are written."""
        return self._logger is not None

    def record(self, **fields: Any) -> None:
        """Write one record (`time` is added)."""
        if self._logger is None:
            return
        entry = {"time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), **fields}
        self._logger.info(json.dumps(entry, separators=(",", ":"), default=str))

    def close(self) -> None:
        """Flush and close the file."""
        if self._logger is not None:
            for handler in self._logger.handlers:
                handler.close()
            self._logger.handlers = []


def points_in(answer: object) -> int | None:
    """How many points a write touched, from its answer (a native answer map, or the HTTP
    response carrying one); None when the answer does not say (DDL, Qdrant routes, errors)."""
    if isinstance(answer, web.Response) and isinstance(answer.body, bytes) and answer.status == 200:
        try:
            answer = decode_body(answer.body, answer.content_type)
        except VecStoreError:
            return None
    if not isinstance(answer, dict):
        return None
    counts = [answer[field] for field in WRITE_COUNTS if isinstance(answer.get(field), int)]
    return sum(counts) if counts else None
