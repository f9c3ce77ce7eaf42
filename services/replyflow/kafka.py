"""Kafka plumbing shared by every service: broker factory, topics, at-least-once stages, dead letters.

A stage handler is a pure-ish coroutine ``event -> list[Emit]``. ``subscribe_stage`` wraps it
so that the input offset is committed only after every output was acknowledged by the broker
(acks=all, idempotent producer). Failures never skip a message: transient ones are retried
with backoff (the partition is rewound, nothing is committed past it), messages that can never
succeed go to ``<topic>.dlq`` with headers naming where they came from and why.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import json
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Collection, Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Generic, TypeVar

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener, ConsumerRecord, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError, ProducerFenced, TopicAlreadyExistsError
from aiokafka.partitioner import DefaultPartitioner
from aiokafka.producer.message_accumulator import BatchBuilder
from aiokafka.structs import OffsetAndMetadata
from faststream import AckPolicy
from faststream.kafka import KafkaBroker
from faststream.kafka.annotations import KafkaMessage
from faststream.kafka.opentelemetry import KafkaTelemetryMiddleware
from faststream.kafka.prometheus import KafkaPrometheusMiddleware
from opentelemetry import propagate, trace
from opentelemetry.context import Context
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.trace import Link, Span, SpanContext, SpanKind, StatusCode
from prometheus_client import REGISTRY
from pydantic import BaseModel, ValidationError

from replyflow.events import Action, Decision, Outcome, Reason, Stage
from replyflow.observability import (
    CONSUMER_PARTITIONS,
    DLQ_MESSAGES,
    MESSAGES_PROCESSED,
    MESSAGES_PUBLISHED,
    PROCESSING_SECONDS,
    TABLE_RECORDS_REJECTED,
    TABLE_ROWS,
    TABLE_UNREADABLE_KEYS,
)
from replyflow.observability import DECISIONS as DECISIONS_METRIC
from replyflow.settings import Settings
from replyflow.topics import ALL_TOPICS, CONSUMED_TOPICS, DECISIONS, DLQ_PARTITIONS, DLQ_RETENTION_DAYS, Topic

if TYPE_CHECKING:
    from replyflow.service import ServiceParts

log = logging.getLogger(__name__)
TRACER = trace.get_tracer("replyflow.kafka")

M = TypeVar("M", bound=BaseModel)


# Records per micro-batch: big enough that fetch, acks=all and the commit are a few % of a batch.
STAGE_MAX_BATCH = 1024
# A transaction left open (its producer stalled) holds back every read_committed reader of its partitions until
# the broker aborts it: ours take milliseconds, so a short timeout bounds that.
TRANSACTION_TIMEOUT_MS = 10_000


Record = tuple[str, bytes | None, bytes, list[tuple[str, bytes]]]  # (topic, key, value, headers) to send


class TransientError(Exception):
    """A dependency is unavailable for now: retry with backoff forever, never dead-letter."""


class Fenced(TransientError):
    """Another process claimed this producer's transactional id (see ``PartitionWriters``), or the broker aborted
    its transaction for running past TRANSACTION_TIMEOUT_MS: what it had not committed was aborted, and it may
    write nothing more. Retried like any transient error, with a new claim."""


class PermanentError(Exception):
    """The message can never succeed (bad content, not bad luck): dead-letter it at once."""


@dataclass(frozen=True)
class Deferred:
    """A stage handler's answer when some events must wait for a dependency that is down for now (one
    platform, say): ``emits`` are the outputs of the events done, ``waiting`` the indexes of the events
    that wait. Each waiting event's partition is held back from it on, with backoff; other partitions go on.
    ``failing``: whether the wait says the stage cannot do its work (readiness); not when it still does for
    others (one platform down, the others posting)."""

    emits: list[Emit]
    waiting: set[int]
    why: str
    failing: bool = True


@dataclass(frozen=True)
class Emit:
    """One output event of a stage; its topic decides the record key (and so the partition)."""

    topic: Topic
    event: BaseModel

    def __post_init__(self) -> None:
        if not isinstance(self.event, self.topic.message):
            raise TypeError(f"{self.topic.name} carries {self.topic.message.__name__}, "
                            f"not {type(self.event).__name__}")

    @property
    def key(self) -> str:
        return self.topic.key(self.event)


def make_broker(settings: Settings, service: str, tracer_provider: TracerProvider | None = None) -> KafkaBroker:
    return KafkaBroker(
        settings.kafka_bootstrap_servers,
        client_id=f"replyflow-{service}",
        acks="all",
        enable_idempotence=True,
        request_timeout_ms=settings.kafka_request_timeout_ms,
        graceful_timeout=settings.retry_backoff_max_s + 15,
        middlewares=(
            *([KafkaTelemetryMiddleware(tracer_provider=tracer_provider)] if tracer_provider else []),
            KafkaPrometheusMiddleware(registry=REGISTRY, app_name=f"replyflow-{service}"),
        ),
        logger=logging.getLogger(f"replyflow.{service}.broker"),
    )


def topic_config(compacted: bool, retention_ms: int | None, replication_factor: int) -> dict[str, str]:
    """A topic's settings, as k8s/base/topics.yaml gives them (a test holds the two together)."""
    config = {"cleanup.policy": "compact" if compacted else "delete",
              # acks=all means two copies where there are three: one broker may be down, no write is lost.
              "min.insync.replicas": "2" if replication_factor >= 3 else "1"}
    if compacted:  # a minute before compaction may drop a record: followers see each change
        config["min.compaction.lag.ms"] = "60000"
    if retention_ms is not None:
        config["retention.ms"] = str(retention_ms)
    return config


async def ensure_topics(bootstrap_servers: str, topics: Sequence[Topic] = ALL_TOPICS,
                        replication_factor: int = 1) -> list[str]:
    """Create replyflow's missing topics (and dead-letter topics) with their partitions, cleanup and retention.

    Idempotent; topics that exist are left as they are."""
    wanted = [
        NewTopic(t.name, num_partitions=t.partitions, replication_factor=replication_factor,
                 topic_configs=topic_config(t.compacted, t.retention_ms, replication_factor))
        for t in topics
    ] + [
        NewTopic(t.dlq, num_partitions=DLQ_PARTITIONS, replication_factor=replication_factor,
                 topic_configs=topic_config(False, DLQ_RETENTION_DAYS * 86_400_000, replication_factor))
        for t in CONSUMED_TOPICS if t in topics
    ]
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [t for t in wanted if t.name not in existing]
        if missing:
            with contextlib.suppress(TopicAlreadyExistsError):  # another process created them first
                await admin.create_topics(missing)
            await _wait_for_leaders(admin, [t.name for t in missing])
        return [t.name for t in missing]
    finally:
        await admin.close()


