"""Benchmark: does the generation service keep the model server as busy as a plain client would?

    python -m loadtest.bench_generation                       # simulator at C=64 and 256, llama.cpp at C=4
    python -m loadtest.bench_generation --servers sim --concurrency 64 --duration 15 --warmup 8
    python -m loadtest.bench_generation --servers llama --llama-concurrency 4 --llama-duration 60

For each (server, concurrency C), in one run and side by side, the same prompts (sample comments
of the sample creators, built by the service's own prompt builder, with the same sampling seeds)
go to the model server

(a) directly: C asyncio workers with the service's LLM client, closed loop;
(b) through the pipeline: a real Kafka broker (``LocalKafka``, or ``--kafka``), the real
    generation service as its own process with ``LLM_MAX_INFLIGHT=C`` (adaptive window on),
    comments produced to ``comments.screened`` and drafts read from ``replies.drafted``; the
    bench keeps C plus a backlog of comments outstanding, producing one whenever a draft arrives.

Each phase runs ``--warmup`` seconds (the adaptive window slow-starts), then measures
``--duration`` seconds: completions/s, output tokens/s, TTFT and latency percentiles (for (b)
as the service measured them, plus comment produced → draft read through Kafka), and the
service's in-flight model requests (``replyflow_generation_in_flight`` scraped from its
``/metrics`` twice a second; median over the window). Writes
``loadtest/reports/bench-generation.json`` (one object per (server, concurrency)) and
``bench-generation.md``.

Servers: ``sim`` = ``loadtest.llm_simulator`` as its own process (vLLM-like, 8B on one H100 by
default); ``llama`` = llama.cpp's server with SmolLM2-135M-Instruct (serves one request at a
time on CPU; small C). ``--sim-url`` / ``--llama-url`` use running servers instead.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import httpx
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from replyflow.admin import load_profiles
from replyflow.events import Comment, CommentScreened, CreatorProfile
from replyflow.generation.llm import LLMClient, TransientError
from replyflow.generation.prompt import build_messages
from replyflow.generation.service import seed_for
from replyflow.kafka import ensure_topics, group_starts_at_end
from replyflow.local.kafka_server import LocalKafka, free_port
from replyflow.local.stack import SAMPLES, Stack
from replyflow.settings import Settings
from replyflow.topics import COMMENTS_SCREENED, REPLIES_DRAFTED

REPORTS = Path(__file__).resolve().parent / "reports"
SIM_MODEL = "meta-llama/Llama-3.1-8B-Instruct"
RATIO_TARGETS = {"sim": 0.95, "llama": 0.90}
SIM_ARGS = "--max-num-seqs 256 --prefill-ms-per-token 0.002"
LLAMA_CREATOR = "mara-cooks"


# --------------------------------------------------------------------------- workload


@dataclass(frozen=True)
class Job:
    event: CommentScreened
    messages: list[dict[str, str]]
    profile: CreatorProfile

    @property
    def seed(self) -> int:
        return seed_for(self.event)


def make_jobs(run_id: str, n: int, creator: str | None = None) -> list[Job]:
    """``n`` screened comments cycling through the sample stream (of one ``creator``, if given),
    each with a unique id."""
    profiles = {
        p.creator_id: p
        for p in (CreatorProfile.model_validate(x) for x in json.loads((SAMPLES / "creators.json").read_text()))
    }
    samples = [
        Comment.model_validate_json(line)
        for line in (SAMPLES / "comments.jsonl").read_text().splitlines()
        if line.strip()
    ]
    samples = [c for c in samples if c.creator_id in profiles and creator in (None, c.creator_id)]
    now = datetime.now(UTC)
    jobs = []
    for i, base in zip(range(n), itertools.cycle(samples), strict=False):
        comment = base.model_copy(update={"comment_id": f"bench-{run_id}-{i}", "created_at": now})
        profile = profiles[comment.creator_id]
        event = CommentScreened(comment=comment, profile_version=profile.version, policy_version="bench")
        jobs.append(Job(event, build_messages(profile, comment), profile))
    return jobs


def arun(coro):
    """asyncio.run on uvloop when it is installed (the service runs on it too, under uvicorn)."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coro)
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(coro)


