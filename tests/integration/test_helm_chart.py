"""The chart's configuration, run for real: processes started from the rendered manifests.

Each process gets what its pod would: the container's args (with `$(POD_NAME)`
expanded) behind the image's entrypoint `vecstore`, its env, and its volumes as local
directories (the spec ConfigMap, the Secret's items, emptyDir, the PVC). Only addresses
change: every container port moves to a free port on 127.0.0.1, and 0.0.0.0 binds
become 127.0.0.1. Every process started here is stopped, whatever happens.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

from tests.unit.helm.chart import SPEC_KEY, VARIANTS, Manifest, Rendered, Variant, containers, render
from vecstore.ingest.producer import OutgoingRecord, produce
from vecstore.ingest.records import encode_record
from vecstore.ingest.topics import create_topic
from vecstore.launcher.processes import STOP_GRACE_SECONDS, free_ports

ENTRYPOINT = [sys.executable, "-m", "vecstore.cli.main"]  # the image's `vecstore`
READY_TIMEOUT = 60.0
ONE_BY_ONE = next(v for v in VARIANTS if v.name == "one-by-one")
DIM = 4


@dataclass
class Pod:
    """One container of a rendered workload, laid out on this machine."""

    name: str
    command: list[str]
    env: dict[str, str]
    ports: dict[str, int]
    """Container port name -> the local port it moved to."""
    probes: dict[str, str]
    """Probe kind -> path."""
    log_path: Path

    def url(self, port_name: str, path: str) -> str:
        """URL of `path` on one of the pod's ports."""
        return f"http://127.0.0.1:{self.ports[port_name]}{path}"