async def group_starts_at_end(bootstrap_servers: str, group: str, topic: str) -> None:
    """Commit ``topic``'s current end offsets for ``group``, so a new group skips what is already there
    (a new group would otherwise start at the earliest offset)."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap_servers, group_id=group, enable_auto_commit=False)
    await consumer.start()
    try:
        await consumer.topics()  # loads the metadata
        partitions = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())]
        consumer.assign(partitions)
        ends = await consumer.end_offsets(partitions)
        await consumer.commit({tp: OffsetAndMetadata(offset, "") for tp, offset in ends.items()})
    finally:
        await consumer.stop()


async def _wait_for_leaders(admin: AIOKafkaAdminClient, names: list[str], timeout_s: float = 30.0) -> None:
    """New partitions answer NotLeader for a moment; producers retry, but start-up is quieter after this."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        described = await admin.describe_topics(names)
        if all(p["leader"] >= 0 for t in described for p in t["partitions"]) and len(described) == len(names):
            return
        await asyncio.sleep(0.2)


TraceHeaders = dict[str, list[tuple[str, bytes]]]


def trace_context(record: ConsumerRecord) -> Context:
    """The OpenTelemetry context the upstream stage sent in the record's ``traceparent`` header."""
    carrier = {k: v.decode(errors="replace") for k, v in (record.headers or ()) if v is not None}
    return propagate.extract(carrier)


def remote_span(context: Context) -> SpanContext:
    """The span a context extracted from a ``traceparent`` (a record's, an HTTP request's) names; invalid if none."""
    return trace.get_current_span(context).get_span_context()


def trace_headers(context: Context | None = None) -> list[tuple[str, bytes]]:
    """The W3C headers (``traceparent``, ``tracestate``) that carry ``context`` (default: the current one) on."""
    carrier: dict[str, str] = {}
    propagate.inject(carrier, context=context)
    return [(k, v.encode()) for k, v in carrier.items()]


def start_record_span(record: ConsumerRecord) -> Span:
    """The consumer span of one record, continuing the trace in its ``traceparent``; end it when done."""
    return TRACER.start_span(f"{record.topic} process", context=trace_context(record), kind=SpanKind.CONSUMER,
                             attributes={"messaging.system": "kafka", "messaging.destination.name": record.topic,
                                         "messaging.kafka.destination.partition": record.partition,
                                         "messaging.kafka.message.offset": record.offset})


@contextlib.contextmanager
def comment_spans(spans: Sequence[tuple[BaseModel, Span]]) -> Iterator[TraceHeaders]:
    """Yields, per comment id of each event, the headers that carry its span on to the comment's outputs; ends the
    spans with the block."""
    try:
        yield {getattr(event, "comment_id", ""): trace_headers(trace.set_span_in_context(span))
               for event, span in spans}
    finally:
        for _, span in spans:
            span.end()


def record_spans(records: Sequence[ConsumerRecord],
                 events: Sequence[BaseModel]) -> contextlib.AbstractContextManager[TraceHeaders]:
    """One consumer span per record of a micro-batch (a batch span would cut every comment's trace), as
    :func:`comment_spans`."""
    return comment_spans([(event, start_record_span(record)) for record, event in zip(records, events, strict=True)])


def new_traces(emits: Sequence[Emit],
               links: Sequence[SpanContext] = ()) -> contextlib.AbstractContextManager[TraceHeaders]:
    """A new trace per comment for events an HTTP request makes: one ``create`` span each, linked to ``links``
    (the caller's request, the held reply a review decides), not their child: a request may carry 500 comments,
    which would be one trace sampled as one, and a review may come days after the hold. As :func:`comment_spans`,
    for ``EventProducer.publish``'s ``traces``."""
    linked = [Link(context) for context in links if context.is_valid]
    return comment_spans([(emit.event, TRACER.start_span(
        f"{emit.topic.name} create", context=Context(), kind=SpanKind.PRODUCER, links=linked,
        attributes={"messaging.system": "kafka", "messaging.operation.type": "create",
                    "messaging.destination.name": emit.topic.name})) for emit in emits])


