"""The alerting rules (k8s/components/prometheus-operator/alerts.yaml) must be valid, fire when they should,
and speak about metrics and labels that really exist.

The rules are taken from the rendered prod overlay (the same kustomize render test_k8s_manifests.py uses; it
validates the PrometheusRule against the operator's CRD). Prometheus' own promtool (pinned in the Makefile,
built by `make k8s-tools` when missing) checks them and runs the unit tests in alerts_test.yaml. Every
expression is parsed (promql-parser) to check each metric against the services' real Prometheus registry or
the documented external metrics below, each label against that metric's labels and what the scrape adds, and
each `{{ $labels.x }}` against the labels the alert really carries.
"""

from __future__ import annotations

import ast
import copy
import functools
import importlib
import re
import subprocess
from pathlib import Path

import promql_parser as pp
import pytest
import yaml
from prometheus_client import REGISTRY

from replyflow.events import Outcome, Stage
from replyflow.topics import REPLIES_REVIEW
from tests.unit.test_k8s_manifests import (
    EXTERNAL_METRICS,
    REPLYFLOW_DEPLOYMENTS,
    ROOT,
    STAGE_GROUPS,
    config_map,
    container,
    environment,
    kafka_topics,
    of_kind,
    render,
    replyflow_image,
    settings_of,
    tools,
    triggers_of,
)

RUNBOOK = ROOT / "k8s" / "RUNBOOK.md"
UNIT_TESTS = Path(__file__).with_name("alerts_test.yaml")
SEVERITIES = {"page", "ticket"}
# What Prometheus adds to every series scraped through a PodMonitor: the operator's relabelling gives namespace,
# pod, container, endpoint and job, Prometheus instance. The PodMonitors' own relabelings add theirs (see below).
SCRAPE_LABELS = frozenset({"namespace", "pod", "container", "endpoint", "job", "instance"})
# PromQL functions whose result keeps the labels of their vector argument.
LABEL_KEEPING = {"rate", "irate", "increase", "delta", "idelta", "deriv", "abs", "ceil", "floor", "round",
                 "clamp", "clamp_min", "clamp_max", "sqrt", "exp", "ln", "log2", "log10",
                 *(f"{f}_over_time" for f in ("avg", "min", "max", "sum", "count", "last", "stddev", "quantile"))}


# ---------------------------------------------------------------- what the rules and the code say


ALERTS_SOURCE = ROOT / "k8s" / "components" / "prometheus-operator" / "alerts.yaml"
ALERT_NAMES = sorted(r["alert"] for g in yaml.safe_load(ALERTS_SOURCE.read_text())["spec"]["groups"]
                     for r in g["rules"])


def rule_groups() -> list[dict]:
    """The rule groups of the rendered prod overlay (a copy: render() is cached)."""
    (rule,) = of_kind(render("prod"), "PrometheusRule").values()
    return copy.deepcopy(rule["spec"]["groups"])


def alerts() -> dict[str, dict]:
    found: dict[str, dict] = {}
    for group in rule_groups():
        for rule in group["rules"]:
            assert "alert" in rule, f"{group['name']}: only alerting rules are expected, got {rule}"
            assert rule["alert"] not in found, f"{rule['alert']} defined twice"
            found[rule["alert"]] = rule
    return found


def exposed_names(collector) -> set[str]:
    """The series names prometheus_client writes for a collector (counters get _total, histograms _bucket...)."""
    base = collector._name
    suffixes = {"counter": ("_total", "_created"), "gauge": ("",),
                "histogram": ("_bucket", "_count", "_sum", "_created"),
                "summary": ("", "_count", "_sum", "_created"), "info": ("_info",)}[collector._type]
    return {base + suffix for suffix in suffixes}


@functools.cache
def replyflow_metrics() -> dict[str, frozenset[str]]:
    """Every replyflow_* series the services can expose, with its labels: the module-level metrics of what each
    Deployment runs (imported here, as test_k8s_manifests.introspect builds them), read from the registry."""
    for workload in of_kind(render("prod"), "Deployment").values():
        c = container(workload)
        if not replyflow_image(c):
            continue
        module = importlib.import_module(c["command"][2])
        if not hasattr(module, "create_app"):
            importlib.import_module(f"{c['command'][2]}.service")
    metrics: dict[str, frozenset[str]] = {}
    for collector in set(REGISTRY._names_to_collectors.values()):
        if not getattr(collector, "_name", "").startswith("replyflow_"):
            continue
        for name in exposed_names(collector):
            extra = {"le"} if name.endswith("_bucket") else {"quantile"} if collector._type == "summary" else set()
            metrics[name] = frozenset(collector._labelnames) | extra
    assert "replyflow_consumer_ready" in metrics and "replyflow_end_to_end_seconds_bucket" in metrics
    return metrics


