"""The generation service as a real process against a real broker and the LLM simulator:
a model-server outage pauses intake and readiness without dead-lettering anything, and heals by
itself; an answer that fails after the 200 is retried, never drafted; a request longer than the context
is dead-lettered with the server's reason, while a long persona and comment are cut to fit; kill -9
mid-load loses nothing; SIGTERM drains the window so a restart redoes nothing."""

from __future__ import annotations

import asyncio
import json
import signal
import time
import uuid
from datetime import UTC, datetime

import httpx
import pytest

from loadtest.llm_simulator import SimConfig, serve_in_thread
from replyflow.admin import put_profiles
from replyflow.events import Comment, CommentScreened, CreatorProfile, Decision, Outcome, ReplyMode
from replyflow.kafka import group_starts_at_end
from replyflow.settings import Settings
from replyflow.topics import COMMENTS_SCREENED, DECISIONS, REPLIES_DRAFTED
from tests.helpers import OtlpReceiver, TopicReader, scraped, wait_for

pytestmark = pytest.mark.kafka

DLQ = COMMENTS_SCREENED.dlq
MODEL = "sim-model"


@pytest.fixture(scope="module")
def sim():
    # Fast answers (a 16-token reply in ~0.1 s) and a small context so an oversized prompt is easy to make.
    cfg = SimConfig(model=MODEL, max_model_len=1024, kv_capacity_tokens=200_000, ttft_ms=20, itl_ms=4,
                    output_tokens_mean=12, max_num_seqs=64)
    with serve_in_thread(cfg) as running:
        yield running


async def faults(sim, **body) -> None:
    async with httpx.AsyncClient() as http:
        (await http.post(f"{sim.url}/admin/faults", json=body)).raise_for_status()


def profile(creator_id: str, persona: str = "A cheerful baker who answers in short, warm sentences.",
            max_tokens: int = 16) -> CreatorProfile:
    return CreatorProfile.model_validate({
        "creator_id": creator_id, "display_name": "Test Baker", "persona": persona, "mode": "auto",
        "generation": {"max_tokens": max_tokens, "temperature": 0.7, "stop": ["\n\n"]},
    })


def screened(creator_id: str, i: int, text: str = "How long should the dough rest?") -> CommentScreened:
    comment = Comment(platform="youtube", comment_id=f"gen-{uuid.uuid4().hex[:8]}-{i}", creator_id=creator_id,
                      post_id="v1", author_id="a1", author_name="Ann", text=text, created_at=datetime.now(UTC))
    return CommentScreened(comment=comment, profile_version=1, policy_version="test")


async def produce(producer, events: list[CommentScreened]) -> None:
    futures = [await producer.send(COMMENTS_SCREENED.name, e.model_dump_json().encode(), key=e.comment_id.encode())
               for e in events]
    await asyncio.gather(*futures)


def draft_ids(records) -> list[str]:

    return [json.loads(r.value)["comment"]["comment_id"] for r in records if r.topic == REPLIES_DRAFTED.name]


def dlq_ids(records, ids: set[str]) -> list[str]:

    return [json.loads(r.value)["comment"]["comment_id"] for r in records
            if r.topic == DLQ and json.loads(r.value)["comment"]["comment_id"] in ids]


@pytest.fixture
async def generation(stack, sim, kafka_bootstrap):
    """Starts the generation service (a subprocess) against the simulator; returns (start, creator)."""
    creator = f"baker-{uuid.uuid4().hex[:6]}"
    await put_profiles([profile(creator)], Settings(kafka_bootstrap_servers=kafka_bootstrap))
    stack.llm_base_url = f"{sim.url}/v1"
    stack.llm_model = MODEL
    stack.extra_env.update({"RETRY_BACKOFF_INITIAL_S": "0.2", "RETRY_BACKOFF_MAX_S": "1",
                            "LLM_CONTROL_INTERVAL_S": "0.25", "LLM_DRAIN_TIMEOUT_S": "10", "LOG_LEVEL": "INFO"})
    # A new group would start at the earliest offset and redo every other test's comments.
    await group_starts_at_end(kafka_bootstrap, f"{stack.extra_env['KAFKA_GROUP_PREFIX']}.generation",
                              COMMENTS_SCREENED.name)

    def start(**env: str) -> str:
        stack.extra_env.update(env)
        stack.start_service("generation")
        stack.wait_ready(log=lambda *_: None, timeout_s=60)
        return stack.url("generation")

    yield start, creator
    await faults(sim, reset=True)