def percentiles(values: list[float]) -> dict[str, float | None]:
    if not values:
        return {"p50": None, "p90": None, "p99": None}
    ordered = sorted(values)

    def q(p: float) -> float:
        return round(ordered[min(len(ordered) - 1, int(p * len(ordered)))], 1)

    return {"p50": q(0.5), "p90": q(0.9), "p99": q(0.99)}


@dataclass
class PhaseResult:
    completions: int = 0
    output_tokens: int = 0
    seconds: float = 0.0
    ttft_ms: list[float] = field(default_factory=list)
    latency_ms: list[float] = field(default_factory=list)
    kafka_e2e_ms: list[float] = field(default_factory=list)
    inflight: list[float] = field(default_factory=list)
    window: list[float] = field(default_factory=list)
    errors: int = 0
    duplicates: int = 0
    done_at: list[list[float]] = field(default_factory=list)  # completion times, one list per round

    @property
    def per_s(self) -> float:
        """Completions per second; with few completions (llama.cpp), measured between the first and the
        last one of each round, which does not round to whole completions per window."""
        rounds = [sorted(t) for t in self.done_at if len(t) >= 2]
        if rounds and self.completions < 200:
            return sum(len(t) - 1 for t in rounds) / sum(t[-1] - t[0] for t in rounds)
        return self.completions / self.seconds if self.seconds else 0.0

    @property
    def tokens_per_s(self) -> float:
        return self.output_tokens / self.seconds if self.seconds else 0.0

    def add(self, other: PhaseResult) -> None:
        for name in ("completions", "output_tokens", "seconds", "errors", "duplicates"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        for name in ("ttft_ms", "latency_ms", "kafka_e2e_ms", "inflight", "window"):
            getattr(self, name).extend(getattr(other, name))
        self.done_at.append(other.done_at[0] if other.done_at else [])


# --------------------------------------------------------------------------- (a) direct


async def run_direct(base_url: str, model: str, jobs: list[Job], concurrency: int,
                     warmup_s: float, duration_s: float, timeout_s: float = 120) -> PhaseResult:
    client = LLMClient(base_url, model, "not-needed", timeout_s=timeout_s, max_connections=concurrency + 8)
    result = PhaseResult(seconds=duration_s)
    times: list[float] = []
    result.done_at.append(times)
    counter = itertools.count()
    t0 = time.monotonic()
    start, end = t0 + warmup_s, t0 + warmup_s + duration_s

    async def worker() -> None:
        while time.monotonic() < end:
            job = jobs[next(counter) % len(jobs)]
            try:
                completion = await client.complete(job.messages, job.profile.generation, job.seed)
            except TransientError:
                result.errors += 1
                await asyncio.sleep(0.1)
                continue
            done = time.monotonic()
            if start <= done < end:
                result.completions += 1
                times.append(done)
                result.output_tokens += completion.completion_tokens
                result.latency_ms.append(completion.latency_ms)
                if completion.time_to_first_token_ms is not None:
                    result.ttft_ms.append(completion.time_to_first_token_ms)

    try:
        await asyncio.gather(*(worker() for _ in range(concurrency)))
    finally:
        await client.close()
    return result


# --------------------------------------------------------------------------- (b) pipeline


async def scrape_service(http: httpx.AsyncClient, url: str) -> tuple[float | None, float | None]:
    text = (await http.get(f"{url}/metrics")).text
    found: dict[str, float] = {}
    for line in text.splitlines():
        for name in ("replyflow_generation_in_flight", "replyflow_generation_window"):
            if line.startswith(name + " "):
                found[name] = float(line.split()[1])
    return found.get("replyflow_generation_in_flight"), found.get("replyflow_generation_window")


async def run_pipeline(bootstrap: str, service_url: str, jobs: list[Job], concurrency: int, backlog: int,
                       warmup_s: float, duration_s: float) -> PhaseResult:
    result = PhaseResult(seconds=duration_s)
    times: list[float] = []
    result.done_at.append(times)
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=2, enable_idempotence=True)
    reader = AIOKafkaConsumer(REPLIES_DRAFTED.name, bootstrap_servers=bootstrap, group_id=None,
                              enable_auto_commit=False, auto_offset_reset="latest")
    await producer.start()
    await reader.start()
    try:
        await reader.getmany(timeout_ms=200)
        for tp in reader.assignment():
            await reader.position(tp)  # fix "latest" before producing anything
        payloads = [(j.event.comment_id.encode(), j.event.model_dump_json().encode()) for j in jobs]
        sent_at: dict[str, float] = {}
        seen: set[str] = set()
        next_job = itertools.count()

        async def send(n: int) -> None:
            futures = []
            for _ in range(n):
                key, value = payloads[next(next_job) % len(payloads)]
                sent_at[key.decode()] = time.monotonic()
                futures.append(await producer.send(COMMENTS_SCREENED.name, value=value, key=key))
            await asyncio.gather(*futures)

        t0 = time.monotonic()
        start, end = t0 + warmup_s, t0 + warmup_s + duration_s
        await send(concurrency + backlog)

        async def scrape() -> None:
            async with httpx.AsyncClient(timeout=2) as http:
                while time.monotonic() < end:
                    await asyncio.sleep(0.5)
                    if time.monotonic() >= start:
                        with contextlib.suppress(httpx.HTTPError, ValueError):
                            inflight, window = await scrape_service(http, service_url)
                            if inflight is not None:
                                result.inflight.append(inflight)
                            if window is not None:
                                result.window.append(window)

        scraper = asyncio.create_task(scrape())
        while time.monotonic() < end:
            batches = await reader.getmany(timeout_ms=250)
            arrived = 0
            now = time.monotonic()
            for records in batches.values():
                for record in records:
                    draft = json.loads(record.value)
                    cid = draft["comment"]["comment_id"]
                    if cid in seen:
                        result.duplicates += 1
                        continue
                    seen.add(cid)
                    arrived += 1
                    if start <= now < end:
                        gen = draft["generation"]
                        result.completions += 1
                        times.append(now)
                        result.output_tokens += gen["completion_tokens"]
                        result.latency_ms.append(gen["latency_ms"])
                        if gen.get("time_to_first_token_ms") is not None:
                            result.ttft_ms.append(gen["time_to_first_token_ms"])
                        if cid in sent_at:
                            result.kafka_e2e_ms.append((now - sent_at[cid]) * 1000)
            if arrived:
                await send(arrived)
        await scraper
    finally:
        await reader.stop()
        await producer.stop()
    return result


