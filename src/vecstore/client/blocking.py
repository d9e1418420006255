"""`Client`: the blocking face of `AsyncClient`, for scripts and notebooks.

Its event loop runs in a thread of its own, so a `Client` works the same in a plain
script, in a notebook (where a loop is already running) and from several threads at once.
Every method is the `AsyncClient` method of the same name, waited for.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any, Concatenate, ParamSpec, TypeVar

from vecstore.client.aio import DEFAULT_BATCH, AsyncClient, Filter
from vecstore.client.models import Point
from vecstore.transport.router_client import DEFAULT_ROUTER

P = ParamSpec("P")
R = TypeVar("R")


def _blocking(
    method: Callable[Concatenate[AsyncClient, P], Coroutine[Any, Any, R]],
) -> Callable[Concatenate[Client, P], R]:
    """`Client.name(...)`: run `AsyncClient.name(...)` on the client's loop and wait."""

    def call(self: Client, /, *args: P.args, **kwargs: P.kwargs) -> R:
        return self._run(method(self._client, *args, **kwargs))

    call.__name__ = call.__qualname__ = method.__name__
    call.__doc__ = method.__doc__
    return call


class Client:
    """VecStore's blocking client; use `with Client(url) as client:`. Takes the same
    arguments as `AsyncClient`."""

    def __init__(
        self,
        url: str = DEFAULT_ROUTER,
        *,
        api_key: str | None = None,
        ca_file: str | Path | None = None,
        timeout: float = 60.0,
        retry_seconds: float = 30.0,
        connect_seconds: float = 3.0,
        connections: int = 1,
        rpc: bool = True,
        read_your_writes: bool = True,
    ) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="vecstore-client", daemon=True)
        self._thread.start()

        async def make() -> AsyncClient:
            return AsyncClient(
                url,
                api_key=api_key,
                ca_file=ca_file,
                timeout=timeout,
                retry_seconds=retry_seconds,
                connect_seconds=connect_seconds,
                connections=connections,
                rpc=rpc,
                read_your_writes=read_your_writes,
            )

        self._client = self._run(make())
        self.url = self._client.url

    def _run(self, work: Coroutine[Any, Any, R]) -> R:
        if self._loop.is_closed():
            work.close()
            raise RuntimeError("this Client is closed")
        return asyncio.run_coroutine_threadsafe(work, self._loop).result()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the connections and stop the client's thread (idempotent)."""
        if self._loop.is_closed():
            return
        self._run(self._client.close())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join()
        self._loop.close()

    @property
    def read_token(self) -> str:
        """The merge of every write's read token."""
        return self._client.read_token

    def iterate(
        self,
        collection: str,
        *,
        filter: Filter | None = None,
        batch_size: int = DEFAULT_BATCH,
        with_payload: bool = True,
        with_vector: bool = False,
    ) -> Iterator[Point]:
        """Every (matching) point in id order, fetched a page at a time."""
        offset = None
        while True:
            points, offset = self.scroll(
                collection,
                filter=filter,
                limit=batch_size,
                offset=offset,
                with_payload=with_payload,
                with_vector=with_vector,
            )
            yield from points
            if offset is None:
                return

    ready = _blocking(AsyncClient.ready)
    wait_ready = _blocking(AsyncClient.wait_ready)
    status = _blocking(AsyncClient.status)
    collections = _blocking(AsyncClient.collections)
    create_collection = _blocking(AsyncClient.create_collection)
    collection = _blocking(AsyncClient.collection)
    drop_collection = _blocking(AsyncClient.drop_collection)
    upsert = _blocking(AsyncClient.upsert)
    upsert_points = _blocking(AsyncClient.upsert_points)
    update_vectors = _blocking(AsyncClient.update_vectors)
    delete_vectors = _blocking(AsyncClient.delete_vectors)
    upload = _blocking(AsyncClient.upload)
    delete = _blocking(AsyncClient.delete)
    set_payload = _blocking(AsyncClient.set_payload)
    delete_payload_keys = _blocking(AsyncClient.delete_payload_keys)
    get = _blocking(AsyncClient.get)
    scroll = _blocking(AsyncClient.scroll)
    count = _blocking(AsyncClient.count)
    search = _blocking(AsyncClient.search)
    search_batch = _blocking(AsyncClient.search_batch)
    query = _blocking(AsyncClient.query)
    to_pandas = _blocking(AsyncClient.to_pandas)
    to_polars = _blocking(AsyncClient.to_polars)
    from_pandas = _blocking(AsyncClient.from_pandas)
    from_polars = _blocking(AsyncClient.from_polars)
