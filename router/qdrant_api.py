"""The Qdrant-compatible REST subset (filled in by the Qdrant API work)."""

from __future__ import annotations

from aiohttp import web


def add_routes(app: web.Application) -> None:
    """Register the Qdrant-compatible routes."""
