"""The shared server plumbing: how a handler's exception becomes a status and a body."""

from __future__ import annotations

import logging

import pytest
from aiohttp import web

from vecstore.cluster.errors import CollectionNotFound, InvalidRequest
from vecstore.transport.server import error_answer


def test_a_vecstore_error_keeps_its_status_and_body() -> None:
    status, body = error_answer(CollectionNotFound("missing"), "/v1/x", "router")
    assert status == 404
    assert body == CollectionNotFound("missing").to_dict()
    status, body = error_answer(InvalidRequest("bad k"), "/v1/x", "node")
    assert (status, body["code"], body["error"]) == (400, InvalidRequest.code, "bad k")


def test_an_oversized_body_is_a_413_in_the_error_shape() -> None:
    status, body = error_answer(web.HTTPRequestEntityTooLarge(max_size=10, actual_size=20), "/", "router")
    assert status == 413
    assert body["status"] == "error" and "too large" in body["error"]


def test_an_aiohttp_http_error_keeps_its_status() -> None:
    status, body = error_answer(web.HTTPMethodNotAllowed("GET", ["POST"]), "/", "node")
    assert status == 405
    assert body == {"status": "error", "error": "Method Not Allowed", "code": "http"}


def test_an_unexpected_error_is_a_500_that_hides_the_message_and_logs_it(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.ERROR, logger="vecstore.transport.server"):
        status, body = error_answer(RuntimeError("secret detail"), "/v1/search", "router")
    assert status == 500
    assert body == {"status": "error", "error": "internal error; see the router log", "code": "internal"}
    assert "secret detail" not in str(body)
    [record] = caplog.records
    assert record.exc_info is not None and "secret detail" in str(record.exc_info[1])
