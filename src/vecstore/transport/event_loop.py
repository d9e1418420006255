"""The event loop every VecStore server process runs on: uvloop when it is installed.

uvloop roughly halves the per-request overhead of aiohttp servers and clients, which is
most of a router hop. Set VECSTORE_EVENT_LOOP=asyncio to use the standard loop.
"""

from __future__ import annotations

import asyncio
import logging
import os

log = logging.getLogger(__name__)


def install_event_loop() -> str:
    """Install uvloop's policy unless disabled or unavailable; returns the loop's name."""
    if os.environ.get("VECSTORE_EVENT_LOOP", "uvloop") == "asyncio":
        return "asyncio"
    try:
        import uvloop
    except ImportError:
        return "asyncio"
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    return "uvloop"
