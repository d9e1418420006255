"""Waiting for a process's `/readyz` (or any URL) to answer 200: the one poll everyone uses.

Standard library only (the launcher room): each probe is one urllib GET without proxies,
bounded by a short request timeout. `wait_ready` blocks; `wait_ready_async` runs each probe
in a worker thread and sleeps on the event loop between probes, so cancelling it is prompt.
Both raise `NotReady`, a TimeoutError naming the URL, the last answer (status and body, or
the connection error) and the seconds waited.
"""

from __future__ import annotations

import asyncio
import contextlib
import http.client
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass

DEFAULT_TIMEOUT = 60.0
DEFAULT_INTERVAL = 0.2
REQUEST_TIMEOUT = 2.0
BODY_EXCERPT = 300

_opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
"""Local endpoints are never reached through an http_proxy from the environment."""


@dataclass(frozen=True)
class Answer:
    """What one probe saw: an HTTP status and body, or the error that prevented one."""

    status: int | None = None
    body: str = ""
    error: str | None = None

    @property
    def ready(self) -> bool:
        """True for a 200."""
        return self.status == 200

    def __str__(self) -> str:
        if self.status is not None:
            return f"HTTP {self.status} {self.body!r}" if self.body else f"HTTP {self.status}"
        return self.error or "no answer yet"


class NotReady(TimeoutError):
    """The URL did not answer 200 in time."""

    def __init__(self, url: str, waited: float, last: Answer) -> None:
        super().__init__(f"{url} was not ready after {waited:.1f} s; last answer: {last}")
        self.url = url
        self.waited = waited
        self.last = last

    @property
    def last_status(self) -> int | None:
        """The HTTP status of the last answer, None if there was none."""
        return self.last.status


def probe(url: str, timeout: float = REQUEST_TIMEOUT) -> Answer:
    """One GET of `url`; never raises for network or HTTP errors."""
    try:
        with _opener.open(url, timeout=timeout) as response:
            return Answer(response.status, _excerpt(response.read(BODY_EXCERPT + 1)))
    except urllib.error.HTTPError as error:  # 4xx and 5xx: a status (and a body) all the same
        body = b""
        with contextlib.suppress(OSError, http.client.HTTPException):
            body = error.read(BODY_EXCERPT + 1)
        error.close()
        return Answer(error.code, _excerpt(body))
    except urllib.error.URLError as error:
        return Answer(error=f"{type(error.reason).__name__}: {error.reason}")
    except (OSError, http.client.HTTPException) as error:  # resets, timeouts, garbled answers
        return Answer(error=f"{type(error).__name__}: {error}")


def _excerpt(raw: bytes) -> str:
    text = raw.decode("utf-8", errors="replace").strip()
    return text if len(text) <= BODY_EXCERPT else text[:BODY_EXCERPT] + "..."


def wait_ready(
    url: str,
    timeout: float = DEFAULT_TIMEOUT,
    interval: float = DEFAULT_INTERVAL,
    *,
    check: Callable[[], object] | None = None,
) -> float:
    """Poll `url` until it answers 200; returns the seconds waited.

    `check` is called before every probe; raise from it to give up early (say, when the
    process being waited for has exited). Raises NotReady after `timeout` seconds.
    """
    started = time.monotonic()
    deadline = started + timeout
    while True:
        if check is not None:
            check()
        last = probe(url, _request_timeout(deadline))
        if last.ready:
            return time.monotonic() - started
        now = time.monotonic()
        if now >= deadline:
            raise NotReady(url, now - started, last)
        time.sleep(min(interval, deadline - now))


async def wait_ready_async(
    url: str,
    timeout: float = DEFAULT_TIMEOUT,  # noqa: ASYNC109 - it is in NotReady's message, with the last answer
    interval: float = DEFAULT_INTERVAL,
    *,
    check: Callable[[], object] | None = None,
) -> float:
    """`wait_ready` for async code: each probe runs in a thread, the loop sleeps between them."""
    started = time.monotonic()
    deadline = started + timeout
    while True:
        if check is not None:
            check()
        last = await asyncio.to_thread(probe, url, _request_timeout(deadline))
        if last.ready:
            return time.monotonic() - started
        now = time.monotonic()
        if now >= deadline:
            raise NotReady(url, now - started, last)
        await asyncio.sleep(min(interval, deadline - now))


def _request_timeout(deadline: float) -> float:
    """The per-request timeout: short, and never far past the deadline."""
    return max(0.1, min(REQUEST_TIMEOUT, deadline - time.monotonic()))


def readyz_url(address: str) -> str:
    """`http://host:port/readyz` for a host:port (a URL with a scheme gets /readyz appended)."""
    base = address if "://" in address else f"http://{address}"
    return f"{base.rstrip('/')}/readyz"