@functools.cache
def scrape_labels() -> frozenset[str]:
    """Labels every scraped series carries: the operator's, plus the targetLabels of the rendered PodMonitors."""
    added = {relabel["targetLabel"] for monitor in of_kind(render("prod"), "PodMonitor").values()
             for endpoint in monitor["spec"]["podMetricsEndpoints"] for relabel in endpoint.get("relabelings", [])
             if relabel.get("action", "replace") == "replace"}
    return SCRAPE_LABELS | added


def labels_of_metric(name: str) -> frozenset[str]:
    known = replyflow_metrics() | EXTERNAL_METRICS
    assert name in known, f"no such metric: {name} (not in the services' registry nor in EXTERNAL_METRICS)"
    return known[name] | scrape_labels()


def selectors(expr) -> list[pp.VectorSelector]:
    found: list[pp.VectorSelector] = []
    pp.walk(expr, lambda node: found.append(node) if isinstance(node, pp.VectorSelector) else None)
    return found


def output_labels(node) -> frozenset[str] | None:
    """The labels the result of a PromQL (sub)expression carries, None for a scalar. Fails where the expression
    names a metric or label that does not exist, or matches vectors on labels one side lacks."""
    if isinstance(node, (pp.NumberLiteral, pp.StringLiteral)):
        return None
    if isinstance(node, (pp.ParenExpr, pp.UnaryExpr, pp.SubqueryExpr)):
        return output_labels(node.expr)
    if isinstance(node, pp.MatrixSelector):
        return output_labels(node.vector_selector)
    if isinstance(node, pp.VectorSelector):
        assert node.name, f"a selector without a metric name: {node}"
        labels = labels_of_metric(node.name)
        for matcher in node.matchers.matchers:
            assert matcher.name in labels, f"{node}: {node.name} has no label {matcher.name!r} ({sorted(labels)})"
        return labels
    if isinstance(node, pp.Call):
        name = node.func.name
        args = [output_labels(arg) for arg in node.args]
        if name == "absent":
            (selector,) = node.args
            return frozenset(m.name for m in selector.matchers.matchers if str(m.op) == "MatchOp.Equal")
        if name == "vector":
            return frozenset()
        if name == "histogram_quantile":
            assert "le" in args[1], f"{node}: histogram_quantile needs the le label"
            return args[1] - {"le"}
        assert name in LABEL_KEEPING, f"{node}: teach output_labels what {name}() returns"
        (vector,) = [a for a in args if a is not None]
        return vector
    if isinstance(node, pp.AggregateExpr):
        inner = output_labels(node.expr)
        if str(node.op) in {"topk", "bottomk"}:  # a selection of the series, labels and all
            return inner
        modifier = node.modifier
        if modifier is None:
            return frozenset()
        missing = set(modifier.labels) - inner
        assert not missing, f"{node}: grouping by {sorted(missing)}, which {node.expr} does not have"
        by = str(modifier.type) == "AggModifierType.By"
        return frozenset(modifier.labels) if by else inner - set(modifier.labels)
    if isinstance(node, pp.BinaryExpr):
        lhs, rhs = output_labels(node.lhs), output_labels(node.rhs)
        if lhs is None or rhs is None:
            return rhs if lhs is None else lhs
        op = str(node.op)
        matching = node.modifier.matching if node.modifier is not None else None
        if matching is not None and str(matching.type) == "LabelModifierType.Include":
            missing = set(matching.labels) - (lhs & rhs)
            assert not missing, f"{node}: on({', '.join(sorted(missing))}) but a side lacks it"
        elif op != "or" and matching is None:
            assert lhs == rhs, (f"{node}: `{op}` matches on all labels, and the sides differ in "
                                f"{sorted(lhs ^ rhs)}: it could never match")
        if op == "or":
            return lhs & rhs
        card = str(node.modifier.card) if node.modifier is not None else ""
        if card.endswith("ManyToOne"):  # group_left(extra): the left side's labels plus the extra from the right
            return lhs | set(node.modifier.group_labels)
        if card.endswith("OneToMany"):
            return rhs | set(node.modifier.group_labels)
        return lhs
    raise AssertionError(f"teach output_labels about {type(node).__name__}: {node}")


