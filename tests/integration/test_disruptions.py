"""What happens to a running deployment, in the middle of the stream, with the real pipeline (five services,
platform simulator, its own broker) and the LLM simulator as the model server, so a run takes seconds of model
time. Whatever happens, every comment ends with exactly one terminal outcome, nothing is dead-lettered for it
and no reply is posted twice.

- Kafka itself crashes: the broker is SIGKILLed and comes back on the same port and log directory a few seconds
  later, as a pod Strimzi reschedules. Work Kafka did not acknowledge is retried; ingest answers 503 while it
  cannot write, so the platform sends again.
- A rolling deploy: each consumer Deployment gets a new pod, which joins its consumer group (a rebalance with
  work in flight), and then the old pod gets SIGTERM, as Kubernetes does with maxSurge 1. The YouTube poller
  rolls first, with new comments on the channels: the new pod takes the channels over from the cursors."""

from __future__ import annotations

import asyncio
import json
import signal

import httpx
import pytest

from loadtest.llm_simulator import SimConfig, serve_in_thread
from replyflow.events import Comment, Outcome, Platform
from replyflow.local.stack import (
    INGEST_AUTH,
    Outcomes,
    Stack,
    deliver_comments,
    follow_outcomes,
    load_sample_comments,
    posts_per_comment,
)
from tests.helpers import assert_documented, wait_for

pytestmark = pytest.mark.kafka

MODEL = "sim-model"


@pytest.fixture(scope="module")
def llm():
    # About a second per reply, so that the stream is still flowing when the broker dies.
    cfg = SimConfig(model=MODEL, ttft_ms=200, itl_ms=20, output_tokens_mean=30, max_num_seqs=8)
    with serve_in_thread(cfg) as running:
        yield running


async def flowing_stream(stack: Stack, platform: httpx.AsyncClient) -> tuple[list[Comment], list[Comment], set[str]]:
    """Sends the first 60 sample comments and waits for the first reply to go out; returns those comments, the
    rest of the sample, and the comments (threads) answered so far."""
    comments = load_sample_comments()
    before, later = comments[:60], comments[60:]
    await deliver_comments(stack, before)
    for _ in range(600):
        if posts := (await platform.get("/v1/posts")).json()["posts"]:
            return before, later, {p["comment_id"] for p in posts}
        await asyncio.sleep(0.2)
    raise TimeoutError("no reply was published")


@pytest.fixture
def stack(llm, tmp_path):
    """The pipeline on a broker of its own (one test kills it)."""
    # A short Kafka request timeout so that ingest gives up (503) while the broker is away.
    running = Stack(tmp_path / "stack", llm_base_url=f"{llm.url}/v1", llm_model=MODEL,
                    extra_env={"KAFKA_REQUEST_TIMEOUT_MS": "5000", "RETRY_BACKOFF_MAX_S": "2"})
    running.start(log=lambda *_: None)
    yield running
    running.stop()


async def test_a_broker_crash_mid_stream_loses_no_comment_and_posts_nothing_twice(stack):
    async with httpx.AsyncClient(base_url=stack.url("platform"), timeout=30) as platform:
        before, during, posted_before_the_crash = await flowing_stream(stack, platform)
        assert stack.kafka is not None and stack.kafka.process is not None
        stack.kafka.process.send_signal(signal.SIGKILL)
        stack.kafka.process.wait()
        # The comments that come to ingest (YouTube's are polled); a 503 may still land once Kafka is back.
        pushed = [json.loads(c.model_dump_json()) for c in during if c.platform != Platform.youtube]
        async with httpx.AsyncClient(base_url=stack.url("ingest"), timeout=60, headers=INGEST_AUTH) as ingest:
            refused = await ingest.post("/v1/comments", json=pushed)
        assert refused.status_code == 503, refused.text
        assert "Kafka" in refused.json()["error"] and int(refused.headers["retry-after"]) >= 1
        assert_documented(refused)
        assert httpx.get(f"{stack.url('ingest')}/readyz").status_code == 503  # out of its k8s Service
        await asyncio.sleep(3)
        await asyncio.to_thread(stack.kafka.start)  # same port, same log directory
        # Ready again once Kafka answers, with no request in between (a pod out of its Service gets none): the
        # refused request does not hold it out for READINESS_FAILURE_HOLD_S (90 s, longer than this wait).
        await asyncio.to_thread(wait_for, lambda: httpx.get(f"{stack.url('ingest')}/readyz").is_success, 60,
                                "ingest ready again")

        await deliver_comments(stack, during)  # the platform sends again what got 503
        ids = {c.comment_id for c in before + during}
        outcomes = await follow_outcomes(stack.kafka_bootstrap, ids, timeout_s=300)
        posts = (await platform.get("/v1/posts")).json()["posts"]

    published = assert_one_outcome_each_and_posted_once(before + during, outcomes, posts)
    # The crash hit a flowing stream: replies to comments taken in before it were still to go out after it.
    assert published & {c.comment_id for c in before} - posted_before_the_crash


async def test_a_rolling_deploy_of_every_consumer_mid_stream_loses_nothing_and_posts_nothing_twice(stack):
    async with httpx.AsyncClient(base_url=stack.url("platform"), timeout=30) as platform:
        before, during, posted_before_the_deploy = await flowing_stream(stack, platform)
        for name in ("youtube_poller", "policy", "generation", "publisher"):
            stack.start_service(name, instance=f"{name}-new")
            await asyncio.to_thread(wait_for, lambda n=name: httpx.get(f"{stack.url(n + '-new')}/readyz").is_success,
                                    60, f"the new {name} pod")
            if name == "youtube_poller":
                await deliver_comments(stack, during)
            await asyncio.to_thread(stack.stop_process, name)  # SIGTERM: drain, commit, leave the group

        ids = {c.comment_id for c in before + during}
        outcomes = await follow_outcomes(stack.kafka_bootstrap, ids, timeout_s=300)
        posts = (await platform.get("/v1/posts")).json()["posts"]

    published = assert_one_outcome_each_and_posted_once(before + during, outcomes, posts)
    assert published & {c.comment_id for c in before} - posted_before_the_deploy, "the deploy met no work in flight"


def assert_one_outcome_each_and_posted_once(comments: list[Comment], outcomes: Outcomes, posts: list[dict]
                                            ) -> set[str]:
    """The pipeline's promise; returns the comments whose reply was published."""
    ids = {c.comment_id for c in comments}
    assert not ids - set(outcomes.terminal), f"no terminal outcome for {sorted(ids - set(outcomes.terminal))}"
    for comment_id, decisions in outcomes.terminal.items():
        assert len({d.outcome for d in decisions}) == 1, f"{comment_id}: {decisions}"
        assert decisions[0].outcome != Outcome.dead_lettered, f"{comment_id} dead-lettered: {decisions[0].reasons}"
    per_comment, unexplained = posts_per_comment(posts, outcomes, comments)
    assert not unexplained and set(per_comment.values()) <= {1}, "a reply was posted twice"
    published = {cid for cid, ds in outcomes.terminal.items() if ds[0].outcome == Outcome.published}
    assert published == set(per_comment)
    return published
