"""The whole pipeline on one machine: what `make run` runs and the end-to-end tests start.

Starts a real Kafka broker, the llama.cpp model server (or any OpenAI-compatible one given by
``LLM_BASE_URL``), the platform simulator and the six services, each its own process on free
loopback ports; loads the sample creators; delivers the sample comments the way the platforms do
(Instagram's as signed webhooks to ingest, YouTube's left on the simulated channels for the YouTube
poller); follows ``decisions`` until every comment has its terminal outcome; prints them, checks that
every held reply waits in the control API; stops everything it started.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import httpx
from aiokafka import AIOKafkaConsumer

from replyflow.admin import load_profiles
from replyflow.events import Comment, Decision, Outcome, Platform, ReplyPublished
from replyflow.ingest import meta_signature
from replyflow.kafka import ensure_topics
from replyflow.local.kafka_server import LocalKafka, free_port
from replyflow.local.model_server import MODEL_ALIAS, llama_server_command
from replyflow.settings import Settings
from replyflow.topics import DECISIONS, REPLIES_PUBLISHED

SAMPLES = Path(__file__).resolve().parent.parent / "samples"
SERVICES = ("ingest", "policy", "generation", "publisher", "control", "youtube_poller")
# The Meta app secret of this loopback stack's Instagram webhooks (anywhere else: a Secret).
LOCAL_INSTAGRAM_APP_SECRET = "replyflow-local-instagram-app-secret"
# Only for this loopback stack; anywhere else CONTROL_API_TOKEN and INGEST_API_TOKEN must be secrets.
DEV_CONTROL_TOKEN = "replyflow-dev-token"
LOCAL_INGEST_TOKEN = "replyflow-local-ingest-token"
INGEST_AUTH = {"Authorization": f"Bearer {LOCAL_INGEST_TOKEN}"}


@dataclass
class Stack:
    """Processes of a local pipeline; ``start()`` returns once every service reports ready."""

    workdir: Path
    kafka_bootstrap: str | None = None  # use an existing cluster instead of starting one
    llm_base_url: str | None = None  # use an existing model server instead of llama.cpp
    llm_model: str = MODEL_ALIAS
    llm_max_inflight: int = 4
    control_token: str = DEV_CONTROL_TOKEN
    extra_env: dict[str, str] = field(default_factory=dict)
    kafka: LocalKafka | None = None
    processes: dict[str, subprocess.Popen] = field(default_factory=dict)
    ports: dict[str, int] = field(default_factory=dict)

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.ports[name]}"

    @property
    def settings(self) -> Settings:
        assert self.kafka_bootstrap
        return Settings(kafka_bootstrap_servers=self.kafka_bootstrap)

    def _spawn(self, name: str, cmd: list[str], env: dict[str, str] | None = None) -> None:
        logs = self.workdir / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        out = open(logs / f"{name}.log", "ab")  # noqa: SIM115 - owned by the child
        self.processes[name] = subprocess.Popen(
            cmd, stdout=out, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})}, start_new_session=True
        )

    def service_env(self, name: str) -> dict[str, str]:
        return {
            "KAFKA_BOOTSTRAP_SERVERS": self.kafka_bootstrap or "",
            "HTTP_HOST": "127.0.0.1",
            "HTTP_PORT": str(self.ports[name]),
            "LLM_BASE_URL": self.llm_base_url or "",
            "LLM_MODEL": self.llm_model,
            "LLM_MAX_INFLIGHT": str(self.llm_max_inflight),
            # A CPU llama.cpp server answers one request at a time: queued ones must not time out.
            "LLM_TIMEOUT_S": "180",
            "PLATFORM_BASE_URL": self.url("platform") if "platform" in self.ports else "",
            **self.native_platform_env(),
            "RETRY_BACKOFF_MAX_S": "5",
            "CONTROL_API_TOKEN": self.control_token,
            "INGEST_API_TOKEN": LOCAL_INGEST_TOKEN,
            "INSTAGRAM_APP_SECRET": LOCAL_INSTAGRAM_APP_SECRET,
            # The simulator has no quota: poll each channel every second.
            "YOUTUBE_POLL_MIN_INTERVAL_S": "1",
            "YOUTUBE_POLL_QUOTA_UNITS_PER_DAY": "1000000",
            **self.extra_env,
        }

    def native_platform_env(self) -> dict[str, str]:
        """YouTube and Instagram replies through their own APIs, which the platform simulator also speaks."""
        if "platform" not in self.ports:
            return {}
        return {"YOUTUBE_API_BASE_URL": self.url("platform"), "YOUTUBE_TOKEN_URL": f"{self.url('platform')}/token",
                "INSTAGRAM_API_BASE_URL": f"{self.url('platform')}/v21.0",
                "PLATFORM_CREDENTIALS_FILE": str(self.workdir / "platform-credentials.json")}

    def grant_platform_access(self, creators_file: Path) -> None:
        """What a creator does once when connecting their channel and account: the simulator learns the grants
        and the publisher gets them in its credentials file (a Secret in production)."""
        client = {"client_id": "replyflow-local.apps.googleusercontent.com", "client_secret": "local-secret"}
        youtube: dict[str, dict[str, str]] = {}
        instagram: dict[str, dict[str, str]] = {}
        for creator in json.loads(creators_file.read_text()):
            accounts = creator.get("platform_accounts", {})
            if "youtube" in accounts:
                youtube[accounts["youtube"]] = {"refresh_token": f"1//local-{accounts['youtube']}"}
            if "instagram" in accounts:
                instagram[accounts["instagram"]] = {"access_token": f"IGQVJ-local-{accounts['instagram']}"}
        grants = [{"platform": "youtube", "account_id": a, **client, **g} for a, g in youtube.items()]
        grants += [{"platform": "instagram", "account_id": a, **g} for a, g in instagram.items()]
        for grant in grants:
            httpx.post(f"{self.url('platform')}/admin/credentials", json=grant, timeout=10).raise_for_status()
        credentials = {"youtube": {**client, "accounts": youtube}, "instagram": {"accounts": instagram}}
        Path(self.native_platform_env()["PLATFORM_CREDENTIALS_FILE"]).write_text(json.dumps(credentials, indent=2))

    def start_service(self, name: str, instance: str | None = None) -> None:
        """Start service ``name``; ``instance`` names a further replica (its own port, logs and process)."""
        key = instance or name
        self.ports.setdefault(key, free_port())
        self._spawn(key, [sys.executable, "-m", f"replyflow.{name}"], self.service_env(key))

    def start(self, log=print) -> None:
        shutil.rmtree(self.workdir, ignore_errors=True)  # every run starts clean: no leftovers
        self.workdir.mkdir(parents=True)
        if self.kafka_bootstrap is None:
            log("starting Apache Kafka (KRaft, single node)…")
            self.kafka = LocalKafka(self.workdir / "kafka")
            self.kafka_bootstrap = self.kafka.start()
        asyncio.run(ensure_topics(self.kafka_bootstrap))
        if self.llm_base_url is None:
            log("starting llama.cpp server with SmolLM2-135M-Instruct…")
            self.ports["llm"] = free_port()
            self._spawn("llm", llama_server_command(self.ports["llm"]))
            self.llm_base_url = f"{self.url('llm')}/v1"
        self.ports["platform"] = free_port()
        self._spawn("platform", [
            sys.executable, "-m", "loadtest.platform_simulator", "--host", "127.0.0.1",
            "--port", str(self.ports["platform"]), "--journal", str(self.workdir / "platform-posts.jsonl"),
        ])
        asyncio.run(load_profiles(SAMPLES / "creators.json", self.settings))
        self.wait_ready(log=lambda *_: None, only={"platform"})  # it takes the grants; llama.cpp loads meanwhile
        self.grant_platform_access(SAMPLES / "creators.json")
        for name in SERVICES:
            self.start_service(name)
        self.wait_ready(log)

    def wait_ready(self, log=print, timeout_s: float = 180.0, only: set[str] | None = None) -> None:
        probes = {name: f"{self.url(name)}/readyz" for name in SERVICES if name in self.ports}
        if "platform" in self.ports:
            probes["platform"] = f"{self.url('platform')}/healthz"
        if "llm" in self.ports:
            probes["llm"] = f"{self.url('llm')}/v1/models"
        if only is not None:
            probes = {name: url for name, url in probes.items() if name in only}
        deadline = time.monotonic() + timeout_s
        waiting = set(probes)
        while waiting:
            for name in sorted(waiting):
                proc = self.processes.get(name)
                if proc is not None and proc.poll() is not None:
                    raise RuntimeError(f"{name} exited ({proc.returncode}); see {self.workdir}/logs/{name}.log")
                with contextlib.suppress(httpx.HTTPError):
                    if httpx.get(probes[name], timeout=2).status_code == 200:
                        waiting.discard(name)
            if time.monotonic() > deadline:
                raise TimeoutError(f"not ready after {timeout_s}s: {sorted(waiting)} (logs in {self.workdir}/logs)")
            if waiting:
                time.sleep(0.5)
        log("ready: " + ", ".join(f"{n}={self.url(n)}" for n in sorted(probes)))

    def stop_process(self, name: str, sig: int = signal.SIGTERM, timeout_s: float = 30.0) -> None:
        proc = self.processes.pop(name, None)
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(sig)
        try:
            proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    def stop(self) -> None:
        for name in [*SERVICES, "platform"]:
            self.stop_process(name)
        self.stop_process("llm", timeout_s=5)  # holds no state worth a graceful stop
        for name in list(self.processes):
            self.stop_process(name)
        if self.kafka is not None:
            self.kafka.stop()


def load_sample_comments(path: Path = SAMPLES / "comments.jsonl") -> list[Comment]:
    """The sample stream, re-timed to now so end-to-end latency means something."""
    now = datetime.now(UTC)
    return [
        Comment.model_validate_json(line).model_copy(update={"created_at": now})
        for line in path.read_text().splitlines()
        if line.strip()
    ]


def instagram_delivery(comments: list[Comment], account_of: dict[str, str], delivered_at: float) -> dict:
    """Meta's webhook payload for comments on the creators' Instagram media: one entry per account."""
    changes: dict[str, list[dict]] = defaultdict(list)
    for c in comments:
        value = {"id": c.comment_id, "text": c.text, "from": {"id": c.author_id, "username": c.author_name},
                 "media": {"id": c.post_id}, **({"parent_id": c.parent_id} if c.parent_id else {})}
        changes[account_of[c.creator_id]].append({"field": "comments", "value": value})
    return {"object": "instagram",
            "entry": [{"id": account, "time": int(delivered_at), "changes": cs} for account, cs in changes.items()]}


def viewer_comments(comments: list[Comment], channel_of: dict[str, str]) -> list[dict]:
    """YouTube comments as the platform simulator keeps them on the creators' channels."""
    return [{"comment_id": c.comment_id, "channel_id": channel_of[c.creator_id], "video_id": c.post_id,
             "author_channel_id": c.author_id, "author_name": c.author_name, "text": c.text,
             "published_at": c.created_at.isoformat(), "parent_id": c.parent_id} for c in comments]


