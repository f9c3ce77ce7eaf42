"""The Grafana dashboard (k8s/components/prometheus-operator/dashboards/replyflow.json) must reach Grafana from the
prod overlay, lay its panels out on Grafana's grid, and query only metrics and labels that exist, with the checks
the alert rules get (test_alerts.py): a typo would otherwise show as an empty panel in the middle of an incident.
Every metric an alert fires on has a panel, so whoever is paged can see what the alert saw."""

from __future__ import annotations

import functools
import json
import re

import promql_parser as pp
import pytest

from replyflow.observability import END_TO_END_SECONDS
from replyflow.topics import ALL_TOPICS, CONSUMED_TOPICS
from tests.unit.test_alerts import alerts, check_label_values, output_labels, parsed, selectors
from tests.unit.test_k8s_manifests import of_kind, render

# What Grafana puts in for its variables before it sends a query.
GRAFANA_VARIABLES = {"$__rate_interval": "1m", "$namespace": "replyflow"}
# DESIGN.md's Observability list: what the metrics must show, so what the dashboard shows.
DESIGN_SIGNALS = {
    "replyflow_end_to_end_seconds_bucket",            # end-to-end latency
    "replyflow_decisions_total",                      # decisions by outcome and reason
    "replyflow_llm_completion_tokens_total",          # LLM tokens/s
    "replyflow_llm_time_to_first_token_seconds_bucket",
    "replyflow_generation_in_flight",                 # in-flight requests
    "kafka_consumergroup_lag",                        # consumer lag
    "replyflow_dlq_messages_total",                   # DLQ count
    "replyflow_publish_attempts_total",               # publish attempts by result
    "replyflow_messages_processed_total",             # RED per stage
    "replyflow_processing_seconds_bucket",
}


@functools.cache
def dashboard() -> dict:
    config_map = of_kind(render("prod"), "ConfigMap")["replyflow-grafana-dashboard"]
    assert config_map["metadata"]["labels"]["grafana_dashboard"] == "1", "Grafana's sidecar imports on this label"
    (text,) = config_map["data"].values()
    return json.loads(text)


def graph_panels() -> list[dict]:
    return [p for p in dashboard()["panels"] if p["type"] != "row"]


def queries() -> list[tuple[str, dict]]:
    return [(f"{p['title']} / {t['refId']}", t) for p in graph_panels() for t in p["targets"]]


def promql(expr: str):
    for variable, value in GRAFANA_VARIABLES.items():
        expr = expr.replace(variable, value)
    assert "$" not in expr, f"a Grafana variable the test does not know: {expr}"
    return pp.parse(expr)


def check_query(target: dict) -> frozenset[str]:
    """The labels the query's series carry; fails on an unknown metric or label, or a legend naming a label
    the series do not have (Grafana would print it empty)."""
    labels = output_labels(promql(target["expr"]))
    assert labels is not None, "a panel query must return a vector"
    legend = set(re.findall(r"{{\s*(\w+)\s*}}", target.get("legendFormat", "")))
    assert legend <= labels, f"legend {sorted(legend - labels)} not among the series' labels {sorted(labels)}"
    return labels


def metrics_of(expr) -> set[str]:
    return {s.name for s in selectors(expr)}


def test_the_panels_fit_grafanas_grid_without_overlapping():
    panels = dashboard()["panels"]
    assert len({p["id"] for p in panels}) == len(panels), "panel ids must be unique"
    taken: dict[tuple[int, int], str] = {}
    for panel in panels:
        grid = panel["gridPos"]
        assert grid["x"] >= 0 and grid["w"] >= 1 and grid["x"] + grid["w"] <= 24, f"{panel['title']}: off the grid"
        for x in range(grid["x"], grid["x"] + grid["w"]):
            for y in range(grid["y"], grid["y"] + grid["h"]):
                assert (x, y) not in taken, f"{panel['title']} overlaps {taken[(x, y)]}"
                taken[(x, y)] = panel["title"]


def test_every_panel_queries_the_chosen_data_source_and_namespace():
    variables = {v["name"]: v for v in dashboard()["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource" and variables["datasource"]["query"] == "prometheus"
    namespace_query = variables["namespace"]["query"]["query"]
    (metric,) = re.fullmatch(r"label_values\((\w+), namespace\)", namespace_query).groups()
    check_query({"expr": metric})
    for panel in graph_panels():
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, panel["title"]
        assert panel["targets"] and len({t["refId"] for t in panel["targets"]}) == len(panel["targets"])
        assert panel.get("description"), f"{panel['title']}: say what the panel shows and which alert it backs"
    for where, target in queries():
        for selector in selectors(pp.parse(target["expr"].replace("$__rate_interval", "1m"))):
            matchers = {(m.name, m.value) for m in selector.matchers.matchers}
            # The Kafka Exporter's too: it runs beside Kafka, in replyflow's namespace (k8s/README.md), and dev
            # and prod clusters share the consumer group names.
            assert ("namespace", "$namespace") in matchers, f"{where}: {selector.name} not filtered by namespace"


@pytest.mark.parametrize("where", [where for where, _ in queries()])
def test_every_query_uses_real_metrics_and_labels(where):
    target = dict(queries())[where]
    check_query(target)
    check_label_values(where, promql(target["expr"]))


def test_topics_the_queries_name_are_real_topics():
    names = {t.name for t in ALL_TOPICS} | {t.dlq for t in CONSUMED_TOPICS}
    named = [m.value for _, target in queries() for s in selectors(promql(target["expr"]))
             for m in s.matchers.matchers if m.name == "topic"]
    assert named and set(named) <= names, set(named) - names


def test_every_alerting_metric_and_every_design_signal_has_a_panel():
    shown = set().union(*(metrics_of(promql(target["expr"])) for _, target in queries()))
    alerting = set().union(*(metrics_of(parsed(rule)) for rule in alerts().values()))
    assert alerting <= shown, f"alerts watch {sorted(alerting - shown)}, which no panel shows"
    assert shown >= DESIGN_SIGNALS, f"no panel shows {sorted(DESIGN_SIGNALS - shown)}"


@pytest.mark.parametrize("target", [
    {"expr": 'sum by (component) (replyflow_consumer_ready{namespace="$namespace"})', "legendFormat": "{{pod}}"},
    {"expr": 'sum(rate(replyflow_dlq_messages_total{namespace="$namespace"}[$__rate_interval]))',
     "legendFormat": "{{ topic }}"},
    {"expr": 'topk(5, sum by (stage) (rate(replyflow_decisions_total[$__rate_interval])))',
     "legendFormat": "{{reason}}"},
    {"expr": "sum(rate(replyflow_llm_tokens_total[$__rate_interval]))", "legendFormat": "tokens"},
    {"expr": "sum(rate(replyflow_publish_attempts_total[$__interval]))", "legendFormat": "calls"},
])
def test_the_query_check_catches(target):
    """Controls for check_query: a legend label the series lack, a misspelt metric, an unknown variable."""
    with pytest.raises(AssertionError):
        check_query(target)


def test_end_to_end_buckets_reach_a_reviewed_replys_wait():
    """A reply a person approved hours or days later: its latency must not be pinned at the last bucket."""
    bounds = [b for b in END_TO_END_SECONDS._upper_bounds if b != float("inf")]
    assert any(2 * 3600 <= b <= 6 * 3600 for b in bounds) and max(bounds) >= 7 * 86400
    assert min(bounds) <= 1, "the auto route's seconds stay resolved"
