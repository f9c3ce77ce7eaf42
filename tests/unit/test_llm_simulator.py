"""The LLM simulator over real HTTP: uvicorn on a loopback port, httpx as the client.

Latency flags are tiny so the whole file runs in a few seconds; timing assertions compare two
measurements taken in the same test (generous ratios), never absolute wall-clock values.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import fields, replace
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:  # `loadtest` lives at the repository root, next to `services`
    sys.path.insert(0, str(ROOT))

from loadtest.llm_simulator import (  # noqa: E402
    DEFAULT_MODEL,
    SimConfig,
    build_parser,
    config_from_args,
    decode_tokens_per_s,
    itl_seconds,
    serve_in_thread,
)

FAST = SimConfig(
    ttft_ms=5.0,
    prefill_ms_per_token=0.0,
    ttft_load_ms=0.0,
    itl_ms=2.0,
    itl_growth=1.0,
    output_tokens_mean=12,
    seed=7,
)
CHAT: dict[str, Any] = {
    "model": DEFAULT_MODEL,
    "messages": [
        {"role": "system", "content": "You are a friendly cooking creator."},
        {"role": "user", "content": "Which flour do you use for sourdough?"},
    ],
}


@pytest.fixture
def sim() -> Iterator[httpx.Client]:
    with serve_in_thread(FAST) as running, httpx.Client(base_url=running.url, timeout=10) as client:
        yield client


def sse_events(client: httpx.Client, path: str, body: dict[str, Any]) -> list[str]:
    """Every ``data:`` payload of a streamed response, in order."""
    events = []
    with client.stream("POST", path, json=body) as resp:
        assert resp.status_code == 200, resp.read()
        assert resp.headers["content-type"].startswith("text/event-stream")
        for line in resp.iter_lines():
            if line:
                assert line.startswith("data: "), line
                events.append(line[len("data: ") :])
    return events


def metrics(client: httpx.Client) -> dict[str, float]:
    """``{'name{label=value,...}': value}`` for every sample on /metrics."""
    resp = client.get("/metrics")
    assert resp.status_code == 200
    out = {}
    for family in text_string_to_metric_families(resp.text):
        for s in family.samples:
            labels = ",".join(f"{k}={v}" for k, v in sorted(s.labels.items()))
            out[f"{s.name}{{{labels}}}"] = s.value
    return out


def gauge(samples: dict[str, float], name: str) -> float:
    return samples[f"{name}{{model_name={DEFAULT_MODEL}}}"]


# ----------------------------------------------------------------------------- protocol


def test_chat_completion_parses_like_openai(sim: httpx.Client) -> None:
    resp = sim.post("/v1/chat/completions", json=CHAT)
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["object"] == "chat.completion"
    assert body["id"].startswith("chatcmpl-")
    assert body["model"] == DEFAULT_MODEL
    assert isinstance(body["created"], int)
    (choice,) = body["choices"]
    assert choice["index"] == 0
    assert choice["message"]["role"] == "assistant"
    text = choice["message"]["content"]
    assert text and text[0].isupper() and text[-1] in ".!"
    assert choice["finish_reason"] in ("stop", "length")
    usage = body["usage"]
    # 2 messages: 5 fixed + per message (5 + ceil(chars / 4))
    expected_prompt = 5 + (5 + -(-35 // 4)) + (5 + -(-37 // 4))
    assert usage["prompt_tokens"] == expected_prompt
    assert usage["completion_tokens"] == len(text.split()) >= 1
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]

    again = sim.post("/v1/chat/completions", json=CHAT).json()
    assert again["choices"][0]["message"]["content"] == text, "same seed + request = same answer"
    assert again["id"] != body["id"]
    other = sim.post("/v1/chat/completions", json={**CHAT, "seed": 123}).json()
    assert other["choices"][0]["message"]["content"] != text


def test_chat_stream_emits_openai_chunks_and_done(sim: httpx.Client) -> None:
    events = sse_events(
        sim, "/v1/chat/completions", {**CHAT, "stream": True, "stream_options": {"include_usage": True}}
    )
    assert events[-1] == "[DONE]"
    chunks = [json.loads(e) for e in events[:-1]]
    assert all(c["object"] == "chat.completion.chunk" and c["model"] == DEFAULT_MODEL for c in chunks)
    assert len({c["id"] for c in chunks}) == 1
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    usage_chunk = chunks[-1]
    assert usage_chunk["choices"] == []
    content_chunks = chunks[:-1]
    finishes = [c["choices"][0]["finish_reason"] for c in content_chunks]
    assert finishes[-1] in ("stop", "length") and not any(finishes[:-1])
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in content_chunks)

    plain = sim.post("/v1/chat/completions", json=CHAT).json()
    assert text == plain["choices"][0]["message"]["content"], "streamed text = non-streamed text"
    assert usage_chunk["usage"]["completion_tokens"] == plain["usage"]["completion_tokens"]
    assert usage_chunk["usage"]["prompt_tokens"] == plain["usage"]["prompt_tokens"]
    assert finishes[-1] == plain["choices"][0]["finish_reason"]
    # tokens arrive incrementally (one per chunk at low load; a late wake-up may merge a few)
    assert 2 <= sum(1 for c in content_chunks if c["choices"][0]["delta"].get("content")) <= len(text.split())

    no_usage = sse_events(sim, "/v1/chat/completions", {**CHAT, "stream": True})
    assert all("usage" not in json.loads(e) for e in no_usage[:-1])


def test_completions_endpoint_and_ignore_eos(sim: httpx.Client) -> None:
    body = {"model": DEFAULT_MODEL, "prompt": "Reply to: great video!", "max_tokens": 7, "ignore_eos": True}
    resp = sim.post("/v1/completions", json=body)
    assert resp.status_code == 200, resp.text
    out = resp.json()
    assert out["object"] == "text_completion" and out["id"].startswith("cmpl-")
    assert out["choices"][0]["finish_reason"] == "length"
    assert out["usage"]["completion_tokens"] == 7 == len(out["choices"][0]["text"].split())
    assert out["usage"]["prompt_tokens"] == 1 + -(-22 // 4)

    events = sse_events(sim, "/v1/completions", {**body, "stream": True})
    assert events[-1] == "[DONE]"
    chunks = [json.loads(e) for e in events[:-1]]
    assert all(c["object"] == "text_completion" for c in chunks)
    assert "".join(c["choices"][0]["text"] for c in chunks) == out["choices"][0]["text"]

    tokens = sim.post("/v1/completions", json={"prompt": [1, 2, 3, 4, 5], "max_tokens": 3}).json()
    assert tokens["usage"]["prompt_tokens"] == 5
    assert 1 <= tokens["usage"]["completion_tokens"] <= 3


def test_models_health_version(sim: httpx.Client) -> None:
    models = sim.get("/v1/models").json()
    assert models["object"] == "list"
    assert [m["id"] for m in models["data"]] == [DEFAULT_MODEL]
    assert models["data"][0]["max_model_len"] == FAST.max_model_len
    health = sim.get("/health")
    assert health.status_code == 200 and health.content == b""
    assert sim.get("/version").status_code == 200


def test_metrics_use_vllm_names(sim: httpx.Client) -> None:
    done = sim.post("/v1/chat/completions", json={**CHAT, "max_tokens": 5, "ignore_eos": True}).json()
    m = metrics(sim)
    for name in ("vllm:num_requests_running", "vllm:num_requests_waiting", "vllm:kv_cache_usage_perc"):
        assert gauge(m, name) == 0.0
    assert gauge(m, "vllm:prompt_tokens_total") == done["usage"]["prompt_tokens"]
    assert gauge(m, "vllm:generation_tokens_total") == 5
    assert gauge(m, "vllm:time_to_first_token_seconds_count") == 1
    assert gauge(m, "vllm:e2e_request_latency_seconds_count") == 1
    assert gauge(m, "vllm:e2e_request_latency_seconds_sum") > gauge(m, "vllm:time_to_first_token_seconds_sum")
    assert m[f"vllm:request_success_total{{finished_reason=length,model_name={DEFAULT_MODEL}}}"] == 1
    assert m[f"vllm:request_success_total{{finished_reason=stop,model_name={DEFAULT_MODEL}}}"] == 0


# ----------------------------------------------------------------------------- validation


def test_invalid_requests_get_openai_errors(sim: httpx.Client) -> None:
    def error(resp: httpx.Response, status: int) -> dict[str, Any]:
        assert resp.status_code == status, resp.text
        err = resp.json()["error"]
        assert {"message", "type", "code"} <= set(err)
        assert err["code"] == status
        return err

    err = error(sim.post("/v1/chat/completions", json={"model": DEFAULT_MODEL}), 400)
    assert err["type"] == "BadRequestError" and "messages" in err["message"]
    error(sim.post("/v1/chat/completions", json={"messages": []}), 400)
    error(sim.post("/v1/chat/completions", content=b"{not json"), 400)
    error(sim.post("/v1/completions", json={"model": DEFAULT_MODEL}), 400)
    error(sim.post("/v1/chat/completions", json={**CHAT, "max_tokens": 0}), 400)
    error(sim.post("/v1/chat/completions", json={**CHAT, "n": 2}), 400)
    error(sim.post("/v1/chat/completions", json={**CHAT, "stream_options": {"include_usage": True}}), 400)
    err = error(sim.post("/v1/chat/completions", json={**CHAT, "model": "gpt-4o"}), 404)
    assert err["type"] == "NotFoundError" and err["message"] == "The model `gpt-4o` does not exist."


def test_context_length_error_matches_vllm() -> None:
    cfg = replace(FAST, max_model_len=256)
    with serve_in_thread(cfg) as running, httpx.Client(base_url=running.url) as c:
        long_prompt = {"messages": [{"role": "user", "content": "word " * 400}]}
        err = c.post("/v1/chat/completions", json=long_prompt).json()["error"]
        assert err["code"] == 400 and err["type"] == "BadRequestError"
        assert err["message"].startswith("This model's maximum context length is 256 tokens. However, your")

        resp = c.post("/v1/chat/completions", json={**CHAT, "max_tokens": 300})
        assert resp.status_code == 400
        message = resp.json()["error"]["message"]
        assert "This model's maximum context length is 256 tokens" in message
        assert "'max_tokens' or 'max_completion_tokens' is too large: 300" in message

        fits = c.post("/v1/chat/completions", json={**CHAT, "max_tokens": 200, "ignore_eos": True})
        assert fits.status_code == 200
        assert fits.json()["usage"]["completion_tokens"] == 200


# ----------------------------------------------------------------------------- scheduling


def test_latency_model_rises_and_saturates() -> None:
    cfg = SimConfig()
    assert itl_seconds(cfg, 1) == pytest.approx(0.007 * (1 + 3 / 256))
    assert itl_seconds(cfg, 256) == pytest.approx(0.028)
    rates = [decode_tokens_per_s(cfg, c) for c in (1, 8, 32, 64, 128, 256, 512)]
    assert rates == sorted(rates) and rates[0] < 200
    assert rates[-1] == rates[-2] == pytest.approx(256 / 0.028)  # saturated at max_num_seqs
    gains = [b / a for a, b in itertools.pairwise(rates)]
    assert gains[-2] < gains[0], "diminishing returns as the batch fills"


async def _burst(url: str, body: dict[str, Any], n: int, stream: bool) -> tuple[list[float], list[int]]:
    """``n`` concurrent requests; returns the client-side TTFT (stream) or latency, and statuses."""
    limits = httpx.Limits(max_connections=n + 4)
    async with httpx.AsyncClient(base_url=url, timeout=30, limits=limits) as client:

        async def one() -> tuple[float, int]:
            t0 = time.perf_counter()
            if not stream:
                resp = await client.post("/v1/chat/completions", json=body)
                return time.perf_counter() - t0, resp.status_code
            first = None
            async with client.stream("POST", "/v1/chat/completions", json={**body, "stream": True}) as resp:
                async for line in resp.aiter_lines():
                    if first is None and '"content":"' in line and '"content":""' not in line:
                        first = time.perf_counter() - t0
            assert first is not None
            return first, resp.status_code

        results = await asyncio.gather(*(one() for _ in range(n)))
    return [r[0] for r in results], [r[1] for r in results]


def test_requests_queue_beyond_max_num_seqs() -> None:
    cfg = replace(FAST, max_num_seqs=4)
    body = {**CHAT, "max_tokens": 25, "ignore_eos": True}
    with serve_in_thread(cfg) as running, httpx.Client(base_url=running.url) as poller:

        async def scenario() -> tuple[list[int], list[tuple[float, float, float]]]:
            burst = asyncio.create_task(_burst(running.url, body, 24, stream=False))
            seen = []
            while not burst.done():
                m = await asyncio.to_thread(metrics, poller)
                seen.append(
                    (
                        gauge(m, "vllm:num_requests_running"),
                        gauge(m, "vllm:num_requests_waiting"),
                        gauge(m, "vllm:kv_cache_usage_perc"),
                    )
                )
                await asyncio.sleep(0.01)
            _, statuses = await burst
            return statuses, seen

        statuses, seen = asyncio.run(scenario())
        assert statuses == [200] * 24
        assert max(w for _, w, _ in seen) > 0, f"no queueing observed: {seen}"
        assert max(r for r, _, _ in seen) == 4
        assert all(r <= 4 for r, _, _ in seen)
        assert max(kv for _, _, kv in seen) > 0
        m = metrics(poller)
        assert gauge(m, "vllm:num_requests_running") == gauge(m, "vllm:num_requests_waiting") == 0
        assert gauge(m, "vllm:generation_tokens_total") == 24 * 25
        assert gauge(m, "vllm:request_queue_time_seconds_sum") > 0


def test_ttft_grows_under_load() -> None:
    cfg = replace(FAST, max_num_seqs=4)
    body = {**CHAT, "max_tokens": 20, "ignore_eos": True}
    with serve_in_thread(cfg) as running:

        async def scenario() -> tuple[list[float], list[float]]:
            idle = []
            for _ in range(4):
                ttft, _ = await _burst(running.url, body, 1, stream=True)
                idle += ttft
            loaded, statuses = await _burst(running.url, body, 24, stream=True)
            assert statuses == [200] * 24
            return idle, loaded

        idle, loaded = asyncio.run(scenario())
    idle_mean, loaded_mean = sum(idle) / len(idle), sum(loaded) / len(loaded)
    assert loaded_mean > 2 * idle_mean, (idle, loaded)


def test_stream_disconnect_aborts_the_sequence(sim: httpx.Client) -> None:
    body = {**CHAT, "max_tokens": 2000, "ignore_eos": True, "stream": True}
    with sim.stream("POST", "/v1/chat/completions", json=body) as resp:
        lines = resp.iter_lines()  # keep the iterator alive: dropping it closes the connection
        for line in lines:
            if '"content":"' in line and '"content":""' not in line:
                break
        assert gauge(metrics(sim), "vllm:num_requests_running") == 1
    # leaving the block closes the connection mid-stream: the server must abort the sequence
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        m = metrics(sim)
        if gauge(m, "vllm:num_requests_running") == 0:
            break
        time.sleep(0.02)
    assert gauge(m, "vllm:num_requests_running") == 0
    assert m[f"vllm:request_success_total{{finished_reason=abort,model_name={DEFAULT_MODEL}}}"] == 1
    assert 1 <= gauge(m, "vllm:generation_tokens_total") < 2000


# ----------------------------------------------------------------------------- faults & CLI


def test_fault_injection_and_recovery(sim: httpx.Client) -> None:
    assert sim.post("/admin/faults", json={"status": 503}).json()["unavailable"] is True
    resp = sim.post("/v1/chat/completions", json=CHAT)
    assert resp.status_code == 503
    assert resp.json()["error"]["type"] == "ServiceUnavailableError"
    assert sim.get("/health").status_code == 503

    sim.post("/admin/faults", json={"status": 200})
    assert sim.get("/health").status_code == 200
    assert sim.post("/v1/chat/completions", json=CHAT).status_code == 200

    sim.post("/admin/faults", json={"fail_rate": 0.5, "status": 500, "retry_after_s": 1})
    statuses = [sim.post("/v1/chat/completions", json={**CHAT, "max_tokens": 1}) for _ in range(40)]
    codes = {r.status_code for r in statuses}
    assert codes == {200, 500}
    failed = next(r for r in statuses if r.status_code == 500)
    assert failed.headers["retry-after"] == "1" and failed.json()["error"]["code"] == 500

    assert sim.post("/admin/faults", json={"bogus": 1}).status_code == 400
    assert sim.post("/admin/faults", json={"reset": True}).json()["fail_rate"] == 0.0
    assert sim.post("/v1/chat/completions", json=CHAT).status_code == 200


def test_stream_faults_fail_an_answer_half_way_after_the_200(sim: httpx.Client) -> None:
    body = {**CHAT, "max_tokens": 20, "ignore_eos": True, "stream": True}
    assert sim.post("/admin/faults", json={"stream_fault": "error"}).json()["stream_fault"] == "error"
    events = sse_events(sim, "/v1/chat/completions", body)
    assert events[-1] == "[DONE]" and json.loads(events[-2])["error"]["code"] == 500  # as vLLM reports it
    assert all("finish_reason\":\"" not in e for e in events)  # never finished
    sim.post("/admin/faults", json={"stream_fault": "cut"})
    events = sse_events(sim, "/v1/chat/completions", body)
    assert "[DONE]" not in events and any('"content":"' in e for e in events)
    assert sim.post("/v1/chat/completions", json=CHAT).status_code == 200  # non-streamed answers are whole
    sim.post("/admin/faults", json={"status": 200})  # healthy again
    assert sse_events(sim, "/v1/chat/completions", body)[-1] == "[DONE]"
    assert sim.post("/admin/faults", json={"stream_fault": "bogus"}).status_code == 400
    assert sim.post("/admin/faults", json={"stream_fault_rate": 2}).status_code == 400


def test_fail_rate_flag_answers_every_request() -> None:
    cfg = replace(FAST, fail_rate=1.0, fail_status=503)
    with serve_in_thread(cfg) as running, httpx.Client(base_url=running.url) as c:
        assert all(c.post("/v1/completions", json={"prompt": "hi"}).status_code == 503 for _ in range(5))
        assert c.get("/health").status_code == 200  # fail_rate only hits model requests


def test_cli_flags_cover_every_setting() -> None:
    parser = build_parser()
    help_text = parser.format_help()
    for f in fields(SimConfig):
        assert "--" + f.name.replace("_", "-") in help_text
    cfg = config_from_args(parser.parse_args(["--max-num-seqs", "8", "--itl-ms", "3.5", "--unavailable"]))
    assert (cfg.max_num_seqs, cfg.itl_ms, cfg.unavailable) == (8, 3.5, True)
    assert config_from_args(parser.parse_args([])) == SimConfig()


def test_runs_as_a_separate_program() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "loadtest.llm_simulator",
            "--port",
            str(port),
            "--log-level",
            "warning",
            "--ttft-ms",
            "1",
            "--itl-ms",
            "1",
            "--seed",
            "3",
        ],
        cwd=ROOT,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 15
        while True:
            try:
                if httpx.get(url + "/health").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert proc.poll() is None and time.monotonic() < deadline, "simulator did not start"
            time.sleep(0.05)
        resp = httpx.post(url + "/v1/chat/completions", json=CHAT)
        assert resp.status_code == 200 and resp.json()["choices"][0]["message"]["content"]
    finally:
        proc.terminate()
        proc.wait(timeout=10)