def parsed(rule: dict):
    return pp.parse(rule["expr"])


def template_labels(text: str) -> set[str]:
    return set(re.findall(r"\$labels\.(\w+)", text))


def github_anchor(heading: str) -> str:
    """The fragment GitHub (and most Markdown renderers) give a heading."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


# ---------------------------------------------------------------- promtool


def run_promtool(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([str(tools()["promtool"]), *args], cwd=cwd, capture_output=True, text=True, timeout=300)


def write_rules(path: Path, *, summary_only: bool = False) -> None:
    groups = rule_groups()
    if summary_only:
        groups = [{**g, "rules": [{**r, "annotations": {"summary": r["annotations"]["summary"]}} for r in g["rules"]]}
                  for g in groups]
    path.write_text(yaml.safe_dump({"groups": groups}, sort_keys=False))


def test_promtool_accepts_the_rules(tmp_path):
    write_rules(tmp_path / "rules.yaml")
    done = run_promtool("check", "rules", "--lint=all", "--lint-fatal", "rules.yaml", cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"SUCCESS: {len(alerts())} rules found" in done.stdout


def test_promtool_rejects_a_broken_rule(tmp_path):
    """Control for the test above: promtool really parses the expressions."""
    groups = rule_groups()
    groups[0]["rules"][0]["expr"] = "sum by (namespace (replyflow_consumer_ready)"
    (tmp_path / "rules.yaml").write_text(yaml.safe_dump({"groups": groups}))
    assert run_promtool("check", "rules", "rules.yaml", cwd=tmp_path).returncode != 0


@pytest.mark.parametrize("topic, dlq", [("comments.screened", "comments.screened.dlq"),
                                        ("webhook:instagram", "comments.received.dlq"),
                                        ("youtube:poll", "comments.received.dlq")])
def test_the_dead_letter_alert_names_the_topic_they_went_to(tmp_path, topic, dlq):
    """What came from a webhook or a poll came from no topic: its dead letters are in comments.received.dlq."""
    (rule,) = [r for g in rule_groups() for r in g["rules"] if r.get("alert") == "ReplyflowDeadLetters"]
    rule = {**rule, "annotations": {"description": rule["annotations"]["description"]}}
    (tmp_path / "rules.yaml").write_text(yaml.safe_dump({"groups": [{"name": "dlq", "rules": [rule]}]}))
    series = (f'replyflow_dlq_messages_total{{namespace="replyflow",service="ingest",topic="{topic}",'
              f'error="UnusableComment"}}')
    description = (f"1 message(s) from {topic} went to {dlq} in the last 15 minutes in replyflow, error "
                   "UnusableComment. Each is a comment without a reply.")
    (tmp_path / "t.yaml").write_text(yaml.safe_dump({"rule_files": ["rules.yaml"], "evaluation_interval": "1m",
        "tests": [{"interval": "1m", "input_series": [{"series": series, "values": "_x20 1x20"}],
                   "alert_rule_test": [{"eval_time": "25m", "alertname": "ReplyflowDeadLetters", "exp_alerts": [{
                       "exp_labels": {"severity": "ticket", "namespace": "replyflow", "service": "ingest",
                                      "topic": topic, "error": "UnusableComment"},
                       "exp_annotations": {"description": description}}]}]}]}))
    done = run_promtool("test", "rules", "t.yaml", cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr


def unit_tests() -> dict:
    return yaml.safe_load(UNIT_TESTS.read_text())


def test_alert_unit_tests_pass(tmp_path):
    """alerts_test.yaml through `promtool test rules`; the rules keep only their summary (see that file)."""
    write_rules(tmp_path / "rules.yaml", summary_only=True)
    (tmp_path / UNIT_TESTS.name).write_text(UNIT_TESTS.read_text())
    done = run_promtool("test", "rules", UNIT_TESTS.name, cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS" in done.stdout


def test_alert_unit_tests_fail_on_a_wrong_expectation(tmp_path):
    """Control: a case expecting silence where the alert fires makes promtool fail."""
    write_rules(tmp_path / "rules.yaml", summary_only=True)
    cases = unit_tests()
    firing = next(case for group in cases["tests"] for case in group["alert_rule_test"] if case["exp_alerts"])
    firing["exp_alerts"] = []
    (tmp_path / UNIT_TESTS.name).write_text(yaml.safe_dump(cases))
    done = run_promtool("test", "rules", UNIT_TESTS.name, cwd=tmp_path)
    assert done.returncode != 0 and firing["alertname"] in done.stdout + done.stderr


def test_every_alert_is_tested_firing_and_silent():
    firing: set[str] = set()
    silent: set[str] = set()
    for group in unit_tests()["tests"]:
        for case in group["alert_rule_test"]:
            (firing if case["exp_alerts"] else silent).add(case["alertname"])
            for alert in case["exp_alerts"]:
                rule = alerts()[case["alertname"]]
                assert alert["exp_labels"]["severity"] == rule["labels"]["severity"]
                expected, carried = set(alert["exp_labels"]) - {"severity"}, output_labels(parsed(rule))
                # the synthetic series leave out container, endpoint, job and instance, nothing else
                assert expected <= carried and carried - expected <= SCRAPE_LABELS, (
                    f"{group['name']}: {case['alertname']} carries {sorted(carried)}, expected {sorted(expected)}")
    assert sorted(alerts()) == ALERT_NAMES, "the prod overlay renders the component's rules"
    assert set(alerts()) == firing, f"never seen firing: {set(alerts()) - firing}; unknown: {firing - set(alerts())}"
    assert set(alerts()) == silent, f"never seen silent: {set(alerts()) - silent}; unknown: {silent - set(alerts())}"


def test_unit_test_series_are_real_metrics_with_real_labels():
    """Synthetic series that the services could never produce would prove nothing."""
    for group in unit_tests()["tests"]:
        for series in group["input_series"]:
            selector = pp.parse(series["series"])
            assert isinstance(selector, pp.VectorSelector)
            output_labels(selector)  # fails on an unknown metric or label


# ---------------------------------------------------------------- metrics, labels and documentation


@pytest.mark.parametrize("name", ALERT_NAMES)
def test_alert_uses_real_metrics_and_labels(name):
    rule = alerts()[name]
    labels = output_labels(parsed(rule))
    assert labels is not None, "an alert expression must be a vector"
    for key, text in rule["annotations"].items():
        unknown = template_labels(text) - labels
        assert not unknown, f"{name}.{key} uses {unknown}, which the alert does not carry ({sorted(labels)})"


@pytest.mark.parametrize("name", ALERT_NAMES)
def test_alert_has_severity_summary_description_and_runbook(name):
    rule = alerts()[name]
    assert rule["labels"]["severity"] in SEVERITIES
    annotations = rule["annotations"]
    assert annotations["summary"].strip() and annotations["description"].strip()
    assert "\n" not in annotations["summary"], "a summary is one line"
    path, _, anchor = annotations["runbook_url"].partition("#")
    assert path == str(RUNBOOK.relative_to(ROOT))
    headings = {github_anchor(h) for h in re.findall(r"^#+ (.+)$", RUNBOOK.read_text(), re.M)}
    assert anchor in headings, f"{name}: {RUNBOOK.name} has no heading #{anchor}"
    assert anchor == github_anchor(name), "one runbook section per alert, named after it"


@functools.cache
def code_label_values() -> dict[tuple[str, str], frozenset[str] | None]:
    """(metric, label) -> the values the services' `.labels(...)` calls give it, None where one is computed.
    Read from the source: the metric objects' assignments, imports (aliases) and every `.labels()` call."""
    sources = [ast.parse(path.read_text()) for path in (ROOT / "services" / "replyflow").rglob("*.py")]
    variables: dict[str, str] = {}  # Python name -> exposed metric name
    aliases: dict[str, str] = {}
    for tree in sources:
        for node in ast.walk(tree):
            if (isinstance(node, ast.Assign) and isinstance(node.value, ast.Call) and node.value.args
                    and isinstance(node.value.args[0], ast.Constant)
                    and str(node.value.args[0].value).startswith("replyflow_")):
                name = node.value.args[0].value
                kind = getattr(node.value.func, "id", "")
                is_counter = kind in {"Counter", "MetricCounter"}
                variables[node.targets[0].id] = name if not is_counter or name.endswith("_total") else f"{name}_total"
            elif isinstance(node, ast.ImportFrom):
                aliases.update({a.asname: a.name for a in node.names if a.asname})
    values: dict[tuple[str, str], set[str] | None] = {}
    for tree in sources:
        for node in ast.walk(tree):
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "labels"
                    and isinstance(node.func.value, ast.Name)):
                continue
            metric = variables.get(aliases.get(node.func.value.id, node.func.value.id))
            if metric is None:
                continue
            for label, arg in zip(_label_order(metric), node.args, strict=False):
                options = [arg.body, arg.orelse] if isinstance(arg, ast.IfExp) else [arg]
                found = values.setdefault((metric, label), set())
                if found is None or not all(isinstance(o, ast.Constant) for o in options):
                    values[(metric, label)] = None
                else:
                    found.update(o.value for o in options)
    return {k: (frozenset(v) if v is not None else None) for k, v in values.items()}


