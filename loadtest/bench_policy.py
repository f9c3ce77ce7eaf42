"""Benchmark the policy stages: through Kafka vs the same checks in a loop, in one run.

    python -m loadtest.bench_policy [--messages 4000]      # make bench-policy

Inputs are distinct real comments and tweets from the labelled data (``real_texts``), as comments
and as drafted replies of the three sample creators. For each stage (screen: comments, verify:
drafts) the same inputs are
  (a) fed to ``PolicyStages`` in micro-batches in this process (the loop baseline), and
  (b) preloaded into the stage's input topic and consumed by the real policy service process
      (one process = one core), timed from its first to its last decision (broker timestamps).
Prints msgs/s for both and the ratio (b)/(a), by wall clock and per second of CPU the process used
(the per-core rate, unaffected by whatever else runs on the machine); writes
loadtest/reports/bench-policy.json and .md.

Then the kill switch: how long from a creator's mode change (off, then back on) until the screen stage applies
it, measured by sending a comment every 20 ms and taking the send time of the first one screened under the new
mode, two ways side by side: the profile written straight to ``creators.config`` (the baseline: no control API),
and the creator's ``PUT /v1/creators/{id}/mode`` through the control service, whose one writer per creator makes
the change (``kill-switch.json``).
Starts its own Kafka broker unless KAFKA_BOOTSTRAP_SERVERS is set.
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import json
import multiprocessing
import os
import platform
import random
import statistics
import tempfile
import threading
import time
import uuid
from collections.abc import Awaitable, Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from loadtest.eval_policy import data_dir, load_davidson, load_tubespam
from replyflow.admin import put_profiles
from replyflow.events import (
    CommentReceived,
    CreatorProfile,
    Decision,
    GenerationStats,
    Outcome,
    ReplyDrafted,
    ReplyMode,
    Stage,
    reply_id_for,
)
from replyflow.kafka import STAGE_MAX_BATCH, ensure_topics, group_starts_at_end
from replyflow.local.kafka_server import LocalKafka
from replyflow.local.stack import SAMPLES, Stack, load_sample_comments
from replyflow.policy.rules import PolicySource
from replyflow.policy.stages import PolicyStages
from replyflow.settings import Settings
from replyflow.topics import COMMENTS_RECEIVED, DECISIONS, REPLIES_DRAFTED

REPORTS = Path(__file__).resolve().parent / "reports"
FIRST_BATCH_SPREAD_S = 0.05  # one batch's outputs are stamped within a few ms; batches are ≥ 0.1 s apart


def real_texts() -> list[str]:
    """Distinct real comments (YouTube comments, tweets) from the labelled data, shuffled with a
    fixed seed: every message is new text, so nothing is served from a per-text cache. Falls back
    to the sample comments when the data is not on this machine."""
    try:
        src = data_dir()
    except FileNotFoundError:
        print("labelled data not found; benchmarking on the 93 sample comments, repeated", flush=True)
        return [c.text for c in load_sample_comments()]
    texts = load_tubespam(src / "tubespam_train.csv")[0] + load_davidson(src / "davidson_dev.csv")[1]
    unique = sorted({t.strip() for t in texts if t.strip()})
    random.Random(7).shuffle(unique)
    return unique


def inputs(n: int, run: str, first: int = 0) -> tuple[list[CreatorProfile], list[CommentReceived], list[ReplyDrafted]]:
    """n comments and n drafts (comment i and draft i share text ``first + i``) spread over the sample
    creators, with fresh ids; budgets lifted so nothing is capped."""
    profiles = [
        CreatorProfile.model_validate({**p, "creator_id": f"{p['creator_id']}-{run}", "reply_budget_per_hour": 10**9})
        for p in json.loads((SAMPLES / "creators.json").read_text())
    ]
    by_id = {p.creator_id.rsplit("-", 1)[0]: p for p in profiles}
    samples = load_sample_comments()
    texts = real_texts()
    comments, drafts = [], []
    for i in range(n):
        base = samples[i % len(samples)]
        profile = by_id[base.creator_id]
        comment = base.model_copy(update={
            "comment_id": f"b{run}-{i}", "creator_id": profile.creator_id, "language": None,
            "text": texts[(first + i) % len(texts)],
        })
        comments.append(CommentReceived(comment=comment))
        drafts.append(ReplyDrafted(
            comment=comment, reply_id=reply_id_for(comment.platform, comment.comment_id),
            text=texts[(first + i) % len(texts)], profile_version=profile.version,
            generation=GenerationStats(model="bench", prompt_tokens=0, completion_tokens=0, latency_ms=0),
        ))
    return profiles, comments, drafts


@dataclass(frozen=True)
class Rate:
    messages_per_s: float  # wall clock
    messages_per_cpu_s: float  # per second of CPU the stage's process used: "per core"


def loop_rate(profiles: list[CreatorProfile], stage: str, events: list) -> Rate:
    by_id = {p.creator_id: p for p in profiles}
    stages = PolicyStages(by_id.get, PolicySource())
    run = stages.screen if stage == "screen" else stages.verify
    # The first micro-batch untimed, as the pipeline's window starts after it: both measure the steady state.
    run(events[:STAGE_MAX_BATCH], time.time())
    timed = events[STAGE_MAX_BATCH:]
    started, cpu_started = time.perf_counter(), time.process_time()
    for i in range(0, len(timed), STAGE_MAX_BATCH):  # the service's micro-batch size
        run(timed[i:i + STAGE_MAX_BATCH], time.time())
    return Rate(len(timed) / (time.perf_counter() - started), len(timed) / (time.process_time() - cpu_started))


class CpuSampler:
    """CPU seconds a process has used, sampled with wall-clock stamps (Linux ``/proc``), so the CPU
    spent between two moments can be read off afterwards."""

    def __init__(self, pid: int, interval_s: float = 0.02) -> None:
        self.path = Path(f"/proc/{pid}/stat")
        self.interval_s = interval_s
        self.samples: list[tuple[float, float]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._tick = os.sysconf("SC_CLK_TCK")

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                fields = self.path.read_text().rsplit(")", 1)[1].split()
            except OSError:
                return
            self.samples.append((time.time(), (int(fields[11]) + int(fields[12])) / self._tick))  # utime + stime
            self._stop.wait(self.interval_s)

    def __enter__(self) -> CpuSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join()

    def cpu_between(self, start: float, end: float) -> float:
        def at(t: float) -> float:
            i = bisect.bisect_left(self.samples, (t, float("-inf")))
            return self.samples[min(i, len(self.samples) - 1)][1]
        return at(end) - at(start)


async def produce(bootstrap: str, topic: str, events: list) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5)
    await producer.start()
    try:
        await asyncio.gather(*[
            await producer.send(topic, e.model_dump_json().encode(), key=e.comment_id.encode()) for e in events
        ])
    finally:
        await producer.stop()


async def decision_times(bootstrap: str, stage: Stage, ids: set[str], timeout_s: float) -> list[float]:
    """Broker timestamps (s) of the stage's decisions for ``ids``, once all are there."""
    consumer = AIOKafkaConsumer(DECISIONS.name, bootstrap_servers=bootstrap, group_id=None,
                                auto_offset_reset="earliest", enable_auto_commit=False)
    await consumer.start()
    seen: dict[str, float] = {}
    deadline = time.monotonic() + timeout_s
    try:
        while len(seen) < len(ids) and time.monotonic() < deadline:
            for records in (await consumer.getmany(timeout_ms=500, max_records=5000)).values():
                for r in records:
                    d = Decision.model_validate_json(r.value)
                    if d.stage == stage and d.comment_id in ids:
                        seen.setdefault(d.comment_id, r.timestamp / 1000)
    finally:
        await consumer.stop()
    if len(seen) < len(ids):
        raise TimeoutError(f"{stage.value}: {len(seen)}/{len(ids)} decisions within {timeout_s}s")
    return sorted(seen.values())


