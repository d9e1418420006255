"""Worker settings: flags over VECSTORE_INGEST_* variables over defaults, validated."""

from __future__ import annotations

import pytest

from vecstore.ingest.settings import SettingsError, WorkerSettings

REQUIRED = {"bootstrap": "k:9092", "topics": "a, b", "group": "g"}


def test_flags_win_over_the_environment() -> None:
    environ = {"VECSTORE_INGEST_BATCH_MAX_RECORDS": "100", "VECSTORE_INGEST_GROUP": "env-group"}
    settings = WorkerSettings.from_sources(
        {**REQUIRED, "batch_max_records": None, "max_in_flight": 500}, environ
    )
    assert settings.topics == ("a", "b")
    assert settings.group == "g"
    assert settings.batch_max_records == 100
    assert settings.max_in_flight == 500


def test_everything_can_come_from_the_environment() -> None:
    environ = {
        "VECSTORE_INGEST_BOOTSTRAP": "k:9092",
        "VECSTORE_INGEST_TOPICS": "events",
        "VECSTORE_INGEST_GROUP": "g",
        "VECSTORE_INGEST_DLQ_TOPIC": "events.dlq",
        "VECSTORE_INGEST_SHUTDOWN_GRACE_SECONDS": "2.5",
        "VECSTORE_INGEST_METRICS_PORT": "9100",
    }
    settings = WorkerSettings.from_sources({}, environ)
    assert settings.dlq_topic == "events.dlq"
    assert settings.shutdown_grace_seconds == 2.5
    assert settings.metrics_port == 9100


@pytest.mark.parametrize(
    ("overrides", "words"),
    [
        ({"bootstrap": None}, "bootstrap is required"),
        ({"batch_max_records": "many"}, "must be an integer"),
        ({"batch_max_records": 0}, "at least 1"),
        ({"batch_max_records": 5000, "max_in_flight": 100}, "max_in_flight"),
        ({"heartbeat_interval_ms": 20000}, "heartbeat_interval_ms"),
        ({"dlq_topic": "a"}, "must not be one of the consumed topics"),
        ({"batch_max_bytes": 64 * 1024 * 1024}, "batch_max_bytes"),
    ],
)
def test_bad_settings_name_what_is_wrong(overrides: dict[str, object], words: str) -> None:
    with pytest.raises(SettingsError, match=words):
        WorkerSettings.from_sources({**REQUIRED, **overrides}, {})