def _label_order(metric: str) -> tuple[str, ...]:
    return tuple(REGISTRY._names_to_collectors[metric]._labelnames)


# Labels the code fills from an enum's values (`stage.value`), so the source shows no literal.
ENUM_LABELS = {
    ("replyflow_decisions_total", "stage"): frozenset(s.value for s in Stage),
    ("replyflow_decisions_total", "outcome"): frozenset(o.value for o in Outcome),
}


def check_label_values(where: str, expr) -> int:
    """Fails where a matcher wants a value no service writes for that label (result="retried" is one; a typo
    matches nothing). Returns how many matchers it could check: computed values (service, topic, platform) and
    scrape labels (component) are not known from the source."""
    replyflow_metrics()  # imports the services
    checked = 0
    for selector in selectors(expr):
        for matcher in selector.matchers.matchers:
            known = code_label_values().get((selector.name, matcher.name)) or ENUM_LABELS.get(
                (selector.name, matcher.name))
            if known is None:
                continue
            written = matcher.value.split("|") if str(matcher.op) == "MatchOp.Re" else [matcher.value]
            assert all(re.fullmatch(r"[\w.-]+", v) for v in written), f"{where}: keep regexes to plain alternatives"
            unknown = set(written) - known
            assert not unknown, f"{where}: no service sets {selector.name}{{{matcher.name}={unknown}}}: {known}"
            checked += 1
    return checked


