"""Generation service: drafts a reply in the creator's voice for every screened comment.

    python -m replyflow.generation     # HTTP :8082 for /metrics /healthz /readyz

Keeps up to ``LLM_MAX_INFLIGHT`` requests in flight across its partitions (see windowed.py),
so the model server's continuous batching stays busy, and commits only what is durably done.
"""

from __future__ import annotations

import asyncio

from aiokafka import ConsumerRecord
from prometheus_client import Counter, Gauge, Histogram
from pydantic import ValidationError

from replyflow.events import (
    Action,
    CommentScreened,
    Decision,
    GenerationStats,
    Outcome,
    Reason,
    ReplyDrafted,
    Stage,
    reply_id_for,
)
from replyflow.generation.llm import LLMClient
from replyflow.generation.prompt import build_messages
from replyflow.kafka import Emit, PermanentError, TransientError, backoff_s, dead_letter, publish_all
from replyflow.service import ServiceParts, build_app, serve, service_parts
from replyflow.settings import Settings
from replyflow.topics import COMMENTS_SCREENED, DECISIONS, REPLIES_DRAFTED
from replyflow.windowed import WindowedConsumer

LLM_REQUESTS = Counter("replyflow_llm_requests_total", "Model server requests by result", ["result"])
LLM_TOKENS = Counter("replyflow_llm_completion_tokens_total", "Output tokens generated (rate() = tokens/s)")
LLM_TTFT = Histogram(
    "replyflow_llm_time_to_first_token_seconds", "Time to first token",
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30),
)
LLM_LATENCY = Histogram(
    "replyflow_llm_request_seconds", "Whole completion latency",
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 20, 60),
)
IN_FLIGHT = Gauge("replyflow_generation_in_flight", "Comments being drafted right now")
WINDOW = Gauge("replyflow_generation_window", "Most comments allowed in flight")


def draft_for(event: CommentScreened, text: str, profile_version: int, stats: GenerationStats) -> ReplyDrafted:
    return ReplyDrafted(
        comment=event.comment,
        reply_id=reply_id_for(event.comment.platform, event.comment_id),
        text=text,
        profile_version=profile_version,
        generation=stats,
        screen_reasons=event.reasons,
    )


class Drafter:
    """Turns one screened-comment record into a durable outcome (draft, skip, or dead letter)."""

    def __init__(self, parts: ServiceParts, llm: LLMClient, group: str) -> None:
        self.parts = parts
        self.llm = llm
        self.group = group

    async def __call__(self, record: ConsumerRecord) -> None:
        try:
            event = CommentScreened.model_validate_json(record.value)
            emits = await self._draft(event)
        except (ValidationError, PermanentError) as error:
            await self._retrying(lambda failure=error: dead_letter(
                self.parts.broker, record, failure, group=self.group, service="generation", attempts=1
            ))
            return
        await self._retrying(lambda: publish_all(self.parts.broker, emits))

    async def _draft(self, event: CommentScreened) -> list[Emit]:
        assert self.parts.profiles is not None
        profile = self.parts.profiles.get(event.creator_id)
        if profile is None:
            decision = Decision(
                comment_id=event.comment_id, creator_id=event.creator_id, platform=event.comment.platform,
                stage=Stage.screen, outcome=Outcome.skipped, reasons=[Reason(
                    check="creator", code="unknown_creator", action=Action.skip,
                    message="The creator's profile was deleted before a reply was drafted.")],
            )
            return [Emit(DECISIONS, event.comment_id, decision)]
        messages = build_messages(profile, event.comment)
        completion = await self._retrying(lambda: self.llm.complete(messages, profile.generation))
        LLM_TOKENS.inc(completion.completion_tokens)
        LLM_LATENCY.observe(completion.latency_ms / 1000)
        if completion.time_to_first_token_ms is not None:
            LLM_TTFT.observe(completion.time_to_first_token_ms / 1000)
        stats = GenerationStats(
            model=self.llm.model, prompt_tokens=completion.prompt_tokens,
            completion_tokens=completion.completion_tokens, latency_ms=completion.latency_ms,
            time_to_first_token_ms=completion.time_to_first_token_ms,
        )
        draft = draft_for(event, completion.text, profile.version, stats)
        return [Emit(REPLIES_DRAFTED, event.comment_id, draft)]

    async def _retrying(self, call):
        """Retry transient failures with backoff, holding the message's slot (this pauses intake)."""
        attempt = 0
        while True:
            try:
                result = await call()
            except TransientError as error:
                attempt += 1
                LLM_REQUESTS.labels("retry").inc()
                self.parts.health.failing(str(error))
                await asyncio.sleep(backoff_s(self.parts.settings, attempt))
                continue
            except PermanentError:
                LLM_REQUESTS.labels("permanent_error").inc()
                raise
            LLM_REQUESTS.labels("ok").inc()
            self.parts.health.ok()
            return result


def create_app(settings: Settings | None = None):
    settings = settings or Settings()
    parts = service_parts("generation", settings)
    llm = LLMClient(settings.llm_base_url, settings.llm_model, settings.llm_api_key,
                    settings.llm_timeout_s, settings.llm_max_inflight)
    group = settings.group_id("generation")
    consumer = WindowedConsumer(
        bootstrap_servers=settings.kafka_bootstrap_servers,
        topic=COMMENTS_SCREENED.name,
        group_id=group,
        handle=Drafter(parts, llm, group),
        limit=lambda: settings.llm_max_inflight,
        client_id="replyflow-generation",
    )
    WINDOW.set_function(lambda: settings.llm_max_inflight)
    IN_FLIGHT.set_function(lambda: consumer.in_flight)

    async def start_consumer() -> None:
        await consumer.start()

    async def stop_consumer() -> None:
        await consumer.stop(grace_s=settings.retry_backoff_max_s + 10)
        await llm.close()

    return build_app(parts, after_startup=[start_consumer], on_shutdown=[stop_consumer])


def main() -> None:
    settings = Settings()
    serve(create_app(settings), settings, "generation")
