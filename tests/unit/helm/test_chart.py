"""The Helm chart, rendered by Helm's engine: schemas, shape, spec, probes and secrets.

Every object of every variant is checked against Kubernetes' own OpenAPI schemas
(kubernetes-validate, offline). The ServiceMonitor is a CRD without a bundled schema;
its shape is checked by hand.
"""

from __future__ import annotations

import base64
import json
import re
from dataclasses import fields
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import helm_python
import kubernetes_validate  # type: ignore[import-untyped]
import pytest
from aiohttp import web

from tests.unit.helm.chart import (
    CHART_DIR,
    EXISTING_SECRET,
    NAMESPACE,
    RELEASE,
    SPEC_KEY,
    TLS_SECRET,
    VARIANTS,
    Rendered,
    Variant,
    containers,
    env_of,
    port_of,
    render,
    walk_strings,
)
from vecstore.cluster.spec import parse_spec
from vecstore.ingest.settings import WorkerSettings
from vecstore.node.api import create_app as create_node_app
from vecstore.node.config import RaftTuning, load_config
from vecstore.node.metrics import NodeMetrics
from vecstore.node.service import NodeService
from vecstore.router.app import create_app as create_router_app
from vecstore.router.auth import ApiKeys
from vecstore.router.metrics import RouterMetrics
from vecstore.shard.settings import ShardSettings

# The chart's floor (Chart.yaml kubeVersion) and a recent release.
KUBERNETES_VERSIONS = ("1.27.0", "1.35.0")
CRD_KINDS = {"ServiceMonitor"}


@pytest.fixture(scope="module", params=VARIANTS, ids=[v.name for v in VARIANTS])
def rendered(request: pytest.FixtureRequest) -> Rendered:
    variant: Variant = request.param
    return render(variant)


def shard_name(shard: int) -> str:
    return f"{RELEASE}-vecstore-shard-{shard}"


NODE_SERVICE = f"{RELEASE}-vecstore-node"


# -- Kubernetes schemas -------------------------------------------------------------


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_every_object_is_valid_kubernetes(rendered: Rendered, version: str) -> None:
    checked = 0
    for manifest in rendered.objects:
        if manifest["kind"] in CRD_KINDS:
            continue
        kubernetes_validate.validate(manifest, version, strict=True)
        checked += 1
    assert checked >= 9


def test_the_validator_rejects_what_kubernetes_would() -> None:
    """Guard against a vacuous validator: an unknown field and a wrong type both fail."""
    statefulset = render(VARIANTS[0]).of_kind("StatefulSet")[0]
    bad_field = json.loads(json.dumps(statefulset))
    bad_field["spec"]["template"]["spec"]["containers"][0]["livenessProbe"]["path"] = "/healthz"
    bad_type = json.loads(json.dumps(statefulset))
    bad_type["spec"]["replicas"] = "three"
    for manifest in (bad_field, bad_type):
        with pytest.raises(kubernetes_validate.ValidationError):
            kubernetes_validate.validate(manifest, KUBERNETES_VERSIONS[-1], strict=True)


def test_service_monitor_shape() -> None:
    rendered = render(next(v for v in VARIANTS if v.name == "everything-on"))
    (monitor,) = rendered.of_kind("ServiceMonitor")
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    assert monitor["metadata"]["namespace"] == NAMESPACE
    spec = monitor["spec"]
    assert set(spec) == {"namespaceSelector", "selector", "endpoints"}
    assert spec["namespaceSelector"] == {"matchNames": [NAMESPACE]}
    wanted = spec["selector"]["matchLabels"]
    selected = [s for s in rendered.of_kind("Service") if wanted.items() <= s["metadata"]["labels"].items()]
    # routers, nodes and ingest workers are scraped, each through a port an endpoint names
    assert {s["metadata"]["labels"]["app.kubernetes.io/component"] for s in selected} == {
        "router",
        "node",
        "ingest",
    }
    endpoint_ports = {e["port"] for e in spec["endpoints"]}
    for endpoint in spec["endpoints"]:
        assert set(endpoint) <= {"port", "path", "interval", "scrapeTimeout"}
        assert endpoint["path"] == "/metrics"
        assert re.fullmatch(r"\d+[smh]", endpoint["interval"])
    for service in selected:
        assert {p["name"] for p in service["spec"]["ports"]} & endpoint_ports


