"""LLM simulator: an OpenAI-compatible stand-in for a vLLM server, with vLLM-like latency.

A separate program speaking the real protocol, used by load tests and benchmarks in place of
a GPU model server. It never computes anything model-like: it runs a cheap discrete-event
model of vLLM's continuous-batching scheduler on one asyncio loop and answers on time.

Run::

    python -m loadtest.llm_simulator --host 127.0.0.1 --port 8000 [--max-num-seqs 256 ...]
    python -m loadtest.llm_simulator --help        # every model parameter is a flag

API (vLLM's OpenAI-compatible server)
-------------------------------------
``POST /v1/chat/completions``, ``POST /v1/completions``
    Non-streaming, or ``"stream": true`` as server-sent events (``data: {chunk}`` lines, then
    ``data: [DONE]``); ``stream_options.include_usage`` adds a final chunk with ``usage`` and
    ``choices: []``. Honoured parameters: ``model`` (optional; must name the served model),
    ``messages`` / ``prompt``, ``max_tokens`` / ``max_completion_tokens``, ``min_tokens``,
    ``ignore_eos`` (vLLM extension: generate exactly ``max_tokens``), ``seed``, ``n`` (only 1).
    Other sampling parameters are accepted and ignored.
``GET /v1/models``, ``GET /health`` (200 empty body; 503 while "unavailable"), ``GET /version``.
``GET /metrics``
    Prometheus text with vLLM's names, each labelled ``model_name``: gauges
    ``vllm:num_requests_running``, ``vllm:num_requests_waiting``, ``vllm:kv_cache_usage_perc``
    (0..1; also as the older ``vllm:gpu_cache_usage_perc``); histograms
    ``vllm:time_to_first_token_seconds``, ``vllm:e2e_request_latency_seconds``,
    ``vllm:request_queue_time_seconds``, ``vllm:request_time_per_output_token_seconds``,
    ``vllm:request_prompt_tokens``, ``vllm:request_generation_tokens``; counters
    ``vllm:prompt_tokens_total``, ``vllm:generation_tokens_total``,
    ``vllm:request_success_total`` (label ``finished_reason``: stop | length | abort). Latencies
    are the modelled ones (what a GPU server would report), not this process's jitter.
``GET|POST /admin/faults``
    Read or change fault injection: ``{"fail_rate": 0.3}`` (fraction of model requests
    answered ``status``), ``{"status": 503}`` alone = unavailable (every model request and
    ``/health`` answer 503), ``{"status": 200}`` = healthy again (clears ``unavailable``,
    ``fail_rate`` and ``stream_fault``), ``{"unavailable": true|false}``,
    ``{"extra_latency_ms": 250}`` (added before scheduling), ``{"retry_after_s": 2}``
    (``Retry-After`` on injected errors), ``{"reset": true}`` (back to the start-up settings).
    Injected faults are checked before validation, as a dead server or proxy would answer.
    Faults after the 200, once half of a streamed answer is sent:
    ``{"stream_fault": "error"}`` (a vLLM error chunk ``data: {"error": {...}}`` then ``[DONE]``, as
    vLLM reports an engine failure mid-stream), ``"cut"`` (the body ends without ``[DONE]``: a proxy
    or the server dropped it), ``"stall"`` (nothing more is sent until the client gives up),
    ``null`` (off); ``{"stream_fault_rate": 0.5}`` hits that fraction of streams (default 1).

Errors are OpenAI/vLLM-shaped: ``{"error": {"message", "type", "param", "code"}}``. 400
``BadRequestError`` for malformed bodies (missing ``messages``/``prompt``, bad
``max_tokens``...) and for context overflow, with vLLM's wording::

    This model's maximum context length is 8192 tokens. However, your request has 9000 input
    tokens. Please reduce the length of the input messages.
    'max_tokens' or 'max_completion_tokens' is too large: 8000. This model's maximum context
    length is 8192 tokens and your request has 300 input tokens (8000 > 8192 - 300).

An unknown ``model`` answers 404 ``NotFoundError`` "The model `x` does not exist." exactly as
vLLM does.

Token counting (approximate, no tokenizer)
------------------------------------------
A text of ``c`` characters counts ``ceil(c / chars_per_token)`` tokens (default 4 chars per
token, about right for English with Llama-3's tokenizer). Chat prompts add the chat template:
``prompt_tokens = sum(ceil(len(content_i)/4) + 5 per message) + 5``; completions prompts add 1
(BOS); a prompt given as token ids counts its length. Generated text is made of filler words,
one token per word, so ``completion_tokens`` is the number of words produced.

Output length and text
----------------------
``n_out = min(max_tokens, max(min_tokens, L))`` where ``L`` is sampled from
``--output-dist`` (uniform in mean*(1 +- spread) by default, mean ``--output-tokens-mean`` 48;
also fixed or exponential) and ``max_tokens`` defaults to ``max_model_len - prompt_tokens``;
``ignore_eos`` makes ``n_out = max_tokens``. ``finish_reason`` is "length" when ``max_tokens``
cut the sample, else "stop". The sampling RNG and the words are seeded from ``--seed`` plus a
hash of the request (model, prompt/messages, max/min tokens, ignore_eos, request ``seed``), so
the same request always gets the same answer, streamed or not.

Latency model (continuous batching, defaults = Llama-3.1-8B bf16 on one H100)
-----------------------------------------------------------------------------
``N = --max-num-seqs`` (256) running slots and a FIFO waiting queue. A request is admitted
when a slot is free and its KV reservation fits: ``prompt + n_out`` tokens against
``--kv-capacity-tokens`` (450 000, ~56 GiB of KV at 128 KiB/token); no preemption is modelled.
Prefills share one GPU, so they run one after the other on a "prefill lane"::

    TTFT = queue_wait                                    # waiting for a slot / KV space
         + prefill_lane_wait                             # behind other admitted prefills
         + prompt_tokens * prefill_ms_per_token          # 0.04 ms/token  (~25k prompt tok/s)
         + ttft_ms                                       # 60 ms fixed (HTTP, tokenise, schedule)
         + ttft_load_ms * running / N                    # 40 ms at a full batch (mixed steps)

    ITL(running) = itl_ms * (1 + itl_growth * running / N)   # 7 ms * (1 + 3 * running/256)

``running`` counts admitted sequences (prefilling or decoding). Every decoding sequence
advances one token per ``ITL(running)``; the simulator integrates this as a shared virtual
"decode clock" that changes slope only when ``running`` changes, so each request's token
timeline is known in closed form and the loop only wakes at events (admission, first token,
completion) -- O(events), never O(tokens). Decode throughput at batch ``b`` is
``b / ITL(b)``: 143 tok/s at b=1, ~5.2k at 64, ~9.1k at 256 (the ceiling, as
``N / (itl_ms * (1 + itl_growth))``); beyond ``N`` requests queue and TTFT grows.
``KV usage = (prompt tokens + generated tokens of running sequences) / kv_capacity_tokens``.

Streaming emits a chunk as tokens appear; to bound CPU (each SSE chunk costs ~100 us, mostly
the loopback send) it coalesces: a stream sends at most once per
``active_streams / --stream-max-chunks-per-s`` seconds (default 2000 chunks/s across all
streams), so at low load every token is its own chunk and at 256 streams a chunk carries ~4-5
tokens; the first and the last token are never delayed, so TTFT and e2e stay exact. Closing a
stream early (client disconnect) aborts the sequence (``finished_reason="abort"``).

In-process use (tests, benchmarks): ``create_app(SimConfig(...))`` gives the ASGI app and
``with serve_in_thread(cfg) as sim: sim.url`` runs it under uvicorn on a free loopback port.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import heapq
import itertools
import json
import logging
import math
import random
import time
import uuid
from collections import deque
from collections.abc import AsyncIterator, Iterator
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

import uvicorn
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from loadtest.serving import RunningSimulator, serve_app_in_thread

log = logging.getLogger("loadtest.llm_simulator")

DEFAULT_MODEL = "meta-llama/Llama-3.1-8B-Instruct"
CHAT_TOKENS_PER_MESSAGE = 5  # <|start_header_id|>role<|end_header_id|>\n\n ... <|eot_id|>
CHAT_TOKENS_FIXED = 5  # <|begin_of_text|> + the assistant generation header
ROLES = frozenset({"system", "developer", "user", "assistant", "tool", "function"})
STREAM_FAULTS = (None, "error", "cut", "stall")


def _flag(default: Any, help_text: str, **kw: Any) -> Any:
    return field(default=default, metadata={"help": help_text, **kw})


@dataclass(frozen=True)
class SimConfig:
    """Every knob of the simulator; each field is also a ``--kebab-case`` CLI flag."""

    model: str = _flag(DEFAULT_MODEL, "served model name (what /v1/models lists and requests must name)")
    max_model_len: int = _flag(8192, "context window: prompt + max_tokens must fit (tokens)")
    max_num_seqs: int = _flag(256, "running slots of the continuous batch (vLLM --max-num-seqs)")
    kv_capacity_tokens: int = _flag(450_000, "KV cache size in tokens (8B bf16 on an 80 GB H100: ~450k)")
    ttft_ms: float = _flag(60.0, "fixed part of time to first token at low load (ms)")
    prefill_ms_per_token: float = _flag(0.04, "prefill cost per prompt token on the serial prefill lane (ms)")
    ttft_load_ms: float = _flag(40.0, "extra TTFT at a full batch, scaled by running/max_num_seqs (ms)")
    itl_ms: float = _flag(7.0, "inter-token latency of a lone sequence (ms)")
    itl_growth: float = _flag(3.0, "ITL = itl_ms * (1 + itl_growth * running / max_num_seqs)")
    output_tokens_mean: int = _flag(48, "mean sampled output length (tokens) when max_tokens does not cut it")
    output_dist: str = _flag(
        "uniform",
        "output length distribution: fixed | uniform (mean*(1+-spread)) | exponential",
        choices=("fixed", "uniform", "exponential"),
    )
    output_tokens_spread: float = _flag(0.5, "relative half-width of the uniform output length distribution")
    chars_per_token: float = _flag(4.0, "token estimate for prompts: ceil(chars / chars_per_token)")
    seed: int = _flag(0, "seed of output lengths, texts and injected faults")
    stream_max_chunks_per_s: float = _flag(
        2000.0, "SSE chunk budget across all streams; beyond it tokens are coalesced into fewer chunks"
    )
    fail_rate: float = _flag(0.0, "fraction of model requests answered with --fail-status (injected fault)")
    fail_status: int = _flag(503, "HTTP status of injected failures (500, 503, 429...)")
    unavailable: bool = _flag(False, "start unavailable: model requests and /health answer --fail-status")
    extra_latency_ms: float = _flag(0.0, "added to every model request before it reaches the scheduler (ms)")

    def validate(self) -> None:
        problems = []
        if self.max_num_seqs < 1:
            problems.append("max_num_seqs must be >= 1")
        if self.max_model_len < 2:
            problems.append("max_model_len must be >= 2")
        if self.kv_capacity_tokens < self.max_model_len:
            problems.append("kv_capacity_tokens must be >= max_model_len")
        if self.itl_ms <= 0:
            problems.append("itl_ms must be > 0")
        for name in ("ttft_ms", "prefill_ms_per_token", "ttft_load_ms", "itl_growth", "extra_latency_ms"):
            if getattr(self, name) < 0:
                problems.append(f"{name} must be >= 0")
        if self.output_tokens_mean < 1:
            problems.append("output_tokens_mean must be >= 1")
        if not 0 <= self.output_tokens_spread <= 1:
            problems.append("output_tokens_spread must be in [0, 1]")
        if self.chars_per_token <= 0:
            problems.append("chars_per_token must be > 0")
        if self.stream_max_chunks_per_s <= 0:
            problems.append("stream_max_chunks_per_s must be > 0")
        if not 0.0 <= self.fail_rate <= 1.0:
            problems.append("fail_rate must be in [0, 1]")
        if not 400 <= self.fail_status <= 599:
            problems.append("fail_status must be a 4xx or 5xx code")
        if self.output_dist not in ("fixed", "uniform", "exponential"):
            problems.append("output_dist must be fixed, uniform or exponential")
        if problems:
            raise ValueError("; ".join(problems))


def itl_seconds(cfg: SimConfig, running: int) -> float:
    """Inter-token latency of every decoding sequence while ``running`` sequences are admitted."""
    return cfg.itl_ms / 1000.0 * (1.0 + cfg.itl_growth * min(running, cfg.max_num_seqs) / cfg.max_num_seqs)


def decode_tokens_per_s(cfg: SimConfig, concurrency: int) -> float:
    """Aggregate decode rate with ``concurrency`` sequences in flight (saturates at max_num_seqs)."""
    batch = max(0, min(concurrency, cfg.max_num_seqs))
    return batch / itl_seconds(cfg, batch) if batch else 0.0


# --------------------------------------------------------------------------- text & tokens

_PHRASES = [
    "thanks so much for watching",
    "really glad this helped you",
    "I appreciate you being here",
    "great question",
    "I will cover that in the next video",
    "stay tuned for more",
    "love this community",
    "that means a lot to me",
    "let me know what you think",
    "more is coming soon",
    "you made my day",
    "happy to help anytime",
    "good point and I agree",
    "the recipe is in the description",
    "try it and tell me how it goes",
    "honestly it took a few attempts",
    "I felt the same way at first",
    "keep going and have fun with it",
    "see you in the next one",
    "that is a fair question",
]


def _sentence_tokens(phrase: str, end: str) -> tuple[str, ...]:
    words = phrase.split()
    words[0] = words[0][:1].upper() + words[0][1:]
    words[-1] += end
    return tuple(" " + w for w in words)


# every phrase is a sentence: capitalised, ending in "." (80 %) or "!" (20 %), words with leading space
_SENTENCES = [(_sentence_tokens(p, "."), _sentence_tokens(p, "!")) for p in _PHRASES]


def count_text_tokens(text: str, chars_per_token: float) -> int:
    return math.ceil(len(text) / chars_per_token) if text else 0


def _content_text(content: Any) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = []
        for part in content:
            if isinstance(part, dict) and isinstance(part.get("text"), str):
                parts.append(part["text"])
            elif isinstance(part, str):
                parts.append(part)
        return "".join(parts)
    raise _BadRequest("message content must be a string, a list of content parts or null", "messages")


def filler_tokens(rng: random.Random, n: int) -> list[str]:
    """``n`` word tokens forming plausible short sentences; token i>0 carries its leading space."""
    out: list[str] = []
    rand, pick, count = rng.random, rng.randrange, len(_SENTENCES)
    while len(out) < n:
        out.extend(_SENTENCES[pick(count)][rand() < 0.2])
    if len(out) > n:
        del out[n:]
        if out[-1][-1] not in ".!":
            out[-1] += "."
    out[0] = out[0][1:]
    return out


# --------------------------------------------------------------------------- errors


class _BadRequest(Exception):
    def __init__(
        self, message: str, param: str | None = None, status: int = 400, kind: str = "BadRequestError"
    ):
        super().__init__(message)
        self.message, self.param, self.status, self.kind = message, param, status, kind


def error_body(status: int, message: str, kind: str, param: str | None = None) -> dict[str, Any]:
    return {"error": {"message": message, "type": kind, "param": param, "code": status}}


def error_response(
    status: int, message: str, kind: str, param: str | None = None, headers: dict[str, str] | None = None
) -> JSONResponse:
    return JSONResponse(error_body(status, message, kind, param), status_code=status, headers=headers)


_STATUS_KIND = {
    400: "BadRequestError",
    404: "NotFoundError",
    429: "RateLimitError",
    500: "InternalServerError",
    502: "BadGatewayError",
    503: "ServiceUnavailableError",
    504: "GatewayTimeoutError",
}


# --------------------------------------------------------------------------- metrics

TTFT_BUCKETS = (
    0.001,
    0.005,
    0.01,
    0.02,
    0.04,
    0.06,
    0.08,
    0.1,
    0.25,
    0.5,
    0.75,
    1.0,
    2.5,
    5.0,
    7.5,
    10.0,
    20.0,
    40.0,
    80.0,
    160.0,
    640.0,
    2560.0,
)
E2E_BUCKETS = (
    0.3,
    0.5,
    0.8,
    1.0,
    1.5,
    2.0,
    2.5,
    5.0,
    10.0,
    15.0,
    20.0,
    30.0,
    40.0,
    50.0,
    60.0,
    120.0,
    240.0,
    480.0,
    960.0,
    1920.0,
    7680.0,
)
TPOT_BUCKETS = (
    0.01,
    0.025,
    0.05,
    0.075,
    0.1,
    0.15,
    0.2,
    0.3,
    0.4,
    0.5,
    0.75,
    1.0,
    2.5,
    5.0,
    7.5,
    10.0,
    20.0,
    40.0,
    80.0,
)
TOKEN_BUCKETS = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000, 20000, 50000, 100000)


class _Metrics:
    def __init__(self, model: str) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r, lm = self.registry, ["model_name"]
        self.ttft = Histogram(
            "vllm:time_to_first_token_seconds",
            "Histogram of time to first token in seconds.",
            lm,
            buckets=TTFT_BUCKETS,
            registry=r,
        ).labels(model)
        self.e2e = Histogram(
            "vllm:e2e_request_latency_seconds",
            "Histogram of e2e request latency in seconds.",
            lm,
            buckets=E2E_BUCKETS,
            registry=r,
        ).labels(model)
        self.queue = Histogram(
            "vllm:request_queue_time_seconds",
            "Histogram of time spent in WAITING phase for request.",
            lm,
            buckets=E2E_BUCKETS,
            registry=r,
        ).labels(model)
        self.tpot = Histogram(
            "vllm:request_time_per_output_token_seconds",
            "Histogram of time_per_output_token_seconds per request.",
            lm,
            buckets=TPOT_BUCKETS,
            registry=r,
        ).labels(model)
        self.req_prompt = Histogram(
            "vllm:request_prompt_tokens",
            "Number of prefill tokens processed.",
            lm,
            buckets=TOKEN_BUCKETS,
            registry=r,
        ).labels(model)
        self.req_gen = Histogram(
            "vllm:request_generation_tokens",
            "Number of generation tokens processed.",
            lm,
            buckets=TOKEN_BUCKETS,
            registry=r,
        ).labels(model)
        self.prompt_tokens = Counter(
            "vllm:prompt_tokens", "Number of prefill tokens processed.", lm, registry=r
        ).labels(model)
        self.generation_tokens = Counter(
            "vllm:generation_tokens", "Number of generation tokens processed.", lm, registry=r
        ).labels(model)
        success = Counter(
            "vllm:request_success",
            "Count of successfully processed requests.",
            ["model_name", "finished_reason"],
            registry=r,
        )
        self.success = {reason: success.labels(model, reason) for reason in ("stop", "length", "abort")}
        self.faults = Counter(
            "llm_simulator_injected_faults",
            "Requests answered with an injected fault.",
            ["status"],
            registry=r,
        )


class _GaugeCollector(Collector):
    """Scheduler gauges computed at scrape time (no per-event bookkeeping)."""

    def __init__(self, engine: Engine, model: str) -> None:
        self.engine, self.model = engine, model

    def collect(self) -> Iterator[GaugeMetricFamily]:
        e = self.engine
        e.refresh()
        kv = e.kv_usage()
        for name, doc, value in (
            ("vllm:num_requests_running", "Number of requests in model execution batches.", e.n_running),
            ("vllm:num_requests_waiting", "Number of requests waiting to be processed.", len(e.waiting)),
            ("vllm:kv_cache_usage_perc", "KV-cache usage. 1 means 100 percent usage.", kv),
            ("vllm:gpu_cache_usage_perc", "GPU KV-cache usage. 1 means 100 percent usage.", kv),
        ):
            g = GaugeMetricFamily(name, doc, labels=["model_name"])
            g.add_metric([self.model], float(value))
            yield g


# --------------------------------------------------------------------------- scheduler

_WAITING, _PREFILL, _DECODE, _DONE, _ABORTED = range(5)


class Seq:
    """One request's life in the scheduler; times are ``loop.time()`` seconds."""

    __slots__ = (
        "admitted_at",
        "arrival",
        "done",
        "finish_reason",
        "finished_at",
        "first",
        "first_at",
        "no",
        "out_tokens",
        "prompt_tokens",
        "state",
        "v_start",
    )

    def __init__(
        self,
        no: int,
        prompt_tokens: int,
        out_tokens: int,
        finish_reason: str,
        arrival: float,
        loop: asyncio.AbstractEventLoop,
    ) -> None:
        self.no = no
        self.finish_reason = finish_reason
        self.prompt_tokens = prompt_tokens
        self.out_tokens = out_tokens
        self.arrival = arrival
        self.admitted_at = self.first_at = self.finished_at = math.nan
        self.v_start = 0.0
        self.state = _WAITING
        self.first: asyncio.Future[None] = loop.create_future()
        self.done: asyncio.Future[None] = loop.create_future()

    @property
    def kv_need(self) -> int:
        return self.prompt_tokens + self.out_tokens