class EventProducer:
    """Where every service's events go: acks=all and idempotent, one produce batch per partition.

    FastStream's ``broker.publish`` runs its middleware chain (a span, metrics) for every
    message, about eight times the cost of the send itself; stage outputs come in micro-batches,
    so they are grouped by partition (same key → same partition as any Kafka client's default
    partitioner) and sent as whole batches, with the current trace context in their headers.

    With a ``transactional_id`` each ``send``, or everything sent in ``transaction()``, is one Kafka transaction:
    readers that read ``read_committed`` (the stages, ``TopicTable``) see all of its records or none, and starting
    a producer with the same id elsewhere fences this one (``Fenced``).
    """

    def __init__(self, settings: Settings, service: str, sends: Collection[Topic], *, linger_ms: int = 5,
                 transactional_id: str | None = None) -> None:
        self.service = service
        # The topics this service may publish to: what the AsyncAPI document says it sends.
        self.sends = frozenset(topic.name for topic in sends)
        self.transactional_id = transactional_id
        self._in_transaction = False
        # A transaction that failed leaves aiokafka's transactional producer unusable (fenced, or worse): later ones
        # fail as it did.
        self._failed: TransientError | None = None
        self._options = {
            "bootstrap_servers": settings.kafka_bootstrap_servers, "client_id": f"replyflow-{service}",
            "acks": "all", "enable_idempotence": True, "linger_ms": linger_ms,
            "request_timeout_ms": settings.kafka_request_timeout_ms, "max_batch_size": 256 * 1024,
            **({"transactional_id": transactional_id, "transaction_timeout_ms": TRANSACTION_TIMEOUT_MS}
               if transactional_id is not None else {}),
        }
        self._producer: AIOKafkaProducer | None = None
        self._partitioner = DefaultPartitioner()

    async def start(self) -> None:
        """Connect; with a transactional id, also claim it (which fences its previous holder)."""
        producer = AIOKafkaProducer(**self._options)
        try:
            # Bounded: aiokafka waits for a transactional id's coordinator without end.
            await asyncio.wait_for(producer.start(), self._options["request_timeout_ms"] / 1000)
        except (KafkaError, TimeoutError) as error:
            with contextlib.suppress(Exception):
                await producer.stop()
            raise TransientError(f"Kafka producer did not start: {type(error).__name__}: {error}") from error
        self._producer = producer

    async def stop(self) -> None:
        if self._producer is not None:
            producer, self._producer = self._producer, None
            # Flushes what is pending; bounded, for a broker that stopped answering.
            await asyncio.wait_for(producer.stop(), self._options["request_timeout_ms"] / 1000)

    async def partition_count(self, topic: str) -> int:
        """How many partitions ``topic`` has, as the cluster says."""
        assert self._producer is not None, "start() first"
        with self._kafka_errors():
            return len(await self._producer.partitions_for(topic))

    async def __aenter__(self) -> EventProducer:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    async def publish(self, emits: Sequence[Emit], traces: TraceHeaders | None = None) -> None:
        """Publish events and wait for every broker acknowledgement; broker trouble is transient.

        ``traces`` maps a comment id to the headers that continue that comment's trace (see
        :func:`record_spans`); events of other comments continue the current trace.
        """
        undeclared = {e.topic.name for e in emits} - self.sends
        if undeclared:
            raise ValueError(f"{self.service} does not declare that it sends to {sorted(undeclared)}")
        traces = traces or {}
        await self.send([
            (e.topic.name, e.key.encode(), e.event.model_dump_json().encode(),
             traces.get(getattr(e.event, "comment_id", None)))  # type: ignore[arg-type]
            for e in emits
        ])
        for e in emits:  # counted here, so no stage that decides can forget to
            if isinstance(e.event, Decision):
                for code in [r.code for r in e.event.reasons] or ["none"]:
                    DECISIONS_METRIC.labels(e.event.stage.value, e.event.outcome.value, code).inc()

    async def send(self, records: Sequence[tuple[str, bytes | None, bytes, list[tuple[str, bytes]] | None]],
                   headers: dict[str, str] | None = None) -> None:
        """Send ``(topic, key, value, trace headers or None)`` records plus ``headers`` on each, and wait
        for every acknowledgement. Records without trace headers continue the current trace."""
        producer = self._producer
        assert producer is not None, "start() first"
        if not records:
            return
        topics = sorted({record[0] for record in records})
        with TRACER.start_as_current_span(
            f"{','.join(topics)} publish", kind=SpanKind.PRODUCER,
            attributes={"messaging.system": "kafka", "messaging.operation.type": "publish",
                        "messaging.destination.name": ",".join(topics),
                        "messaging.batch.message_count": len(records)},
        ):
            extra = [(k, v.encode()) for k, v in (headers or {}).items()]
            current = extra + trace_headers()  # W3C traceparent: the next stage continues this trace
            batch = [(t, k, v, current if h is None else extra + h) for t, k, v, h in records]
            if self.transactional_id is None or self._in_transaction:
                with self._kafka_errors():
                    await self._send(producer, batch)
            else:
                async with self.transaction():
                    await self._send(producer, batch)
        for record in records:
            MESSAGES_PUBLISHED.labels(self.service, record[0]).inc()

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[None]:
        """What is sent inside is one Kafka transaction, committed at the end, aborted on any error (readers never
        see part of it). Without it, each ``send`` of a transactional producer is one."""
        producer = self._producer
        assert producer is not None and self.transactional_id is not None, "start() a transactional producer"
        assert not self._in_transaction, "one transaction at a time"
        if self._failed is not None:
            raise self._failed
        self._in_transaction = True
        # aiokafka waits for a commit or an abort without end (a broker that stopped answering): bounded here.
        timeout_s = self._options["request_timeout_ms"] / 1000
        try:
            with self._kafka_errors():
                await producer.begin_transaction()
                try:
                    yield
                except BaseException:
                    with contextlib.suppress(Exception):  # fenced or broken: the broker aborts it anyway
                        await asyncio.wait_for(producer.abort_transaction(), timeout_s)
                    raise
                await asyncio.wait_for(producer.commit_transaction(), timeout_s)
        except TransientError as error:
            self._failed = error
            raise
        finally:
            self._in_transaction = False

    @contextlib.contextmanager
    def _kafka_errors(self) -> Iterator[None]:
        """Kafka's errors as the stages' kinds: all transient; a fenced transactional producer says so."""
        try:
            yield
        except ProducerFenced as error:
            raise Fenced(f"{self.transactional_id} was taken over by another producer; nothing of this "
                         "transaction was written") from error
        except (KafkaError, TimeoutError) as error:
            raise TransientError(f"Kafka did not acknowledge: {type(error).__name__}: {error}") from error

    async def _send(self, producer: AIOKafkaProducer,
                    records: Sequence[tuple[str, bytes | None, bytes, list[tuple[str, bytes]]]]) -> None:
        partitions: dict[str, list[int]] = {}
        open_batches: dict[tuple[str, int], BatchBuilder] = {}
        sent = []
        for topic, key, value, header_list in records:
            if topic not in partitions:
                partitions[topic] = sorted(await producer.partitions_for(topic))
            every = partitions[topic]
            partition = self._partitioner(key, every, every)
            batch = open_batches.get((topic, partition))
            if batch is None or batch.append(key=key, value=value, timestamp=None, headers=header_list) is None:
                if batch is not None:  # full: send it, start another
                    sent.append(await producer.send_batch(batch, topic, partition=partition))
                batch = open_batches[(topic, partition)] = producer.create_batch()
                batch.append(key=key, value=value, timestamp=None, headers=header_list)
        for (topic, partition), batch in open_batches.items():
            sent.append(await producer.send_batch(batch, topic, partition=partition))
        await asyncio.gather(*sent)


def dead_letter_decision(body: bytes, error: str) -> Decision | None:
    """A terminal dead_lettered decision, when the body still names its comment."""
    try:
        data = json.loads(body)
        comment = data.get("comment", data)
        return Decision(
            comment_id=str(comment["comment_id"]),
            creator_id=str(comment["creator_id"]),
            reply_id=data.get("reply_id"),
            stage=Stage.dead_letter,
            outcome=Outcome.dead_lettered,
            reasons=[Reason(check="pipeline", code="dead_lettered", message=error, action=Action.skip)],
        )
    except (ValueError, KeyError, TypeError, AttributeError, ValidationError):
        return None