async def deliver_comments(stack: Stack, comments: list[Comment], creators_file: Path = SAMPLES / "creators.json",
                           batch: int = 20) -> None:
    """Comments the way the platforms deliver them: YouTube's are written on the simulated channels, where the
    YouTube poller finds them; Instagram's go to ingest as signed webhooks; the others through ``POST
    /v1/comments`` (a platform bridge)."""
    by_platform: dict[Platform, list[Comment]] = defaultdict(list)
    for c in comments:
        by_platform[c.platform].append(c)
    profiles = json.loads(creators_file.read_text())
    account_of = {platform: {p["creator_id"]: p["platform_accounts"][platform] for p in profiles
                             if platform in p.get("platform_accounts", {})} for platform in ("youtube", "instagram")}
    async with httpx.AsyncClient(timeout=30) as http:
        youtube = by_platform.pop(Platform.youtube, [])
        for i in range(0, len(youtube), batch):
            response = await http.post(f"{stack.url('platform')}/admin/youtube/comments",
                                       json=viewer_comments(youtube[i:i + batch], account_of["youtube"]))
            response.raise_for_status()
        instagram = by_platform.pop(Platform.instagram, [])
        for i in range(0, len(instagram), batch):
            body = json.dumps(instagram_delivery(instagram[i:i + batch], account_of["instagram"], time.time())).encode()
            response = await http.post(f"{stack.url('ingest')}/v1/webhooks/instagram", content=body, headers={
                "content-type": "application/json",
                "x-hub-signature-256": meta_signature(LOCAL_INSTAGRAM_APP_SECRET, body)})
            response.raise_for_status()
    await send_comments(stack.url("ingest"), [c for cs in by_platform.values() for c in cs], batch)