# -- values.schema.json and helm lint -----------------------------------------------


@pytest.mark.parametrize(
    ("values", "complaint"),
    [
        ({"shards": {"count": 0, "replicas": 3}}, "/shards/count"),
        ({"shards": {"count": 2, "replicas": 0}}, "/shards/replicas"),
        ({"auth": {"clusterSecret": "too-short"}}, "/auth/clusterSecret"),
        ({"auth": {"apiKeys": [{"key": "short", "scope": "admin"}]}}, "/auth/apiKeys/0/key"),
        ({"auth": {"apiKeys": [{"key": "long-enough-key", "scope": "root"}]}}, "/auth/apiKeys/0/scope"),
        ({"ingest": {"enabled": True}}, "/ingest/bootstrap"),
        ({"router": {"settings": {"max_kk": 5}}}, "max_kk"),
        ({"shard": {"count": 2}}, "shard"),
    ],
)
def test_schema_rejects_bad_values(values: dict[str, Any], complaint: str) -> None:
    with helm_python.Chart.load(CHART_DIR) as chart, pytest.raises(helm_python.HelmValuesError) as caught:
        chart.validate_schema(values)
    assert complaint in str(caught.value)


def test_helm_lint_is_clean() -> None:
    for variant in VARIANTS:
        report = helm_python.lint(
            CHART_DIR, variant.values, strict=True, namespace=NAMESPACE, kube_version="v1.35.0"
        )
        assert not report["errors"], report
        # severity 1 is "info" (e.g. "icon is recommended"); warnings and errors fail
        assert all(m["severity"] < 2 for m in report["messages"]), report


# -- shape: StatefulSets, Services, PDBs --------------------------------------------


def test_one_statefulset_per_shard_with_replicas_equal_to_the_replication_factor(rendered: Rendered) -> None:
    variant = rendered.variant
    statefulsets = rendered.of_kind("StatefulSet")
    assert [s["metadata"]["name"] for s in statefulsets] == [shard_name(i) for i in range(variant.shards)]
    for shard, statefulset in enumerate(statefulsets):
        spec = statefulset["spec"]
        assert spec["replicas"] == variant.replicas
        assert spec["serviceName"] == NODE_SERVICE
        # an ordered start would wait for pod 0's readiness, which needs a leader
        assert spec["podManagementPolicy"] == "Parallel"
        labels = spec["template"]["metadata"]["labels"]
        assert spec["selector"]["matchLabels"].items() <= labels.items()
        assert labels["vecstore.io/shard"] == str(shard)
        (claim,) = spec["volumeClaimTemplates"]
        (node,) = containers(statefulset)
        mounts = {m["name"]: m["mountPath"] for m in node["volumeMounts"]}
        assert mounts[claim["metadata"]["name"]] == env_of(node)["VECSTORE_DATA_DIR"]["value"]


def test_headless_service_publishes_every_node_pod(rendered: Rendered) -> None:
    service = rendered.one("Service", NODE_SERVICE)["spec"]
    assert service["clusterIP"] == "None"
    # peers must resolve each other before any of them is ready (no leader yet)
    assert service["publishNotReadyAddresses"] is True
    for statefulset in rendered.of_kind("StatefulSet"):
        assert service["selector"].items() <= statefulset["spec"]["template"]["metadata"]["labels"].items()
        (node,) = containers(statefulset)
        for port in service["ports"]:
            assert port["port"] == port_of(node, port["targetPort"])


def test_pod_anti_affinity_keeps_a_shards_replicas_apart(rendered: Rendered) -> None:
    hard = rendered.variant.values.get("node", {}).get("podAntiAffinity") == "hard"
    for shard, statefulset in enumerate(rendered.of_kind("StatefulSet")):
        anti = statefulset["spec"]["template"]["spec"]["affinity"]["podAntiAffinity"]
        if hard:
            (term,) = anti["requiredDuringSchedulingIgnoredDuringExecution"]
        else:
            (preferred,) = anti["preferredDuringSchedulingIgnoredDuringExecution"]
            term = preferred["podAffinityTerm"]
        assert term["topologyKey"] == "kubernetes.io/hostname"
        assert term["labelSelector"]["matchLabels"]["vecstore.io/shard"] == str(shard)
        labels = statefulset["spec"]["template"]["metadata"]["labels"]
        assert term["labelSelector"]["matchLabels"].items() <= labels.items()