# What a dead-lettered record carries besides the original key and value (the AsyncAPI document's DLQ headers).
DEAD_LETTER_HEADERS = {
    "x-original-topic": "The topic the record was consumed from",
    "x-original-partition": "Its partition there",
    "x-original-offset": "Its offset there",
    "x-consumer-group": "The consumer group that gave up on it",
    "x-exception-class": "Why: the exception's class (ValidationError: the event does not match its schema)",
    "x-exception-message": "Why: the exception's message, at most 2,000 characters",
    "x-attempts": "How many times the batch holding it was tried",
    "x-failed-at-ms": "When it was dead-lettered, Unix epoch milliseconds",
}


async def dead_letter(
    producer: EventProducer, record: ConsumerRecord, error: BaseException, *, group: str, service: str,
    attempts: int,
) -> None:
    """Send a message that can never succeed to ``<topic>.dlq`` with where it came from and why.

    Call it in the record's span (:func:`start_record_span`): the dead letter and its decision carry the current
    trace on, which is then the comment's, and the span shows why the comment's trace ends here."""
    message = f"{type(error).__name__}: {error}"[:2000]
    span = trace.get_current_span()
    span.record_exception(error)
    span.set_status(StatusCode.ERROR, message)
    headers = {
        "x-original-topic": record.topic,
        "x-original-partition": str(record.partition),
        "x-original-offset": str(record.offset),
        "x-consumer-group": group,
        "x-exception-class": type(error).__name__,
        "x-exception-message": message,
        "x-attempts": str(attempts),
        "x-failed-at-ms": str(int(time.time() * 1000)),
    }
    # A replayed record that fails again says so: the operator sees which letters a replay did not fix.
    replayed_from = next((v for k, v in record.headers if k == "x-replayed-from" and v is not None), None)
    if replayed_from is not None:
        headers["x-replayed-from"] = replayed_from.decode(errors="replace")
    await producer.send([(f"{record.topic}.dlq", record.key, record.value, None)], headers)
    decision = dead_letter_decision(record.value, message)
    if decision is not None:
        await producer.publish([Emit(DECISIONS, decision)])
    DLQ_MESSAGES.labels(service, record.topic, type(error).__name__).inc()
    MESSAGES_PROCESSED.labels(service, record.topic, "dead_lettered").inc()
    about = {"comment_id": decision.comment_id, "creator_id": decision.creator_id} if decision is not None else {}
    log.warning("dead-lettered", extra={"fields": {**{k.removeprefix("x-"): v for k, v in headers.items()}, **about}})


class StageHealth:
    """What /readyz reports for a consuming service: broker reachable, not stuck on a dependency."""

    def __init__(self) -> None:
        self.failing_since: float | None = None
        self.last_failure_at: float | None = None
        self.last_error: str | None = None

    def ok(self) -> None:
        self.failing_since = None
        self.last_error = None

    def failing(self, error: str) -> None:
        self.last_failure_at = time.monotonic()
        self.failing_since = self.failing_since or self.last_failure_at
        self.last_error = error

    def failing_within(self, seconds: float) -> bool:
        """Whether a failure was seen in the last ``seconds`` and nothing has succeeded since.

        A failure counts for a while only: a consumer retrying a dependency fails again at every retry, but one
        whose partitions were all revoked meanwhile would otherwise stay unready until its next batch.
        """
        return self.failing_since is not None and time.monotonic() - (self.last_failure_at or 0) < seconds


def backoff_s(settings: Settings, attempt: int) -> float:
    return min(settings.retry_backoff_max_s, settings.retry_backoff_initial_s * 2 ** (attempt - 1))


@dataclass
class _RunResult:
    poison: list[tuple[ConsumerRecord, BaseException]] = field(default_factory=list)  # for the dead-letter topic
    waiting: list[ConsumerRecord] = field(default_factory=list)  # deferred by the handler
    why_waiting: str | None = None
    waiting_is_failing: bool = True  # Deferred.failing

    def add(self, other: _RunResult) -> None:
        if other.waiting:  # failing when any of the waits says so
            self.waiting_is_failing = other.waiting_is_failing or (bool(self.waiting) and self.waiting_is_failing)
        self.poison += other.poison
        self.waiting += other.waiting
        self.why_waiting = self.why_waiting or other.why_waiting


class GroupMembership:
    """Whether a consumer is in its consumer group, for readiness: partitions assigned, or none because the
    group has more members than the topic has partitions (legitimately idle).

    aiokafka calls the rebalance listener's revoked before every join and assigned after it, with no partitions
    too; in between the consumer is out of its group: joining at start, or in a rebalance, which the coordinator
    ends within the rebalance timeout. Out of the group longer than ``rejoin_s`` (a join that keeps failing),
    or never in it yet, the consumer is not ready.
    """

    def __init__(self, group: str, topic: str, rejoin_s: float, topic_partitions: int | None = None) -> None:
        self.group, self.topic, self.rejoin_s = group, topic, rejoin_s
        self.topic_partitions = topic_partitions
        self.partitions: frozenset[int] | None = None  # None: out of the group now
        self._share_of: frozenset[int] = frozenset()  # the partitions last assigned
        self._joined_once = False
        self._out_since = time.monotonic()
        CONSUMER_PARTITIONS.labels(group, topic).set(0)

    def assigned(self, assigned: Collection[TopicPartition]) -> None:
        self.partitions = frozenset(tp.partition for tp in assigned)
        self._share_of = self.partitions
        self._joined_once = True
        CONSUMER_PARTITIONS.labels(self.group, self.topic).set(len(self.partitions))

    def revoked(self) -> None:
        if self.partitions is not None:
            self._out_since = time.monotonic()
        self.partitions = None
        CONSUMER_PARTITIONS.labels(self.group, self.topic).set(0)

    def in_group(self) -> bool:
        return self.partitions is not None or (
            self._joined_once and time.monotonic() - self._out_since < self.rejoin_s)

    @property
    def share(self) -> float:
        """The fraction of the topic's partitions this consumer owns (the last it was assigned; 1 before that)."""
        if not self._share_of or not self.topic_partitions:
            return 1.0
        return len(self._share_of) / self.topic_partitions

    def describe(self) -> list[int] | str:
        """For /readyz: the partitions assigned (empty: idle), or that the consumer is joining its group."""
        return sorted(self.partitions) if self.partitions is not None else "joining"


