"""`python -m vecstore.ingest` (also `vecstore ingest`): run a worker, produce, create topics.

run           consume topics into the cluster, exactly once (SIGTERM stops it gracefully)
produce       send a JSONL or .npy file to a topic, with a progress bar
create-topic  create a topic with a chosen number of partitions
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import sys
from pathlib import Path

from aiokafka.errors import KafkaError

from vecstore.cluster.blas import limit_blas_threads
from vecstore.cluster.credentials import NodeAccess
from vecstore.cluster.errors import VecStoreError
from vecstore.cluster.log_format import configure_logging
from vecstore.cluster.spec import load_spec
from vecstore.ingest.formats import FORMATS, AvroFormat, ValueFormat
from vecstore.ingest.metrics import IngestMetrics
from vecstore.ingest.producer import jsonl_records, npy_records, produce
from vecstore.ingest.server import serving
from vecstore.ingest.settings import ENV_PREFIX, WorkerSettings
from vecstore.ingest.topics import MissingTopics, create_topic
from vecstore.ingest.worker import IngestWorker

log = logging.getLogger("vecstore.ingest")


def build_parser() -> argparse.ArgumentParser:
    """The `vecstore ingest` command tree."""
    parser = argparse.ArgumentParser(prog="vecstore ingest", description="Kafka ingestion for VecStore.")
    parser.add_argument("--log-level", default=os.environ.get("VECSTORE_LOG_LEVEL", "INFO"))
    commands = parser.add_subparsers(dest="command", required=True)

    run = commands.add_parser(
        "run",
        help="run an ingest worker",
        description=f"Consume topics into the cluster. Every flag may also be set as {ENV_PREFIX}<NAME> "
        "(for example VECSTORE_INGEST_BATCH_MAX_RECORDS); the cluster spec comes from --spec, "
        "VECSTORE_CLUSTER_SPEC_FILE or VECSTORE_CLUSTER_SPEC.",
    )
    run.add_argument("--bootstrap", help="Kafka bootstrap servers, host:port[,host:port]")
    run.add_argument("--topics", help="comma-separated topics to consume")
    run.add_argument("--group", help="consumer group id")
    run.add_argument("--spec", type=Path, help="cluster spec file (TOML/YAML/JSON)")
    run.add_argument("--dlq-topic", dest="dlq_topic", help="dead-letter topic for invalid records")
    run.add_argument("--batch-max-records", dest="batch_max_records", type=int, help="default 2000")
    run.add_argument("--batch-max-ms", dest="batch_max_ms", type=int, help="default 50")
    run.add_argument("--batch-max-bytes", dest="batch_max_bytes", type=int, help="default 4 MiB")
    run.add_argument("--max-in-flight", dest="max_in_flight", type=int, help="records; default 20000")
    run.add_argument("--session-timeout-ms", dest="session_timeout_ms", type=int, help="default 10000")
    run.add_argument("--heartbeat-interval-ms", dest="heartbeat_interval_ms", type=int, help="default 3000")
    run.add_argument("--metrics-host", dest="metrics_host", help="default 127.0.0.1")
    run.add_argument("--metrics-port", dest="metrics_port", type=int, help="serve /metrics here")
    run.add_argument("--shutdown-grace-seconds", dest="shutdown_grace_seconds", type=float, help="default 10")
    run.add_argument("--shard-deadline-seconds", dest="shard_deadline_seconds", type=float, help="default 15")
    run.add_argument("--client-id", dest="client_id", help="Kafka client id")
    run.add_argument(
        "--value-format",
        dest="value_format",
        choices=FORMATS,
        help="record values: auto (JSON or msgpack, per record; the default), avro or protobuf",
    )
    run.add_argument(
        "--avro-schema",
        dest="avro_schema",
        help="with avro: the producers' schema file (default: record.avsc)",
    )
    run.set_defaults(handler=_run)

    producer = commands.add_parser("produce", help="send a JSONL or .npy file to a topic")
    producer.add_argument("--bootstrap", required=True, help="Kafka bootstrap servers")
    producer.add_argument("--topic", required=True)
    producer.add_argument("--collection", required=True, help="collection every record targets")
    source = producer.add_mutually_exclusive_group(required=True)
    source.add_argument("--jsonl", type=Path, help="one record object a line (id, vector, payload, op)")
    source.add_argument("--npy", type=Path, help="a 2-D float array: one upsert per row")
    producer.add_argument("--payloads", type=Path, help="with --npy: one payload object a line")
    producer.add_argument("--start-id", type=int, default=0, help="with --npy: id of the first row")
    producer.add_argument(
        "--format", choices=("json", "msgpack", "avro", "protobuf"), default="msgpack", help="value encoding"
    )
    producer.add_argument("--avro-schema", type=Path, help="with --format avro: write with this schema")
    producer.add_argument("--no-progress", action="store_true", help="no progress bar")
    producer.set_defaults(handler=_produce)

    topic = commands.add_parser("create-topic", help="create a topic (an existing one is left alone)")
    topic.add_argument("--bootstrap", required=True, help="Kafka bootstrap servers")
    topic.add_argument("--topic", required=True)
    topic.add_argument("--partitions", type=int, required=True)
    topic.add_argument("--replication-factor", type=int, default=1)
    topic.set_defaults(handler=_create_topic)
    return parser


async def _run(args: argparse.Namespace) -> int:
    settings = WorkerSettings.from_sources(vars(args))
    spec = load_spec(args.spec)
    worker = IngestWorker(settings, spec, IngestMetrics(), NodeAccess.from_env())
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, worker.stop)
    async with contextlib.AsyncExitStack() as stack:
        if settings.metrics_port is not None:
            await stack.enter_async_context(serving(worker, settings.metrics_host, settings.metrics_port))
        await worker.run()
    log.info("ingest worker stopped", extra={"records": worker.totals})
    return 0


async def _produce(args: argparse.Namespace) -> int:
    if args.avro_schema is not None and args.format != "avro":
        raise ValueError("--avro-schema is for --format avro")
    encoding: str | ValueFormat = args.format
    if args.avro_schema is not None:
        encoding = AvroFormat(args.avro_schema)
    if args.jsonl is not None:
        total = None
        records = jsonl_records(args.jsonl, args.collection, encoding)
    else:
        total, records = npy_records(
            args.npy, args.collection, encoding, payloads=args.payloads, start_id=args.start_id
        )
    sent = await produce(args.bootstrap, args.topic, records, total=total, progress=not args.no_progress)
    print(f"produced {sent} records to {args.topic}", file=sys.stderr)  # noqa: T201 - CLI output
    return 0


async def _create_topic(args: argparse.Namespace) -> int:
    created = await create_topic(args.bootstrap, args.topic, args.partitions, args.replication_factor)
    state = "created" if created else "already exists"
    print(f"topic {args.topic} {state}", file=sys.stderr)  # noqa: T201 - CLI output
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit status."""
    os.umask(0o077)  # whatever this process writes is its owner's alone
    args = build_parser().parse_args(argv)
    configure_logging(args.log_level)
    try:
        limit_blas_threads(os.environ)
        status: int = asyncio.run(args.handler(args))
    except (VecStoreError, MissingTopics, KafkaError, ValueError, OSError) as err:
        log.error("%s", err)
        return 1
    return status


if __name__ == "__main__":
    sys.exit(main())
