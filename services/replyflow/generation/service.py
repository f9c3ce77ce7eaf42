"""Generation service: drafts a reply in the creator's voice for every screened comment.

    python -m replyflow.generation     # HTTP :8082 for /metrics /healthz /readyz

Keeps many requests in flight at the model server across its partitions (continuous batching
needs 64-256 on a GPU) and commits only what is durably done (see windowed.py). How many is
decided by an adaptive window (window.py) from the server's own metrics and the request
latencies, between ``LLM_MIN_INFLIGHT`` and ``LLM_MAX_INFLIGHT``.

Failures: an unreachable or failing model server (connection errors, timeouts, 5xx, 429, an
answer that fails, stops or is cut after the 200, a misconfigured model name) is retried with
backoff while the message keeps its place in the window (each retry counted as ``retried``);
the window shrinks to a single probing request, intake pauses once it is full and ``/readyz``
reports the failure until a request succeeds again. A request that can never
succeed (400: e.g. longer than the context window) is dead-lettered with the server's answer.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import random
import time

from aiokafka import ConsumerRecord
from opentelemetry import trace
from prometheus_client import Counter, Gauge, Histogram
from pydantic import ValidationError

from replyflow.events import (
    Action,
    CommentScreened,
    CreatorProfile,
    Decision,
    GenerationParams,
    GenerationStats,
    Outcome,
    Reason,
    ReplyDrafted,
    ReplyMode,
    Stage,
    reply_id_for,
)
from replyflow.generation.llm import Completion, LLMClient
from replyflow.generation.prompt import build_messages
from replyflow.generation.window import AdaptiveWindow, ControllerConfig, ServerProbe, metrics_url_for
from replyflow.kafka import (
    Emit,
    PermanentError,
    TransientError,
    backoff_s,
    dead_letter,
    parse_ignoring_unknown_fields,
    start_record_span,
)
from replyflow.observability import MESSAGES_PROCESSED, PROCESSING_SECONDS
from replyflow.service import ServiceParts, build_app, serve, service_parts
from replyflow.settings import Settings
from replyflow.topics import COMMENTS_SCREENED, DECISIONS, REPLIES_DRAFTED
from replyflow.windowed import Abandoned, WindowedConsumer, busy

log = logging.getLogger(__name__)

LLM_REQUESTS = Counter(
    "replyflow_llm_requests_total", "Model server requests by result (ok, retry, permanent_error)", ["result"]
)
LLM_TOKENS = Counter("replyflow_llm_completion_tokens_total", "Output tokens generated (rate() = tokens/s)")
LLM_PROMPT_TOKENS = Counter("replyflow_llm_prompt_tokens_total", "Prompt tokens sent to the model server")
LLM_TTFT = Histogram(
    "replyflow_llm_time_to_first_token_seconds", "Time to first token",
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30),
)
LLM_LATENCY = Histogram(
    "replyflow_llm_request_seconds", "Whole completion latency",
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 20, 60),
)
WINDOW_MESSAGES = Gauge(
    "replyflow_generation_window_messages",
    "Kafka messages taken and not yet done (model requests, ready ones, ones being published)",
)
PAUSED = Gauge("replyflow_generation_paused", "1 while the window is full and no messages are taken")
TOPIC = COMMENTS_SCREENED.name
# Each retry of a message (model call, unexpected error, publish): what ReplyflowStageRetrying watches.
RETRIED = MESSAGES_PROCESSED.labels("generation", TOPIC, "retried")


def draft_for(event: CommentScreened, text: str, profile_version: int, stats: GenerationStats) -> ReplyDrafted:
    return ReplyDrafted(
        comment=event.comment,
        reply_id=reply_id_for(event.comment.platform, event.comment_id),
        text=text,
        profile_version=profile_version,
        generation=stats,
        screen_reasons=event.reasons,
    )


def seed_for(event: CommentScreened) -> int:
    """A sampling seed fixed by the comment: a redelivered comment is drafted the same way where the server is
    deterministic (llama.cpp), and close to it on vLLM, whose output also depends on what it batches alongside."""
    digest = hashlib.blake2b(f"{event.comment.platform}:{event.comment_id}".encode(), digest_size=4).digest()
    return int.from_bytes(digest, "big") & 0x7FFF_FFFF


def not_drafted(event: CommentScreened, profile: CreatorProfile | None) -> Decision:
    """Why no reply is drafted: the creator's profile was deleted, or AI replies were turned off (the kill switch
    stops the backlog here too, not only at verify: no GPU time on replies that would go nowhere)."""
    reason = Reason(check="creator", code="unknown_creator", action=Action.skip,
                    message="The creator's profile was deleted before a reply was drafted.")
    if profile is not None:
        reason = Reason(check="creator", code="reply_mode_off", action=Action.skip,
                        message="AI replies were turned off before a reply was drafted.")
    return Decision(comment_id=event.comment_id, creator_id=event.creator_id, platform=event.comment.platform,
                    stage=Stage.screen, outcome=Outcome.skipped, reasons=[reason])


class Drafter:
    """Turns one screened-comment record into a durable outcome (draft, skip, or dead letter)."""

    def __init__(
        self, parts: ServiceParts, llm: LLMClient, window: AdaptiveWindow, group: str, *,
        seed_per_comment: bool = True,
    ) -> None:
        self.parts = parts
        self.llm = llm
        self.window = window
        self.group = group
        self.seed_per_comment = seed_per_comment
        self.abandoning = lambda record: False  # set by the consumer that hands out the records

    async def __call__(self, record: ConsumerRecord) -> None:
        with trace.use_span(start_record_span(record), end_on_exit=True):
            await self._handle(record)

    async def _handle(self, record: ConsumerRecord) -> None:
        started = time.perf_counter()
        attempt = 0
        while True:
            try:
                event = parse_ignoring_unknown_fields(CommentScreened, record.value)
                emits = await self._draft(record, event)
                break
            except (ValidationError, PermanentError) as error:
                await self._dead_letter(record, error, attempt + 1)
                return
            except (Abandoned, asyncio.CancelledError):
                raise
            except Exception as error:  # a bug or an odd message: retry a few times, then DLQ
                attempt += 1
                if attempt >= self.parts.settings.max_delivery_attempts:
                    await self._dead_letter(record, error, attempt)
                    return
                RETRIED.inc()
                log.warning("drafting failed unexpectedly; retrying", exc_info=True,
                            extra={"fields": {"partition": record.partition, "offset": record.offset}})
                await asyncio.sleep(self._backoff(attempt))
        await self._durably(record, lambda: self.parts.producer.publish(emits))
        MESSAGES_PROCESSED.labels("generation", TOPIC, "ok").inc()
        PROCESSING_SECONDS.labels("generation", TOPIC).observe(time.perf_counter() - started)

    async def _draft(self, record: ConsumerRecord, event: CommentScreened) -> list[Emit]:
        profile = self.parts.profiles.get(event.creator_id)
        if profile is None or profile.mode == ReplyMode.off:
            return [Emit(DECISIONS, not_drafted(event, profile))]
        messages = build_messages(profile, event.comment)
        seed = seed_for(event) if self.seed_per_comment else None
        completion = await self._complete(record, messages, profile.generation, seed)
        LLM_TOKENS.inc(completion.completion_tokens)
        LLM_PROMPT_TOKENS.inc(completion.prompt_tokens)
        LLM_LATENCY.observe(completion.latency_ms / 1000)
        if completion.time_to_first_token_ms is not None:
            LLM_TTFT.observe(completion.time_to_first_token_ms / 1000)
        stats = GenerationStats(
            model=self.llm.model, prompt_tokens=completion.prompt_tokens,
            completion_tokens=completion.completion_tokens, latency_ms=completion.latency_ms,
            time_to_first_token_ms=completion.time_to_first_token_ms,
        )
        draft = draft_for(event, completion.text, profile.version, stats)
        return [Emit(REPLIES_DRAFTED, draft)]

    def _check(self, record: ConsumerRecord) -> None:
        if self.abandoning(record):
            raise Abandoned()

    def _backoff(self, attempt: int) -> float:
        # Jitter spreads the retries of a full window over the backoff instead of one burst.
        return backoff_s(self.parts.settings, attempt) * random.uniform(0.5, 1.0)

    async def _complete(
        self, record: ConsumerRecord, messages: list[dict[str, str]], params: GenerationParams, seed: int | None
    ) -> Completion:
        """The model's answer, retrying transient failures forever (each attempt takes a window slot)."""
        attempt = 0
        while True:
            self._check(record)
            failure: TransientError | None = None
            async with self.window.slot():
                self._check(record)  # the consumer may have started to hand the partition back meanwhile
                try:
                    with busy():
                        completion = await self.llm.complete(messages, params, seed)
                except TransientError as error:
                    failure = error
                except PermanentError:
                    LLM_REQUESTS.labels("permanent_error").inc()
                    raise
            if failure is None:
                LLM_REQUESTS.labels("ok").inc()
                self.window.succeeded(
                    completion.latency_ms / 1000,
                    None if completion.time_to_first_token_ms is None else completion.time_to_first_token_ms / 1000,
                )
                self.parts.health.ok()
                return completion
            attempt += 1
            LLM_REQUESTS.labels("retry").inc()
            RETRIED.inc()
            self.window.failed()
            self.parts.health.failing(str(failure))
            if attempt == 1:
                log.warning("model request failed; retrying with backoff", extra={"fields": {
                    "partition": record.partition, "offset": record.offset, "error": str(failure)[:300]}})
            await asyncio.sleep(self._backoff(attempt))

    async def _dead_letter(self, record: ConsumerRecord, error: BaseException, attempts: int) -> None:
        await self._durably(record, lambda: dead_letter(
            self.parts.producer, record, error, group=self.group, service="generation", attempts=attempts))

    async def _durably(self, record: ConsumerRecord, publish) -> None:
        """Publish until the broker acknowledges (a broker outage is retried, never a reason to skip)."""
        attempt = 0
        while True:
            try:
                with busy():
                    await publish()
                return
            except (Abandoned, asyncio.CancelledError):
                raise
            except Exception as error:  # Kafka errors: retry; the offset stays uncommitted
                attempt += 1
                RETRIED.inc()
                log.warning("publishing failed; retrying", extra={"fields": {
                    "partition": record.partition, "offset": record.offset, "attempt": attempt, "error": repr(error)}})
                self._check(record)
                await asyncio.sleep(self._backoff(attempt))