class _FinishBatchOnRevoke(ConsumerRebalanceListener):
    """Holds a rebalance until the batch in hand is done and committed. Without it the handler would go on
    with partitions already given to another replica, and both would, for instance, post the same reply."""

    def __init__(self, idle: asyncio.Event, timeout_s: float, membership: GroupMembership) -> None:
        self.idle, self.timeout_s, self.membership = idle, timeout_s, membership

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        self.membership.revoked()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.idle.wait(), self.timeout_s)

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        self.membership.assigned(assigned)


def partition_of(key: str, partitions: int) -> int:
    """The partition of ``key``'s records on a topic of ``partitions`` partitions: Kafka's default partitioner, as
    every producer here (and Kafka's own clients) uses."""
    every = list(range(partitions))
    return DefaultPartitioner()(key.encode(), every, every)


def writer_transactional_id(group: str, topic: str, partition: int) -> str:
    """A partition's writer's transactional id: the same on every replica of the stage, one per consumer group
    (so per namespace and release)."""
    return f"{group}-{topic}-{partition}"


class PartitionWriters:
    """Transactional producers for a stage that must be its partitions' only writer (the control service's profile
    writer), with Kafka's fencing. Each batch claims its partition anew: a producer started under the partition's
    transactional id (the same on every replica), which aborts what the partition's last writer left open and
    fences that writer, then reads what was committed before (``read_committed``) and writes in transactions. A
    transaction commits only if no one claimed the partition since, so the partition's writes are serial whoever
    makes them, even a replica stalled past its session timeout that does not know yet it lost the partition: its
    next write fails (``Fenced``) and writes nothing. Claiming per batch also recovers from a producer fenced any
    other way (a transaction that outran TRANSACTION_TIMEOUT_MS, a transactional id the broker expired after a week
    idle); it costs a producer start (tens of ms) per batch, for changes people make."""

    def __init__(self, settings: Settings, service: str, sends: Collection[Topic], group: str, topic: str) -> None:
        self._settings, self._service, self._sends, self._group, self._topic = settings, service, sends, group, topic

    @contextlib.asynccontextmanager
    async def claim(self, partition: int) -> AsyncIterator[EventProducer]:
        """A producer that is ``partition``'s writer until the block ends or someone claims it after."""
        producer = EventProducer(self._settings, self._service, self._sends,
                                 transactional_id=writer_transactional_id(self._group, self._topic, partition))
        await producer.start()
        try:
            yield producer
        finally:
            with contextlib.suppress(KafkaError, TimeoutError):  # fenced or broken: nothing of it is needed any more
                await producer.stop()


# How long a rebalance waits for the batch in hand (a stage's batch takes well under this).
BATCH_IN_HAND_WAIT_S = 60.0
REBALANCE_TIMEOUT_S = BATCH_IN_HAND_WAIT_S + 10


StageHandler = Callable[[list[M]], Awaitable[list[Emit] | Deferred]]
PartitionHandler = Callable[[int, list[M]], Awaitable[list[Emit] | Deferred]]


async def each_partition(handle: PartitionHandler, records: list[ConsumerRecord],
                         events: list[M]) -> list[Emit] | Deferred:
    """``handle`` called once per partition of the batch with that partition's events in order; the answers
    joined into one, as a handler of the whole batch would give it."""
    indexes_of: dict[int, list[int]] = {}
    for i, record in enumerate(records):
        indexes_of.setdefault(record.partition, []).append(i)
    emits: list[Emit] = []
    deferred: list[tuple[list[int], Deferred]] = []
    for partition, indexes in sorted(indexes_of.items()):
        answer = await handle(partition, [events[i] for i in indexes])
        if isinstance(answer, Deferred):
            deferred.append((indexes, answer))
            answer = answer.emits
        emits += answer
    if not deferred:
        return emits
    return Deferred(emits, {indexes[i] for indexes, d in deferred for i in d.waiting}, deferred[0][1].why,
                    failing=any(d.failing for _, d in deferred))


