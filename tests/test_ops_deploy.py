"""Deployment files validated against their schemas, offline:

* deploy/compose/docker-compose.yml against the Compose Specification schema (vendored from
  the PyPI package check-jsonschema, see deploy/compose/schema/README.md);
* deploy/k8s/*.yaml core resources against Kubernetes' OpenAPI schemas (PyPI kubernetes-validate,
  strict: unknown fields fail), Strimzi resources against deploy/k8s/schema/strimzi-v1beta2-subset.json;
* the configurations they carry with xueliang.config (county example, compose, ConfigMap).
"""

from __future__ import annotations

import copy
import functools
import importlib.util
import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from xueliang.config import load_config, parse_config
from xueliang.contracts import Topics, topic_specs

REPO = Path(__file__).resolve().parents[1]
K8S = REPO / "deploy" / "k8s"
K8S_VERSION = "1.33.0"


Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml: the ConfigMap is 400 kB


@functools.cache
def _k8s_docs() -> tuple[tuple[str, str], ...]:
    out = []
    for path in sorted(K8S.glob("*.yaml")):
        out += [(f"{path.name}#{i}", json.dumps(d)) for i, d in enumerate(yaml.load_all(path.read_text(), Loader)) if d]
    return tuple(out)


def k8s_docs() -> list[tuple[str, dict[str, Any]]]:
    """Every resource in deploy/k8s (fresh copies: tests may mutate them)."""
    return [(where, json.loads(doc)) for where, doc in _k8s_docs()]


def compose_validator() -> jsonschema.protocols.Validator:
    schema = json.loads((REPO / "deploy/compose/schema/compose-spec.json").read_text())
    return jsonschema.validators.validator_for(schema)(schema)


