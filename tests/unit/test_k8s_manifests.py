"""The Kubernetes manifests in k8s/ must render, be valid, and agree with the code.

Each overlay is rendered by a real kustomize (the pinned one `make k8s-tools` builds from the Go module
proxy; this module runs that target itself when it is missing, so nothing is skipped). Built-in kinds are
validated against the Kubernetes JSON schemas bundled in `kubernetes-validate`, ScaledObjects,
PodMonitors and PrometheusRules against the CRDs of the KEDA and Prometheus operator releases the Makefile
pins (tests/unit/test_alerts.py checks the rules themselves with promtool). Every
replyflow container's environment is then handed to the real service factory in a subprocess, which
reports the topics, consumer groups, routes and timeouts that process would really use.
"""

from __future__ import annotations

import copy
import functools
import importlib.util
import json
import math
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlparse

import jsonschema
import kubernetes_validate
import pytest
import yaml

from replyflow import topics
from replyflow.kafka import topic_config
from replyflow.local.model_server import MODEL_ALIAS
from replyflow.settings import DEFAULT_HTTP_PORTS, Settings
from tests.helpers import ROOT, TOOL_CACHE, make_var, provided_by_make

OVERLAYS = ("dev", "prod")
SETTINGS_ENV = {name.upper() for name in Settings.model_fields}
K8S_VERSIONS = ("1.30.0", kubernetes_validate.latest_version() + ".0")  # oldest we support, newest schemas
CRD_KINDS = {"KafkaTopic", "Kafka", "KafkaNodePool", "ScaledObject", "PodMonitor", "PrometheusRule"}
# Consumer Deployments: stage (consumer group suffix, Settings.group_id) and topic, as the code spells them.
CONSUMERS = {
    "policy-screen": ("policy-screen", topics.COMMENTS_RECEIVED),
    "policy-verify": ("policy-verify", topics.REPLIES_DRAFTED),
    "generation": ("generation", topics.COMMENTS_SCREENED),
    "publisher": ("publisher", topics.REPLIES_APPROVED),
}
# HTTP APIs behind a Service of their own name: Deployment -> module.
HTTP_APIS = {"ingest": "replyflow.ingest", "control": "replyflow.control"}
# Deployments whose consumer group shares out a topic's partitions to own what they key: (stage, topic).
OWNERS = {"youtube-poller": ("youtube-poller", topics.YOUTUBE_POLL_CURSORS)}
# Every Deployment's consumer groups (stage) and topics: the scaled stages plus control's review outputs and its
# creators' profile writer.
STAGE_GROUPS = {**{name: [group] for name, group in CONSUMERS.items()},
                "control": [("control-review", topics.REPLIES_REVIEWED), ("control-profiles", topics.CREATORS_CHANGES)]}
REPLYFLOW_DEPLOYMENTS = {*HTTP_APIS, *CONSUMERS, *OWNERS}
# dev takes YouTube comments through ingest's API: it has no channel grants to poll with.
DEPLOYMENTS_IN = {"dev": REPLYFLOW_DEPLOYMENTS - {"youtube-poller"}, "prod": REPLYFLOW_DEPLOYMENTS}
DEPLOYMENT_CASES = [(overlay, name) for overlay in OVERLAYS for name in sorted(DEPLOYMENTS_IN[overlay])]
# Scaled by KEDA or an HPA; the partition owners run a fixed count (their work is not a backlog). In prod the
# GPU model servers too, on their load (components/llm-autoscaling).
AUTOSCALED = REPLYFLOW_DEPLOYMENTS - set(OWNERS)
AUTOSCALED_IN = {"dev": AUTOSCALED, "prod": AUTOSCALED | {"vllm"}}
# Metrics of other programs the rules and the scalers use, with their own labels. vLLM V1 (>= 0.10, the image
# base/vllm.yaml pins) labels its engine metrics model_name and engine; `kv_cache_usage_perc` was
# `gpu_cache_usage_perc` before 0.10. Strimzi's Kafka Exporter (`spec.kafkaExporter` of the Kafka CR,
# k8s/README.md) exports lag per consumer group, topic and partition. FastStream's faststream_* metrics are not
# used by any rule.
EXTERNAL_METRICS = {
    "vllm:kv_cache_usage_perc": frozenset({"model_name", "engine"}),
    "vllm:num_preemptions_total": frozenset({"model_name", "engine"}),
    "vllm:num_requests_waiting": frozenset({"model_name", "engine"}),
    "vllm:num_requests_running": frozenset({"model_name", "engine"}),
    "kafka_consumergroup_lag": frozenset({"consumergroup", "topic", "partition"}),
}


# ---------------------------------------------------------------- tools and rendering


@functools.cache
def tools() -> dict[str, Path]:
    """The pinned kustomize, promtool and CRD sources; built by `make k8s-tools` (Go module proxy) when missing."""
    cache = TOOL_CACHE / "k8s"
    keda, prom = make_var("KEDA_VERSION"), make_var("PROMETHEUS_OPERATOR_VERSION")
    gomod = cache / "gomod" / "github.com"
    crds = gomod / f"prometheus-operator/prometheus-operator@{prom}" / "example/prometheus-operator-crd"
    paths = {
        "kustomize": cache / f"kustomize-{make_var('KUSTOMIZE_VERSION')}" / "kustomize",
        "promtool": cache / f"promtool-{make_var('PROMETHEUS_VERSION')}" / "promtool",
        "ScaledObject": gomod / f"kedacore/keda/v2@{keda}/config/crd/bases/keda.sh_scaledobjects.yaml",
        "PodMonitor": crds / "monitoring.coreos.com_podmonitors.yaml",
        "PrometheusRule": crds / "monitoring.coreos.com_prometheusrules.yaml",
        "kafka_scaler": gomod / f"kedacore/keda/v2@{keda}/pkg/scalers/kafka_scaler.go",
        "prometheus_scaler": gomod / f"kedacore/keda/v2@{keda}/pkg/scalers/prometheus_scaler.go",
        "keda_go_mod": gomod / f"kedacore/keda/v2@{keda}/go.mod",
        "keda_formula": cache / "keda-formula" / "keda-formula",
    }
    return provided_by_make("k8s-tools", paths)