def subscribe_stage(
    parts: ServiceParts,
    *,
    stage: str,
    topic: Topic,
    handle: StageHandler | None = None,
    handle_partition: PartitionHandler | None = None,
    max_batch: int = STAGE_MAX_BATCH,
    dead_lettered_too: Callable[[ConsumerRecord, BaseException], list[Emit]] | None = None,
) -> GroupMembership:
    """Register an at-least-once consumer of ``topic`` that hands ``handle`` micro-batches of its events;
    returns its place in its consumer group (the partitions it owns).

    ``stage`` names the consumer group: replicas of a stage share the work, stages don't.
    A batch is committed only after every output of it was acknowledged by the broker. On a
    transient failure every partition of the batch is rewound to its first offset in the batch
    (nothing is skipped, also not on other partitions); a batch that fails otherwise is retried
    message by message so that only the poison message is dead-lettered. A handler that answers
    ``Deferred`` holds back only the partitions of its waiting events, from the first of them on.
    A rebalance waits for the batch in hand. ``dead_lettered_too``: what else a dead-lettered record sends, after
    its dead letter (someone waiting on it is told). ``handle_partition`` instead of ``handle``: called per
    partition of the batch, with the partition (a writer that fences per partition, see ``PartitionWriters``).
    """
    if (handle is None) == (handle_partition is None):
        raise TypeError("give subscribe_stage one of handle and handle_partition")
    broker, producer, settings, health, service = (
        parts.broker, parts.producer, parts.settings, parts.health, parts.name)
    model = topic.message
    group = settings.group_id(stage)
    parts.consumes.append((topic, group))
    membership = GroupMembership(group, topic.name, REBALANCE_TIMEOUT_S, topic.partitions)
    parts.memberships.append(membership)
    attempts: dict[tuple[int, int], int] = {}  # (partition, offset) -> failed deliveries of the record
    waits: dict[tuple[int, int], int] = {}  # (partition, offset) -> times the handler deferred the record
    idle = asyncio.Event()
    idle.set()

    async def run(records: list[ConsumerRecord], isolate: bool) -> _RunResult:
        """Process records; returns those that can never succeed, with why, and those deferred.

        TransientError always propagates (retry the batch later). Other errors propagate too
        unless ``isolate``: then the batch is re-run message by message and only the failing
        messages are returned for the dead-letter topic.
        """
        result = _RunResult()
        events, valid = [], []
        for record in records:
            try:
                events.append(parse_ignoring_unknown_fields(model, record.value))
                valid.append(record)
            except ValidationError as error:
                result.poison.append((record, error))
        try:
            with record_spans(valid, events) as traces:
                if handle is not None:
                    answer = await handle(events)
                else:
                    assert handle_partition is not None
                    answer = await each_partition(handle_partition, valid, events)
                if isinstance(answer, Deferred):
                    result.waiting = [valid[i] for i in sorted(answer.waiting)]
                    result.why_waiting = answer.why
                    result.waiting_is_failing = answer.failing
                    answer = answer.emits
                await producer.publish(answer, traces)
        except TransientError:
            raise
        except Exception as error:
            if not (isolate or isinstance(error, PermanentError)):
                raise
            if len(valid) == 1:
                result.poison.append((valid[0], error))
                return result
            result.waiting, result.why_waiting = [], None
            for record in valid:
                result.add(await run([record], isolate=True))
        return result

    async def hold_back(msg: KafkaMessage, records: list[ConsumerRecord], result: _RunResult) -> None:
        """Commit the batch except the waiting events' partitions from their first waiting record on; those
        are sought back there and paused for a backoff."""
        first_waiting: dict[TopicPartition, int] = {}
        for r in result.waiting:
            tp = TopicPartition(r.topic, r.partition)
            first_waiting[tp] = min(first_waiting.get(tp, r.offset), r.offset)
        # Sought back before the commit: should the commit fail, the next one still stops at the waiting records.
        for tp, offset in first_waiting.items():
            msg.consumer.seek(tp, offset)
        msg.consumer.pause(*first_waiting)
        wait = max(waits.get((r.partition, r.offset), 0) for r in result.waiting) + 1
        for r in result.waiting:
            waits[(r.partition, r.offset)] = wait
        delay = backoff_s(settings, wait)
        if result.waiting_is_failing:
            health.failing(result.why_waiting or "deferred")
        else:
            health.ok()
        MESSAGES_PROCESSED.labels(service, topic.name, "deferred").inc(len(result.waiting))
        log.warning("holding back partitions whose events must wait", extra={"fields": {
            "topic": topic.name, "partitions": sorted(tp.partition for tp in first_waiting),
            "waiting": len(result.waiting), "attempt": wait, "retry_in_s": delay, "why": result.why_waiting}})

        def resume() -> None:  # only what is still ours: a rebalance in between assigns partitions unpaused
            msg.consumer.resume(*(set(first_waiting) & msg.consumer.assignment()))

        asyncio.get_running_loop().call_later(delay, resume)
        commit: dict[TopicPartition, int] = {}
        for r in records:
            tp = TopicPartition(r.topic, r.partition)
            commit[tp] = first_waiting.get(tp, max(commit.get(tp, 0), r.offset + 1))
        await msg.consumer.commit(commit)

    @broker.subscriber(
        topic.name,
        group_id=group,
        ack_policy=AckPolicy.MANUAL,
        auto_offset_reset="earliest",
        batch=True,
        max_records=max_batch,
        batch_timeout_ms=100,
        parser=headers_made_decodable,
        decoder=raw_records_only,
        listener=_FinishBatchOnRevoke(idle, BATCH_IN_HAND_WAIT_S, membership),
        rebalance_timeout_ms=int(REBALANCE_TIMEOUT_S * 1000),
        isolation_level="read_committed",  # a dead-letter replay that died part way is aborted, never processed
    )
    async def on_batch(msg: KafkaMessage) -> None:
        records: list[ConsumerRecord] = list(msg.raw_message)
        if not records:
            return
        idle.clear()
        try:
            await process(msg, records)
        finally:
            idle.set()

    async def process(msg: KafkaMessage, records: list[ConsumerRecord]) -> None:
        started = time.perf_counter()
        # Per record: after a rewind the next batch may start elsewhere (aiokafka re-queues what it had fetched).
        attempt = 1 + max(attempts.get((r.partition, r.offset), 0) for r in records) if attempts else 1
        try:
            result = await run(records, isolate=attempt >= settings.max_delivery_attempts)
            # Inside the try: a dead letter Kafka did not take must rewind, or the next commit skips the record.
            for record, error in result.poison:
                with trace.use_span(start_record_span(record), end_on_exit=True):
                    await dead_letter(producer, record, error, group=group, service=service, attempts=attempt)
                    if dead_lettered_too is not None:
                        await producer.publish(dead_lettered_too(record, error))
        except Exception as error:
            attempts.update({(r.partition, r.offset): attempt for r in records})
            health.failing(f"{type(error).__name__}: {error}")
            MESSAGES_PROCESSED.labels(service, topic.name, "retried").inc(len(records))
            log.warning("retrying batch after failure", extra={"fields": {
                "topic": topic.name, "first_offset": (records[0].partition, records[0].offset),
                "size": len(records), "attempt": attempt, "error": repr(error)}})
            await asyncio.sleep(backoff_s(settings, attempt))
            rewind(msg, records)
            return
        if attempts:
            for r in records:
                attempts.pop((r.partition, r.offset), None)
        if result.waiting:
            await hold_back(msg, records, result)
        else:
            health.ok()
            await msg.ack()  # commits every partition up to the end of this batch
        if waits:
            still_waiting = {(r.partition, r.offset) for r in result.waiting}
            for r in records:
                if (r.partition, r.offset) not in still_waiting:
                    waits.pop((r.partition, r.offset), None)
        done = len(records) - len(result.poison) - len(result.waiting)
        MESSAGES_PROCESSED.labels(service, topic.name, "ok").inc(done)
        PROCESSING_SECONDS.labels(service, topic.name).observe(time.perf_counter() - started)

    return membership


async def headers_made_decodable(
        records: tuple[ConsumerRecord, ...],
        parse: Callable[[tuple[ConsumerRecord, ...]], Awaitable[KafkaMessage]]) -> KafkaMessage:
    """FastStream's batch parser decodes every header value as UTF-8 before the handler runs. One that does not
    decode (or has no value, which Kafka allows) would drop the whole batch unseen, and the next batch's commit
    would skip it. Such values are replaced by their lenient decoding; the records are otherwise Kafka's."""
    return await parse(tuple(r if _headers_decode(r) else replace(r, headers=[
        (k, (v or b"").decode(errors="replace").encode()) for k, v in r.headers]) for r in records))


