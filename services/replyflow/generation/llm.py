"""A streaming client for OpenAI-compatible chat completions (vLLM, llama.cpp server, the simulator)."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass

import httpx

from replyflow.events import GenerationParams
from replyflow.kafka import PermanentError, TransientError


@dataclass(frozen=True)
class Completion:
    text: str
    prompt_tokens: int
    completion_tokens: int
    latency_ms: float
    time_to_first_token_ms: float | None


class LLMClient:
    def __init__(self, base_url: str, model: str, api_key: str, timeout_s: float, max_connections: int) -> None:
        self.model = model
        self._http = httpx.AsyncClient(
            base_url=base_url.rstrip("/"),
            headers={"Authorization": f"Bearer {api_key}"},
            timeout=httpx.Timeout(timeout_s, connect=5.0),
            limits=httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections),
        )

    async def close(self) -> None:
        await self._http.aclose()

    async def complete(self, messages: list[dict[str, str]], params: GenerationParams) -> Completion:
        """One chat completion, streamed so time to first token is measured.

        Raises TransientError when the server is unreachable, overloaded or failing (retry later),
        PermanentError when this request can never succeed (e.g. longer than the context).
        """
        body = {
            "model": self.model,
            "messages": messages,
            "max_tokens": params.max_tokens,
            "temperature": params.temperature,
            "stop": params.stop,
            "stream": True,
            "stream_options": {"include_usage": True},
        }
        started = time.perf_counter()
        first_token_at: float | None = None
        parts: list[str] = []
        usage: dict[str, int] = {}
        try:
            async with self._http.stream("POST", "/chat/completions", json=body) as response:
                if response.status_code >= 400:
                    detail = (await response.aread()).decode(errors="replace")[:500]
                    error = f"model server answered {response.status_code}: {detail}"
                    if response.status_code in (408, 429) or response.status_code >= 500:
                        raise TransientError(error)
                    raise PermanentError(error)
                async for line in response.aiter_lines():
                    if not line.startswith("data:"):
                        continue
                    data = line[5:].strip()
                    if data == "[DONE]":
                        break
                    chunk = json.loads(data)
                    if chunk.get("usage"):
                        usage = chunk["usage"]
                    for choice in chunk.get("choices", []):
                        piece = (choice.get("delta") or {}).get("content")
                        if piece:
                            first_token_at = first_token_at or time.perf_counter()
                            parts.append(piece)
        except (httpx.TransportError, httpx.TimeoutException) as e:
            raise TransientError(f"model server unreachable: {type(e).__name__}: {e}") from e
        text = "".join(parts).strip()
        latency_ms = (time.perf_counter() - started) * 1000
        return Completion(
            text=text,
            prompt_tokens=int(usage.get("prompt_tokens", 0)),
            completion_tokens=int(usage.get("completion_tokens", len(parts))),
            latency_ms=latency_ms,
            time_to_first_token_ms=(first_token_at - started) * 1000 if first_token_at else None,
        )