def create_app(settings: Settings | None = None):
    settings = settings or Settings()
    parts = service_parts("generation", settings, sends=[REPLIES_DRAFTED, DECISIONS])
    most = max(1, settings.llm_max_inflight)
    llm = LLMClient(settings.llm_base_url, settings.llm_model, settings.llm_api_key,
                    settings.llm_timeout_s, max_connections=most + 8)
    controller = ControllerConfig(
        min_limit=max(1, min(settings.llm_min_inflight, most)),
        max_limit=most,
        initial_limit=settings.llm_initial_inflight,
        queue_tolerance=settings.llm_queue_tolerance,
        latency_target_s=settings.llm_latency_target_s or settings.llm_timeout_s / 2,
    )
    probe = ServerProbe(settings.llm_metrics_url or metrics_url_for(settings.llm_base_url))
    window = AdaptiveWindow(controller, probe=probe, interval_s=settings.llm_control_interval_s,
                            adaptive=settings.llm_adaptive)
    group = settings.group_id("generation")
    parts.consumes.append((COMMENTS_SCREENED, group))
    drafter = Drafter(parts, llm, window, group, seed_per_comment=settings.llm_seed_per_comment)
    consumer = WindowedConsumer(
        bootstrap_servers=settings.kafka_bootstrap_servers,
        topic=TOPIC,
        group_id=group,
        handle=drafter,
        limit=window.message_limit,
        client_id="replyflow-generation",
        drain_timeout_s=settings.llm_drain_timeout_s,
    )
    drafter.abandoning = consumer.abandoning
    parts.memberships.append(consumer.membership)
    parts.ready_checks.append(lambda: consumer.failing)  # unready while a bug keeps a message from finishing
    WINDOW_MESSAGES.set_function(lambda: consumer.in_flight)
    PAUSED.set_function(lambda: 1 if consumer.paused else 0)

    async def start_consumer() -> None:
        await window.start()
        await consumer.start()

    async def stop_consumer() -> None:
        # SIGTERM: stop taking messages, let model calls in flight finish (drain timeout), commit, leave.
        await consumer.stop(grace_s=settings.llm_drain_timeout_s)
        await window.stop()
        await llm.close()

    app = build_app(parts, after_startup=[start_consumer], on_shutdown=[stop_consumer])
    app.state_window = window  # for in-process tests and benchmarks
    app.state_consumer = consumer
    return app


def main() -> None:
    settings = Settings()
    serve(create_app(settings), settings, "generation")
