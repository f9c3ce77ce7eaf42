"""The drafter against the LLM simulator, without a broker: an answer that fails mid-stream is retried, never
drafted, and each retry is counted where ReplyflowStageRetrying looks."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from types import SimpleNamespace

import httpx
from prometheus_client import REGISTRY

from loadtest.llm_simulator import SimConfig, serve_in_thread
from replyflow.events import Comment, CommentScreened, CreatorProfile, ReplyDrafted
from replyflow.generation.llm import LLMClient
from replyflow.generation.prompt import build_messages
from replyflow.generation.service import TOPIC, Drafter, seed_for
from replyflow.generation.window import AdaptiveWindow, ControllerConfig
from replyflow.kafka import StageHealth
from replyflow.settings import Settings

MODEL = "sim-model"
CREATOR = CreatorProfile(creator_id="baker", display_name="Baker", persona="A cheerful baker.")


def retried() -> float:
    return REGISTRY.get_sample_value("replyflow_messages_processed_total",
                                     {"service": "generation", "topic": TOPIC, "result": "retried"}) or 0.0


def screened() -> CommentScreened:
    comment = Comment(platform="youtube", comment_id="c1", creator_id="baker", post_id="v1", author_id="a1",
                      author_name="Ann", text="How long should the dough rest?", created_at=datetime.now(UTC))
    return CommentScreened(comment=comment, profile_version=1, policy_version="test")


async def failing(drafting: asyncio.Task, retries: float) -> None:
    """Until ``retries`` retries are counted, with nothing drafted meanwhile."""
    while retried() < retries:
        assert not drafting.done(), "drafted from an answer that failed mid-stream"
        await asyncio.sleep(0.02)


async def test_an_answer_that_fails_mid_stream_is_retried_and_only_the_whole_answer_is_drafted():
    cfg = SimConfig(model=MODEL, ttft_ms=5, itl_ms=2, output_dist="fixed", output_tokens_mean=40)
    with serve_in_thread(cfg) as sim:
        llm = LLMClient(f"{sim.url}/v1", MODEL, "key", timeout_s=10, max_connections=4)
        parts = SimpleNamespace(settings=Settings(retry_backoff_initial_s=0.05, retry_backoff_max_s=0.1),
                                health=StageHealth(), profiles={"baker": CREATOR})
        drafter = Drafter(parts, llm, AdaptiveWindow(ControllerConfig(max_limit=4), probe=None), "group")
        event, before = screened(), retried()
        async with httpx.AsyncClient(base_url=sim.url) as http:
            await http.post("/admin/faults", json={"stream_fault": "error"})
            drafting = asyncio.create_task(drafter._draft(SimpleNamespace(partition=0, offset=0), event))
            await asyncio.wait_for(failing(drafting, before + 2), 10)
            await http.post("/admin/faults", json={"stream_fault": "cut"})
            await asyncio.wait_for(failing(drafting, before + 4), 10)
            await http.post("/admin/faults", json={"status": 200})  # healthy again
            [emit] = await asyncio.wait_for(drafting, 10)
        whole = await llm.complete(build_messages(CREATOR, event.comment), CREATOR.generation, seed_for(event))
        await llm.close()
        injected = {kind: sim.simulator.metrics.registry.get_sample_value(
            "llm_simulator_injected_faults_total", {"status": f"stream_{kind}"}) for kind in ("error", "cut")}
    assert injected["error"] >= 2 and injected["cut"] >= 2
    assert isinstance(emit.event, ReplyDrafted)
    assert emit.event.text == whole.text and emit.event.generation.completion_tokens == 40