@functools.cache
def render(overlay: str) -> tuple[dict, ...]:
    done = subprocess.run([str(tools()["kustomize"]), "build", str(ROOT / "k8s" / "overlays" / overlay)],
                          capture_output=True, text=True)
    assert done.returncode == 0, f"kustomize build {overlay} failed:\n{done.stderr}"
    return tuple(doc for doc in yaml.safe_load_all(done.stdout) if doc)


def of_kind(docs, kind: str) -> dict[str, dict]:
    return {d["metadata"]["name"]: d for d in docs if d["kind"] == kind}


def pod_spec(workload: dict) -> dict:
    return workload["spec"]["template"]["spec"]


def container(workload: dict) -> dict:
    containers = pod_spec(workload)["containers"]
    assert len(containers) == 1, workload["metadata"]["name"]
    return containers[0]


def config_map(docs) -> dict[str, str]:
    (cm,) = [d for d in docs if d["kind"] == "ConfigMap" and d["metadata"]["name"].startswith("replyflow-config")]
    return cm["data"]


def environment(docs, c: dict) -> dict[str, str | None]:
    """The env a container gets: envFrom ConfigMaps, then env (None for values from Secrets)."""
    configmaps = of_kind(docs, "ConfigMap")
    env: dict[str, str | None] = {}
    for source in c.get("envFrom", []):
        assert "configMapRef" in source, f"{c['name']}: envFrom only from ConfigMaps (Secrets go by key)"
        env.update(configmaps[source["configMapRef"]["name"]]["data"])
    for var in c.get("env", []):
        env[var["name"]] = var.get("value")
    return env


def settings_of(env: dict[str, str | None]) -> Settings:
    values = {k.lower(): ("secret" if v is None else v) for k, v in env.items()}
    return Settings(_env_file=None, **values)


@functools.cache
def introspect(overlay: str, name: str) -> dict:
    """Build the Deployment's real service app from its rendered env; report what it would consume and serve."""
    docs = render(overlay)
    c = container(of_kind(docs, "Deployment")[name])
    module = c["command"][2]
    script = f"""
import importlib, inspect, json
from replyflow import kafka
from replyflow.settings import Settings
followed = []  # topics read whole into memory, without a consumer group (TopicTable)
_init = kafka.TopicTable.__init__
def _recording_init(self, *args, **kwargs):
    _init(self, *args, **kwargs)
    followed.append(self.topic.name)
kafka.TopicTable.__init__ = _recording_init
mod = importlib.import_module({module!r})
factory = getattr(mod, "create_app", None) or importlib.import_module({module!r} + ".service").create_app
settings = Settings()
app = factory(settings)
service = {module!r}.rsplit(".", 1)[1].replace("_", "-")
consumers = [[t, s.group_id] for s in app.broker.subscribers for t in s.topics]
windowed = getattr(app, "state_consumer", None)
if windowed is not None:
    consumers.append([windowed.topic, windowed.group_id])
print(json.dumps({{
    "consumers": consumers,
    "owned": [[t.name, g] for t, g in app.parts.owned_partitions],
    "routes": [path for path, _ in app.routes],
    "port": settings.http_port_for(service),
    "broker_graceful_timeout_s": app.broker.config.graceful_timeout,
    "uvicorn_graceful_shutdown_s": int(settings.retry_backoff_max_s + 15),
    "drain_timeout_s": windowed._drain_timeout_s if windowed is not None else 0,
    "tables": sorted(followed),
    "table_catch_up_s": inspect.signature(kafka.TopicTable.start).parameters["catch_up_timeout_s"].default,
}}))
"""
    env = {k: ("secret" if v is None else v) for k, v in environment(docs, c).items()}
    base = {k: v for k, v in os.environ.items() if k.upper() not in SETTINGS_ENV}
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT,
                          env={**base, **env}, timeout=120)
    assert done.returncode == 0, f"{overlay}/{name}: the service does not start from its env:\n{done.stderr[-3000:]}"
    return json.loads(done.stdout.strip().splitlines()[-1])


def probe_ports(c: dict) -> dict[str, int]:
    return {p["name"]: p["containerPort"] for p in c.get("ports", [])}


def replyflow_image(c: dict) -> bool:
    """The project's image (Dockerfile), whatever registry and tag an overlay gives it."""
    return c["image"].rsplit("/", 1)[-1].split(":")[0] == "replyflow"


def selects(selector: dict, labels: dict) -> bool:
    return all(labels.get(k) == v for k, v in selector.items())


# ---------------------------------------------------------------- rendering and schemas


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_overlay_renders(overlay):
    kinds = {d["kind"] for d in render(overlay)}
    assert {"Namespace", "Deployment", "ConfigMap", "KafkaTopic", "PodDisruptionBudget"} <= kinds
    assert set(of_kind(render(overlay), "Deployment")) & REPLYFLOW_DEPLOYMENTS == DEPLOYMENTS_IN[overlay]
    namespaces = {d["metadata"].get("namespace") for d in render(overlay) if d["kind"] != "Namespace"}
    (ns,) = of_kind(render(overlay), "Namespace")
    assert namespaces == {ns}, "everything lands in the overlay's namespace"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_kubectl_kustomize_renders_the_same(overlay):
    """The README applies with `kubectl kustomize` (its bundled kustomize): same output as the pinned one."""
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl is not installed; the pinned kustomize rendered the overlays")
    done = subprocess.run([kubectl, "kustomize", str(ROOT / "k8s" / "overlays" / overlay)],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert tuple(d for d in yaml.safe_load_all(done.stdout) if d) == render(overlay)


@pytest.mark.parametrize("version", K8S_VERSIONS)
@pytest.mark.parametrize("overlay", OVERLAYS)
def test_builtin_resources_match_the_kubernetes_schemas(overlay, version):
    validated = 0
    for doc in render(overlay):
        if doc["kind"] in CRD_KINDS:
            continue
        try:
            kubernetes_validate.validate(doc, version, strict=True)
        except kubernetes_validate.ValidationError as e:
            pytest.fail(f"{overlay}: {doc['kind']}/{doc['metadata']['name']} invalid for Kubernetes {version}: {e}")
        validated += 1
    assert validated >= 10


def test_schema_validation_catches_a_misspelt_field():
    """The strict schemas really reject what the API server would drop (a control for the test above)."""
    deployment = copy.deepcopy(of_kind(render("prod"), "Deployment")["generation"])
    container(deployment)["readinesProbe"] = container(deployment).pop("readinessProbe")
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, K8S_VERSIONS[0], strict=True)