async def send_comments(ingest_url: str, comments: list[Comment], batch: int = 20) -> None:
    async with httpx.AsyncClient(base_url=ingest_url, timeout=30, headers=INGEST_AUTH) as http:
        for i in range(0, len(comments), batch):
            body = [json.loads(c.model_dump_json()) for c in comments[i:i + batch]]
            response = await http.post("/v1/comments", json=body)
            response.raise_for_status()


@dataclass
class Outcomes:
    """Terminal decisions and published replies seen per comment."""

    terminal: dict[str, list[Decision]] = field(default_factory=lambda: defaultdict(list))
    published: dict[str, list[ReplyPublished]] = field(default_factory=lambda: defaultdict(list))


async def follow_outcomes(
    bootstrap: str, comment_ids: set[str], timeout_s: float, progress=None, progress_every_s: float = 5.0
) -> Outcomes:
    """Read ``decisions`` and ``replies.published`` until every comment has a terminal outcome (and, when it
    was published, its ``ReplyPublished``)."""
    outcomes = Outcomes()
    consumer = AIOKafkaConsumer(
        DECISIONS.name, REPLIES_PUBLISHED.name, bootstrap_servers=bootstrap,
        group_id=None, auto_offset_reset="earliest", enable_auto_commit=False,
    )
    await consumer.start()
    deadline = time.monotonic() + timeout_s
    next_progress = time.monotonic() + progress_every_s
    try:
        while time.monotonic() < deadline:
            batches = await consumer.getmany(timeout_ms=500)
            for tp, records in batches.items():
                for record in records:
                    if tp.topic == DECISIONS.name:
                        decision = Decision.model_validate_json(record.value)
                        if decision.terminal and decision.comment_id in comment_ids:
                            outcomes.terminal[decision.comment_id].append(decision)
                    else:
                        reply = ReplyPublished.model_validate_json(record.value)
                        if reply.comment_id in comment_ids:  # a shared broker carries other runs' replies too
                            outcomes.published[reply.comment_id].append(reply)
            pending = {cid for cid in comment_ids if cid not in outcomes.terminal or (
                cid not in outcomes.published and any(d.outcome == Outcome.published for d in outcomes.terminal[cid]))}
            if not pending:
                break
            if progress and time.monotonic() >= next_progress:
                progress(pending)
                next_progress = time.monotonic() + progress_every_s
        return outcomes
    finally:
        await consumer.stop()