def pipeline_rate(bootstrap: str, workdir: Path, stage: str, events: list) -> Rate:
    topic = COMMENTS_RECEIVED if stage == "screen" else REPLIES_DRAFTED
    prefix = f"bench-{uuid.uuid4().hex[:6]}"
    asyncio.run(group_starts_at_end(bootstrap, Settings(kafka_group_prefix=prefix).group_id(f"policy-{stage}"),
                                   topic.name))
    asyncio.run(produce(bootstrap, topic.name, events))
    stack = Stack(workdir / stage, kafka_bootstrap=bootstrap,
                  extra_env={"KAFKA_GROUP_PREFIX": prefix, "LOG_LEVEL": "WARNING", "POLICY_STAGES": stage})
    stack.start_service("policy")
    try:
        with CpuSampler(stack.processes["policy"].pid) as cpu:
            times = asyncio.run(decision_times(
                bootstrap, Stage.screen if stage == "screen" else Stage.verify,
                {e.comment_id for e in events}, timeout_s=600,
            ))
    finally:
        stack.stop()
    # The first micro-batch's decisions (published together) mark the start of the window; the
    # window holds the work on every later decision.
    start, end = times[0], times[-1]
    done = sum(1 for t in times if t > start + FIRST_BATCH_SPREAD_S)
    return Rate(done / max(end - start, 1e-9), done / max(cpu.cpu_between(start, end), 1e-9))