def crd_schema(kind: str) -> dict:
    crd = yaml.safe_load(tools()[kind].read_text())
    (served,) = [v for v in crd["spec"]["versions"] if v.get("storage")]
    return strict_structural(served["schema"]["openAPIV3Schema"])


def strict_structural(schema: dict) -> dict:
    """Unknown fields are pruned by the API server (and rejected by `kubectl apply --validate=strict`):
    make them errors, except where the CRD keeps unknown fields."""
    schema = dict(schema)
    if "properties" in schema and not schema.get("x-kubernetes-preserve-unknown-fields"):
        schema.setdefault("additionalProperties", False)
    for key in ("properties",):
        if key in schema:
            schema[key] = {k: strict_structural(v) for k, v in schema[key].items()}
    for key in ("items", "additionalProperties"):
        if isinstance(schema.get(key), dict):
            schema[key] = strict_structural(schema[key])
    for key in ("allOf", "anyOf", "oneOf"):
        if key in schema:
            schema[key] = [strict_structural(s) for s in schema[key]]
    return schema


@pytest.mark.parametrize("kind", ["ScaledObject", "PodMonitor", "PrometheusRule"])
def test_custom_resources_match_their_crds(kind):
    docs = list(of_kind(render("prod"), kind).values())
    assert docs
    validator = jsonschema.Draft202012Validator(crd_schema(kind))
    for doc in docs:
        body = {k: v for k, v in doc.items() if k != "metadata"}
        errors = [f"{'/'.join(map(str, e.path))}: {e.message}" for e in validator.iter_errors(body)]
        assert not errors, f"{kind}/{doc['metadata']['name']}: {errors}"
    broken = copy.deepcopy(docs[0])
    broken["spec"]["misspelt"] = 1
    assert not validator.is_valid({k: v for k, v in broken.items() if k != "metadata"})


def test_keda_triggers_use_only_parameters_their_scaler_knows():
    """Trigger metadata is a free-form map in the CRD; the real parameter names are in KEDA's source."""
    known: dict[str, set[str]] = {}
    for scaler in ("kafka", "prometheus"):
        params = dict(re.findall(r'keda:"name=(\w+),\s*order=([\w;]+)', tools()[f"{scaler}_scaler"].read_text()))
        assert len(params) >= 8, scaler
        known[scaler] = set(params) | {f"{n}FromEnv" for n, order in params.items() if "resolvedEnv" in order}
    for so in of_kind(render("prod"), "ScaledObject").values():
        for trigger in so["spec"]["triggers"]:
            unknown = set(trigger["metadata"]) - known[trigger["type"]]
            assert not unknown, f"{so['metadata']['name']}: KEDA's {trigger['type']} scaler has no {unknown}"


def triggers_of(so: dict, kind: str) -> list[dict]:
    return [t for t in so["spec"]["triggers"] if t["type"] == kind]


def keda_formula(formula: str, triggers: list[str], cases: list[dict[str, float]]) -> list[float]:
    """``formula`` evaluated for each case by KEDA's expression library, after KEDA's own admission check."""
    done = subprocess.run([str(tools()["keda_formula"])], input=json.dumps(
        {"formula": formula, "triggers": triggers, "cases": cases}), capture_output=True, text=True, timeout=30)
    if done.returncode:
        raise ValueError(done.stderr.strip())
    return json.loads(done.stdout)["results"]


def test_the_formula_checker_uses_kedas_expression_library_and_refuses_what_keda_refuses():
    keda_requires = re.search(r"github.com/expr-lang/expr (v\S+)", tools()["keda_go_mod"].read_text()).group(1)
    ours = re.search(r"github.com/expr-lang/expr (v\S+)",
                     (ROOT / "tests" / "tools" / "keda_formula" / "go.mod").read_text()).group(1)
    assert ours == keda_requires
    with pytest.raises(ValueError, match="unknown name"):
        keda_formula("min(lag, gpus * 2)", ["lag", "engines"], [])


def prometheus_queries(overlay: str) -> dict[str, str]:
    """Every KEDA Prometheus query: "scaledobject/trigger" -> PromQL."""
    return {f"{name}/{t['name']}": t["metadata"]["query"]
            for name, so in of_kind(render(overlay), "ScaledObject").items() for t in triggers_of(so, "prometheus")}