def test_each_shard_has_a_pdb_keeping_a_majority(rendered: Rendered) -> None:
    replicas = rendered.variant.replicas
    budgets = {b["metadata"]["name"]: b["spec"] for b in rendered.of_kind("PodDisruptionBudget")}
    assert set(budgets) == {shard_name(i) for i in range(rendered.variant.shards)}
    for statefulset in rendered.of_kind("StatefulSet"):
        budget = budgets[statefulset["metadata"]["name"]]
        assert budget["minAvailable"] == replicas // 2 + 1
        assert 2 * budget["minAvailable"] > replicas
        assert budget["selector"] == statefulset["spec"]["selector"]


def test_names_fit_kubernetes_limits_with_the_longest_release_name() -> None:
    release = "r" * 53  # Helm's own limit on release names
    rendered = render(VARIANTS[2], release=release)
    for statefulset in rendered.of_kind("StatefulSet"):
        name = statefulset["metadata"]["name"]
        assert len(name) <= 52  # + "-" + 10-character revision hash in a label value
        assert len(f"{name}-{rendered.variant.replicas - 1}") <= 63  # pod hostname
    for manifest in rendered.objects:
        assert len(manifest["metadata"]["name"]) <= 63
    spec = rendered.cluster_spec()
    assert len({n.id for s in spec.shards for n in s.nodes}) == 9


# -- the cluster spec ---------------------------------------------------------------


def test_spec_lists_exactly_the_pods_dns_names_and_container_ports(rendered: Rendered) -> None:
    spec = rendered.cluster_spec()
    assert len(spec.shards) == rendered.variant.shards
    for shard, statefulset in zip(spec.shards, rendered.of_kind("StatefulSet"), strict=True):
        name = statefulset["metadata"]["name"]
        (node,) = containers(statefulset)
        pods = [f"{name}-{ordinal}" for ordinal in range(statefulset["spec"]["replicas"])]
        hosts = [f"{pod}.{NODE_SERVICE}.{NAMESPACE}.svc.cluster.local" for pod in pods]
        assert [n.id for n in shard.nodes] == pods
        assert [n.raft for n in shard.nodes] == [f"{h}:{port_of(node, 'raft')}" for h in hosts]
        assert [n.http for n in shard.nodes] == [f"{h}:{port_of(node, 'http')}" for h in hosts]
        # the node listens on the ports it advertises
        env = env_of(node)
        assert env["VECSTORE_RAFT_BIND"]["value"] == f"0.0.0.0:{port_of(node, 'raft')}"
        assert env["VECSTORE_HTTP_BIND"]["value"] == f"0.0.0.0:{port_of(node, 'http')}"
    (router,) = containers(rendered.component("Deployment", "router")[0])
    assert spec.router.listen == f"0.0.0.0:{port_of(router, 'http')}"
    for key, value in rendered.variant.values.get("router", {}).get("settings", {}).items():
        assert getattr(spec.router, key) == value


def test_node_id_is_the_pod_name_from_the_downward_api(rendered: Rendered) -> None:
    for statefulset in rendered.of_kind("StatefulSet"):
        (node,) = containers(statefulset)
        args = node["args"]
        assert args[:2] == ["node", "run"]
        assert args[args.index("--node-id") + 1] == "$(POD_NAME)"
        assert env_of(node)["POD_NAME"]["valueFrom"] == {"fieldRef": {"fieldPath": "metadata.name"}}


def test_every_workload_reads_the_spec_configmap_it_mounts(rendered: Rendered) -> None:
    config_map = rendered.spec_config_map()["metadata"]["name"]
    workloads = rendered.of_kind("StatefulSet") + rendered.of_kind("Deployment")
    for workload in workloads:
        pod = workload["spec"]["template"]["spec"]
        volumes = {v["name"]: v for v in pod["volumes"]}
        (container,) = pod["containers"]
        args = container["args"]
        spec_path = Path(args[args.index("--spec") + 1])
        (mount,) = [m for m in container["volumeMounts"] if m["mountPath"] == str(spec_path.parent)]
        assert volumes[mount["name"]]["configMap"]["name"] == config_map
        assert spec_path.name == SPEC_KEY


