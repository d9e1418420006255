"""The error hierarchy: HTTP status and retriable flags, and the wire round trip."""

from __future__ import annotations

import pytest

from vecstore.cluster.errors import (
    ERROR_CLASSES,
    CollectionConflict,
    CollectionNotFound,
    Conflict,
    Forbidden,
    InvalidFilter,
    InvalidPointId,
    InvalidRequest,
    InvalidSchema,
    InvalidVector,
    MalformedCommand,
    NotFound,
    NotImplementedParameter,
    NotLeader,
    PayloadTooLarge,
    Timeout,
    Unauthorized,
    Unavailable,
    UnsupportedVersion,
    VecStoreError,
    error_from_dict,
)


@pytest.mark.parametrize(
    ("cls", "status", "retriable"),
    [
        (VecStoreError, 500, False),
        (InvalidRequest, 400, False),
        (InvalidVector, 400, False),
        (InvalidFilter, 400, False),
        (InvalidPointId, 400, False),
        (InvalidSchema, 400, False),
        (MalformedCommand, 400, False),
        (UnsupportedVersion, 400, False),
        (PayloadTooLarge, 413, False),
        (Unauthorized, 401, False),
        (Forbidden, 403, False),
        (NotFound, 404, False),
        (CollectionNotFound, 404, False),
        (Conflict, 409, False),
        (CollectionConflict, 409, False),
        (NotImplementedParameter, 501, False),
        (NotLeader, 421, True),
        (Unavailable, 503, True),
        (Timeout, 504, True),
    ],
)
def test_status_and_retriable_flags(cls: type[VecStoreError], status: int, retriable: bool) -> None:
    assert cls.http_status == status
    assert cls.retriable is retriable


def test_request_errors_share_the_invalid_request_base() -> None:
    for cls in (InvalidVector, InvalidFilter, InvalidPointId, InvalidSchema, MalformedCommand):
        assert issubclass(cls, InvalidRequest)
    assert issubclass(UnsupportedVersion, MalformedCommand)
    assert issubclass(CollectionNotFound, NotFound)
    assert issubclass(CollectionConflict, Conflict)


def test_every_error_class_has_a_distinct_code() -> None:
    def walk(cls: type[VecStoreError]) -> list[type[VecStoreError]]:
        return [cls] + [sub for child in cls.__subclasses__() for sub in walk(child)]

    classes = walk(VecStoreError)
    codes = [cls.code for cls in classes]
    assert len(codes) == len(set(codes)), codes
    for code, cls in ERROR_CLASSES.items():
        assert cls.code == code


def test_to_dict_is_the_error_body() -> None:
    body = InvalidVector("vector has 3 dimensions, collection 'docs' expects 384").to_dict()
    assert body == {
        "status": "error",
        "error": "vector has 3 dimensions, collection 'docs' expects 384",
        "code": "invalid_vector",
    }


def test_not_leader_names_the_leader() -> None:
    err = NotLeader("node-2:7000")
    assert err.retriable
    assert err.leader == "node-2:7000"
    assert "node-2:7000" in err.message
    assert err.to_dict()["leader"] == "node-2:7000"
    unknown = NotLeader(None)
    assert unknown.leader is None
    assert "no leader is known" in unknown.message
    assert unknown.to_dict()["leader"] is None


@pytest.mark.parametrize("cls", [cls for _, cls in sorted(ERROR_CLASSES.items())])
def test_error_from_dict_round_trips_every_registered_class(cls: type[VecStoreError]) -> None:
    original = cls(f"something about {cls.__name__}")
    rebuilt = error_from_dict(original.to_dict())
    assert type(rebuilt) is cls
    assert rebuilt.message == original.message
    assert rebuilt.to_dict() == original.to_dict()


@pytest.mark.parametrize("leader", ["10.0.0.7:7100", None])
def test_error_from_dict_round_trips_not_leader(leader: str | None) -> None:
    rebuilt = error_from_dict(NotLeader(leader).to_dict())
    assert isinstance(rebuilt, NotLeader)
    assert rebuilt.leader == leader
    assert rebuilt.retriable
    assert rebuilt.to_dict() == NotLeader(leader).to_dict()


def test_error_from_dict_round_trips_collection_not_found() -> None:
    original = CollectionNotFound("docs")
    rebuilt = error_from_dict(original.to_dict())
    assert isinstance(rebuilt, CollectionNotFound)
    assert rebuilt.name == "docs"
    assert rebuilt.http_status == 404
    assert rebuilt.to_dict() == original.to_dict()


def test_error_from_dict_without_a_name_still_gives_a_not_found() -> None:
    rebuilt = error_from_dict({"code": "collection_not_found", "error": "collection 'x' does not exist"})
    assert isinstance(rebuilt, NotFound)
    assert rebuilt.http_status == 404
    assert rebuilt.message == "collection 'x' does not exist"


def test_error_from_dict_of_an_unknown_code_is_a_generic_error() -> None:
    rebuilt = error_from_dict({"code": "from_the_future", "error": "boom"})
    assert type(rebuilt) is VecStoreError
    assert rebuilt.message == "boom"
    assert rebuilt.http_status == 500
    assert not rebuilt.retriable
    assert error_from_dict({}).message == "unknown error"