# --------------------------------------------------------------------------- servers


@contextlib.contextmanager
def model_server(kind: str, args: argparse.Namespace, workdir: Path):
    """Yields (base_url, model) of a running model server; stops what it started."""
    url = args.sim_url if kind == "sim" else args.llama_url
    if url:
        yield url, (SIM_MODEL if kind == "sim" else args.llama_model)
        return
    port = free_port()
    log = open(workdir / f"{kind}.log", "wb")  # noqa: SIM115 - owned by the child
    if kind == "sim":
        cmd = [sys.executable, "-m", "loadtest.llm_simulator", "--host", "127.0.0.1", "--port", str(port),
               "--log-level", "warning", *args.sim_args.split()]
        model = SIM_MODEL
        ready_s = 30
    else:
        from replyflow.local.model_server import MODEL_ALIAS, llama_server_command
        # llama-cpp-python's server cuts a streaming answer short when another request arrives
        # (interrupt_requests defaults to true): with C > 1 every answer would be truncated.
        cmd = [*llama_server_command(port), "--interrupt_requests", "False"]
        model = MODEL_ALIAS
        ready_s = 180
    if args.server_nice:
        # The model server has a GPU node of its own in production: keep the CPU it needs (the simulator
        # to answer on time, llama.cpp to compute) from being taken by Kafka and the service.
        cmd = ["nice", "-n", str(args.server_nice), *cmd]
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.monotonic() + ready_s
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"{kind} server exited ({proc.returncode}); see {workdir}/{kind}.log")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{base}/models", timeout=2).status_code == 200:
                    break
            if time.monotonic() > deadline:
                raise TimeoutError(f"{kind} server not ready in {ready_s}s")
            time.sleep(0.5)
        if kind == "llama":  # the first answer loads the weights (tens of seconds): not part of any phase
            job = make_jobs("warmup", 1)[0]
            arun(_one(base, model, job))
        yield base, model
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