async def test_model_server_outage_pauses_intake_and_readiness_then_heals_without_dead_letters(
    generation, producer, kafka_bootstrap, sim
):
    start, creator = generation
    url = start(LLM_MAX_INFLIGHT="8")
    events = [screened(creator, i) for i in range(30)]
    ids = {e.comment_id for e in events}
    async with TopicReader(kafka_bootstrap, REPLIES_DRAFTED.name, DLQ) as reader:
        await faults(sim, status=503)  # every model request and /health answer 503
        await produce(producer, events)
        deadline = time.monotonic() + 15
        while httpx.get(f"{url}/readyz", timeout=5).status_code != 503:
            assert time.monotonic() < deadline, "readyz stayed ready while the model server failed"
            await asyncio.sleep(0.2)
        assert "503" in httpx.get(f"{url}/readyz", timeout=5).json()["failing"]
        while scraped(url, "replyflow_generation_window") != 1 or scraped(url, "replyflow_generation_paused") != 1:
            assert time.monotonic() < deadline, "the window did not shrink to one probe and pause"
            await asyncio.sleep(0.2)
        held = scraped(url, "replyflow_generation_window_messages")
        with pytest.raises(TimeoutError):  # nothing is drafted, nothing is dead-lettered meanwhile
            await reader.collect(lambda rs: len(rs) > 0, timeout_s=3)
        # Intake paused: no message taken meanwhile, and never more than the largest window's (8 + 2 ready).
        assert scraped(url, "replyflow_generation_window_messages") == held <= 10
        assert scraped(url, "replyflow_generation_paused") == 1
        assert scraped(url, "replyflow_llm_requests_total", result="retry") > 0

        await faults(sim, status=200)  # healthy again: the service resumes by itself
        records = await reader.collect(lambda rs: ids <= set(draft_ids(rs)), timeout_s=45)
    assert not dlq_ids(records, ids)
    assert httpx.get(f"{url}/readyz", timeout=5).status_code == 200


async def test_an_answer_that_fails_after_the_200_is_retried_not_drafted(generation, producer, kafka_bootstrap, sim):
    start, creator = generation
    url = start()
    events = [screened(creator, i) for i in range(4)]
    ids = {e.comment_id for e in events}
    retried = {"service": "generation", "topic": COMMENTS_SCREENED.name, "result": "retried"}
    async with TopicReader(kafka_bootstrap, REPLIES_DRAFTED.name, DLQ) as reader:
        for fault in ("error", "cut"):  # a vLLM error chunk then [DONE]; a body that ends without [DONE]
            await faults(sim, stream_fault=fault)
            if fault == "error":
                await produce(producer, events)
            before = scraped(url, "replyflow_messages_processed_total", **retried) or 0
            with pytest.raises(TimeoutError):  # retried meanwhile: nothing drafted, nothing dead-lettered
                await reader.collect(lambda rs: len(rs) > 0, timeout_s=3)
            assert (scraped(url, "replyflow_messages_processed_total", **retried) or 0) > before
        await faults(sim, status=200)
        records = await reader.collect(lambda rs: ids <= set(draft_ids(rs)), timeout_s=30)
    assert not dlq_ids(records, ids)