def strimzi_validator() -> jsonschema.protocols.Validator:
    schema = json.loads((K8S / "schema/strimzi-v1beta2-subset.json").read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


# ---------------------------------------------------------------- compose
def test_compose_file_matches_the_compose_schema() -> None:
    doc = yaml.safe_load((REPO / "deploy/compose/docker-compose.yml").read_text())
    errors = [f"{list(e.path)}: {e.message}" for e in compose_validator().iter_errors(doc)]
    assert not errors, errors
    services = doc["services"]
    assert {"kafka", "postgres", "ingest", "detector", "dispatch", "api", "prometheus", "grafana"} <= set(services)
    env = services["kafka"]["environment"]
    assert env["KAFKA_PROCESS_ROLES"] == "broker,controller"  # KRaft, no ZooKeeper
    assert "zookeeper" not in json.dumps(doc).lower()


def test_compose_schema_rejects_a_misspelt_key() -> None:
    doc = yaml.safe_load((REPO / "deploy/compose/docker-compose.yml").read_text())
    bad = copy.deepcopy(doc)
    bad["services"]["detector"]["restat"] = "always"
    assert list(compose_validator().iter_errors(bad))


def test_compose_mounts_exist_and_config_validates(monkeypatch: pytest.MonkeyPatch) -> None:
    compose_dir = REPO / "deploy/compose"
    doc = yaml.safe_load((compose_dir / "docker-compose.yml").read_text())
    for name, svc in doc["services"].items():
        for vol in svc.get("volumes", []):
            src = vol.split(":")[0]
            if src.startswith("."):
                assert (compose_dir / src).exists(), f"service {name}: {src} missing"
    settings = load_config(compose_dir / "xueliang.yaml")
    assert settings.bus.type == "kafka" and settings.metrics.port == 9100
    prom = yaml.safe_load((REPO / "deploy/prometheus/prometheus.yml").read_text())
    ports = json.dumps(prom["scrape_configs"])
    assert "ingest:9100" in ports and "dispatch:9100" in ports


def test_compose_kafka_uses_scram_each_service_gets_its_secrets_and_ops_ports_are_loopback() -> None:
    """Issue 16 #3 and #12 for Compose."""
    doc = yaml.safe_load((REPO / "deploy/compose/docker-compose.yml").read_text())
    services = doc["services"]
    kafka = services["kafka"]["environment"]
    assert "PLAINTEXT://" not in kafka["KAFKA_LISTENERS"].replace("SASL_PLAINTEXT://", "")
    assert kafka["KAFKA_SASL_ENABLED_MECHANISMS"] == "SCRAM-SHA-512"
    assert kafka["KAFKA_AUTHORIZER_CLASS_NAME"].endswith("StandardAuthorizer")
    assert kafka["KAFKA_ALLOW_EVERYONE_IF_NO_ACL_FOUND"] == "false"
    assert "ports" not in services["kafka"] and "ports" not in services["postgres"]
    secrets = {"XL_JWT_SECRET", "XL_POSTGRES_PASSWORD", "XL_CAMERA_PASSWORD", "XL_KAFKA_PASSWORD"}
    expected = {
        "ingest": {"XL_CAMERA_PASSWORD", "XL_KAFKA_PASSWORD"},
        "detector": {"XL_KAFKA_PASSWORD"},
        "dispatch": {"XL_POSTGRES_PASSWORD", "XL_KAFKA_PASSWORD"},
        "api": {"XL_JWT_SECRET", "XL_POSTGRES_PASSWORD"},
    }
    for name, want in expected.items():
        assert set(services[name]["environment"]) & secrets == want, name
    assert services["detector"]["environment"]["XL_KAFKA_USERNAME"] == "xl-detector"
    for name in ("prometheus", "grafana"):
        assert all(p.startswith("127.0.0.1:") for p in services[name]["ports"]), name
    settings = load_config(REPO / "deploy/compose/xueliang.yaml")
    assert settings.bus.type == "kafka" and settings.bus.security.protocol == "SASL_PLAINTEXT"


# ---------------------------------------------------------------- kubernetes
@pytest.mark.parametrize("where,doc", k8s_docs(), ids=lambda v: v if isinstance(v, str) else "")
def test_k8s_resource_matches_its_schema(where: str, doc: dict[str, Any]) -> None:
    if doc["apiVersion"].startswith("kafka.strimzi.io/"):
        errors = [f"{list(e.path)}: {e.message}" for e in strimzi_validator().iter_errors(doc)]
        assert not errors, (where, errors)
    else:
        import kubernetes_validate

        kubernetes_validate.validate(doc, K8S_VERSION, strict=True)


def test_k8s_validation_is_strict() -> None:
    import kubernetes_validate

    docs = dict(k8s_docs())
    deployment = copy.deepcopy(next(d for d in docs.values() if d["kind"] == "Deployment"))
    deployment["spec"]["template"]["spec"]["containers"][0]["livenessProbe"]["httpGett"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, K8S_VERSION, strict=True)
    kafka = copy.deepcopy(next(d for d in docs.values() if d["kind"] == "Kafka"))
    kafka["spec"]["kafka"]["listeners"][0]["typ"] = "internal"
    assert list(strimzi_validator().iter_errors(kafka))


def test_k8s_has_probes_resources_and_lag_autoscaling() -> None:
    docs = [d for _, d in k8s_docs()]
    deployments = {d["metadata"]["name"]: d for d in docs if d["kind"] == "Deployment"}
    assert set(deployments) == {"xueliang-ingest", "xueliang-detector", "xueliang-dispatch", "xueliang-api"}
    for name, d in deployments.items():
        c = d["spec"]["template"]["spec"]["containers"][0]
        assert {"livenessProbe", "readinessProbe", "startupProbe"} <= set(c), name
        assert c["resources"]["requests"]["cpu"] and c["resources"]["requests"]["memory"], name
        mounts = {v["name"] for v in d["spec"]["template"]["spec"]["volumes"]}
        assert "config" in mounts
    hpa = next(d for d in docs if d["kind"] == "HorizontalPodAutoscaler")
    assert hpa["spec"]["scaleTargetRef"]["name"] == "xueliang-detector"
    metric = hpa["spec"]["metrics"][0]["external"]["metric"]
    assert metric["name"] == "xl_kafka_consumer_lag"
    from xueliang.detector.worker import GROUP

    assert metric["selector"]["matchLabels"] == {"group": GROUP, "topic": Topics().frames}
    frames = next(d for d in docs if d["kind"] == "KafkaTopic" and d["metadata"]["name"] == Topics().frames)
    assert hpa["spec"]["maxReplicas"] <= frames["spec"]["partitions"]
    assert any(d["kind"] == "Kafka" for d in docs) and any(d["kind"] == "KafkaNodePool" for d in docs)


def test_k8s_each_component_gets_only_its_secrets_and_kafka_is_authenticated() -> None:
    """Issue 16 #3 and #12: per-component secrets (the detector, which parses untrusted JPEGs, holds no
    JWT key, database or camera password), SCRAM over TLS with ACLs, NetworkPolicies, API readiness on /readyz."""
    docs = [d for _, d in k8s_docs()]
    deployments = {d["metadata"]["name"]: d for d in docs if d["kind"] == "Deployment"}

    def env(name: str) -> dict[str, Any]:
        c = deployments[name]["spec"]["template"]["spec"]["containers"][0]
        return {e["name"]: e for e in c["env"]}

    expected = {
        "xueliang-ingest": {"XL_CAMERA_USER", "XL_CAMERA_PASSWORD", "XL_KAFKA_PASSWORD"},
        "xueliang-detector": {"XL_KAFKA_PASSWORD"},
        "xueliang-dispatch": {"XL_POSTGRES_PASSWORD", "XL_KAFKA_PASSWORD"},
        "xueliang-api": {"XL_JWT_SECRET", "XL_POSTGRES_PASSWORD"},
    }
    for name, secrets in expected.items():
        e = env(name)
        assert {k for k, v in e.items() if "valueFrom" in v} == secrets, name
        if "XL_KAFKA_PASSWORD" in secrets:
            user = e["XL_KAFKA_USERNAME"]["value"]
            assert e["XL_KAFKA_PASSWORD"]["valueFrom"]["secretKeyRef"]["name"] == user == f"xl-{name.split('-')[1]}"
            assert e["XL_KAFKA_CA_FILE"]["value"] == "/etc/kafka-ca/ca.crt"
    api = deployments["xueliang-api"]["spec"]["template"]["spec"]["containers"][0]
    assert (
        api["readinessProbe"]["httpGet"]["path"] == "/readyz" and api["livenessProbe"]["httpGet"]["path"] == "/healthz"
    )
    kafka = next(d for d in docs if d["kind"] == "Kafka")["spec"]["kafka"]
    assert [(li["tls"], li["authentication"]["type"]) for li in kafka["listeners"]] == [(True, "scram-sha-512")]
    assert kafka["authorization"]["type"] == "simple" and kafka["config"]["allow.everyone.if.no.acl.found"] is False
    cm = yaml.load(dict(k8s_docs())["20-configmap.yaml#0"]["data"]["xueliang.yaml"], Loader)
    assert cm["bus"]["security"]["protocol"] == "SASL_SSL" and cm["bus"]["bootstrap_servers"][0].endswith(":9093")
    policies = {d["metadata"]["name"]: d["spec"] for d in docs if d["kind"] == "NetworkPolicy"}
    assert policies["default-deny-ingress"] == {"podSelector": {}, "policyTypes": ["Ingress"]}
    pg = policies["postgres-from-dispatch-and-api"]
    assert pg["ingress"][0]["ports"] == [{"protocol": "TCP", "port": 5432}]
    assert pg["ingress"][0]["from"][0]["podSelector"]["matchExpressions"][0]["values"] == [
        "xueliang-dispatch",
        "xueliang-api",
    ]
    assert policies["metrics-from-prometheus"]["ingress"][0]["ports"] == [{"protocol": "TCP", "port": 9100}]
    assert "Egress" in policies["detector-egress-kafka-and-dns-only"]["policyTypes"]


def test_strimzi_topics_mirror_the_contracts() -> None:
    cm = dict(k8s_docs())["20-configmap.yaml#0"]
    frame_partitions = yaml.load(cm["data"]["xueliang.yaml"], Loader)["bus"]["frame_partitions"]
    specs = {s.name: s for s in topic_specs(Topics(), frame_partitions)}
    topics = {d["metadata"]["name"]: d["spec"] for _, d in k8s_docs() if d["kind"] == "KafkaTopic"}
    assert set(topics) == set(specs)
    for name, spec in specs.items():
        t = topics[name]
        assert t["partitions"] == spec.partitions, name
        assert t["config"]["retention.ms"] == spec.retention_ms, name
        assert t["config"]["max.message.bytes"] == spec.max_message_bytes, name
        assert (t["config"].get("cleanup.policy") == "compact") == spec.compacted, name


# ---------------------------------------------------------------- county configuration
def _generator():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("generate_county", REPO / "deploy/config/generate_county.py")
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.mark.slow  # parsing 400 kB of YAML with line numbers takes ~5 s here
def test_county_config_is_generated_and_valid() -> None:
    text, configmap = _generator().render()
    assert (REPO / "deploy/config/county-production.yaml").read_text(encoding="utf-8") == text, (
        "stale: run python deploy/config/generate_county.py"
    )
    assert (K8S / "20-configmap.yaml").read_text(encoding="utf-8") == configmap
    settings = load_config(REPO / "deploy/config/county-production.yaml")
    assert len(settings.cameras) >= 300
    tiers = [c.tier.value for c, _ in settings.centres.walk()]
    assert tiers.count("township") == 16 and tiers.count("village") > 300
    assert settings.bus.type == "kafka" and settings.store.url.startswith("postgresql")
    # secrets stay references in the file
    assert "${XL_CAMERA_PASSWORD}" in text and "${XL_JWT_SECRET}" in text


def test_configmap_carries_the_county_config() -> None:
    text = dict(k8s_docs())["20-configmap.yaml#0"]["data"]["xueliang.yaml"]
    assert text == (REPO / "deploy/config/county-production.yaml").read_text(encoding="utf-8")
    # secrets are expanded from the pod's environment (the Secret xueliang-secrets)
    head = text.split("cameras:")[0] + "cameras:\n" + text.split("cameras:\n")[1].split("\n- id:")[0] + "\n"
    settings = parse_config(
        head, "20-configmap.yaml", env={"XL_CAMERA_PASSWORD": "pw", "XL_POSTGRES_PASSWORD": "pw", "XL_JWT_SECRET": "s"}
    )
    assert "admin:pw@" in settings.cameras[0].source.url


def test_grafana_provisioning_matches_the_compose_mounts() -> None:
    provider = yaml.safe_load((REPO / "deploy/grafana/provisioning/dashboards/xueliang.yml").read_text())
    datasource = yaml.safe_load((REPO / "deploy/grafana/provisioning/datasources/prometheus.yml").read_text())
    assert provider["apiVersion"] == 1 and datasource["apiVersion"] == 1
    path = provider["providers"][0]["options"]["path"]
    grafana = yaml.safe_load((REPO / "deploy/compose/docker-compose.yml").read_text())["services"]["grafana"]
    mounts = {v.split(":")[1]: v.split(":")[0] for v in grafana["volumes"]}
    assert mounts[path] == "../grafana/dashboards"
    assert mounts["/etc/grafana/provisioning"] == "../grafana/provisioning"
    assert datasource["datasources"][0]["url"] == "${XL_PROMETHEUS_URL}"
    assert grafana["environment"]["XL_PROMETHEUS_URL"] == "http://prometheus:9090"
    home = grafana["environment"]["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    assert home.startswith(path) and (REPO / "deploy/grafana/dashboards" / Path(home).name).exists()