def _headers_decode(record: ConsumerRecord) -> bool:
    try:
        for _, value in record.headers:
            value.decode()
    except (AttributeError, UnicodeDecodeError):
        return False
    return True


async def raw_records_only(msg: KafkaMessage) -> None:
    """The stage decodes ``msg.raw_message`` with its pydantic model; skip FastStream's JSON decoding."""
    return None


def rewind(msg: KafkaMessage, records: list[ConsumerRecord]) -> None:
    """Seek each partition of a batch back to its first offset in the batch."""
    first_offsets: dict[TopicPartition, int] = {}
    for r in records:
        tp = TopicPartition(r.topic, r.partition)
        first_offsets[tp] = min(first_offsets.get(tp, r.offset), r.offset)
    for tp, offset in first_offsets.items():
        msg.consumer.seek(tp, offset)


_reported_unknown_fields: set[tuple[str, str]] = set()


def parse_ignoring_unknown_fields(model: type[M], value: bytes) -> M:
    """``model`` from JSON, leaving out fields this version does not know.

    A newer pod in a rolling deploy may write a field the older ones lack (an added field is
    optional; a breaking change bumps ``schema_version``, which still fails). Older consumers must
    still process the record, and apply a kill switch, rather than dead-letter or skip it. Anything
    else that does not validate still fails. Each unknown field is logged once per model.
    """
    try:
        return model.model_validate_json(value)
    except ValidationError as error:
        unknown = [e["loc"] for e in error.errors() if e["type"] == "extra_forbidden"]
        if len(unknown) != error.error_count():
            raise
    for loc in unknown:
        field = ".".join(map(str, loc))
        if (model.__name__, field) not in _reported_unknown_fields:
            _reported_unknown_fields.add((model.__name__, field))
            log.warning("leaving out a field this version does not know (a newer producer?)",
                        extra={"fields": {"model": model.__name__, "field": field}})
    data = json.loads(value)
    for loc in unknown:
        *path, name = loc
        parent = data
        for step in path:
            parent = parent[step]
        del parent[name]
    return model.model_validate(data)