async def test_a_request_longer_than_the_context_is_dead_lettered_and_a_long_prompt_is_cut_to_fit(
        generation, producer, kafka_bootstrap):
    start, creator = generation
    greedy, verbose = f"{creator}-greedy", f"{creator}-verbose"
    # The prompt is cut to fit, but max_tokens is the creator's: 1,000 more tokens do not fit a 1,024 context.
    await put_profiles([profile(greedy, max_tokens=1_000), profile(verbose, persona="Talks at great length. " * 170)],
                       Settings(kafka_bootstrap_servers=kafka_bootstrap))
    start()
    too_long, fine = screened(greedy, 0), screened(creator, 1)
    long_winded = screened(verbose, 2, text="So many questions about the dough. " * 280)
    async with TopicReader(kafka_bootstrap, REPLIES_DRAFTED.name, DLQ, DECISIONS.name) as reader:
        await produce(producer, [too_long, long_winded])
        # `fine` as a newer producer writes it, with a field this version does not know: drafted all the same.
        newer = {**json.loads(fine.model_dump_json()), "screened_by": "policy-screen-v2"}
        await producer.send_and_wait(COMMENTS_SCREENED.name, json.dumps(newer).encode(), key=fine.comment_id.encode())

        def done(rs) -> bool:
            return {fine.comment_id, long_winded.comment_id} <= set(draft_ids(rs)) and bool(
                dlq_ids(rs, {too_long.comment_id})) and any(
                r.topic == DECISIONS.name and Decision.model_validate_json(r.value).comment_id == too_long.comment_id
                for r in rs)

        records = await reader.collect(done, timeout_s=30)
    dead = next(r for r in records if r.topic == DLQ)
    headers = {k: v.decode() for k, v in dead.headers}
    assert headers["x-original-topic"] == COMMENTS_SCREENED.name
    assert headers["x-exception-class"] == "PermanentError"
    assert "maximum context length" in headers["x-exception-message"]
    decision = next(Decision.model_validate_json(r.value) for r in records if r.topic == DECISIONS.name
                    and Decision.model_validate_json(r.value).comment_id == too_long.comment_id)
    assert decision.outcome == Outcome.dead_lettered
    assert too_long.comment_id not in draft_ids(records)


async def test_comments_of_a_creator_who_turned_replies_off_are_skipped_not_drafted(
        generation, producer, kafka_bootstrap):
    # The backlog screened before the kill switch costs no model time: verify would drop the drafts anyway.
    start, creator = generation
    switched_off = f"{creator}-off"
    await put_profiles([profile(switched_off).model_copy(update={"mode": ReplyMode.off})],
                       Settings(kafka_bootstrap_servers=kafka_bootstrap))
    url = start()
    backlog, fine = [screened(switched_off, i) for i in range(3)], screened(creator, 9)
    async with TopicReader(kafka_bootstrap, REPLIES_DRAFTED.name, DECISIONS.name) as reader:
        await produce(producer, [*backlog, fine])

        def skipped(rs) -> dict[str, Decision]:
            return {d.comment_id: d for d in (Decision.model_validate_json(r.value) for r in rs
                                              if r.topic == DECISIONS.name)
                    if d.comment_id in {e.comment_id for e in backlog}}

        records = await reader.collect(lambda rs: fine.comment_id in draft_ids(rs) and len(skipped(rs)) == 3)
    assert not {e.comment_id for e in backlog} & set(draft_ids(records))
    for decision in skipped(records).values():
        assert decision.outcome == Outcome.skipped and decision.reasons[0].code == "reply_mode_off"
    # Every decision a service sends is counted where it is sent (for the dashboard's reasons panel).
    assert scraped(url, "replyflow_decisions_total", stage="screen", outcome="skipped", reason="reply_mode_off") == 3


async def test_kill_9_mid_load_then_restart_drafts_every_comment(generation, stack, producer, kafka_bootstrap, sim):
    start, creator = generation
    await faults(sim, extra_latency_ms=400)  # ~0.5 s a request: many are in flight when the process dies
    env = {"LLM_MAX_INFLIGHT": "16", "LLM_INITIAL_INFLIGHT": "16"}
    start(**env)
    events = [screened(creator, i) for i in range(80)]
    ids = {e.comment_id for e in events}
    async with TopicReader(kafka_bootstrap, REPLIES_DRAFTED.name, DLQ) as reader:
        await produce(producer, events)
        before = await reader.collect(lambda rs: len(set(draft_ids(rs)) & ids) >= 20, timeout_s=30)
        stack.stop_process("generation", signal.SIGKILL)
        start(**env)
        after = await reader.collect(lambda rs: ids <= set(draft_ids(before + rs)), timeout_s=45)
    drafted = [i for i in draft_ids(before + after) if i in ids]
    duplicates = len(drafted) - len(set(drafted))
    # Only what was in flight at the kill (at most the window: 16 requests + 4 ready) is drafted twice.
    assert duplicates <= 20
    assert not dlq_ids(before + after, ids)