def test_prometheus_triggers_ask_valid_promql_about_this_namespaces_vllm():
    """The queries parse (promtool checks them as recording rules), name only metrics vLLM exports, and select
    the namespace the overlay deploys to: kustomize does not rewrite PromQL."""
    queries = prometheus_queries("prod")
    assert queries
    (namespace,) = of_kind(render("prod"), "Namespace")
    for where, query in queries.items():
        selectors = re.findall(r"([a-z_:]+)\{([^}]*)\}", query)
        assert selectors and all(metric in EXTERNAL_METRICS for metric, _ in selectors), where
        assert all(labels == f'namespace="{namespace}"' for _, labels in selectors), where
        assert query.count("max by (pod, engine) (") == len(selectors), f"{where}: once per pod, however scraped"
    rules = {"groups": [{"name": "keda", "rules": [{"record": f"keda:{i}", "expr": q}
                                                    for i, q in enumerate(queries.values())]}]}
    path = TOOL_CACHE / "k8s" / "keda-queries.rules.yaml"
    path.write_text(yaml.safe_dump(rules))
    done = subprocess.run([str(tools()["promtool"]), "check", "rules", str(path)], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    path.write_text(yaml.safe_dump({"groups": [{"name": "keda", "rules": [{"record": "keda:x", "expr": "sum("}]}]}))
    assert subprocess.run([str(tools()["promtool"]), "check", "rules", str(path)], capture_output=True).returncode
    servers = {t["metadata"]["serverAddress"] for so in of_kind(render("prod"), "ScaledObject").values()
               for t in triggers_of(so, "prometheus")}
    assert len(servers) == 1, "one Prometheus to set for the cluster"


def replicas_for(so: dict, cases: list[dict[str, float]]) -> list[int]:
    """What the HPA KEDA feeds would ask for, per case of trigger values (a scalingModifiers formula's)."""
    modifiers = so["spec"]["advanced"]["scalingModifiers"]
    assert modifiers["metricType"] == "AverageValue"
    names = [t["name"] for t in so["spec"]["triggers"]]
    results = keda_formula(modifiers["formula"], names, cases)
    wanted = [max(1, math.ceil(r / float(modifiers["target"]))) for r in results]
    return [min(max(n, so["spec"]["minReplicaCount"]), so["spec"]["maxReplicaCount"]) for n in wanted]


def test_generation_scales_on_lag_but_to_at_most_two_replicas_per_vllm_engine():
    """Past the GPUs' capacity more generation replicas only add rebalances (one replica's window can fill an
    engine); with lag but no engine scraped, generation stays at its floor."""
    so = of_kind(render("prod"), "ScaledObject")["generation"]
    (lag,) = triggers_of(so, "kafka")
    per_replica = int(lag["metadata"]["lagThreshold"])
    assert float(so["spec"]["advanced"]["scalingModifiers"]["target"]) == per_replica
    cases = [{"lag": 6 * per_replica, "engines": 1}, {"lag": 6 * per_replica, "engines": 2},
             {"lag": 6 * per_replica, "engines": 3}, {"lag": 3 * per_replica, "engines": 4},
             {"lag": 6 * per_replica, "engines": 0}, {"lag": 0, "engines": 4}]
    assert replicas_for(so, cases) == [2, 4, 6, 3, 2, 2]
    deployments = of_kind(render("prod"), "Deployment")
    window = int(environment(render("prod"), container(deployments["generation"]))["LLM_MAX_INFLIGHT"])
    assert window >= int(args_to_flags(container(deployments["vllm"])["args"])["--max-num-seqs"])


def test_vllm_scales_on_the_requests_it_holds_and_its_kv_cache_one_gpu_at_a_time():
    so = of_kind(render("prod"), "ScaledObject")["vllm"]
    assert so["spec"]["scaleTargetRef"]["name"] == "vllm" and so["spec"]["minReplicaCount"] >= 2
    triggers = {t["name"]: t for t in triggers_of(so, "prometheus")}
    assert set(triggers) == {"requests", "kv_cache"}
    seqs = int(args_to_flags(container(of_kind(render("prod"), "Deployment")["vllm"])["args"])["--max-num-seqs"])
    requests = float(triggers["requests"]["metadata"]["threshold"])
    assert 0.5 * seqs <= requests < seqs, "scale out before the sequence slots run out"
    assert 0.5 <= float(triggers["kv_cache"]["metadata"]["threshold"]) < 1
    behavior = so["spec"]["advanced"]["horizontalPodAutoscalerConfig"]["behavior"]
    assert behavior["scaleUp"]["policies"] == [{"type": "Pods", "value": 1, "periodSeconds": 300}], "cold starts"
    assert behavior["scaleDown"]["stabilizationWindowSeconds"] >= 600


# ---------------------------------------------------------------- agreement with the code


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_env_var_is_a_setting_with_a_valid_value(overlay):
    docs = render(overlay)
    assert set(config_map(docs)) <= SETTINGS_ENV, set(config_map(docs)) - SETTINGS_ENV
    for kind in ("Deployment", "Job"):
        for name, workload in of_kind(docs, kind).items():
            c = container(workload)
            if not replyflow_image(c) or "loadtest" in " ".join(c["command"]):
                continue
            env = environment(docs, c)
            unknown = set(env) - SETTINGS_ENV
            assert not unknown, f"{overlay}: {name} sets {unknown}, which replyflow does not read (extra=ignore)"
            settings_of(env)  # raises on a value Settings rejects


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_commands_are_real_entry_points(overlay):
    expected = {**HTTP_APIS, "youtube-poller": "replyflow.youtube_poller",
                "policy-screen": "replyflow.policy", "policy-verify": "replyflow.policy",
                "generation": "replyflow.generation", "publisher": "replyflow.publisher"}
    docs = render(overlay)
    workloads = [*of_kind(docs, "Deployment").values(), *of_kind(docs, "Job").values()]
    for workload in workloads:
        c = container(workload)
        if not replyflow_image(c):
            continue  # vLLM, llama.cpp: their images' own servers
        command = c["command"]
        assert command[:2] == ["python", "-m"], command
        module = command[2]
        spec = importlib.util.find_spec(module)
        assert spec is not None, f"{workload['metadata']['name']} runs missing module {module}"
        runnable = (spec.submodule_search_locations and importlib.util.find_spec(f"{module}.__main__")) or (
            spec.origin and 'if __name__ == "__main__"' in Path(spec.origin).read_text())
        assert runnable, f"`python -m {module}` does nothing"
        if workload["metadata"]["name"] in expected:
            assert module == expected[workload["metadata"]["name"]]


@pytest.mark.parametrize(("overlay", "name"), DEPLOYMENT_CASES)
def test_each_deployment_consumes_what_its_name_says(overlay, name):
    """The real app built from the Deployment's env: policy-screen runs only screen, policy-verify only verify."""
    facts = introspect(overlay, name)
    prefix = settings_of(config_map(render(overlay))).kafka_group_prefix
    if name in STAGE_GROUPS:
        wanted = [[topic.name, f"{prefix}.{stage}"] for stage, topic in STAGE_GROUPS[name]]
        assert sorted(facts["consumers"]) == sorted(wanted)
    else:
        assert facts["consumers"] == [], f"{name} consumes no stage's topic"
    if name in OWNERS:
        stage, topic = OWNERS[name]
        assert facts["owned"] == [[topic.name, f"{prefix}.{stage}"]]
    else:
        assert facts["owned"] == [], f"{name} owns no partitions"


@pytest.mark.parametrize(("overlay", "name"), DEPLOYMENT_CASES)
def test_probes_and_scrape_target_are_what_the_service_serves(overlay, name):
    facts = introspect(overlay, name)
    workload = of_kind(render(overlay), "Deployment")[name]
    c = container(workload)
    ports = probe_ports(c)
    assert ports["http"] == facts["port"], "containerPort `http` is not the port the service binds"
    assert facts["port"] == DEFAULT_HTTP_PORTS[c["command"][2].rsplit(".", 1)[1].replace("_", "-")]
    assert c["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert c["startupProbe"]["httpGet"]["path"] == "/healthz"
    assert c["readinessProbe"]["httpGet"]["path"] == "/readyz"
    for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
        get = c[probe]["httpGet"]
        assert get["path"] in facts["routes"]
        assert ports.get(get["port"], get["port"]) == facts["port"]
    annotations = workload["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/scrape"] == "true"
    assert int(annotations["prometheus.io/port"]) == facts["port"]
    assert annotations["prometheus.io/path"] in facts["routes"]


@pytest.mark.parametrize(("overlay", "name"), DEPLOYMENT_CASES)
def test_startup_probe_waits_for_the_topics_read_whole(overlay, name):
    """The HTTP server (and /healthz) comes up only after each topic the service reads whole into memory
    (creators.config; the publisher's ledger; control's review topics) is caught up, one after the other, each
    within the table's catch-up timeout. Those topics must exist: the service exits when one is missing."""
    facts = introspect(overlay, name)
    if name == "control":  # what k8s/README.md and base/control.yaml say it waits for
        assert {topics.REPLIES_REVIEW.name, topics.REPLIES_REVIEWED.name} <= set(facts["tables"])
    assert set(facts["tables"]) <= set(kafka_topics(overlay)), f"{name} follows a topic k8s does not declare"
    startup = container(of_kind(render(overlay), "Deployment")[name])["startupProbe"]
    needed = len(facts["tables"]) * facts["table_catch_up_s"] + 30
    assert startup["periodSeconds"] * startup["failureThreshold"] >= needed, f"{name}: startup probe < {needed} s"


@pytest.mark.parametrize(("overlay", "name"), DEPLOYMENT_CASES)
def test_grace_period_covers_the_shutdown(overlay, name):
    """SIGTERM: uvicorn drains HTTP, the broker finishes the batch in hand, generation drains model calls."""
    facts = introspect(overlay, name)
    workload = of_kind(render(overlay), "Deployment")[name]
    spec = pod_spec(workload)
    pre_stop = container(workload).get("lifecycle", {}).get("preStop", {})
    sleep = int(pre_stop["exec"]["command"][-1]) if pre_stop else 0
    needed = sleep + max(facts["broker_graceful_timeout_s"], facts["uvicorn_graceful_shutdown_s"],
                         facts["drain_timeout_s"] + 10) + 10
    assert spec["terminationGracePeriodSeconds"] >= needed, f"{name}: grace < {needed} s"


def kafka_topics(overlay: str) -> dict[str, dict]:
    return {t["spec"]["topicName"]: t for t in of_kind(render(overlay), "KafkaTopic").values()}


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_kafka_topics_are_the_codes_topics(overlay):
    """What `python -m replyflow.admin topics` creates (kafka.ensure_topics) is what k8s declares."""
    replicas = next(iter(kafka_topics(overlay).values()))["spec"]["replicas"]
    expected = {t.name: (t.partitions, topic_config(t.compacted, t.retention_ms, replicas))
                for t in topics.ALL_TOPICS}
    # kafka.ensure_topics gives each consumed topic a one-partition dead-letter topic
    expected |= {t.dlq: (topics.DLQ_PARTITIONS, topic_config(False, topics.DLQ_RETENTION_DAYS * 86_400_000, replicas))
                 for t in topics.CONSUMED_TOPICS}
    found = {name: (t["spec"]["partitions"], {k: str(v) for k, v in t["spec"]["config"].items()})
             for name, t in kafka_topics(overlay).items()}
    assert found == expected


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_kafka_topics_belong_to_the_cluster_the_services_use(overlay):
    docs = render(overlay)
    bootstrap = settings_of(config_map(docs)).kafka_bootstrap_servers
    for name, topic in kafka_topics(overlay).items():
        cluster = topic["metadata"]["labels"]["strimzi.io/cluster"]
        for server in bootstrap.split(","):
            assert server.startswith(f"{cluster}-kafka-bootstrap"), f"{name} is on {cluster}, services use {server}"
        config = topic["spec"]["config"]
        assert 1 <= config["min.insync.replicas"] <= topic["spec"]["replicas"]
        if overlay == "prod":
            assert topic["spec"]["replicas"] >= 3 and config["min.insync.replicas"] >= 2, "acks=all must mean 2+"
    for pool in of_kind(docs, "KafkaNodePool").values():  # dev's own cluster: replicas fit its brokers
        assert all(t["spec"]["replicas"] <= pool["spec"]["replicas"] for t in kafka_topics(overlay).values())


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_publishers_ledger_outlives_the_approvals(overlay):
    """The publisher skips replies found in replies.published; an approval redelivered from replies.approved
    must still find its reply there, so the ledger is kept at least as long."""
    found = kafka_topics(overlay)
    ledger = found[topics.REPLIES_PUBLISHED.name]["spec"]["config"]["retention.ms"]
    assert ledger >= found[topics.REPLIES_APPROVED.name]["spec"]["config"]["retention.ms"]
    assert found[topics.DECISIONS.name]["spec"]["config"]["retention.ms"] >= 30 * 86_400_000, "audit trail"


def test_keda_scales_each_consumer_on_its_real_group_and_topic():
    docs = render("prod")
    scaled = of_kind(docs, "ScaledObject")
    assert set(scaled) == set(CONSUMERS) | {"vllm"}
    deployments = of_kind(docs, "Deployment")
    for name in CONSUMERS:
        so = scaled[name]
        assert so["spec"]["scaleTargetRef"]["name"] == name
        facts = introspect("prod", name)
        ((topic, group),) = facts["consumers"]
        (trigger,) = triggers_of(so, "kafka")
        meta = trigger["metadata"]
        assert (meta["topic"], meta["consumerGroup"]) == (topic, group)
        env = environment(docs, container(deployments[name]))
        servers = meta.get("bootstrapServers") or env[meta["bootstrapServersFromEnv"]]
        assert servers == env["KAFKA_BOOTSTRAP_SERVERS"]
        assert meta["offsetResetPolicy"] == "earliest", "the services start a new group at the earliest offset"


def test_keda_never_scales_past_the_partitions():
    partitions = {t.name: t.partitions for t in topics.ALL_TOPICS}
    for name in CONSUMERS:
        so = of_kind(render("prod"), "ScaledObject")[name]
        (trigger,) = triggers_of(so, "kafka")
        assert 1 <= so["spec"]["minReplicaCount"] <= so["spec"]["maxReplicaCount"]
        assert so["spec"]["maxReplicaCount"] <= partitions[trigger["metadata"]["topic"]], name
        assert trigger["metadata"].get("allowIdleConsumers", "false") == "false"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_autoscaled_deployments_leave_replicas_to_the_autoscaler(overlay):
    """A spec.replicas in the manifest would reset the autoscaler's count on every apply."""
    docs = render(overlay)
    scaled = {so["spec"]["scaleTargetRef"]["name"] for so in of_kind(docs, "ScaledObject").values()}
    scaled |= {hpa["spec"]["scaleTargetRef"]["name"] for hpa in of_kind(docs, "HorizontalPodAutoscaler").values()}
    if overlay == "prod":
        assert scaled == AUTOSCALED_IN[overlay]
    for hpa in of_kind(docs, "HorizontalPodAutoscaler").values():  # Utilization is relative to the requests
        target = of_kind(docs, "Deployment")[hpa["spec"]["scaleTargetRef"]["name"]]
        for metric in hpa["spec"]["metrics"]:
            assert metric["resource"]["name"] in container(target)["resources"]["requests"]
    for name in AUTOSCALED_IN[overlay]:
        assert "replicas" not in of_kind(docs, "Deployment")[name]["spec"], name
    for name, (_, topic) in OWNERS.items():  # one can go at a time; more than partitions would idle
        if name in DEPLOYMENTS_IN[overlay]:
            assert 2 <= of_kind(docs, "Deployment")[name]["spec"]["replicas"] <= topic.partitions, name


# ---------------------------------------------------------------- the model server


def vllm_flags() -> dict[str, str | None]:
    """`vllm serve` flags as deploy/vllm.md documents them."""
    block = re.search(r"```bash\nvllm serve (.*?)```", (ROOT / "deploy" / "vllm.md").read_text(), re.S).group(1)
    words = block.replace("\\\n", " ").split()[1:]  # after the model
    flags: dict[str, str | None] = {}
    for word, following in zip(words, [*words[1:], None], strict=True):
        if word.startswith("--"):
            flags[word] = None if following is None or following.startswith("--") else following
    return flags


def args_to_flags(args: list[str]) -> dict[str, str | None]:
    flags: dict[str, str | None] = {}
    for arg in args[1:]:
        name, _, value = arg.partition("=")
        flags[name] = value or None
    return flags


def test_vllm_runs_as_deploy_vllm_md_says_on_a_gpu():
    docs = render("prod")
    vllm = of_kind(docs, "Deployment")["vllm"]
    c = container(vllm)
    assert c["command"] == ["vllm", "serve"]
    flags = args_to_flags(c["args"])
    documented = vllm_flags()
    documented.pop("--api-key")  # the same key comes from the Secret as VLLM_API_KEY
    assert flags == documented
    assert c["resources"]["limits"]["nvidia.com/gpu"] == "1"
    spec = pod_spec(vllm)
    assert spec["nodeSelector"] and any(t["key"] == "nvidia.com/gpu" for t in spec["tolerations"])
    assert c["readinessProbe"]["httpGet"]["path"] == "/health"
    startup = c["startupProbe"]
    assert startup["periodSeconds"] * startup["failureThreshold"] >= 600, "loading weights takes minutes"
    pre_stop = c["lifecycle"]["preStop"]["exec"]["command"]
    assert pre_stop[0] == "sleep" and 10 <= int(pre_stop[1]) <= spec["terminationGracePeriodSeconds"] - 30
    assert {e["name"]: e.get("value") for e in c["env"]}["USER"], "getpass.getuser() for a UID without a passwd entry"


def test_generation_talks_to_the_vllm_service_with_its_model_name_batch_and_key():
    docs = render("prod")
    deployments = of_kind(docs, "Deployment")
    generation = container(deployments["generation"])
    settings = settings_of(environment(docs, generation))
    vllm = container(deployments["vllm"])
    flags = args_to_flags(vllm["args"])
    assert settings.llm_model == flags["--served-model-name"]
    assert settings.llm_max_inflight == int(flags["--max-num-seqs"]), "deploy/vllm.md: LLM_MAX_INFLIGHT = batch"
    url = urlparse(settings.llm_base_url)
    service = of_kind(docs, "Service")[url.hostname]
    assert selects(service["spec"]["selector"], deployments["vllm"]["spec"]["template"]["metadata"]["labels"])
    target = {p["port"]: p["targetPort"] for p in service["spec"]["ports"]}[url.port]
    assert url.path == "/v1" and probe_ports(vllm)[target] == int(flags["--port"])
    keys = {v["name"]: v["valueFrom"]["secretKeyRef"] for c in (generation, vllm) for v in c["env"] if "valueFrom" in v}
    assert keys["LLM_API_KEY"] == keys["VLLM_API_KEY"], "vLLM and generation must share the API key"


def test_dev_serves_smollm2_on_the_cpu_behind_the_same_service():
    docs = render("dev")
    deployments = of_kind(docs, "Deployment")
    assert "vllm" not in deployments
    settings = settings_of(environment(docs, container(deployments["generation"])))
    assert settings.llm_model == MODEL_ALIAS
    service = of_kind(docs, "Service")[urlparse(settings.llm_base_url).hostname]
    backends = [d for d in deployments.values()
                if selects(service["spec"]["selector"], d["spec"]["template"]["metadata"]["labels"])]
    assert [d["metadata"]["name"] for d in backends] == ["llama-cpp"]
    assert "nvidia.com/gpu" not in json.dumps(docs)
    sim = of_kind(docs, "Service")[urlparse(settings.platform_base_url).hostname]
    assert any(selects(sim["spec"]["selector"], d["spec"]["template"]["metadata"]["labels"])
               for d in deployments.values())


# ---------------------------------------------------------------- operability


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_pods_are_locked_down_and_sized(overlay):
    docs = render(overlay)
    for kind in ("Deployment", "Job"):
        for name, workload in of_kind(docs, kind).items():
            spec = pod_spec(workload)
            assert spec["securityContext"]["runAsNonRoot"] is True, name
            assert spec["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault", name
            assert spec.get("automountServiceAccountToken") is False, name
            for c in spec["containers"]:
                sc = c["securityContext"]
                assert sc["allowPrivilegeEscalation"] is False and sc["capabilities"]["drop"] == ["ALL"], name
                assert sc["readOnlyRootFilesystem"] is True, name
                for bound in ("requests", "limits"):
                    assert {"cpu", "memory"} <= set(c["resources"][bound]), f"{name} lacks {bound}"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_secrets_are_referenced_not_inlined(overlay):
    docs = render(overlay)
    secrets = of_kind(docs, "Secret")
    if overlay == "prod":
        assert not secrets, "prod Secrets are created out of band (k8s/README.md)"
    for workload in of_kind(docs, "Deployment").values():
        for c in pod_spec(workload)["containers"]:
            for var in c.get("env", []):
                if re.search(r"KEY|TOKEN|PASSWORD", var["name"]):
                    assert "secretKeyRef" in var.get("valueFrom", {}), f"{var['name']} inlined"
    assert not {k for k in config_map(docs) if re.search(r"KEY|TOKEN|PASSWORD", k)}


def secret_refs(docs) -> dict[str, list[dict]]:
    """Workload name -> the secretKeyRefs of its containers' env."""
    return {name: [var["valueFrom"]["secretKeyRef"] for c in pod_spec(w)["containers"] for var in c.get("env", [])
                   if "secretKeyRef" in var.get("valueFrom", {})]
            for kind in ("Deployment", "Job") for name, w in of_kind(docs, kind).items()}


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_control_token_comes_from_a_required_secret(overlay):
    """The control API refuses to start without CONTROL_API_TOKEN: it must come from a Secret, and a missing
    Secret must stop the pod (CreateContainerConfigError), not start it without one."""
    docs = render(overlay)
    env = {var["name"]: var for var in container(of_kind(docs, "Deployment")["control"])["env"]}
    ref = env["CONTROL_API_TOKEN"]["valueFrom"]["secretKeyRef"]
    assert ref["name"].startswith("replyflow-control") and ref["key"] == "token"
    assert not ref.get("optional", False), "the control API must not start without its token"
    others = {n for n, refs in secret_refs(docs).items() if n != "control" for r in refs if r["name"] == ref["name"]}
    assert not others, f"the control token is only the control API's, not {others}'"


def test_required_secrets_exist_in_dev_and_are_documented_for_prod():
    """dev generates every Secret a pod needs (so `kubectl apply` starts everything); prod's are created out of
    band with the `kubectl create secret` lines of k8s/README.md, which must name each one and its key."""
    dev = render("dev")
    secrets = of_kind(dev, "Secret")
    for name, refs in secret_refs(dev).items():
        for ref in refs:
            if not ref.get("optional", False):
                assert ref["name"] in secrets, f"dev: {name} needs Secret {ref['name']}"
                assert ref["key"] in secrets[ref["name"]].get("data", {}), f"dev: {ref['name']} lacks {ref['key']}"
    readme = (ROOT / "k8s" / "README.md").read_text().replace("\\\n", " ")  # join continued lines
    documented = {(name, key) for name, options in
                  re.findall(r"kubectl -n replyflow create secret generic ([\w-]+)([^\n]*)", readme)
                  for key in re.findall(r"--from-literal=([\w-]+)=", options)}
    needed = {(r["name"], r["key"]) for refs in secret_refs(render("prod")).values() for r in refs}
    assert ("replyflow-control", "token") in needed
    assert needed <= documented, f"k8s/README.md does not say how to create {needed - documented}"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_long_running_deployment_has_a_pdb_and_spreads(overlay):
    docs = render(overlay)
    pdbs = of_kind(docs, "PodDisruptionBudget").values()
    for name in [*DEPLOYMENTS_IN[overlay], *(["vllm"] if overlay == "prod" else [])]:
        workload = of_kind(docs, "Deployment")[name]
        labels = workload["spec"]["template"]["metadata"]["labels"]
        covering = [p for p in pdbs if selects(p["spec"]["selector"]["matchLabels"], labels)]
        assert len(covering) == 1, f"{name}: {len(covering)} PDBs"
        assert covering[0]["spec"].get("maxUnavailable") == 1, "maxUnavailable 1 never blocks a drain at 1 replica"
        # nor do pods unready because a dependency fails (every pod of the stage at once, for hours at worst)
        assert covering[0]["spec"].get("unhealthyPodEvictionPolicy") == "AlwaysAllow", name
        spread = pod_spec(workload)["topologySpreadConstraints"]
        assert {s["topologyKey"] for s in spread} >= {"kubernetes.io/hostname"}
        assert all(selects(s["labelSelector"]["matchLabels"], labels) for s in spread)
    for pdb in pdbs:
        assert any(selects(pdb["spec"]["selector"]["matchLabels"], d["spec"]["template"]["metadata"]["labels"])
                   for d in of_kind(docs, "Deployment").values()), f"PDB {pdb['metadata']['name']} selects nothing"


def test_podmonitors_scrape_every_service_and_vllm():
    docs = render("prod")
    monitors = of_kind(docs, "PodMonitor").values()
    for name, workload in of_kind(docs, "Deployment").items():
        labels = workload["spec"]["template"]["metadata"]["labels"]
        ports = probe_ports(container(workload))
        endpoints = [e for m in monitors if selects(m["spec"]["selector"]["matchLabels"], labels)
                     for e in m["spec"]["podMetricsEndpoints"]]
        assert endpoints, f"nothing scrapes {name}"
        assert all(e["port"] in ports and e["path"] == "/metrics" for e in endpoints)


@pytest.mark.parametrize("overlay", OVERLAYS)
@pytest.mark.parametrize("name", sorted(HTTP_APIS))
def test_http_apis_are_served_by_their_service(overlay, name):
    """Clients (platform webhooks, the creators' apps) reach ingest and control through a ClusterIP Service of
    the same name: it selects only that Deployment's pods and forwards to the port the service really binds."""
    docs = render(overlay)
    service = of_kind(docs, "Service")[name]
    assert service["spec"].get("type", "ClusterIP") == "ClusterIP", "exposure beyond the cluster is the operator's"
    backends = [n for n, d in of_kind(docs, "Deployment").items()
                if selects(service["spec"]["selector"], d["spec"]["template"]["metadata"]["labels"])]
    assert backends == [name]
    port = {p["name"]: p for p in service["spec"]["ports"]}["http"]
    assert port["targetPort"] == "http"
    facts = introspect(overlay, name)
    assert probe_ports(container(of_kind(docs, "Deployment")[name]))["http"] == facts["port"] == port["port"]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_services_select_pods_and_named_ports(overlay):
    docs = render(overlay)
    for name, service in of_kind(docs, "Service").items():
        backends = [d for d in of_kind(docs, "Deployment").values()
                    if selects(service["spec"]["selector"], d["spec"]["template"]["metadata"]["labels"])]
        assert backends, f"Service {name} selects no Deployment"
        for d in backends:
            for port in service["spec"]["ports"]:
                assert port["targetPort"] in probe_ports(container(d)), f"{name} -> {port['targetPort']}"


def match_expressions(selector: dict, labels: dict) -> bool:
    """A label selector (matchLabels and In-matchExpressions) against pod labels."""
    return selects(selector.get("matchLabels", {}), labels) and all(
        e["operator"] == "In" and labels.get(e["key"]) in e["values"] for e in selector.get("matchExpressions", []))


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_network_policies_let_in_only_who_needs_each_pod(overlay):
    docs = render(overlay)
    policies = of_kind(docs, "NetworkPolicy").values()
    deployments = of_kind(docs, "Deployment")
    monitoring = {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}}

    def covering(name: str) -> list[dict]:
        labels = deployments[name]["spec"]["template"]["metadata"]["labels"]
        return [p for p in policies if match_expressions(p["spec"]["podSelector"], labels)]

    for name in deployments.keys() & (set(CONSUMERS) | set(OWNERS)):  # Prometheus only, on the metrics port
        (policy,) = covering(name)
        (rule,) = policy["spec"]["ingress"]
        assert rule["from"] == [monitoring] and rule["ports"] == [{"port": "http"}], name
        assert "http" in probe_ports(container(deployments[name]))
    for name in deployments.keys() & set(HTTP_APIS):  # reached through the operator's Ingress
        assert not covering(name), name
    (llm,) = [d for d in deployments.values()
              if d["spec"]["template"]["metadata"]["labels"].get("app.kubernetes.io/component") == "llm"]
    llm_labels = llm["spec"]["template"]["metadata"]["labels"]
    (policy,) = [p for p in policies if match_expressions(p["spec"]["podSelector"], llm_labels)]
    (rule,) = policy["spec"]["ingress"]
    generation = deployments["generation"]["spec"]["template"]["metadata"]["labels"]
    assert [p for p in rule["from"] if "podSelector" in p and match_expressions(p["podSelector"], generation)]
    assert monitoring in rule["from"] and rule["ports"] == [{"port": "http"}]
    assert "http" in probe_ports(container(llm))
    if overlay == "prod":
        (podmonitor,) = [m for m in of_kind(docs, "PodMonitor").values()
                         if selects(m["spec"]["selector"]["matchLabels"], llm_labels)]
        assert {e["port"] for e in podmonitor["spec"]["podMetricsEndpoints"]} == {"http"}


def test_dev_kafka_takes_clients_only_from_replyflow_pods():
    docs = render("dev")
    (kafka,) = [d for d in docs if d["kind"] == "Kafka"]
    (listener,) = kafka["spec"]["kafka"]["listeners"]
    (peer,) = listener["networkPolicyPeers"]
    clients = [d for d in docs if d["kind"] in ("Deployment", "Job")
               and environment(docs, container(d)).get("KAFKA_BOOTSTRAP_SERVERS")]
    assert {d["metadata"]["name"] for d in clients} >= DEPLOYMENTS_IN["dev"] | {"load-sample-creators"}
    for client in clients:
        labels = client["spec"]["template"]["metadata"].get("labels", {})
        assert match_expressions(peer["podSelector"], labels), client["metadata"]["name"]
