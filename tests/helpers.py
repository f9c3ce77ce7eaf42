"""Small helpers the tests share: waiting, running an ASGI app on a real port, reading topics."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import jsonschema
import pytest
import uvicorn
from aiokafka import AIOKafkaConsumer, ConsumerRecord
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from prometheus_client.parser import text_string_to_metric_families

from replyflow.local.kafka_server import free_port
from replyflow.local.model_server import llama_server_command

ROOT = Path(__file__).resolve().parents[1]
# Where make puts what it fetches or builds once for the tests (outside the repo).
TOOL_CACHE = Path(os.environ.get("CACHE", Path.home() / ".cache" / "replyflow"))


def make_var(name: str) -> str:
    """A ``NAME := value`` pinned in the Makefile."""
    match = re.search(rf"^{name} := (\S+)$", (ROOT / "Makefile").read_text(), re.M)
    assert match, f"Makefile lacks {name}"
    return match.group(1)


def provided_by_make(target: str, paths: dict[str, Path]) -> dict[str, Path]:
    """``paths``, running ``make <target>`` first when one is missing; fails the test if make cannot provide them."""
    if not all(p.exists() for p in paths.values()):
        done = subprocess.run(["make", "-s", target], cwd=ROOT, capture_output=True, text=True)
        missing = [str(p) for p in paths.values() if not p.exists()]
        if done.returncode or missing:
            pytest.fail(f"`make {target}` could not provide {missing}:\n{done.stdout}{done.stderr}")
    return paths


def wait_for(condition: Callable[[], bool], timeout_s: float, what: str, interval_s: float = 0.3) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with contextlib.suppress(Exception):
            if condition():
                return
        time.sleep(interval_s)
    raise TimeoutError(f"{what} not ready after {timeout_s}s")


def assert_documented(response: httpx.Response) -> None:
    """Fails unless the OpenAPI document the answering service serves at ``/openapi.json`` describes
    ``response``: its path and method, its status code, and its body (media type and JSON Schema)."""
    request = response.request
    document = httpx.get(request.url.copy_with(path="/openapi.json", query=None), timeout=10).json()
    what = f"{request.method} {request.url.path} answered {response.status_code}"
    path = next((template for template in document["paths"] if re.fullmatch(
        "[^/]+".join(re.escape(part) for part in re.split(r"\{[^}]+\}", template)), request.url.path)), None)
    operation = document["paths"].get(path, {}).get(request.method.lower())
    assert operation is not None, f"{what}: no such operation in the service's OpenAPI document"
    documented = operation["responses"].get(str(response.status_code))
    assert documented is not None, f"{what}, which its OpenAPI document does not list: {response.text[:300]}"
    missing = [name for name, header in documented.get("headers", {}).items()
               if header.get("required") and name not in response.headers]
    assert not missing, f"{what} without the headers its document requires: {missing}"
    media_type = response.headers.get("content-type", "").split(";")[0]
    content = documented.get("content", {})
    assert media_type in content, f"{what} with {media_type!r}; documented: {sorted(content)}"
    body = response.json() if media_type == "application/json" else response.text
    schema = {"components": document["components"], **content[media_type]["schema"]}
    problems = [f"{list(e.absolute_path)}: {e.message[:200]}"
                for e in jsonschema.Draft202012Validator(schema).iter_errors(body)]
    assert not problems, f"{what}, not as documented: {problems}"


def scraped(url: str, name: str, **labels: str) -> float | None:
    """The value a service's /metrics gives the series ``name{labels}`` (exactly those labels); None if absent."""
    text = httpx.get(f"{url}/metrics", timeout=5).text
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and sample.labels == labels:
                return sample.value
    return None


@contextlib.asynccontextmanager
async def serving(app, port: int | None = None):
    """Run an ASGI app (lifespan included) under uvicorn on a free loopback port; yields its URL."""
    port = port or free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, lifespan="on"))
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