def test_node_settings_are_ones_the_node_reads(
    rendered: Rendered, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every VECSTORE_* variable the chart sets is a node setting, and load_config takes it."""
    known = {"VECSTORE_LOG_LEVEL"}
    known |= {f"VECSTORE_{name.upper()}" for name in ("data_dir", "http_bind", "raft_bind")}
    known |= {"VECSTORE_CLUSTER_SECRET_FILE", "VECSTORE_TLS_CERT_FILE", "VECSTORE_TLS_KEY_FILE"}
    known |= {"VECSTORE_TLS_CA_FILE"}  # not the node's: the CLI's, in `kubectl exec` (NOTES.txt)
    known |= {f"VECSTORE_RAFT_{f.name.upper()}" for f in fields(RaftTuning)}
    known |= {f"VECSTORE_{f.name.upper()}" for f in fields(ShardSettings) if f.name != "data_dir"}
    spec_file = tmp_path / SPEC_KEY
    spec_file.write_text(rendered.spec_config_map()["data"][SPEC_KEY])
    secret_file = tmp_path / "cluster-secret"
    secret_file.write_text("s" * 32)
    for statefulset in rendered.of_kind("StatefulSet"):
        (node,) = containers(statefulset)
        literal = {name: e["value"] for name, e in env_of(node).items() if "value" in e}
        assert {n for n in literal if n.startswith("VECSTORE_")} <= known
        environ = {**literal, "VECSTORE_CLUSTER_SECRET_FILE": str(secret_file)}
        pod = f"{statefulset['metadata']['name']}-0"
        environ["VECSTORE_NODE_ID"] = pod
        config = load_config(None, environ, spec_path=spec_file)
        config.validate()
        assert config.node_id == pod
        assert config.cluster_secret == "s" * 32
        assert config.http_bind == literal["VECSTORE_HTTP_BIND"]
        assert config.raft_bind == literal["VECSTORE_RAFT_BIND"]
        assert config.tls_cert_file == literal.get("VECSTORE_TLS_CERT_FILE")
        assert config.tls_key_file == literal.get("VECSTORE_TLS_KEY_FILE")
        assert config.raft.dns_cache_time <= 10  # a rescheduled pod's new IP is found quickly
        for key, value in rendered.variant.values.get("node", {}).get("raft", {}).items():
            assert getattr(config.raft, key) == value
        for key, value in literal.items():
            monkeypatch.setenv(key, value)
        settings = ShardSettings.from_env(tmp_path)
        for key, value in rendered.variant.values.get("node", {}).get("settings", {}).items():
            assert getattr(settings, key) == value


def test_ingest_worker_gets_its_flags_from_values(rendered: Rendered) -> None:
    ingest_values = rendered.variant.values.get("ingest", {})
    deployments = rendered.component("Deployment", "ingest")
    if not ingest_values.get("enabled"):
        assert deployments == []
        return
    (container,) = containers(deployments[0])
    args = container["args"]
    assert args[:2] == ["ingest", "run"]
    flags = dict(zip(args[2::2], args[3::2], strict=True))
    assert flags["--bootstrap"] == ingest_values["bootstrap"]
    assert flags["--topics"] == ",".join(ingest_values["topics"])
    assert flags["--group"] == ingest_values.get("group", "vecstore-ingest")
    assert flags.get("--dlq-topic") == ingest_values.get("dlqTopic")
    assert int(flags["--metrics-port"]) == port_of(container, "metrics")
    assert flags["--metrics-host"] == "0.0.0.0"  # kubelet probes come from outside the pod
    settings = {f"VECSTORE_INGEST_{f.name.upper()}" for f in fields(WorkerSettings)}
    environment = env_of(container)
    assert {name for name in environment if name.startswith("VECSTORE_INGEST_")} <= settings
    for key, value in ingest_values.get("settings", {}).items():
        assert environment[f"VECSTORE_INGEST_{key.upper()}"]["value"] == str(value)


# -- probes -------------------------------------------------------------------------


def _get_paths(app: web.Application) -> set[str]:
    return {r.resource.canonical for r in app.router.routes() if r.method == "GET" and r.resource}


def test_probes_point_at_paths_the_processes_serve(rendered: Rendered) -> None:
    stand_in = cast(
        NodeService,
        SimpleNamespace(config=SimpleNamespace(max_command_bytes=1 << 20, cluster_secret="x" * 32)),
    )
    served = {
        "node": _get_paths(create_node_app(stand_in)),
        "router": _get_paths(create_router_app(rendered.cluster_spec(), ApiKeys({}))),
    }
    expected = {"startupProbe": "/healthz", "livenessProbe": "/healthz", "readinessProbe": "/readyz"}
    for workload in rendered.of_kind("StatefulSet") + rendered.component("Deployment", "router"):
        role = workload["metadata"]["labels"]["app.kubernetes.io/component"]
        (container,) = containers(workload)
        probes = {k: container[k] for k in expected if k in container}
        assert {"livenessProbe", "readinessProbe"} <= set(probes)
        for kind, probe in probes.items():
            assert probe["httpGet"]["path"] == expected[kind]
            assert probe["httpGet"]["path"] in served[role]
            port_of(container, probe["httpGet"]["port"])  # a port the container opens


# -- security -----------------------------------------------------------------------


def test_no_secret_value_appears_outside_secrets(rendered: Rendered) -> None:
    secrets = rendered.secret_values()
    if rendered.variant.values.get("auth", {}).get("existingSecret"):
        assert rendered.of_kind("Secret") == []
    else:
        assert secrets
    for manifest in rendered.objects:
        if manifest["kind"] == "Secret":
            continue
        text = "\n".join(walk_strings(manifest))
        for secret in secrets:
            assert secret not in text, f"a secret value appears in {manifest['kind']}"
    assert rendered.of_kind("ConfigMap")  # the loop above did look at the spec ConfigMap


def test_secrets_are_mounted_from_the_secret_not_inlined(rendered: Rendered) -> None:
    existing = rendered.variant.values.get("auth", {}).get("existingSecret")
    secret_name = existing or f"{RELEASE}-vecstore"
    if not existing:
        (secret,) = rendered.of_kind("Secret")
        assert secret["metadata"]["name"] == secret_name
        data = {k: base64.b64decode(v).decode() for k, v in secret["data"].items()}
        assert len(data["cluster-secret"]) >= 16
        api_keys = [line for line in data["api-keys"].splitlines() if line]
        assert api_keys and all(line.rpartition(":")[2] in {"read", "write", "admin"} for line in api_keys)
    # every workload that talks to the nodes gets the cluster secret (nodes for Raft and to
    # check callers, routers and workers for the node token); only routers get the API keys
    secret_file = ("cluster-secret", "VECSTORE_CLUSTER_SECRET_FILE")
    wanted = {
        "node": dict([secret_file]),
        "router": dict([secret_file, ("api-keys", "VECSTORE_API_KEYS_FILE")]),
        "ingest": dict([secret_file]),
    }
    workloads = rendered.of_kind("StatefulSet") + rendered.component("Deployment", "router")
    for workload in workloads + rendered.component("Deployment", "ingest"):
        role = workload["metadata"]["labels"]["app.kubernetes.io/component"]
        pod = workload["spec"]["template"]["spec"]
        (container,) = pod["containers"]
        env = env_of(container)
        assert not {"VECSTORE_CLUSTER_SECRET", "VECSTORE_API_KEYS"} & set(env)
        (volume,) = [v for v in pod["volumes"] if v["name"] == "secret"]
        assert volume["secret"]["secretName"] == secret_name
        items = {item["key"]: item["path"] for item in volume["secret"]["items"]}
        assert set(items) == set(wanted[role]), role
        (mount,) = [m for m in container["volumeMounts"] if m["name"] == volume["name"]]
        assert mount["readOnly"] is True
        for key, variable in wanted[role].items():
            assert env[variable]["value"] == f"{mount['mountPath']}/{items[key]}"


def test_existing_secret_variant_uses_the_named_secret() -> None:
    rendered = render(next(v for v in VARIANTS if v.name == "existing-secret"))
    assert rendered.of_kind("Secret") == []
    names = {
        v["secret"]["secretName"]
        for w in rendered.of_kind("StatefulSet") + rendered.of_kind("Deployment")
        for v in w["spec"]["template"]["spec"]["volumes"]
        if "secret" in v
    }
    assert names == {EXISTING_SECRET}
    assert EXISTING_SECRET in rendered.notes


def test_pods_run_as_non_root_on_a_read_only_root_with_writable_volumes(rendered: Rendered) -> None:
    for workload in rendered.of_kind("StatefulSet") + rendered.of_kind("Deployment"):
        pod = workload["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["securityContext"]["runAsUser"] > 0
        assert pod["automountServiceAccountToken"] is False
        volumes = {v["name"]: v for v in pod["volumes"]}
        claims = {c["metadata"]["name"] for c in workload["spec"].get("volumeClaimTemplates", [])}
        for container in pod["containers"]:
            context = container["securityContext"]
            assert context["readOnlyRootFilesystem"] is True
            assert context["allowPrivilegeEscalation"] is False
            assert context["capabilities"]["drop"] == ["ALL"]
            assert container["resources"]["requests"] and container["resources"]["limits"]
            writable = {m["mountPath"]: m["name"] for m in container["volumeMounts"] if not m.get("readOnly")}
            assert "emptyDir" in volumes[writable["/tmp"]]
            if workload["kind"] == "StatefulSet":
                assert writable[env_of(container)["VECSTORE_DATA_DIR"]["value"]] in claims


def test_network_policy_admits_only_the_release_to_the_nodes(rendered: Rendered) -> None:
    (policy,) = rendered.component("NetworkPolicy", "node")
    spec = policy["spec"]
    release_rule = spec["ingress"][0]
    (peer,) = release_rule["from"]
    admitted = peer["podSelector"]["matchLabels"]
    for workload in rendered.of_kind("StatefulSet") + rendered.of_kind("Deployment"):
        assert admitted.items() <= workload["spec"]["template"]["metadata"]["labels"].items()
    assert {p["port"] for p in release_rule["ports"]} == {"http", "raft"}
    metrics_from = rendered.variant.values.get("networkPolicy", {}).get("metricsFrom", [])
    assert len(spec["ingress"]) == 1 + bool(metrics_from)


# -- monitoring ---------------------------------------------------------------------


def test_dashboard_queries_only_metrics_the_processes_export() -> None:
    rendered = render(next(v for v in VARIANTS if v.name == "everything-on"))
    (config_map,) = [c for c in rendered.of_kind("ConfigMap") if "vecstore.json" in c["data"]]
    assert config_map["metadata"]["labels"]["grafana_dashboard"] == "1"
    dashboard = json.loads(config_map["data"]["vecstore.json"])
    exported = {m.name for m in NodeMetrics().registry.collect()}
    exported |= {m.name for m in RouterMetrics().registry.collect()}
    expressions = [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]
    assert expressions
    used = {name for e in expressions for name in re.findall(r"\bvecstore_[a-z_]+", e)}
    for name in used:
        base = re.sub(r"_(total|bucket|sum|count)$", "", name)
        assert base in exported, f"the dashboard queries {name}, which no process exports"


def test_optional_objects_follow_their_switches(rendered: Rendered) -> None:
    values = rendered.variant.values
    router = values.get("router", {})
    metrics = values.get("metrics", {})
    assert bool(rendered.of_kind("HorizontalPodAutoscaler")) == router.get("autoscaling", {}).get(
        "enabled", False
    )
    assert bool(rendered.of_kind("Ingress")) == router.get("ingress", {}).get("enabled", False)
    assert bool(rendered.of_kind("ServiceMonitor")) == metrics.get("serviceMonitor", {}).get("enabled", False)
    dashboards = [c for c in rendered.of_kind("ConfigMap") if "vecstore.json" in c["data"]]
    assert bool(dashboards) == metrics.get("dashboard", {}).get("enabled", False)
    (router_deployment,) = rendered.component("Deployment", "router")
    assert ("replicas" in router_deployment["spec"]) != router.get("autoscaling", {}).get("enabled", False)
    assert rendered.notes.strip()


def test_spec_parses_when_written_by_the_chart_alone() -> None:
    """The ConfigMap's document, byte for byte, is a spec: no templating residue."""
    text = render(VARIANTS[0]).spec_config_map()["data"][SPEC_KEY]
    assert "{{" not in text
    assert parse_spec(json.loads(text)).shards


def test_tls_mounts_the_secret_and_serves_https_with_https_probes() -> None:
    rendered = render(next(v for v in VARIANTS if v.name == "tls"))
    wanted = {
        "node": {  # the CA for `vecstore` commands run in node pods (NOTES.txt step 4)
            "VECSTORE_TLS_CERT_FILE": "tls.crt",
            "VECSTORE_TLS_KEY_FILE": "tls.key",
            "VECSTORE_TLS_CA_FILE": "ca.crt",
        },
        "router": {
            "VECSTORE_TLS_CERT_FILE": "tls.crt",
            "VECSTORE_TLS_KEY_FILE": "tls.key",
            "VECSTORE_TLS_CA_FILE": "ca.crt",
        },
        "ingest": {"VECSTORE_TLS_CA_FILE": "ca.crt"},
    }
    workloads = [*rendered.of_kind("StatefulSet"), *rendered.of_kind("Deployment")]
    assert {w["metadata"]["labels"]["app.kubernetes.io/component"] for w in workloads} == set(wanted)
    for workload in workloads:
        role = workload["metadata"]["labels"]["app.kubernetes.io/component"]
        pod = workload["spec"]["template"]["spec"]
        (volume,) = [v for v in pod["volumes"] if v["name"] == "tls"]
        assert volume["secret"]["secretName"] == TLS_SECRET
        (container,) = pod["containers"]
        (mount,) = [m for m in container["volumeMounts"] if m["name"] == "tls"]
        assert mount["readOnly"] is True
        env = env_of(container)
        tls_env = {name: e["value"] for name, e in env.items() if name.startswith("VECSTORE_TLS_")}
        assert tls_env == {name: f"{mount['mountPath']}/{file}" for name, file in wanted[role].items()}
        probes = [container[k] for k in ("startupProbe", "livenessProbe", "readinessProbe") if k in container]
        if role != "ingest":  # the worker's metrics port stays plain HTTP
            assert probes and all(p["httpGet"]["scheme"] == "HTTPS" for p in probes)


def test_tls_without_a_secret_is_refused() -> None:
    with helm_python.Chart.load(CHART_DIR) as chart, pytest.raises(helm_python.HelmValuesError) as caught:
        chart.validate_schema({"tls": {"enabled": True}})
    assert "existingSecret" in str(caught.value)


def test_tls_service_monitor_scrapes_https_verifying_with_the_secrets_ca() -> None:
    values = {
        "tls": {"enabled": True, "existingSecret": TLS_SECRET},
        "ingest": {"enabled": True, "bootstrap": "kafka.streaming.svc:9092", "topics": ["points"]},
        "metrics": {"serviceMonitor": {"enabled": True}},
    }
    rendered = render(Variant("tls-monitored", values, shards=2, replicas=3))
    (monitor,) = rendered.of_kind("ServiceMonitor")
    endpoints = {e["port"]: e for e in monitor["spec"]["endpoints"]}
    https = endpoints["http"]  # routers and nodes
    assert https["scheme"] == "https"
    assert https["tlsConfig"]["ca"] == {"secret": {"name": TLS_SECRET, "key": "ca.crt"}}
    (router_service,) = rendered.component("Service", "router")
    assert https["tlsConfig"]["serverName"] == router_service["metadata"]["name"]
    assert set(endpoints["metrics"]) == {"port", "path", "interval", "scrapeTimeout"}  # ingest: HTTP


def test_tls_notes_use_https_with_the_ca_and_the_names_the_certificate_carries() -> None:
    rendered = render(next(v for v in VARIANTS if v.name == "tls"))
    (router_service,) = rendered.component("Service", "router")
    router = router_service["metadata"]["name"]
    assert f"--cacert ca.crt --resolve {router}:6333:127.0.0.1 https://{router}:6333/readyz" in rendered.notes
    assert "curl -s localhost" not in rendered.notes
    node = rendered.cluster_spec().shards[0].nodes[0]
    assert f"vecstore status --nodes {node.http}" in rendered.notes  # the spec's name, as certified