class TopicTable(Generic[M]):
    """A topic materialised into memory (no consumer group): every instance reads it whole.

    Used for the compacted ``creators.config`` (so a profile change reaches every service in
    seconds), the publisher's ledger of recently published replies (``since_s``), and the control
    API's held and reviewed replies. ``keep_first``: the first record of a key stays (the control API's first
    decision about a reply wins, on every replica alike); otherwise the latest replaces it.
    ``on_row`` sees each row as it is stored, to keep an index the service needs. ``forget`` drops
    a row the service is done with, for good. ``keep_rows=False``: nothing is stored, ``on_row`` keeps what the
    service needs (the screen stage's reply budgets follow ``comments.screened`` so). ``keep_traces``: each row's
    record's ``traceparent`` is kept too (``trace_of``), for what follows from the row to link to its trace.
    ``drop_invalid``: a record that does not validate drops its key's row instead of leaving the previous one in
    force (creators.config: a profile a newer release wrote, which this one cannot read, must not leave the
    creator's older profile, in ``auto`` mode say, answering for them).
    It reads ``read_committed``: records of a transaction appear once it commits, never if it aborts.
    """

    def __init__(self, bootstrap_servers: str, topic: Topic, key_of: Callable[[M], str],
                 *, keep_first: bool = False, on_row: Callable[[M], None] | None = None,
                 since_s: float | None = None, keep_rows: bool = True, keep_traces: bool = False,
                 drop_invalid: bool = False):
        self._bootstrap = bootstrap_servers
        self._topic = topic
        self._model = topic.message  # the one event model the topic carries
        self._key_of = key_of
        self._keep_first = keep_first
        self._on_row = on_row
        self._since_s = since_s  # None: from the beginning; else the records of the last since_s seconds
        self._keep_rows = keep_rows
        self._drop_invalid = drop_invalid
        self._rows: dict[str, M] = {}
        self._traces: dict[str, SpanContext] | None = {} if keep_traces else None
        self._stored_at: list[tuple[float, str]] = []  # with since_s: a heap of (record time, key), to expire
        self._forgotten: set[str] = set()
        # What grows a pod's memory with traffic (one table per topic in a service).
        TABLE_ROWS.labels(topic.name).set_function(lambda: len(self._rows))
        TABLE_RECORDS_REJECTED.labels(topic.name)  # from 0, so that the first rejection is an increase
        self._unreadable: set[str] = set()  # keys whose latest record did not validate
        TABLE_UNREADABLE_KEYS.labels(topic.name).set_function(lambda: len(self._unreadable))
        self._consumer: AIOKafkaConsumer | None = None
        self._offsets: AIOKafkaConsumer | None = None  # for read_to_end, started on its first call
        self._task: asyncio.Task | None = None
        self._applied = asyncio.Event()  # set (and replaced) after each batch of records applied
        self.caught_up = asyncio.Event()

    @property
    def reading(self) -> str:
        """What it reads and keeps (the AsyncAPI document says it)."""
        span = "the whole topic" if self._since_s is None else f"the last {self._since_s / 3600:g} h of the topic"
        kept = "into memory " if self._keep_rows else ""
        return f"reads {span} {kept}at start and follows it (no consumer group)"

    @property
    def topic(self) -> Topic:
        return self._topic

    def get(self, key: str) -> M | None:
        return self._rows.get(key)

    def trace_of(self, key: str) -> SpanContext | None:
        """The span the record of ``key``'s row was sent in (with ``keep_traces``); None when unknown."""
        return self._traces.get(key) if self._traces is not None else None

    def __contains__(self, key: str) -> bool:
        return key in self._rows

    def rows(self) -> list[M]:
        return list(self._rows.values())

    def forget(self, key: str) -> None:
        """Drop ``key``'s row from memory and ignore the key's records from now on, read before or after."""
        self._drop(key)
        self._forgotten.add(key)

    async def wait_until(self, condition: Callable[[], bool], timeout_s: float) -> bool:
        """Wait until ``condition()`` holds after the records read so far; ``False`` on timeout.

        For read-your-writes: a writer waits until its own record came back through the topic.
        """
        deadline = time.monotonic() + timeout_s
        while not condition():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._applied.wait(), remaining)
        return True

    async def read_to_end(self, timeout_s: float, keys: Collection[str] | None = None) -> bool:
        """Wait until every record written before the call is read; ``False`` on timeout. For a single writer:
        it starts from what it, or the partition's previous owner, wrote last. The end offsets are the
        high-water marks, so a transaction still open then is waited for until it commits or aborts. ``keys``:
        only the partitions of records with those keys (a transaction open on another partition holds nothing up).
        """
        assert self._consumer is not None, "start() first"
        if self._offsets is None:
            # A client of its own: the broker answers a connection's requests in turn, so on the follower's the end
            # offsets would wait behind its fetch, which the broker holds up to fetch_max_wait_ms when idle.
            self._offsets = AIOKafkaConsumer(bootstrap_servers=self._bootstrap, group_id=None,
                                             enable_auto_commit=False)
            await self._offsets.start()
        partitions = list(self._consumer.assignment())  # every partition of the topic
        if keys is not None:
            wanted = {partition_of(key, len(partitions)) for key in keys}
            partitions = [tp for tp in partitions if tp.partition in wanted]
        ends = await self._offsets.end_offsets(partitions)
        deadline = time.monotonic() + timeout_s
        while not await self._read_up_to(ends):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._applied.wait(), min(remaining, 0.1))
        return True

    async def _read_up_to(self, ends: dict[TopicPartition, int]) -> bool:
        """Whether every partition is read up to ``ends``: by position, not by the last record read, since retention
        or compaction may have deleted the records before an end offset."""
        assert self._consumer is not None
        return all([await self._consumer.position(tp) >= end for tp, end in ends.items()])

    async def start(self, catch_up_timeout_s: float = 30.0) -> None:
        self._consumer = AIOKafkaConsumer(  # earliest: records deleted under us must not make it skip to the end
            bootstrap_servers=self._bootstrap, group_id=None, enable_auto_commit=False, auto_offset_reset="earliest",
            isolation_level="read_committed",  # a fenced writer's aborted records are never rows
        )
        await self._consumer.start()
        partitions = self._consumer.partitions_for_topic(self._topic.name)
        deadline = time.monotonic() + catch_up_timeout_s
        while not partitions:
            if time.monotonic() > deadline:
                raise RuntimeError(f"topic {self._topic.name} does not exist; create the topics "
                                   "(k8s/base/topics.yaml, or `python -m replyflow.admin topics` for local Kafka)")
            await asyncio.sleep(0.5)
            await self._consumer._client.force_metadata_update()
            partitions = self._consumer.partitions_for_topic(self._topic.name)
        assigned = [TopicPartition(self._topic.name, p) for p in sorted(partitions)]
        self._consumer.assign(assigned)
        if self._since_s is None:
            await self._consumer.seek_to_beginning(*assigned)
        else:
            since_ms = int((time.time() - self._since_s) * 1000)
            starts = await self._consumer.offsets_for_times({tp: since_ms for tp in assigned})
            ends = await self._consumer.end_offsets(assigned)
            for tp in assigned:  # None: nothing that recent, so start at the end
                self._consumer.seek(tp, starts[tp].offset if starts[tp] is not None else ends[tp])
        self._task = asyncio.create_task(self._follow(assigned))
        await asyncio.wait_for(self.caught_up.wait(), catch_up_timeout_s)

    async def _follow(self, assigned: list[TopicPartition]) -> None:
        assert self._consumer is not None
        catch_up_to: dict[TopicPartition, int] | None = None  # end offsets when (re)starting to catch up
        while True:
            try:
                if not self.caught_up.is_set():
                    catch_up_to = catch_up_to or await self._consumer.end_offsets(assigned)
                    if await self._read_up_to(catch_up_to):
                        self.caught_up.set()
                        catch_up_to = None
                batches = await self._consumer.getmany(timeout_ms=500)
                for records in batches.values():
                    for record in records:
                        self._apply(record)
                if self._since_s is not None:
                    self._expire(time.time() - self._since_s)
                if batches:
                    applied, self._applied = self._applied, asyncio.Event()
                    applied.set()
            except asyncio.CancelledError:
                raise
            except Exception:
                # Dying here would freeze the table behind a green /readyz (the kill switch among them).
                log.exception("following %s failed; retrying", self._topic.name)
                self.caught_up.clear()  # unready until read to the end again
                catch_up_to = None
                await asyncio.sleep(1.0)

    def _expire(self, before: float) -> None:
        """Drop the rows of records older than ``before`` (a table of the last ``since_s`` seconds)."""
        while self._stored_at and self._stored_at[0][0] < before:
            _, key = heapq.heappop(self._stored_at)
            self._drop(key)

    def _drop(self, key: str) -> None:
        self._rows.pop(key, None)
        if self._traces is not None:
            self._traces.pop(key, None)

    def _apply(self, record: ConsumerRecord) -> None:
        key = record.key.decode(errors="replace") if record.key is not None else None
        if key is not None:
            self._unreadable.discard(key)  # until this record proves unreadable too
        if record.value is None:  # tombstone
            if key is not None:
                self._drop(key)
            return
        try:
            row = parse_ignoring_unknown_fields(self._model, record.value)
        except (ValidationError, ValueError):
            if key is not None:
                self._unreadable.add(key)
                if self._drop_invalid:
                    self._drop(key)
            TABLE_RECORDS_REJECTED.labels(self._topic.name).inc()
            log.exception("ignoring invalid record on %s", self._topic.name, extra={"fields": {
                "topic": self._topic.name, "partition": record.partition, "offset": record.offset, "key": key}})
            return
        key_of_row = self._key_of(row)
        if key_of_row in self._forgotten or (self._keep_first and key_of_row in self._rows):
            return
        if self._keep_rows:
            self._rows[key_of_row] = row
            if self._traces is not None:
                self._traces[key_of_row] = remote_span(trace_context(record))
            if self._since_s is not None:
                heapq.heappush(self._stored_at, (record.timestamp / 1000, key_of_row))
        if self._on_row is not None:
            self._on_row(row)

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        if self._consumer:
            await self._consumer.stop()
        if self._offsets:
            await self._offsets.stop()