class Engine:
    """Discrete-event model of vLLM's continuous-batching scheduler, run on loop timers.

    All decoding sequences share one virtual clock ``V`` that advances by one token per
    ``ITL(running)``; it is piecewise linear (its slope changes only when ``running``
    changes), so a sequence that emitted its first token at ``V = v_start`` has
    ``1 + floor(V(t) - v_start)`` tokens at time ``t`` and finishes at
    ``V = v_start + n_out - 1``. Every method is synchronous (no ``await``), so the state
    is consistent under one event loop.
    """

    def __init__(self, cfg: SimConfig, metrics: _Metrics) -> None:
        self.cfg = cfg
        self.m = metrics
        self.loop: asyncio.AbstractEventLoop | None = None
        self.waiting: deque[Seq] = deque()
        self.n_running = 0
        self.kv_reserved = 0
        self.kv_prompt_running = 0
        self.n_decoding = 0
        self.sum_v_start = 0.0
        self.prefill_heap: list[tuple[float, int, Seq]] = []
        self.decode_heap: list[tuple[float, int, Seq]] = []
        self.prefill_free_at = 0.0
        self.v_base = 0.0
        self.t_base = 0.0
        self.itl_s = itl_seconds(cfg, 0)
        self.active_streams = 0
        self._ids = itertools.count()
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = math.inf

    # -- clock
    def _bind(self) -> asyncio.AbstractEventLoop:
        loop = asyncio.get_running_loop()
        if self.loop is not loop:
            self.loop = loop
            self.t_base = loop.time()
        return loop

    def v_at(self, t: float) -> float:
        return self.v_base + (t - self.t_base) / self.itl_s

    def t_of_v(self, v: float) -> float:
        return max(self.t_base, self.t_base + (v - self.v_base) * self.itl_s)

    def _change_running(self, t: float, delta: int) -> None:
        self.v_base = self.v_at(t)
        self.t_base = t
        self.n_running += delta
        self.itl_s = itl_seconds(self.cfg, self.n_running)

    def tokens_at(self, seq: Seq, t: float) -> int:
        if seq.state == _DONE:
            return seq.out_tokens
        if seq.state != _DECODE:
            return 0
        return min(seq.out_tokens, 1 + int(self.v_at(t) - seq.v_start + 1e-9))

    def next_token_time(self, seq: Seq, have: int) -> float:
        return self.t_of_v(seq.v_start + have)

    def kv_usage(self) -> float:
        if self.loop is None:
            return 0.0
        v = self.v_at(self.loop.time())
        generated = self.n_decoding * (v + 1.0) - self.sum_v_start
        used = self.kv_prompt_running + max(0.0, generated)
        return min(1.0, used / self.cfg.kv_capacity_tokens)

    # -- requests
    def submit(self, prompt_tokens: int, out_tokens: int, finish_reason: str = "stop") -> Seq:
        loop = self._bind()
        now = loop.time()
        seq = Seq(next(self._ids), prompt_tokens, out_tokens, finish_reason, now, loop)
        self._advance(now)
        self.waiting.append(seq)
        self._admit(now)
        self._reschedule()
        return seq

    def abort(self, seq: Seq) -> None:
        if seq.state in (_DONE, _ABORTED) or self.loop is None:
            return
        now = self.loop.time()
        self._advance(now)
        if seq.state == _WAITING:
            self.waiting.remove(seq)
            seq.state = _ABORTED
        elif seq.state in (_PREFILL, _DECODE):
            produced = self.tokens_at(seq, now)
            self._release(seq, now)
            seq.state = _ABORTED
            self.m.generation_tokens.inc(produced)
            self.m.success["abort"].inc()
        else:
            return
        for fut in (seq.first, seq.done):
            if not fut.done():
                fut.cancel()
        self._admit(now)
        self._reschedule()

    def refresh(self) -> None:
        """Process every event due by now (used before reading state, e.g. on scrape)."""
        try:
            in_loop = asyncio.get_running_loop() is self.loop
        except RuntimeError:  # read from another thread: report the last processed state
            in_loop = False
        if in_loop and self.loop is not None:
            self._advance(self.loop.time())
            self._reschedule()

    # -- internals
    def _release(self, seq: Seq, t: float) -> None:
        if seq.state == _DECODE:
            self.n_decoding -= 1
            self.sum_v_start -= seq.v_start
        self.kv_reserved -= seq.kv_need
        self.kv_prompt_running -= seq.prompt_tokens
        self._change_running(t, -1)

    def _admit(self, t: float) -> None:
        cfg = self.cfg
        while self.waiting and self.n_running < cfg.max_num_seqs:
            seq = self.waiting[0]
            if self.n_running and self.kv_reserved + seq.kv_need > cfg.kv_capacity_tokens:
                break
            self.waiting.popleft()
            self.kv_reserved += seq.kv_need
            self.kv_prompt_running += seq.prompt_tokens
            self._change_running(t, +1)
            seq.state = _PREFILL
            seq.admitted_at = t
            start = max(t, self.prefill_free_at)
            self.prefill_free_at = start + seq.prompt_tokens * cfg.prefill_ms_per_token / 1000.0
            first_at = (
                self.prefill_free_at
                + cfg.ttft_ms / 1000.0
                + cfg.ttft_load_ms / 1000.0 * self.n_running / cfg.max_num_seqs
            )
            heapq.heappush(self.prefill_heap, (first_at, seq.no, seq))

    def _advance(self, now: float) -> None:
        """Process, in time order, every first-token and completion event due by ``now``."""
        ph, dh = self.prefill_heap, self.decode_heap
        while True:
            tp = ph[0][0] if ph else math.inf
            td = self.t_of_v(dh[0][0]) if dh else math.inf
            if tp <= td:
                if tp > now:
                    return
                _, _, seq = heapq.heappop(ph)
                if seq.state != _PREFILL:
                    continue
                self._first_token(seq, tp)
            else:
                if td > now:
                    return
                _, _, seq = heapq.heappop(dh)
                if seq.state != _DECODE:
                    continue
                self._finish(seq, td)

    def _first_token(self, seq: Seq, t: float) -> None:
        seq.first_at = t
        self.m.ttft.observe(t - seq.arrival)
        self.m.queue.observe(seq.admitted_at - seq.arrival)
        self.m.prompt_tokens.inc(seq.prompt_tokens)
        self.m.req_prompt.observe(seq.prompt_tokens)
        seq.state = _DECODE
        seq.v_start = self.v_at(t)
        self.n_decoding += 1
        self.sum_v_start += seq.v_start
        if not seq.first.done():
            seq.first.set_result(None)
        if seq.out_tokens <= 1:
            self._finish(seq, t)
        else:
            heapq.heappush(self.decode_heap, (seq.v_start + seq.out_tokens - 1, seq.no, seq))

    def _finish(self, seq: Seq, t: float) -> None:
        self._release(seq, t)
        seq.state = _DONE
        seq.finished_at = t
        m = self.m
        m.e2e.observe(t - seq.arrival)
        m.generation_tokens.inc(seq.out_tokens)
        m.req_gen.observe(seq.out_tokens)
        m.success[seq.finish_reason].inc()
        if seq.out_tokens > 1:
            m.tpot.observe((t - seq.first_at) / (seq.out_tokens - 1))
        if not seq.done.done():
            seq.done.set_result(None)
        self._admit(t)

    def _next_event(self) -> float:
        tp = self.prefill_heap[0][0] if self.prefill_heap else math.inf
        td = self.t_of_v(self.decode_heap[0][0]) if self.decode_heap else math.inf
        return min(tp, td)

    def _reschedule(self) -> None:
        t_next = self._next_event()
        if t_next == self._timer_at:
            return
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._timer_at = t_next
        if t_next < math.inf and self.loop is not None:
            self._timer = self.loop.call_at(t_next, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        self._timer_at = math.inf
        assert self.loop is not None
        self._advance(self.loop.time())
        self._reschedule()


# --------------------------------------------------------------------------- HTTP layer


@dataclass
class Faults:
    fail_rate: float = 0.0
    status: int = 503
    unavailable: bool = False
    extra_latency_ms: float = 0.0
    retry_after_s: float | None = None
    stream_fault: str | None = None  # error | cut | stall, half-way through a streamed answer
    stream_fault_rate: float = 1.0


@dataclass
class _Parsed:
    chat: bool
    prompt_tokens: int
    out_tokens: int
    finish_reason: str
    stream: bool
    include_usage: bool
    rng_seed: int


def _int_param(body: dict[str, Any], name: str, minimum: int) -> int | None:
    value = body.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise _BadRequest(f"{name}: Input should be a valid integer", name)
    if value < minimum:
        raise _BadRequest(f"{name} must be at least {minimum}, got {value}.", name)
    return value


class Simulator:
    def __init__(self, cfg: SimConfig) -> None:
        cfg.validate()
        self.cfg = cfg
        self.metrics = _Metrics(cfg.model)
        self.engine = Engine(cfg, self.metrics)
        self.metrics.registry.register(_GaugeCollector(self.engine, cfg.model))
        self.faults = self._initial_faults()
        self._fault_rng = random.Random(cfg.seed)
        self.created = int(time.time())

    def _initial_faults(self) -> Faults:
        c = self.cfg
        return Faults(
            fail_rate=c.fail_rate,
            status=c.fail_status,
            unavailable=c.unavailable,
            extra_latency_ms=c.extra_latency_ms,
        )

    # -- fault injection
    def _injected(self) -> Response | None:
        f = self.faults
        if f.unavailable or (f.fail_rate > 0 and self._fault_rng.random() < f.fail_rate):
            self.metrics.faults.labels(str(f.status)).inc()
            headers = {"Retry-After": f"{f.retry_after_s:g}"} if f.retry_after_s is not None else None
            kind = _STATUS_KIND.get(f.status, "InternalServerError" if f.status >= 500 else "BadRequestError")
            why = "unavailable" if f.unavailable else "fail_rate"
            return error_response(
                f.status, f"Injected fault ({why}): the model server is not answering.", kind, headers=headers
            )
        return None

    def _stream_fault(self) -> str | None:
        f = self.faults
        if f.stream_fault and self._fault_rng.random() < f.stream_fault_rate:
            self.metrics.faults.labels(f"stream_{f.stream_fault}").inc()
            return f.stream_fault
        return None

    # -- request parsing / validation (vLLM semantics)
    def _parse(self, body: Any, chat: bool) -> _Parsed:
        cfg = self.cfg
        if not isinstance(body, dict):
            raise _BadRequest("Input should be a valid dictionary or object to extract fields from")
        cpt = cfg.chars_per_token
        if chat:
            messages = body.get("messages")
            if messages is None:
                raise _BadRequest("messages: Field required", "messages")
            if not isinstance(messages, list) or not messages:
                raise _BadRequest("messages: Input should be a non-empty list of messages", "messages")
            prompt_tokens = CHAT_TOKENS_FIXED
            for msg in messages:
                if not isinstance(msg, dict) or msg.get("role") not in ROLES:
                    raise _BadRequest("messages: each message needs a valid 'role'", "messages")
                prompt_tokens += CHAT_TOKENS_PER_MESSAGE + count_text_tokens(
                    _content_text(msg.get("content")), cpt
                )
            prompt_key: Any = messages
            max_tokens = _int_param(body, "max_completion_tokens", 1)
            if max_tokens is None:
                max_tokens = _int_param(body, "max_tokens", 1)
        else:
            prompt = body.get("prompt")
            if prompt is None:
                raise _BadRequest("prompt: Field required", "prompt")
            if isinstance(prompt, list) and len(prompt) == 1 and isinstance(prompt[0], (str, list)):
                prompt = prompt[0]
            if isinstance(prompt, str):
                prompt_tokens = 1 + count_text_tokens(prompt, cpt)
            elif isinstance(prompt, list) and prompt and all(isinstance(x, int) for x in prompt):
                prompt_tokens = len(prompt)
            else:
                raise _BadRequest(
                    "prompt must be a string, a list with one string, or a list of token ids "
                    "(batched prompts are not supported by the simulator)",
                    "prompt",
                )
            prompt_key = prompt
            max_tokens = _int_param(body, "max_tokens", 1)
        min_tokens = _int_param(body, "min_tokens", 0) or 0
        n = _int_param(body, "n", 1)
        if n not in (None, 1):
            raise _BadRequest("n > 1 is not supported by the simulator", "n")
        stream = body.get("stream", False)
        if not isinstance(stream, bool):
            raise _BadRequest("stream: Input should be a valid boolean", "stream")
        stream_options = body.get("stream_options")
        if stream_options is not None:
            if not stream:
                raise _BadRequest("Stream options can only be defined when `stream=True`.", "stream_options")
            if not isinstance(stream_options, dict):
                raise _BadRequest("stream_options: Input should be an object", "stream_options")
        include_usage = bool(stream_options and stream_options.get("include_usage"))
        ignore_eos = bool(body.get("ignore_eos", False))
        req_seed = body.get("seed")
        if req_seed is not None and (isinstance(req_seed, bool) or not isinstance(req_seed, int)):
            raise _BadRequest("seed: Input should be a valid integer", "seed")

        model = body.get("model")
        if model is not None and model != cfg.model:
            raise _BadRequest(f"The model `{model}` does not exist.", "model", 404, "NotFoundError")

        limit = cfg.max_model_len
        if prompt_tokens >= limit:
            raise _BadRequest(
                f"This model's maximum context length is {limit} tokens. However, your request has "
                f"{prompt_tokens} input tokens. Please reduce the length of the input messages.",
                "messages" if chat else "prompt",
            )
        if max_tokens is not None and prompt_tokens + max_tokens > limit:
            raise _BadRequest(
                f"'max_tokens' or 'max_completion_tokens' is too large: {max_tokens}. This model's maximum "
                f"context length is {limit} tokens and your request has {prompt_tokens} input tokens "
                f"({max_tokens} > {limit} - {prompt_tokens}).",
                "max_tokens",
            )
        cap = max_tokens if max_tokens is not None else limit - prompt_tokens
        if min_tokens > cap:
            raise _BadRequest(
                f"min_tokens must be less than or equal to max_tokens={cap}, got {min_tokens}.", "min_tokens"
            )

        key = json.dumps(
            [cfg.seed, cfg.model, prompt_key, max_tokens, min_tokens, ignore_eos, req_seed],
            sort_keys=True,
            separators=(",", ":"),
            default=str,
        )
        rng_seed = int.from_bytes(hashlib.blake2b(key.encode(), digest_size=8).digest(), "big")
        rng = random.Random(rng_seed)
        if ignore_eos:
            sampled = cap
        else:
            mean = cfg.output_tokens_mean
            if cfg.output_dist == "fixed":
                sampled = mean
            elif cfg.output_dist == "exponential":
                sampled = 1 + int(rng.expovariate(1.0 / max(mean - 1, 1e-9))) if mean > 1 else 1
            else:
                lo = max(1, round(mean * (1 - cfg.output_tokens_spread)))
                hi = max(lo, round(mean * (1 + cfg.output_tokens_spread)))
                sampled = rng.randint(lo, hi)
        sampled = max(sampled, min_tokens, 1)
        out = min(cap, sampled)
        finish = "length" if sampled >= cap else "stop"
        return _Parsed(chat, prompt_tokens, out, finish, stream, include_usage, rng.getrandbits(64))

    # -- endpoints
    async def chat_completions(self, request: Request) -> Response:
        return await self._generate(request, chat=True)

    async def completions(self, request: Request) -> Response:
        return await self._generate(request, chat=False)

    async def _generate(self, request: Request, chat: bool) -> Response:
        injected = self._injected()
        if injected is not None:
            return injected
        try:
            body = json.loads(await request.body())
        except (ValueError, UnicodeDecodeError) as exc:
            return error_response(400, f"Invalid JSON body: {exc}", "BadRequestError")
        try:
            p = self._parse(body, chat)
        except _BadRequest as exc:
            return error_response(exc.status, exc.message, exc.kind, exc.param)
        if self.faults.extra_latency_ms > 0:
            await asyncio.sleep(self.faults.extra_latency_ms / 1000.0)
        seq = self.engine.submit(p.prompt_tokens, p.out_tokens, p.finish_reason)
        rid = f"{'chatcmpl' if chat else 'cmpl'}-{uuid.uuid4().hex}"
        if p.stream:
            return StreamingResponse(
                self._stream(seq, p, rid, self._stream_fault()),
                media_type="text/event-stream",
                headers={"Cache-Control": "no-cache"},
            )
        try:
            await seq.done
        except asyncio.CancelledError:
            self.engine.abort(seq)
            raise
        text = "".join(filler_tokens(random.Random(p.rng_seed), p.out_tokens))
        usage = {
            "prompt_tokens": p.prompt_tokens,
            "total_tokens": p.prompt_tokens + p.out_tokens,
            "completion_tokens": p.out_tokens,
            "prompt_tokens_details": None,
        }
        if chat:
            choice: dict[str, Any] = {
                "index": 0,
                "message": {"role": "assistant", "content": text, "refusal": None, "tool_calls": []},
                "logprobs": None,
                "finish_reason": p.finish_reason,
                "stop_reason": None,
            }
            obj = "chat.completion"
        else:
            choice = {
                "index": 0,
                "text": text,
                "logprobs": None,
                "finish_reason": p.finish_reason,
                "stop_reason": None,
            }
            obj = "text_completion"
        return JSONResponse(
            {
                "id": rid,
                "object": obj,
                "created": int(time.time()),
                "model": self.cfg.model,
                "choices": [choice],
                "usage": usage,
                "system_fingerprint": None,
            }
        )

    async def _stream(self, seq: Seq, p: _Parsed, rid: str, fault: str | None = None) -> AsyncIterator[str]:
        engine = self.engine
        loop = asyncio.get_running_loop()
        created = int(time.time())
        head = (
            f'{{"id":"{rid}","object":"{"chat.completion.chunk" if p.chat else "text_completion"}",'
            f'"created":{created},"model":{json.dumps(self.cfg.model)},"choices":['
        )

        def chunk(text: str | None, finish: str | None = None, role: bool = False) -> str:
            if p.chat:
                delta: dict[str, Any] = {}
                if role:
                    delta["role"] = "assistant"
                if text is not None:
                    delta["content"] = text
                c: dict[str, Any] = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
            else:
                c = {"index": 0, "text": text or "", "logprobs": None, "finish_reason": finish}
            if finish is not None:
                c["stop_reason"] = None
            return f"data: {head}{json.dumps(c, separators=(',', ':'))}]}}\n\n"

        counted = False
        try:
            await seq.first
            engine.active_streams += 1
            counted = True
            words = filler_tokens(random.Random(p.rng_seed), p.out_tokens)
            emitted = 0
            if p.chat:
                yield chunk("", role=True)
            budget = self.cfg.stream_max_chunks_per_s
            while True:
                now = loop.time()
                have = engine.tokens_at(seq, now)
                if have > emitted:
                    yield chunk("".join(words[emitted:have]))
                    emitted = have
                    if fault and 2 * emitted >= seq.out_tokens:  # half the answer is out (the finally aborts it)
                        if fault == "error":
                            error = error_body(500, "Injected fault (stream_fault): the engine failed mid-answer.",
                                               "InternalServerError")
                            yield f"data: {json.dumps(error)}\n\n"
                            yield "data: [DONE]\n\n"
                        elif fault == "stall":
                            await asyncio.Event().wait()  # until the client disconnects or the server stops
                        return
                if emitted >= seq.out_tokens:
                    break
                # coalesce under load, but never delay the last token (e2e latency stays exact)
                wake = min(
                    max(engine.next_token_time(seq, emitted), now + engine.active_streams / budget),
                    engine.next_token_time(seq, seq.out_tokens - 1),
                )
                wake = max(wake, now + 0.0005)
                await asyncio.sleep(wake - loop.time())
            await seq.done
            engine.active_streams -= 1
            counted = False
            yield chunk("" if not p.chat else None, finish=p.finish_reason)
            if p.include_usage:
                usage = {
                    "prompt_tokens": p.prompt_tokens,
                    "total_tokens": p.prompt_tokens + p.out_tokens,
                    "completion_tokens": p.out_tokens,
                }
                yield f'data: {head}],"usage":{json.dumps(usage, separators=(",", ":"))}}}\n\n'
            yield "data: [DONE]\n\n"
        finally:
            if counted:
                engine.active_streams -= 1
            if seq.state != _DONE:
                engine.abort(seq)

    async def models(self, request: Request) -> Response:
        injected = self._injected() if self.faults.unavailable else None
        if injected is not None:
            return injected
        c = self.cfg
        return JSONResponse(
            {
                "object": "list",
                "data": [
                    {
                        "id": c.model,
                        "object": "model",
                        "created": self.created,
                        "owned_by": "vllm",
                        "root": c.model,
                        "parent": None,
                        "max_model_len": c.max_model_len,
                        "permission": [
                            {
                                "id": f"modelperm-{c.seed}",
                                "object": "model_permission",
                                "created": self.created,
                                "allow_create_engine": False,
                                "allow_sampling": True,
                                "allow_logprobs": True,
                                "allow_search_indices": False,
                                "allow_view": True,
                                "allow_fine_tuning": False,
                                "organization": "*",
                                "group": None,
                                "is_blocking": False,
                            }
                        ],
                    }
                ],
            }
        )

    async def health(self, request: Request) -> Response:
        if self.faults.unavailable:
            return Response(status_code=self.faults.status if self.faults.status >= 500 else 503)
        return Response(status_code=200)

    async def version(self, request: Request) -> Response:
        return JSONResponse({"version": "llm-simulator"})

    async def metrics_endpoint(self, request: Request) -> Response:
        return Response(generate_latest(self.metrics.registry), media_type=CONTENT_TYPE_LATEST)

    async def admin_faults(self, request: Request) -> Response:
        if request.method == "POST":
            try:
                body = json.loads(await request.body() or b"{}")
                self._update_faults(body)
            except (ValueError, TypeError) as exc:
                return error_response(400, str(exc), "BadRequestError")
        return JSONResponse(asdict(self.faults))

    def _update_faults(self, body: Any) -> None:
        if not isinstance(body, dict):
            raise TypeError("expected a JSON object")
        known = {"fail_rate", "status", "unavailable", "extra_latency_ms", "retry_after_s", "stream_fault",
                 "stream_fault_rate", "reset"}
        unknown = set(body) - known
        if unknown:
            raise ValueError(f"unknown fault settings: {sorted(unknown)}; known: {sorted(known)}")
        f = self._initial_faults() if body.get("reset") else replace(self.faults)
        if "status" in body:
            status = body["status"]
            if isinstance(status, bool) or not isinstance(status, int) or not (200 <= status <= 599):
                raise ValueError("status must be an HTTP status code")
            if status < 400:  # healthy again
                f.unavailable, f.fail_rate, f.stream_fault = False, 0.0, None
            else:
                f.status = status
                if "fail_rate" not in body and "unavailable" not in body:
                    f.unavailable = True
        if "fail_rate" in body:
            rate = float(body["fail_rate"])
            if not 0.0 <= rate <= 1.0:
                raise ValueError("fail_rate must be in [0, 1]")
            f.fail_rate = rate
        if "unavailable" in body:
            f.unavailable = bool(body["unavailable"])
        if "extra_latency_ms" in body:
            delay = float(body["extra_latency_ms"])
            if not 0.0 <= delay <= 600_000:
                raise ValueError("extra_latency_ms must be in [0, 600000]")
            f.extra_latency_ms = delay
        if "retry_after_s" in body:
            ra = body["retry_after_s"]
            f.retry_after_s = None if ra is None else max(0.0, float(ra))
        if "stream_fault" in body:
            if body["stream_fault"] not in STREAM_FAULTS:
                raise ValueError(f"stream_fault must be one of {STREAM_FAULTS}")
            f.stream_fault = body["stream_fault"]
        if "stream_fault_rate" in body:
            rate = float(body["stream_fault_rate"])
            if not 0.0 <= rate <= 1.0:
                raise ValueError("stream_fault_rate must be in [0, 1]")
            f.stream_fault_rate = rate
        self.faults = f
        log.info("faults now %s", asdict(f))


def create_app(config: SimConfig | None = None) -> Starlette:
    """Build the ASGI app; state lives on ``app.state.simulator`` (a :class:`Simulator`)."""
    sim = Simulator(config or SimConfig())
    app = Starlette(
        routes=[
            Route("/v1/chat/completions", sim.chat_completions, methods=["POST"]),
            Route("/v1/completions", sim.completions, methods=["POST"]),
            Route("/v1/models", sim.models, methods=["GET"]),
            Route("/health", sim.health, methods=["GET"]),
            Route("/version", sim.version, methods=["GET"]),
            Route("/metrics", sim.metrics_endpoint, methods=["GET"]),
            Route("/admin/faults", sim.admin_faults, methods=["GET", "POST"]),
        ]
    )
    app.state.simulator = sim
    return app


def serve_in_thread(
    config: SimConfig | None = None, port: int = 0
) -> contextlib.AbstractContextManager[RunningSimulator]:
    """Run the simulator under uvicorn in a background thread on a loopback port (0 = a free one)."""
    return serve_app_in_thread(create_app(config), port, "LLM simulator")


# --------------------------------------------------------------------------- CLI


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m loadtest.llm_simulator",
        description="OpenAI-compatible LLM latency simulator modelled on vLLM continuous batching. "
        "TTFT = queue + prefill lane + prompt*prefill_ms_per_token + ttft_ms + "
        "ttft_load_ms*running/max_num_seqs; ITL = itl_ms*(1 + itl_growth*running/max_num_seqs).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--host", default="127.0.0.1", help="address to listen on")
    p.add_argument("--port", type=int, default=8000, help="port to listen on")
    p.add_argument("--log-level", default="info", help="uvicorn / simulator log level")
    p.add_argument("--access-log", action="store_true", help="log every HTTP request (costs CPU)")
    for f in fields(SimConfig):
        flag = "--" + f.name.replace("_", "-")
        meta = dict(f.metadata)
        if f.type in ("bool", bool):
            p.add_argument(flag, action="store_true", default=f.default, help=meta["help"])
            continue
        typ = {"int": int, "float": float, "str": str}.get(str(f.type), str)
        p.add_argument(flag, type=typ, default=f.default, help=meta.pop("help"), **meta)
    return p


def config_from_args(args: argparse.Namespace) -> SimConfig:
    return SimConfig(**{f.name: getattr(args, f.name) for f in fields(SimConfig)})


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    cfg = config_from_args(args)
    try:
        cfg.validate()
    except ValueError as exc:
        raise SystemExit(f"invalid configuration: {exc}") from None
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s %(message)s")
    log.info(
        "LLM simulator for %s: max_num_seqs=%d itl=%.1fms(+%.0f%% at full batch) ttft=%.0fms; "
        "decode ceiling %.0f tok/s",
        cfg.model,
        cfg.max_num_seqs,
        cfg.itl_ms,
        cfg.itl_growth * 100,
        cfg.ttft_ms,
        decode_tokens_per_s(cfg, cfg.max_num_seqs),
    )
    uvicorn.run(
        create_app(cfg),
        host=args.host,
        port=args.port,
        log_level=args.log_level.lower(),
        access_log=args.access_log,
        lifespan="off",
        backlog=4096,
        timeout_graceful_shutdown=5,
    )


if __name__ == "__main__":
    main()