async def test_sigterm_drains_the_window_so_a_restart_redoes_nothing(generation, stack, producer, kafka_bootstrap, sim):
    start, creator = generation
    await faults(sim, extra_latency_ms=800)
    env = {"LLM_MAX_INFLIGHT": "8", "LLM_INITIAL_INFLIGHT": "8"}
    url = start(**env)
    events = [screened(creator, i) for i in range(40)]
    ids = {e.comment_id for e in events}
    async with TopicReader(kafka_bootstrap, REPLIES_DRAFTED.name, DLQ) as reader:
        await produce(producer, events)
        before = await reader.collect(lambda rs: len(set(draft_ids(rs)) & ids) >= 8, timeout_s=30)
        assert scraped(url, "replyflow_generation_in_flight") >= 4
        process = stack.processes["generation"]
        process.send_signal(signal.SIGTERM)
        # It exits by itself (uvicorn re-raises the SIGTERM once shut down); that it drained is checked below.
        assert await asyncio.to_thread(process.wait, 30) in (0, -signal.SIGTERM)
        await faults(sim, extra_latency_ms=0)
        start(**env)
        after = await reader.collect(lambda rs: ids <= set(draft_ids(before + rs)), timeout_s=45)
    drafted = [i for i in draft_ids(before + after) if i in ids]
    assert len(drafted) == len(ids), "a drained, committed comment was drafted again after the restart"
    assert not dlq_ids(before + after, ids)


async def test_each_model_call_is_a_gen_ai_client_span_inside_the_comments_trace(
    generation, producer, kafka_bootstrap, sim
):
    start, creator = generation
    trace_id, upstream_span = uuid.uuid4().hex, uuid.uuid4().hex[:16]
    event = screened(creator, 0)
    with OtlpReceiver() as collector:
        start(OTEL_TRACES_EXPORTER="otlp", OTEL_EXPORTER_OTLP_ENDPOINT=collector.url)
        async with TopicReader(kafka_bootstrap, REPLIES_DRAFTED.name) as reader:
            await producer.send_and_wait(COMMENTS_SCREENED.name, event.model_dump_json().encode(),
                                         key=event.comment_id.encode(),
                                         headers=[("traceparent", f"00-{trace_id}-{upstream_span}-01".encode())])
            await reader.collect(lambda rs: event.comment_id in draft_ids(rs), timeout_s=30)
        wait_for(lambda: any(s.name == f"chat {MODEL}" and s.trace_id == trace_id for s in collector.spans), 20,
                 "the model call's span at the collector")
    spans = {s.span_id: s for s in collector.spans if s.trace_id == trace_id}
    chat = next(s for s in spans.values() if s.name == f"chat {MODEL}")
    consumer = spans[chat.parent_span_id]  # the generation service's span for this record
    assert consumer.service == chat.service == "replyflow-generation"
    assert consumer.parent_span_id == upstream_span
    assert chat.attributes["gen_ai.operation.name"] == "chat"
    assert chat.attributes["gen_ai.request.model"] == MODEL
    assert chat.attributes["gen_ai.request.max_tokens"] == 16
    assert chat.attributes["gen_ai.usage.input_tokens"] > 0 and chat.attributes["gen_ai.usage.output_tokens"] > 0
    assert chat.attributes["server.port"] == int(sim.url.rsplit(":", 1)[1])
    assert chat.attributes["gen_ai.response.finish_reasons"] in (["stop"], ["length"])
