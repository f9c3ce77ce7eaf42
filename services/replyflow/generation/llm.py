"""A streaming client for OpenAI-compatible chat completions (vLLM, llama.cpp server, the simulator).

Built on aiohttp: with 64-256 concurrent streams httpx's per-request overhead made the client,
not the model server, the bottleneck. One keep-alive connection per request in flight.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

import aiohttp
from opentelemetry import trace
from opentelemetry.trace import SpanKind

from replyflow.events import GenerationParams
from replyflow.kafka import PermanentError, TransientError

# Statuses that say "this request can never succeed" (malformed, or longer than the context window).
# Everything else (404 unknown model, 401, 429, 5xx...) is the server's or the deployment's problem:
# retried, never a reason to dead-letter a healthy comment.
PERMANENT_STATUSES = frozenset({400, 413, 422})

# Idle connections are dropped before the server drops them (uvicorn, under vLLM: 5 s): aiohttp does not
# retry a POST sent on a connection the server has just closed, it fails with ServerDisconnectedError.
KEEPALIVE_S = 4.0

TRACER = trace.get_tracer("replyflow.generation")


@dataclass(frozen=True)
class Completion:
    text: str
    prompt_tokens: int
    completion_tokens: int
    latency_ms: float
    time_to_first_token_ms: float | None
    finish_reason: str | None = None


class LLMClient:
    """``timeout_s`` (LLM_TIMEOUT_S) bounds each wait for the server's next bytes: the answer's start
    (queueing and prefill) and every gap between streamed chunks. Never the whole answer: a long reply
    at full-batch decode speed can outlast any fixed total, and the per-comment seed would replay it
    into the same timeout on every retry."""

    def __init__(self, base_url: str, model: str, api_key: str, timeout_s: float, max_connections: int) -> None:
        self.model = model
        self.base_url = base_url.rstrip("/")
        self._url = f"{self.base_url}/chat/completions"
        self._headers = {"Authorization": f"Bearer {api_key}", "Content-Type": "application/json"}
        self._timeout = aiohttp.ClientTimeout(total=None, sock_connect=5.0, sock_read=timeout_s)
        self._max_connections = max_connections
        self._session: aiohttp.ClientSession | None = None
        url = urlsplit(self.base_url)
        self._server = {"server.address": url.hostname or "",
                        "server.port": url.port or (443 if url.scheme == "https" else 80)}

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:  # created lazily: it binds the running loop
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=self._max_connections, limit_per_host=0, ttl_dns_cache=300,
                                               keepalive_timeout=KEEPALIVE_S),
                timeout=self._timeout,
                headers=self._headers,
                skip_auto_headers=("User-Agent",),
            )
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    def request_body(self, messages: list[dict[str, str]], params: GenerationParams, seed: int | None = None) -> dict:
        body = {
            "model": self.model,
            "messages": messages,
            "max_tokens": params.max_tokens,
            "temperature": params.temperature,
            "stop": params.stop,
            "stream": True,
            "stream_options": {"include_usage": True},
        }
        if seed is not None:
            body["seed"] = seed
        return body

    async def complete(
        self, messages: list[dict[str, str]], params: GenerationParams, seed: int | None = None
    ) -> Completion:
        """One chat completion, streamed so time to first token is measured.

        Raises TransientError when the server is unreachable, overloaded, failing or too slow
        (retry later), PermanentError when this request can never succeed (e.g. longer than the
        context window).
        """
        # A client span per model call (OpenTelemetry gen_ai conventions), inside the comment's trace.
        request = {"gen_ai.operation.name": "chat", "gen_ai.request.model": self.model,
                   "gen_ai.request.max_tokens": params.max_tokens, "gen_ai.request.temperature": params.temperature,
                   **({"gen_ai.request.seed": seed} if seed is not None else {}), **self._server}
        with TRACER.start_as_current_span(f"chat {self.model}", kind=SpanKind.CLIENT, attributes=request) as span:
            try:
                completion = await self._stream(self.request_body(messages, params, seed))
            except (TransientError, PermanentError) as e:
                span.set_attribute("error.type", type(e).__name__)
                raise
            span.set_attributes({
                "gen_ai.usage.input_tokens": completion.prompt_tokens,
                "gen_ai.usage.output_tokens": completion.completion_tokens,
                "gen_ai.response.finish_reasons": [completion.finish_reason or "unknown"],
            })
            return completion

    async def _stream(self, body: dict) -> Completion:
        payload = json.dumps(body, separators=(",", ":")).encode()
        started = time.perf_counter()
        first_token_at: float | None = None
        parts: list[str] = []
        usage: dict[str, int] = {}
        finish: str | None = None
        try:
            async with self._http().post(self._url, data=payload) as response:
                if response.status >= 400:
                    detail = (await response.read()).decode(errors="replace")[:1000]
                    error = f"model server answered {response.status}: {detail}"
                    if response.status in PERMANENT_STATUSES:
                        raise PermanentError(error)
                    raise TransientError(error)
                done = False
                async for line in response.content:
                    if not line.startswith(b"data:"):
                        continue
                    data = line[5:].strip()
                    if data == b"[DONE]":
                        done = True
                        continue  # read on to the end of the body, or aiohttp closes the connection
                    chunk = json.loads(data)
                    if chunk.get("error"):  # after the 200, vLLM reports a failure as a chunk, then [DONE]
                        raise TransientError(f"model server failed mid-answer: {json.dumps(chunk['error'])[:1000]}")
                    if chunk.get("usage"):
                        usage = chunk["usage"]
                    for choice in chunk.get("choices") or ():
                        piece = (choice.get("delta") or {}).get("content")
                        if piece:
                            if first_token_at is None:
                                first_token_at = time.perf_counter()
                            parts.append(piece)
                        finish = choice.get("finish_reason") or finish
        except TimeoutError as e:
            raise TransientError(f"model server timed out ({type(e).__name__}): no connection within "
                                 f"{self._timeout.sock_connect}s or no bytes for {self._timeout.sock_read}s") from e
        except (aiohttp.ClientError, ConnectionError, asyncio.IncompleteReadError) as e:
            raise TransientError(f"model server unreachable: {type(e).__name__}: {e}") from e
        except ValueError as e:  # a garbled stream: a proxy or the server broke mid-answer
            raise TransientError(f"unreadable answer from the model server: {e}") from e
        # A partial answer is never a draft ("length", max_tokens reached, is a complete one).
        if not done:
            raise TransientError("the answer stream ended before [DONE]: cut mid-answer")
        if finish == "abort":
            raise TransientError("the model server aborted the answer")
        latency_ms = (time.perf_counter() - started) * 1000
        return Completion(
            text="".join(parts).strip(),
            prompt_tokens=int(usage.get("prompt_tokens", 0)),
            completion_tokens=int(usage.get("completion_tokens", len(parts))),
            latency_ms=latency_ms,
            time_to_first_token_ms=(first_token_at - started) * 1000 if first_token_at else None,
            finish_reason=finish,
        )