class LocalPods:
    """The rendered release, laid out under one directory with ports on 127.0.0.1."""

    def __init__(self, rendered: Rendered, root: Path) -> None:
        self.rendered = rendered
        self.root = root
        self.moves: dict[int, int] = {}
        document = json.loads(rendered.spec_config_map()["data"][SPEC_KEY])
        (shard,) = document["shards"]
        (node,) = shard["nodes"]
        for owner, key in ((node, "raft"), (node, "http"), (document["router"], "listen")):
            port = free_ports(1)[0]
            self.moves[int(owner[key].rsplit(":", 1)[1])] = port
            owner[key] = f"127.0.0.1:{port}"
        self.spec_text = json.dumps(document)

    def lay_out(self, workload: Manifest, pod_name: str) -> Pod:
        """Write the pod's volumes under the root, and translate its args and env to them."""
        template = workload["spec"]["template"]["spec"]
        (container,) = containers(workload)
        for port in container["ports"]:
            self.moves.setdefault(port["containerPort"], free_ports(1)[0])
        mounts = self._volumes(workload, container, pod_name)

        def translate(value: str) -> str:
            for mount_path, local in mounts.items():
                if value == mount_path or value.startswith(mount_path + "/"):
                    return str(local) + value[len(mount_path) :]
            if value == "0.0.0.0":
                return "127.0.0.1"
            if bind := re.fullmatch(r"0\.0\.0\.0:(\d+)", value):
                return f"127.0.0.1:{self.moves[int(bind.group(1))]}"
            if value.isdigit() and int(value) in {p["containerPort"] for p in container["ports"]}:
                return str(self.moves[int(value)])  # a flag naming a port the container opens
            return value

        env = {k: v for k, v in os.environ.items() if not k.startswith("VECSTORE_")}
        for entry in container.get("env", []):
            if "value" in entry:
                env[entry["name"]] = translate(entry["value"])
            else:
                assert entry["valueFrom"] == {"fieldRef": {"fieldPath": "metadata.name"}}, entry
                env[entry["name"]] = pod_name
        # Kubernetes expands $(VAR) in args from the container's env
        args = [translate(re.sub(r"\$\((\w+)\)", lambda m: env[m.group(1)], a)) for a in container["args"]]
        probes: dict[str, str] = {
            kind: container[kind]["httpGet"]["path"]
            for kind in ("startupProbe", "livenessProbe", "readinessProbe")
            if kind in container
        }
        ports = {p["name"]: self.moves[p["containerPort"]] for p in container["ports"]}
        assert template["securityContext"]["runAsNonRoot"] is True
        return Pod(pod_name, [*ENTRYPOINT, *args], env, ports, probes, self.root / f"{pod_name}.log")

    def _volumes(self, workload: Manifest, container: Manifest, pod_name: str) -> dict[str, Path]:
        """mountPath -> local directory holding what the volume would."""
        secrets = {s["metadata"]["name"]: s["data"] for s in self.rendered.of_kind("Secret")}
        claims = {c["metadata"]["name"] for c in workload["spec"].get("volumeClaimTemplates", [])}
        volumes = {v["name"]: v for v in workload["spec"]["template"]["spec"]["volumes"]}
        mounts: dict[str, Path] = {}
        for mount in container["volumeMounts"]:
            local = self.root / pod_name / mount["name"]
            local.mkdir(parents=True)
            volume = volumes.get(mount["name"])
            if volume is None:
                assert mount["name"] in claims, f"mount {mount['name']} has no volume"
            elif "configMap" in volume:
                assert volume["configMap"]["name"] == self.rendered.spec_config_map()["metadata"]["name"]
                (local / SPEC_KEY).write_text(self.spec_text)
            elif "secret" in volume:
                data = secrets[volume["secret"]["secretName"]]
                for item in volume["secret"]["items"]:
                    (local / item["path"]).write_bytes(base64.b64decode(data[item["key"]]))
            else:
                assert "emptyDir" in volume, volume
            mounts[mount["mountPath"]] = local
        return mounts

    def node(self) -> Pod:
        """The only node pod (ordinal 0 of the only shard)."""
        (statefulset,) = self.rendered.of_kind("StatefulSet")
        return self.lay_out(statefulset, f"{statefulset['metadata']['name']}-0")

    def deployment(self, component: str) -> Pod:
        """A pod of the Deployment of `component` (router, ingest)."""
        (deployment,) = self.rendered.component("Deployment", component)
        return self.lay_out(deployment, f"{component}-0")

    def admin_key(self) -> str:
        """The generated admin API key, from the rendered Secret."""
        (secret,) = self.rendered.of_kind("Secret")
        return base64.b64decode(secret["data"]["admin-api-key"]).decode()


@contextlib.contextmanager
def running(pods: list[Pod]) -> Iterator[None]:
    """Start the pods' processes; SIGTERM (then SIGKILL) and reap them all, whatever happens."""
    processes: list[subprocess.Popen[bytes]] = []
    try:
        for pod in pods:
            with pod.log_path.open("wb") as log_file:
                processes.append(
                    subprocess.Popen(pod.command, env=pod.env, stdout=log_file, stderr=subprocess.STDOUT)
                )
        yield
    finally:
        for process in reversed(processes):
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in processes:
            try:
                process.wait(timeout=STOP_GRACE_SECONDS)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=STOP_GRACE_SECONDS)


async def wait_ready(session: aiohttp.ClientSession, pod: Pod, port_name: str) -> None:
    """Poll the pod's readiness probe until it answers 200; then every probe path must."""
    deadline = time.monotonic() + READY_TIMEOUT
    while True:
        with contextlib.suppress(aiohttp.ClientError, TimeoutError):
            url = pod.url(port_name, pod.probes["readinessProbe"])
            async with session.get(url, timeout=aiohttp.ClientTimeout(total=2)) as response:
                if response.status == 200:
                    break
        if time.monotonic() > deadline:
            raise AssertionError(f"{pod.name} never became ready:\n{pod.log_path.read_text()[-3000:]}")
        await asyncio.sleep(0.25)
    for path in {*pod.probes.values(), "/metrics"}:
        async with session.get(pod.url(port_name, path)) as response:
            assert response.status == 200, (pod.name, path)