@contextlib.contextmanager
def llama_server(log_dir: Path, **options) -> Iterator[str]:
    """A real llama.cpp OpenAI-compatible server (``llama_server_command`` options); yields its /v1 URL."""
    port = free_port()
    with open(log_dir / "llm.log", "wb") as log:
        proc = subprocess.Popen(llama_server_command(port, **options), stdout=log, stderr=subprocess.STDOUT)
        try:
            url = f"http://127.0.0.1:{port}/v1"
            wait_for(lambda: httpx.get(f"{url}/models", timeout=2).status_code == 200, timeout_s=120,
                     what="llama.cpp")
            yield url
        finally:
            proc.terminate()
            proc.wait(30)


@dataclass(frozen=True)
class ExportedSpan:
    service: str
    name: str
    trace_id: str  # hex, as in a traceparent
    span_id: str
    parent_span_id: str  # "" for a root span
    attributes: dict[str, object]  # scalar values as Python values, arrays as lists


def _attribute_value(value) -> object:
    kind = value.WhichOneof("value")
    if kind == "array_value":
        return [_attribute_value(v) for v in value.array_value.values]
    return getattr(value, kind) if kind else None


class OtlpReceiver:
    """A minimal OTLP/HTTP collector: decodes the protobuf span batches services post to /v1/traces."""

    def __init__(self) -> None:
        self.spans: list[ExportedSpan] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                if self.path != "/v1/traces" or self.headers["Content-Type"] != "application/x-protobuf":
                    self.send_error(404 if self.path != "/v1/traces" else 415)
                    return
                request = ExportTraceServiceRequest.FromString(body)
                for resource_spans in request.resource_spans:
                    attributes = {a.key: a.value.string_value for a in resource_spans.resource.attributes}
                    receiver.spans += [
                        ExportedSpan(attributes.get("service.name", ""), span.name, span.trace_id.hex(),
                                     span.span_id.hex(), span.parent_span_id.hex(),
                                     {a.key: _attribute_value(a.value) for a in span.attributes})
                        for scope_spans in resource_spans.scope_spans for span in scope_spans.spans
                    ]
                reply = ExportTraceServiceResponse().SerializeToString()
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_port}"

    def __enter__(self) -> OtlpReceiver:
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._server.shutdown()
        self._server.server_close()


class TopicReader:
    """Reads a topic from its current end (no consumer group), for asserting what a stage emitted; records of
    transactions not (yet) committed too, unless ``committed_only`` (what the services read)."""

    def __init__(self, bootstrap: str, *topics: str, from_beginning: bool = False,
                 committed_only: bool = False) -> None:
        self.consumer = AIOKafkaConsumer(
            *topics, bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False,
            auto_offset_reset="earliest" if from_beginning else "latest",
            isolation_level="read_committed" if committed_only else "read_uncommitted",
        )

    async def __aenter__(self) -> TopicReader:
        await self.consumer.start()
        # Touch every partition so "latest" is fixed now, before the test produces anything.
        await self.consumer.getmany(timeout_ms=200)
        for tp in self.consumer.assignment():
            await self.consumer.position(tp)
        return self

    async def __aexit__(self, *exc) -> None:
        await self.consumer.stop()

    async def collect(
        self, until: Callable[[list[ConsumerRecord]], bool], timeout_s: float = 30
    ) -> list[ConsumerRecord]:
        records: list[ConsumerRecord] = []
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            for batch in (await self.consumer.getmany(timeout_ms=300)).values():
                records.extend(batch)
            if until(records):
                return records
        raise TimeoutError(f"condition not met within {timeout_s}s; got {len(records)} records")

    async def read_to_end(self, timeout_s: float = 30) -> list[ConsumerRecord]:
        """Everything written to the topics up to now: for checking that nothing more came."""
        partitions = self.consumer.assignment()
        ends = await self.consumer.end_offsets(list(partitions))

        async def caught_up() -> bool:
            return all([await self.consumer.position(tp) >= end for tp, end in ends.items()])

        records: list[ConsumerRecord] = []
        deadline = time.monotonic() + timeout_s
        while not await caught_up():
            if time.monotonic() >= deadline:
                raise TimeoutError(f"not read to the end within {timeout_s}s; got {len(records)} records")
            for batch in (await self.consumer.getmany(timeout_ms=300)).values():
                records.extend(batch)
        return records