async def kill_switch_delays(bootstrap: str, profile: CreatorProfile, trials: int,
                             change: Callable[[ReplyMode], Awaitable[None]]) -> list[float]:
    """Seconds from asking for each mode change (``change``) until the first comment sent after it is screened
    under it."""
    base = next(c for c in load_sample_comments() if c.creator_id == profile.creator_id.rsplit("-", 1)[0])
    base = base.model_copy(update={"text": "How long should the dough rest before baking?", "language": "en"})
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    decisions = AIOKafkaConsumer(DECISIONS.name, bootstrap_servers=bootstrap, group_id=None,
                                 auto_offset_reset="latest", enable_auto_commit=False)
    await producer.start()
    await decisions.start()
    delays = []
    try:
        await decisions.getmany(timeout_ms=500)
        for tp in decisions.assignment():
            await decisions.position(tp)  # "latest" fixed now
        for trial in range(trials):
            for mode in (ReplyMode.off, ReplyMode.auto):
                changed = time.monotonic()
                await change(mode)
                sent: dict[str, float] = {}
                applied: list[float] = []
                settle_until = None
                while settle_until is None or time.monotonic() < settle_until:
                    if time.monotonic() - changed > 60:
                        raise TimeoutError(f"mode {mode} not applied within 60 s")
                    if settle_until is None:
                        comment_id = f"ks-{profile.creator_id}-{trial}-{mode}-{len(sent)}"
                        comment = base.model_copy(update={"comment_id": comment_id, "creator_id": profile.creator_id,
                                                          "created_at": datetime.now(UTC)})
                        sent[comment_id] = time.monotonic()
                        await producer.send(COMMENTS_RECEIVED.name, CommentReceived(comment=comment)
                                            .model_dump_json().encode(), key=comment_id.encode())
                    for records in (await decisions.getmany(timeout_ms=20)).values():
                        for r in records:
                            d = Decision.model_validate_json(r.value)
                            if d.comment_id in sent and (d.outcome == Outcome.skipped) == (mode == ReplyMode.off):
                                applied.append(sent[d.comment_id])
                    if applied and settle_until is None:  # a comment sent a little earlier may apply too
                        settle_until = time.monotonic() + 1.0
                delays.append(min(applied) - changed)
    finally:
        await decisions.stop()
        await producer.stop()
    return delays