def posts_per_comment(posts: list[dict], outcomes: Outcomes, comments: list[Comment]) -> tuple[dict[str, int],
                                                                                             list[dict]]:
    """How many of the platform's posts under ``comments`` answer each one, matched through the platform reply
    ids the publisher recorded (a reply to a reply is posted under its thread, so a post's comment id may be the
    thread's), and the posts no ``ReplyPublished`` names: a reply posted a second time would be one. Posts under
    other comments are another run's (a publisher on a shared broker answers every approved reply)."""
    threads = {c.comment_id for c in comments} | {c.parent_id for c in comments if c.parent_id}
    comment_of = {p.platform_reply_id: cid for cid, published in outcomes.published.items() for p in published}
    counts: dict[str, int] = defaultdict(int)
    unexplained = []
    for post in (p for p in posts if p["comment_id"] in threads):
        if post["platform_reply_id"] in comment_of:
            counts[comment_of[post["platform_reply_id"]]] += 1
        else:
            unexplained.append(post)
    return counts, unexplained


def report(comments: list[Comment], outcomes: Outcomes, posts: list[dict]) -> list[str]:
    """Print one block per comment; returns the problems found (empty means success)."""
    per_comment, unexplained = posts_per_comment(posts, outcomes, comments)
    problems = [f"the platform holds a post no published reply names: {p}" for p in unexplained]
    counts: dict[str, int] = defaultdict(int)
    for c in comments:
        decisions = outcomes.terminal.get(c.comment_id, [])
        kinds = {d.outcome for d in decisions}
        if Outcome.held in kinds:  # the creator then decided about it (control API): published or rejected
            kinds -= {Outcome.published, Outcome.rejected}
        if not decisions:
            problems.append(f"{c.comment_id}: no terminal outcome")
            print(f"\n[{c.comment_id}] {c.creator_id} · NO OUTCOME\n  comment: {c.text[:100]!r}")
            continue
        if len(kinds) > 1:
            problems.append(f"{c.comment_id}: several outcomes {sorted(kinds)}")
        if per_comment[c.comment_id] > 1:
            problems.append(f"{c.comment_id}: posted {per_comment[c.comment_id]} times")
        final = decisions[0]
        counts[final.outcome.value] += 1
        print(f"\n[{c.comment_id}] {c.creator_id} · {final.outcome.value.upper()} at {final.stage.value}")
        print(f"  comment: {c.text[:120]!r}")
        for r in final.reasons:
            print(f"  reason: {r.code} ({r.action.value}) {r.message}")
        for p in outcomes.published.get(c.comment_id, [])[:1]:
            print(f"  posted reply: {p.text!r}")
    print("\nsummary: " + ", ".join(f"{k}={v}" for k, v in sorted(counts.items())) + f", total={len(comments)}")
    return problems


