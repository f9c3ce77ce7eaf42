"""Logging, metrics, tracing and the /metrics, /healthz, /readyz endpoints shared by every service."""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SpanExporter
from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, Counter, Gauge, Histogram, generate_latest
from starlette.responses import JSONResponse, Response

from replyflow.settings import Settings

# Shared metrics: every stage reports the same families, labelled by service/stage.
MESSAGES_PROCESSED = Counter(
    "replyflow_messages_processed_total",
    "Messages a stage handled, by result (ok, retried, deferred: held back for a dependency, dead_lettered)",
    ["service", "topic", "result"],
)
MESSAGES_PUBLISHED = Counter(
    "replyflow_messages_published_total", "Events the broker acknowledged, by topic", ["service", "topic"]
)
PROCESSING_SECONDS = Histogram(
    "replyflow_processing_seconds",
    "Time to handle one micro-batch, decode to broker ack of every output",
    ["service", "topic"],
    buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
DLQ_MESSAGES = Counter(
    "replyflow_dlq_messages_total", "Messages sent to a dead-letter topic", ["service", "topic", "error"]
)
DECISIONS = Counter(
    "replyflow_decisions_total", "Decisions by stage, outcome and reason code", ["stage", "outcome", "reason"]
)
END_TO_END_SECONDS = Histogram(
    "replyflow_end_to_end_seconds",
    "Comment created on the platform to reply published; route: auto (the pipeline alone) or review (a person "
    "approved it, so their wait counts too)",
    ["platform", "route"],
    # Up to a week: a reviewed reply waits for a person (hours, days); past the last bucket a quantile is just it.
    buckets=(0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300, 600, 1800, 3600, 4 * 3600, 12 * 3600, 86400, 3 * 86400,
             7 * 86400),
)
CONSUMER_READY = Gauge("replyflow_consumer_ready", "1 when the service is ready", ["service"])
DUPLICATE_DELIVERIES = Counter(
    "replyflow_duplicate_deliveries_total",
    "Comments the platform delivered again as a new event, left out by the screen stage (drafted once)",
    ["platform"],
)
DRAFTS_DECIDED_BEFORE = Counter(
    "replyflow_drafts_decided_before_total",
    "Drafts verify had sent a verdict about already (delivered again after a crash): the first verdict stands",
)
CONSUMER_PARTITIONS = Gauge(
    "replyflow_consumer_partitions",
    "Partitions assigned to this consumer in its group (0 while joining or rebalancing, or when idle)",
    ["group", "topic"],
)
TABLE_ROWS = Gauge(
    "replyflow_table_rows", "Rows a service keeps in memory from a topic it reads whole (TopicTable)", ["topic"]
)
TABLE_RECORDS_REJECTED = Counter(
    "replyflow_table_records_rejected_total",
    "Records of a topic a service reads whole (TopicTable) that failed validation and were left out; on "
    "creators.config a profile change, the kill switch included, not applied",
    ["topic"],
)
TABLE_UNREADABLE_KEYS = Gauge(
    "replyflow_table_unreadable_keys",
    "Keys of a topic a service reads whole whose latest record it could not read (on creators.config: creators it "
    "does not know now, so nothing is replied for them); back to 0 once a readable record follows",
    ["topic"],
)


class JsonFormatter(logging.Formatter):
    """One JSON object per line, so log shippers need no parsing rules."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        entry.update(getattr(record, "fields", {}))
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def configure_logging(level: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    logging.getLogger("aiokafka").setLevel(logging.WARNING)
    # httpx logs every request at INFO (each YouTube poll, each platform and model call): the metrics count them.
    logging.getLogger("httpx").setLevel(logging.WARNING)


def configure_tracing(service: str, settings: Settings) -> TracerProvider | None:
    """Install the SDK tracer provider that ``OTEL_TRACES_EXPORTER`` asks for; ``None`` for none.

    With none the API's no-op tracer stays in place: spans cost nothing, and the traceparent a
    record arrived with is passed on unchanged, so a downstream service that does export still
    sees one trace per comment.
    """
    if settings.otel_traces_exporter == "none":
        return None
    exporter: SpanExporter = (
        ConsoleSpanExporter() if settings.otel_traces_exporter == "console"
        else OTLPSpanExporter(endpoint=settings.otel_exporter_otlp_endpoint.rstrip("/") + "/v1/traces")
    )
    provider = TracerProvider(
        resource=Resource.create({"service.name": f"replyflow-{service}"}),
        sampler=ParentBased(TraceIdRatioBased(settings.otel_traces_sampler_arg)),
    )
    provider.add_span_processor(BatchSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    return provider


ReadinessProbe = Callable[[], Awaitable[tuple[bool, dict[str, object]]]]


def health_routes(readiness: ReadinessProbe) -> list[tuple[str, Callable]]:
    """ASGI routes for /metrics, /healthz (process alive) and /readyz (dependencies usable)."""

    async def metrics(scope, receive, send):
        await Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)(scope, receive, send)

    async def healthz(scope, receive, send):
        await JSONResponse({"status": "ok"})(scope, receive, send)

    async def readyz(scope, receive, send):
        ready, detail = await readiness()
        body = {"status": "ready" if ready else "not ready", **detail}
        await JSONResponse(body, status_code=200 if ready else 503)(scope, receive, send)

    return [("/metrics", metrics), ("/healthz", healthz), ("/readyz", readyz)]