def kill_switch(bootstrap: str, workdir: Path, profile: CreatorProfile, trials: int = 5) -> dict:
    prefix = f"bench-{uuid.uuid4().hex[:6]}"
    asyncio.run(group_starts_at_end(bootstrap, Settings(kafka_group_prefix=prefix).group_id("policy-screen"),
                                    COMMENTS_RECEIVED.name))
    stack = Stack(workdir / "kill-switch", kafka_bootstrap=bootstrap,
                  extra_env={"KAFKA_GROUP_PREFIX": prefix, "LOG_LEVEL": "WARNING", "POLICY_STAGES": "screen"})
    stack.start_service("policy")
    stack.start_service("control")
    settings = Settings(kafka_bootstrap_servers=bootstrap)
    written = [profile]

    async def write_directly(mode: ReplyMode) -> None:
        written[0] = written[0].model_copy(update={"mode": mode, "version": written[0].version + 1})
        await put_profiles(written, settings)

    async def through_control() -> list[float]:
        # One client for all changes: making one builds an SSL context, tens of ms that are not the change's.
        async with httpx.AsyncClient(base_url=stack.url("control"), timeout=30,
                                     headers={"Authorization": f"Bearer {stack.control_token}"}) as control:
            async def ask_control(mode: ReplyMode) -> None:
                response = await control.put(f"/v1/creators/{profile.creator_id}/mode", json={"mode": mode})
                response.raise_for_status()

            return await kill_switch_delays(bootstrap, profile, trials, ask_control)

    try:
        stack.wait_ready(log=lambda *_: None, timeout_s=60)
        direct = asyncio.run(kill_switch_delays(bootstrap, profile, trials, write_directly))
        api = asyncio.run(through_control())
    finally:
        stack.stop()

    def summary(delays: list[float]) -> dict:
        return {"changes": len(delays), "median_s": round(statistics.median(delays), 3),
                "max_s": round(max(delays), 3), "delays_s": [round(d, 3) for d in delays]}

    return {"direct": summary(direct), "control_api": summary(api),
            "ratio": round(statistics.median(api) / statistics.median(direct), 2)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=5000, help="messages per stage and round")
    parser.add_argument("--rounds", type=int, default=3,
                        help="loop/pipeline pairs per stage, alternating; medians are reported (shared VMs are noisy)")
    args = parser.parse_args(argv)
    started = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    workdir = Path(tempfile.mkdtemp(prefix="bench-policy-"))
    bootstrap = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    kafka = None
    if not bootstrap:
        kafka = LocalKafka(workdir / "kafka")
        bootstrap = kafka.start()
    results = []
    try:
        asyncio.run(ensure_topics(bootstrap))
        rounds = []
        for r in range(args.rounds):  # fresh ids and texts per round: nothing is served from a warm cache
            profiles, comments, drafts = inputs(args.messages, uuid.uuid4().hex[:6], first=args.messages * r)
            asyncio.run(put_profiles(profiles, Settings(kafka_bootstrap_servers=bootstrap)))
            rounds.append((profiles, comments, drafts))
        for stage in ("screen", "verify"):
            loops, pipelines = [], []
            for profiles, comments, drafts in rounds:
                events = comments if stage == "screen" else drafts
                with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as fresh:
                    # a fresh interpreter, like the service's: module-level caches start empty in both
                    loops.append(fresh.submit(loop_rate, profiles, stage, events).result())
                pipelines.append(pipeline_rate(bootstrap, workdir / uuid.uuid4().hex[:6], stage, events))
                print(f"{stage:7s} round {len(loops)}: pipeline {pipelines[-1].messages_per_s:7.1f} msg/s "
                      f"({pipelines[-1].messages_per_cpu_s:.1f} per CPU-s), loop {loops[-1].messages_per_s:7.1f} msg/s "
                      f"({loops[-1].messages_per_cpu_s:.1f} per CPU-s)", flush=True)
            median = statistics.median
            wall = [p.messages_per_s / lp.messages_per_s for p, lp in zip(pipelines, loops, strict=True)]
            cpu = [p.messages_per_cpu_s / lp.messages_per_cpu_s for p, lp in zip(pipelines, loops, strict=True)]
            results.append({
                "stage": stage, "messages": args.messages, "rounds": args.rounds,
                "pipeline_msgs_per_s": round(median(p.messages_per_s for p in pipelines), 1),
                "loop_msgs_per_s": round(median(lp.messages_per_s for lp in loops), 1),
                "ratio": round(median(wall), 3),
                "pipeline_msgs_per_cpu_s": round(median(p.messages_per_cpu_s for p in pipelines), 1),
                "loop_msgs_per_cpu_s": round(median(lp.messages_per_cpu_s for lp in loops), 1),
                "ratio_per_cpu_s": round(median(cpu), 3),
                "ratio_range": [round(min(wall), 3), round(max(wall), 3)],
            })
        switch = kill_switch(bootstrap, workdir, rounds[0][0][0])
        print(f"kill switch: applied {switch['direct']['median_s']} s after a direct write, "
              f"{switch['control_api']['median_s']} s after the control API's PUT (medians of "
              f"{switch['direct']['changes']}; ratio {switch['ratio']})", flush=True)
    finally:
        if kafka is not None:
            kafka.stop()
    REPORTS.mkdir(exist_ok=True)
    (REPORTS / "bench-policy.json").write_text(json.dumps(results, indent=2) + "\n")
    (REPORTS / "kill-switch.json").write_text(json.dumps(switch, indent=2) + "\n")
    lines = [
        f"Run {started} on {platform.node()} ({os.cpu_count()} CPUs): `python -m loadtest.bench_policy "
        f"--messages {args.messages} --rounds {args.rounds}`. Distinct real comments as comments and as drafts; "
        "the service is one process; per CPU-s = messages per second of CPU that process (or the loop) used. "
        "Medians over the rounds (ratio: median of the per-round ratios, its range in brackets).",
        "",
        "| stage | messages × rounds | through Kafka (msg/s) | loop (msg/s) | ratio | through Kafka (msg per CPU-s) "
        "| loop (msg per CPU-s) | ratio per CPU-s |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    lines += [f"| {r['stage']} | {r['messages']} × {r['rounds']} | {r['pipeline_msgs_per_s']} | {r['loop_msgs_per_s']} "
              f"| {r['ratio']} ({r['ratio_range'][0]}–{r['ratio_range'][1]}) | {r['pipeline_msgs_per_cpu_s']} "
              f"| {r['loop_msgs_per_cpu_s']} | {r['ratio_per_cpu_s']} |"
              for r in results]
    direct, api = switch["direct"], switch["control_api"]
    lines += ["", f"Kill switch (mode off, then on again, {direct['changes']} changes each way): applied by the "
                  f"screen stage {direct['median_s']} s after the profile was written to creators.config (median; "
                  f"{direct['max_s']} s at most), {api['median_s']} s after the creator's PUT to the control API "
                  f"({api['max_s']} s at most): ratio {switch['ratio']}."]
    (REPORTS / "bench-policy.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