def control_api_howto(url: str, token: str) -> str:
    auth = f"-H 'Authorization: Bearer {token}'"
    return "\n".join([
        f"control API: {url} (token {token}); while this runs, e.g.",
        f"  curl -s {auth} {url}/v1/reviews                      # who has replies waiting",
        f"  curl -s {auth} {url}/v1/creators/mara-cooks/reviews",
        f"  curl -s {auth} -H 'Content-Type: application/json' -d '{{\"action\": \"approve\"}}' "
        f"{url}/v1/reviews/<reply_id>",
    ])


def check_held_replies_wait(url: str, token: str, outcomes: Outcomes, timeout_s: float = 10.0) -> list[str]:
    """Every reply this run held must be listed for its creator by the control API."""
    held: dict[str, set[str]] = defaultdict(set)
    for decisions in outcomes.terminal.values():
        if decisions[0].outcome == Outcome.held and decisions[0].reply_id:
            held[decisions[0].creator_id].add(decisions[0].reply_id)
    missing: dict[str, set[str]] = {}
    deadline = time.monotonic() + timeout_s
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=10) as http:
        while True:
            for creator_id, reply_ids in held.items():
                listed = http.get(f"/v1/creators/{creator_id}/reviews", params={"limit": 1000}).json()
                missing[creator_id] = reply_ids - {r["reply_id"] for r in listed.get("reviews", [])}
            if not any(missing.values()) or time.monotonic() > deadline:
                break
            time.sleep(0.3)  # the control service follows replies.review a moment behind decisions
    waiting = ", ".join(f"{c}={len(ids)}" for c, ids in sorted(held.items()))
    print(f"held for review, waiting in the control API: {waiting or 'none'}")
    return [f"{c}: held reply {r} is not listed by the control API" for c, ids in missing.items() for r in ids]


def _exit_on_sigterm(signum, frame) -> None:
    raise SystemExit(128 + signum)  # so `finally` stops every child process


def main() -> int:
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    workdir = Path(os.environ.get("REPLYFLOW_RUN_DIR", ".run"))
    stack = Stack(
        workdir,
        kafka_bootstrap=os.environ.get("KAFKA_BOOTSTRAP_SERVERS") or None,
        llm_base_url=os.environ.get("LLM_BASE_URL") or None,
        llm_model=os.environ.get("LLM_MODEL", MODEL_ALIAS),
    )
    started = time.monotonic()
    problems = ["the pipeline did not start"]
    try:
        stack.start()
        print(control_api_howto(stack.url("control"), stack.control_token), flush=True)
        comments = load_sample_comments()
        ids = {c.comment_id for c in comments}
        asyncio.run(deliver_comments(stack, comments))
        print(f"delivered {len(comments)} comments (YouTube's to the channels, for the poller); waiting for their"
              " outcomes…", flush=True)

        def progress(pending: set[str]) -> None:
            shown = ", ".join(sorted(pending)[:8]) + (" …" if len(pending) > 8 else "")
            print(f"  {time.monotonic() - started:5.0f}s  {len(ids) - len(pending)}/{len(ids)} done;"
                  f" in flight: {shown}", flush=True)

        outcomes = asyncio.run(follow_outcomes(stack.kafka_bootstrap, ids, timeout_s=600, progress=progress))
        posts = httpx.get(f"{stack.url('platform')}/v1/posts", timeout=10).json()["posts"]
        problems = report(comments, outcomes, posts)
        problems += check_held_replies_wait(stack.url("control"), stack.control_token, outcomes)
    finally:
        stack.stop()
    print(f"\nfinished in {time.monotonic() - started:.0f}s; logs in {workdir}/logs")
    for problem in problems:
        print(f"PROBLEM: {problem}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
