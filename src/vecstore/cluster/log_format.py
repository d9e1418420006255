"""Process-wide logging set-up: one line per record, structured context appended.

`log.info("sealed segment", extra={"collection": "docs"})` prints
`... INFO vecstore.shard.collection: sealed segment collection=docs`.
"""

from __future__ import annotations

import logging

_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime", "taskName"}


class ContextFormatter(logging.Formatter):
    """Appends the `extra` fields of a record as key=value pairs."""

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        context = {k: v for k, v in vars(record).items() if k not in _STANDARD}
        if context:
            line += " " + " ".join(f"{key}={value}" for key, value in sorted(context.items()))
        return line


def configure_logging(level: str = "INFO") -> None:
    """Send every logger's records to stderr in the house format."""
    handler = logging.StreamHandler()
    handler.setFormatter(ContextFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