async def _one(base_url: str, model: str, job: Job) -> None:
    client = LLMClient(base_url, model, "not-needed", timeout_s=300, max_connections=1)
    try:
        await client.complete(job.messages, job.profile.generation, job.seed)
    finally:
        await client.close()


async def wait_idle(base_url: str, timeout_s: float = 30) -> None:
    """Until the model server runs nothing (requests of a previous phase are done)."""
    metrics = base_url.removesuffix("/v1") + "/metrics"
    deadline = time.monotonic() + timeout_s
    async with httpx.AsyncClient(timeout=2) as http:
        while time.monotonic() < deadline:
            try:
                text = (await http.get(metrics)).text
            except httpx.HTTPError:
                return
            busy = [line for line in text.splitlines()
                    if line.startswith(("vllm:num_requests_running", "vllm:num_requests_waiting"))
                    and float(line.split()[-1]) > 0]
            if not busy:
                return
            await asyncio.sleep(0.2)


# --------------------------------------------------------------------------- one measurement


def measure(kind: str, base_url: str, model: str, concurrency: int, bootstrap: str, workdir: Path,
            args: argparse.Namespace) -> dict:
    duration = args.llama_duration if kind == "llama" else args.duration
    warmup = args.llama_warmup if kind == "llama" else args.warmup
    # llama.cpp on a shared CPU answers in seconds to tens of seconds, one at a time: C queued requests
    # take minutes, so both clients get a timeout that fits (the service's latency target is half of it).
    timeout_s = 600 if kind == "llama" else 120
    backlog = max(16, concurrency)  # comments waiting in Kafka beyond the C in flight: never starve the window
    run_id = uuid.uuid4().hex[:8]
    # enough distinct comments that none repeats within one phase
    # llama.cpp keeps the KV cache of the last prompt only, so how often consecutive requests share a
    # creator's prefix would depend on the order requests arrive in (which Kafka's partitions change):
    # against it, one creator's comments, so every request reuses the prefix in both phases alike.
    creator = LLAMA_CREATOR if kind == "llama" else None
    jobs_per_round = max(2000, int(concurrency * 4 * (warmup + duration)))
    # Both phases of a round get the same comments, ids included: the service seeds sampling from the comment
    # id (LLM_SEED_PER_COMMENT), so the same ids mean the same seeds, hence comparable output lengths.
    # Fresh ids each round, so each pipeline round's comments are new messages.
    round_jobs = [make_jobs(f"{run_id}r{r}", jobs_per_round, creator) for r in range(args.rounds)]
    direct, pipeline = PhaseResult(), PhaseResult()

    def direct_phase(round_no: int) -> None:
        arun(wait_idle(base_url))
        print(f"  [{kind} C={concurrency}] round {round_no + 1}: direct …", flush=True)
        direct.add(arun(run_direct(base_url, model, round_jobs[round_no], concurrency, warmup, duration,
                                   timeout_s)))

    def pipeline_phase(round_no: int) -> None:
        arun(wait_idle(base_url))
        print(f"  [{kind} C={concurrency}] round {round_no + 1}: pipeline …", flush=True)
        prefix = f"bench-{run_id}-{round_no}"
        stack = Stack(workdir / f"stack-{kind}-{concurrency}-{round_no}", kafka_bootstrap=bootstrap,
                      llm_base_url=base_url, llm_model=model, llm_max_inflight=concurrency,
                      extra_env={"KAFKA_GROUP_PREFIX": prefix, "LOG_LEVEL": "WARNING",
                                 "LLM_TIMEOUT_S": str(timeout_s), **dict(args.service_env)})
        stack.workdir.mkdir(parents=True, exist_ok=True)
        arun(group_starts_at_end(bootstrap, Settings(kafka_group_prefix=prefix).group_id("generation"),
                                 COMMENTS_SCREENED.name))
        try:
            stack.start_service("generation")
            stack.wait_ready(log=lambda *_: None, timeout_s=60)
            pipeline.add(arun(run_pipeline(bootstrap, stack.url("generation"), round_jobs[round_no], concurrency,
                                           backlog, warmup, duration)))
        finally:
            stack.stop()

    for round_no in range(args.rounds):
        # ABBA order: drift in the machine's load (it is shared) hits both sides alike over two rounds.
        phases = (direct_phase, pipeline_phase) if round_no % 2 == 0 else (pipeline_phase, direct_phase)
        for phase in phases:
            phase(round_no)
    ratio = pipeline.per_s / direct.per_s if direct.per_s else 0.0
    median_inflight = statistics.median(pipeline.inflight) if pipeline.inflight else None
    row = {
        "server": kind,
        "model": model,
        "server_args": args.sim_args if kind == "sim" else "",
        "concurrency": concurrency,
        "duration_s": duration * args.rounds,
        "warmup_s": warmup,
        "direct_completions_per_s": round(direct.per_s, 2),
        "pipeline_completions_per_s": round(pipeline.per_s, 2),
        "ratio": round(ratio, 3),
        "ratio_target": RATIO_TARGETS[kind],
        "direct_output_tokens_per_s": round(direct.tokens_per_s, 1),
        "pipeline_output_tokens_per_s": round(pipeline.tokens_per_s, 1),
        "tokens_ratio": round(pipeline.tokens_per_s / direct.tokens_per_s, 3) if direct.tokens_per_s else 0.0,
        "direct_ttft_ms": percentiles(direct.ttft_ms),
        "pipeline_ttft_ms": percentiles(pipeline.ttft_ms),
        "direct_latency_ms": percentiles(direct.latency_ms),
        "pipeline_latency_ms": percentiles(pipeline.latency_ms),
        "pipeline_kafka_e2e_ms": percentiles(pipeline.kafka_e2e_ms),
        "median_inflight": median_inflight,
        "inflight_target": round(0.9 * concurrency, 1),
        "median_window": statistics.median(pipeline.window) if pipeline.window else None,
        "direct_completions": direct.completions,
        "pipeline_completions": pipeline.completions,
        "direct_errors": direct.errors,
        "pipeline_duplicates": pipeline.duplicates,
        "backlog": backlog,
    }
    row["ratio_met"] = ratio >= RATIO_TARGETS[kind]
    row["inflight_met"] = median_inflight is not None and median_inflight >= 0.9 * concurrency
    return row