async def call(
    session: aiohttp.ClientSession, method: str, url: str, key: str, body: dict[str, Any] | None = None
) -> dict[str, Any]:
    """One router API call that must succeed."""
    async with session.request(method, url, json=body, headers={"api-key": key}) as response:
        assert response.status == 200, await response.text()
        answer: dict[str, Any] = await response.json()
        return answer


def one_hot(point_id: int) -> list[float]:
    return [float(point_id % DIM == j) for j in range(DIM)]


async def test_node_and_router_run_from_the_rendered_chart(tmp_path: Path) -> None:
    pods = LocalPods(render(ONE_BY_ONE), tmp_path)
    node, router = pods.node(), pods.deployment("router")
    key = pods.admin_key()
    api = router.url("http", "/v1/collections")
    with running([node, router]):
        async with aiohttp.ClientSession() as session:
            await wait_ready(session, node, "http")
            await wait_ready(session, router, "http")
            # the router loaded the API keys from the mounted Secret item
            async with session.get(api) as response:
                assert response.status == 401
            await call(session, "PUT", f"{api}/docs", key, {"dimension": DIM})
            points = [{"id": i, "vector": one_hot(i), "payload": {"n": i}} for i in range(20)]
            upserted = await call(session, "PUT", f"{api}/docs/points", key, {"points": points})
            assert upserted["upserted"] == 20
            found = await call(session, "POST", f"{api}/docs/search", key, {"vector": one_hot(1), "k": 5})
    assert {hit["id"] for hit in found["result"]} == {1, 5, 9, 13, 17}


async def test_ingest_worker_runs_from_the_rendered_chart(tmp_path: Path, kafka_bootstrap: str) -> None:
    """The ingest Deployment's command, flags and settings, against a real broker."""
    run = uuid.uuid4().hex[:8]
    topic, dead_letters = f"chart-points-{run}", f"chart-dlq-{run}"
    for name in (topic, dead_letters):
        assert await create_topic(kafka_bootstrap, name, partitions=2)
    ingest_values = {
        "enabled": True,
        "bootstrap": kafka_bootstrap,
        "topics": [topic],
        "group": f"chart-{run}",
        "dlqTopic": dead_letters,
        # short group timeouts: a join waits half the session timeout
        "settings": {"session_timeout_ms": 2000, "heartbeat_interval_ms": 300},
    }
    variant = Variant("one-by-one-ingest", {**ONE_BY_ONE.values, "ingest": ingest_values}, 1, 1)
    pods = LocalPods(render(variant), tmp_path)
    node, router, worker = pods.node(), pods.deployment("router"), pods.deployment("ingest")
    key = pods.admin_key()
    api = router.url("http", "/v1/collections")
    with running([node, router]):
        async with aiohttp.ClientSession() as session:
            await wait_ready(session, node, "http")
            await wait_ready(session, router, "http")
            await call(session, "PUT", f"{api}/feed", key, {"dimension": DIM})
            with running([worker]):
                await wait_ready(session, worker, "metrics")
                records = [encode_record("feed", "upsert", i, vector=one_hot(i)) for i in range(30)]
                sent = await produce(
                    kafka_bootstrap, topic, (OutgoingRecord(k, v) for k, v in records), progress=False
                )
                assert sent == 30
                deadline = time.monotonic() + READY_TIMEOUT
                while (await call(session, "POST", f"{api}/feed/points/count", key, {}))["count"] < 30:
                    assert time.monotonic() < deadline, worker.log_path.read_text()[-3000:]
                    await asyncio.sleep(0.25)
            found = await call(session, "POST", f"{api}/feed/search", key, {"vector": one_hot(2), "k": 3})
    assert {hit["id"] for hit in found["result"]} <= {i for i in range(30) if i % DIM == 2}