def test_label_values_are_ones_the_code_sets():
    checked = sum(check_label_values(name, parsed(rule)) for name, rule in alerts().items())
    assert checked >= 5
    assert code_label_values()[("replyflow_messages_processed_total", "result")] == {
        "ok", "retried", "deferred", "dead_lettered"}


def test_components_are_the_deployments():
    """`component` is copied from app.kubernetes.io/component, which each Deployment sets to its own name."""
    docs = render("prod")
    for name in REPLYFLOW_DEPLOYMENTS:
        labels = of_kind(docs, "Deployment")[name]["spec"]["template"]["metadata"]["labels"]
        assert labels["app.kubernetes.io/component"] == name
    (monitor,) = [m for m in of_kind(docs, "PodMonitor").values()
                  if m["spec"]["selector"]["matchLabels"] == {"app.kubernetes.io/name": "replyflow"}]
    relabel = {r["targetLabel"]: r["sourceLabels"] for e in monitor["spec"]["podMetricsEndpoints"]
               for r in e["relabelings"]}
    assert relabel["component"] == ["__meta_kubernetes_pod_label_app_kubernetes_io_component"]
    absent = {m.value for s in selectors(parsed(alerts()["ReplyflowStageDown"])) for m in s.matchers.matchers
              if m.name == "component"}
    assert absent == REPLYFLOW_DEPLOYMENTS, "ReplyflowStageDown must watch every Deployment"
    used = {m.value for rule in alerts().values() for s in selectors(parsed(rule)) for m in s.matchers.matchers
            if m.name == "component"}
    assert used <= REPLYFLOW_DEPLOYMENTS


def real_groups() -> set[str]:
    settings = settings_of(config_map(render("prod")))
    return {settings.group_id(stage) for groups in STAGE_GROUPS.values() for stage, _ in groups}