# --------------------------------------------------------------------------- report


def merge_report(path: Path, rows: list[dict]) -> list[dict]:
    """This run's rows, plus the previous report's rows for (server, C) pairs not measured now.

    A llama.cpp phase takes minutes, so a run of one server keeps the other's latest figures;
    every row says when and by which command it was measured.
    """
    fresh = {(r["server"], r["concurrency"]) for r in rows}
    try:
        previous = json.loads(path.read_text())
    except (OSError, ValueError):
        previous = []
    kept = [r for r in previous if (r.get("server"), r.get("concurrency")) not in fresh]
    order = {kind: i for i, kind in enumerate(RATIO_TARGETS)}
    return sorted(kept + rows, key=lambda r: (order.get(r["server"], len(order)), r["concurrency"]))


def fmt(p: dict[str, float | None]) -> str:
    return " / ".join("–" if v is None else f"{v:.0f}" for v in (p["p50"], p["p90"], p["p99"]))


def markdown(rows: list[dict], command: str, started: str, elapsed_s: float, priorities: str = "") -> str:
    lines = [
        "# Generation benchmark: direct client vs Kafka + generation service",
        "",
        f"Latest run {started} on {platform.node()} ({os.cpu_count()} CPUs, shared), {elapsed_s:.0f} s in all:",
        f"`{command}`; rows of servers it did not run come from earlier runs (see `measured`).",
        "",
        "Same prompts, same sampling seeds, same model server; (a) C asyncio workers with the service's",
        "LLM client, (b) comments through `comments.screened` → generation service (own process,",
        "`LLM_MAX_INFLIGHT=C`, adaptive window) → `replies.drafted`, C + backlog comments outstanding.",
        "Latencies in ms as p50 / p90 / p99; (b)'s TTFT and latency are the service's own measurements,",
        "Kafka e2e is comment produced → draft read (includes the backlog's wait).",
        *([priorities, ""] if priorities else [""]),
        "| server | C | direct compl/s | pipeline compl/s | ratio (target) | direct tok/s | pipeline tok/s "
        "| median in-flight (≥0.9·C) | direct TTFT | pipeline TTFT | direct latency | pipeline latency "
        "| Kafka e2e | measured |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for r in rows:
        ok = "✅" if r["ratio_met"] else "❌"
        inflight_ok = "✅" if r["inflight_met"] else "❌"
        inflight = "–" if r["median_inflight"] is None else f"{r['median_inflight']:.0f}"
        lines.append(
            f"| {r['server']} | {r['concurrency']} | {r['direct_completions_per_s']:.1f} "
            f"| {r['pipeline_completions_per_s']:.1f} | {r['ratio']:.3f} {ok} (≥{r['ratio_target']}) "
            f"| {r['direct_output_tokens_per_s']:.0f} | {r['pipeline_output_tokens_per_s']:.0f} "
            f"| {inflight} {inflight_ok} | {fmt(r['direct_ttft_ms'])} | {fmt(r['pipeline_ttft_ms'])} "
            f"| {fmt(r['direct_latency_ms'])} | {fmt(r['pipeline_latency_ms'])} | {fmt(r['pipeline_kafka_e2e_ms'])} "
            f"| {r.get('measured_at', '–')} |"
        )
    lines += [
        "",
        "Servers: `sim` = `loadtest.llm_simulator` (vLLM continuous-batching model of Llama-3.1-8B on one",
        "H100: TTFT ≈ 60 ms, 7 ms/token growing with the batch, 256 sequences), run with "
        f"`{next((r['server_args'] for r in rows if r['server'] == 'sim'), SIM_ARGS)}`",
        "(prefill at 5% of its uncached cost: vLLM's prefix cache holds each creator's shared prompt",
        "prefix, ~95% of the prompt tokens); `llama` = llama.cpp server with SmolLM2-135M-Instruct on the",
        "CPU (one request at a time, with its RAM prompt cache); it gets one creator's",
        f"({LLAMA_CREATOR}) comments, so every request reuses the prefix whatever order the pipeline",
        "delivers them in.",
        "",
    ]
    return "\n".join(lines)


def renice(pid: int, niceness: int) -> None:
    """Set the priority of every thread of a process (Linux niceness is per thread; the JVM has many)."""
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(OSError):
            os.setpriority(os.PRIO_PROCESS, int(task.name), niceness)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m loadtest.bench_generation", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--servers", default="sim,llama", help="comma separated: sim, llama")
    p.add_argument("--concurrency", default="64,256", help="concurrencies against the simulator")
    p.add_argument("--llama-concurrency", default="4", help="concurrencies against llama.cpp")
    p.add_argument("--duration", type=float, default=20.0, help="measured seconds per phase (simulator)")
    p.add_argument("--warmup", type=float, default=10.0, help="seconds before measuring (simulator)")
    p.add_argument("--llama-duration", type=float, default=120.0, help="measured seconds per phase (llama.cpp)")
    p.add_argument("--llama-warmup", type=float, default=15.0, help="seconds before measuring (llama.cpp)")
    p.add_argument("--rounds", type=int, default=1, help="direct/pipeline pairs per measurement (summed)")
    p.add_argument(
        "--sim-args", default=SIM_ARGS,
        help="flags for the simulator; the default models vLLM's prefix caching: ~95%% of each prompt is the "
        "creator's shared prefix, so prefill costs 5%% of the uncached 0.04 ms/token",
    )
    p.add_argument("--server-nice", type=int, default=-10 if os.geteuid() == 0 else 0,
                   help="scheduling priority of the model server process (it stands for a separate GPU node)")
    p.add_argument("--kafka-nice", type=int, default=-5 if os.geteuid() == 0 else 0,
                   help="scheduling priority of the local Kafka broker (brokers run on their own machines)")
    p.add_argument("--kafka", default=os.environ.get("KAFKA_BOOTSTRAP_SERVERS"),
                   help="use this Kafka cluster instead of starting a local broker")
    p.add_argument("--sim-url", default=None, help="use a running simulator (base URL ending in /v1)")
    p.add_argument("--llama-url", default=None, help="use a running llama.cpp server (base URL ending in /v1)")
    p.add_argument("--llama-model", default="smollm2-135m-instruct", help="model name of --llama-url")
    p.add_argument("--service-env", action="append", default=[], type=lambda s: tuple(s.split("=", 1)),
                   metavar="NAME=VALUE", help="extra environment for the generation service")
    p.add_argument("--out", type=Path, default=REPORTS / "bench-generation.json")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    command = "python -m loadtest.bench_generation " + " ".join(sys.argv[1:] if argv is None else argv)
    started = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    t_start = time.monotonic()
    workdir = Path(tempfile.mkdtemp(prefix="bench-generation-"))
    kafka = None
    rows: list[dict] = []
    try:
        bootstrap = args.kafka
        if not bootstrap:
            print("starting Apache Kafka (KRaft, single node)…", flush=True)
            kafka = LocalKafka(workdir / "kafka")
            bootstrap = kafka.start()
            if args.kafka_nice and kafka.process is not None:
                renice(kafka.process.pid, args.kafka_nice)
        arun(ensure_topics(bootstrap))
        arun(load_profiles(SAMPLES / "creators.json", Settings(kafka_bootstrap_servers=bootstrap)))
        for kind in [s.strip() for s in args.servers.split(",") if s.strip()]:
            if kind not in RATIO_TARGETS:
                raise SystemExit(f"unknown server {kind!r}; use sim or llama")
            levels = args.llama_concurrency if kind == "llama" else args.concurrency
            with model_server(kind, args, workdir) as (base_url, model):
                for concurrency in [int(c) for c in levels.split(",") if c.strip()]:
                    row = measure(kind, base_url, model, concurrency, bootstrap, workdir, args)
                    row["measured_at"], row["command"] = started, command
                    rows.append(row)
                    print(f"{kind:5s} C={concurrency:<4d} direct {row['direct_completions_per_s']:7.1f}/s  "
                          f"pipeline {row['pipeline_completions_per_s']:7.1f}/s  ratio {row['ratio']:.3f}  "
                          f"tokens/s {row['direct_output_tokens_per_s']:.0f} vs "
                          f"{row['pipeline_output_tokens_per_s']:.0f}  median in-flight "
                          f"{row['median_inflight']} (window {row['median_window']})", flush=True)
    finally:
        if kafka is not None:
            kafka.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    elapsed = time.monotonic() - t_start
    measured = rows
    rows = merge_report(args.out, rows)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(rows, indent=2) + "\n")
    priorities = ""
    if args.server_nice or args.kafka_nice:
        priorities = (f"Everything shares {os.cpu_count()} CPUs, so the model server (nice {args.server_nice}) and "
                      f"the local broker (nice {args.kafka_nice}) run at a higher priority, standing in for the "
                      "machines of their own they have in production; the service and the direct client run at "
                      "the default.")
    md = markdown(rows, command, started, elapsed, priorities)
    args.out.with_suffix(".md").write_text(md)
    print("\n" + md)
    print(f"wrote {args.out} and {args.out.with_suffix('.md')}")
    return 0 if all(r["ratio_met"] and r["inflight_met"] for r in measured) else 1


if __name__ == "__main__":
    sys.exit(main())
