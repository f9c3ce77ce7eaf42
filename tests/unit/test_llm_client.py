"""The model-server client against the LLM simulator (and a canned stream for what the simulator never
sends): only a whole answer is an answer; a long one that keeps streaming is never timed out."""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import StreamingResponse
from starlette.routing import Route

from loadtest.llm_simulator import SimConfig, serve_in_thread
from loadtest.serving import RunningSimulator
from replyflow.events import GenerationParams
from replyflow.generation.llm import KEEPALIVE_S, LLMClient
from replyflow.kafka import TransientError
from tests.helpers import serving

MODEL = "sim-model"
# 50 tokens, one every 20 ms: a 1 s answer, streamed token by token.
SLOW = SimConfig(model=MODEL, ttft_ms=5, prefill_ms_per_token=0, ttft_load_ms=0, itl_ms=20, itl_growth=0,
                 output_dist="fixed", output_tokens_mean=50, seed=7)
MESSAGES = [{"role": "system", "content": "You are a baker."}, {"role": "user", "content": "Which flour?"}]
PARAMS = GenerationParams(max_tokens=64)


@pytest.fixture(scope="module")
def sim() -> Iterator[RunningSimulator]:
    with serve_in_thread(SLOW) as running:
        yield running


@pytest.fixture
async def faults(sim):
    async def set_faults(**body) -> None:
        async with httpx.AsyncClient() as http:
            (await http.post(f"{sim.url}/admin/faults", json=body)).raise_for_status()

    yield set_faults
    await set_faults(reset=True)


async def complete(url: str, timeout_s: float = 10.0, params: GenerationParams = PARAMS):
    client = LLMClient(f"{url}/v1", MODEL, "key", timeout_s=timeout_s, max_connections=4)
    try:
        return await client.complete(MESSAGES, params, seed=1)
    finally:
        await client.close()


async def test_a_long_answer_that_keeps_streaming_outlasts_the_timeout(sim):
    started = time.perf_counter()
    completion = await complete(sim.url, timeout_s=0.3)
    assert time.perf_counter() - started > 0.6  # far longer than the timeout, yet a whole answer
    assert completion.completion_tokens == 50 and completion.finish_reason == "stop"


@pytest.mark.parametrize("fault", [{"stream_fault": "stall"}, {"extra_latency_ms": 3000}],
                         ids=["stalled mid-answer", "no answer start"])
async def test_a_stream_that_stops_sending_times_out(sim, faults, fault):
    await faults(**fault)
    started = time.perf_counter()
    with pytest.raises(TransientError, match="timed out"):
        await complete(sim.url, timeout_s=0.3)
    assert time.perf_counter() - started < 2.5


@pytest.mark.parametrize(("fault", "why"), [("error", "failed mid-answer"), ("cut", "before \\[DONE\\]")])
async def test_an_answer_that_fails_after_the_200_is_a_transient_failure_not_a_draft(sim, faults, fault, why):
    await faults(stream_fault=fault)
    with pytest.raises(TransientError, match=why):
        await complete(sim.url)
    await faults(status=200)  # healthy again
    assert (await complete(sim.url)).completion_tokens == 50


async def test_an_answer_cut_by_max_tokens_is_still_an_answer(sim):
    completion = await complete(sim.url, params=GenerationParams(max_tokens=10))
    assert completion.finish_reason == "length" and completion.completion_tokens == 10 and completion.text


async def test_an_aborted_answer_is_a_transient_failure():
    async def aborted(request: Request) -> StreamingResponse:
        async def body():
            yield 'data: {"choices":[{"index":0,"delta":{"content":"Half an"},"finish_reason":null}]}\n\n'
            yield 'data: {"choices":[{"index":0,"delta":{},"finish_reason":"abort"}]}\n\n'
            yield "data: [DONE]\n\n"
        return StreamingResponse(body(), media_type="text/event-stream")

    async with serving(Starlette(routes=[Route("/v1/chat/completions", aborted, methods=["POST"])])) as url:
        with pytest.raises(TransientError, match="aborted"):
            await complete(url)


async def test_idle_connections_are_dropped_before_the_server_drops_them():
    # uvicorn (vLLM's server) closes an idle keep-alive connection after 5 s.
    client = LLMClient("http://127.0.0.1:1/v1", MODEL, "key", timeout_s=10.0, max_connections=4)
    try:
        assert client._http().connector._keepalive_timeout == KEEPALIVE_S < 5
    finally:
        await client.close()