def test_consumer_groups_are_the_services_groups():
    for name, rule in alerts().items():
        for selector in selectors(parsed(rule)):
            for matcher in selector.matchers.matchers:
                if matcher.name != "consumergroup":
                    continue
                if str(matcher.op) == "MatchOp.Equal":
                    assert matcher.value in real_groups(), f"{name}: no consumer uses group {matcher.value}"
                else:
                    assert str(matcher.op) == "MatchOp.Re"
                    matched = {g for g in real_groups() if re.fullmatch(matcher.value, g)}
                    assert matched == real_groups(), f"{name}: {matcher.value} misses {real_groups() - matched}"


def test_dev_kafka_exports_consumer_lag():
    """The lag alerts need Strimzi's Kafka Exporter; dev's own cluster runs it (prod's: k8s/README.md)."""
    (kafka,) = of_kind(render("dev"), "Kafka").values()
    exporter = kafka["spec"]["kafkaExporter"]
    assert all(re.fullmatch(exporter.get("groupRegex", ".*"), group) for group in real_groups())
    assert "kafkaExporter" in (ROOT / "k8s" / "README.md").read_text()


def or_branches(node) -> list:
    if isinstance(node, pp.BinaryExpr) and str(node.op) == "or":
        return [*or_branches(node.lhs), *or_branches(node.rhs)]
    return [node]


def test_lag_thresholds_are_what_keda_drains_at_full_scale():
    scaled = {t["metadata"]["consumerGroup"]: (so, t) for so in of_kind(render("prod"), "ScaledObject").values()
              for t in triggers_of(so, "kafka")}
    thresholds = {}
    for branch in or_branches(parsed(alerts()["ReplyflowConsumerLagHigh"])):
        assert str(branch.op) == ">" and isinstance(branch.rhs, pp.NumberLiteral), branch
        ((group,),) = [{m.value for m in s.matchers.matchers if m.name == "consumergroup"} for s in selectors(branch)]
        thresholds[group] = branch.rhs.val
    # Every lag-scaled stage; control's stages are not scaled on lag (their lag shows in ReplyflowStageStalled, and
    # control-profiles' in ReplyflowProfileChangesWaiting).
    assert set(thresholds) == set(scaled) == real_groups() - {"replyflow.control-review", "replyflow.control-profiles"}
    for group, (so, trigger) in scaled.items():
        full_scale = int(trigger["metadata"]["lagThreshold"]) * so["spec"]["maxReplicaCount"]
        assert thresholds[group] == full_scale, group


def test_window_collapse_threshold_is_the_smallest_window():
    docs = render("prod")
    settings = settings_of(environment(docs, container(of_kind(docs, "Deployment")["generation"])))
    (comparison,) = [b for b in _binaries(parsed(alerts()["ReplyflowGenerationWindowCollapsed"]))
                     if str(b.op) == "<=" and "replyflow_generation_window" in str(b.lhs)]
    assert comparison.rhs.val == settings.llm_min_inflight


def _binaries(expr) -> list[pp.BinaryExpr]:
    found: list[pp.BinaryExpr] = []
    pp.walk(expr, lambda node: found.append(node) if isinstance(node, pp.BinaryExpr) else None)
    return found


@pytest.mark.parametrize("mistake", [
    "sum by (namespace) (rate(replyflow_dlq_message_total[5m]))",                  # misspelt metric
    "sum by (namespace) (rate(replyflow_dlq_messages[5m]))",                        # counter without _total
    "sum by (stage) (rate(replyflow_dlq_messages_total[5m]))",                      # label it does not have
    "replyflow_consumer_ready{deployment=\"generation\"} == 0",                     # no such label
    "sum by (service) (replyflow_consumer_ready) unless sum by (topic) (replyflow_dlq_messages_total)",
    "histogram_quantile(0.9, sum by (platform) (rate(replyflow_end_to_end_seconds_bucket[5m])))",  # no le
    "sum by (pod) (vllm:gpu_cache_usage_perc)",                                     # the pre-0.10 name
])
def test_the_label_check_catches(mistake):
    """Controls for output_labels: each of these is a mistake it must report."""
    with pytest.raises(AssertionError):
        output_labels(pp.parse(mistake))


def test_held_reply_expiry_threshold_is_before_replies_review_deletes_the_hold():
    retention_s = int(kafka_topics("prod")[REPLIES_REVIEW.name]["spec"]["config"]["retention.ms"]) / 1000
    (comparison,) = _binaries(parsed(alerts()["ReplyflowHeldRepliesExpiring"]))
    assert str(comparison.op) == ">" and comparison.rhs.val == 0.8 * retention_s
