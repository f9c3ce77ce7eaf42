"""Platform simulator: a stand-in for the platforms' reply APIs (YouTube, Instagram, generic).

A separate program speaking real HTTP, so the publisher is tested against the protocol and
never against patches. It records posts, honours idempotency keys and injects faults.

Run::

    python -m loadtest.platform_simulator --host 127.0.0.1 --port 8090 --journal .run/posts.jsonl

API
---
``POST /v1/{platform}/comments/{comment_id}/replies``
    Body ``{"account_id": str, "text": str, "reply_id": str}``, header ``Idempotency-Key``
    (required). 201 with the post on first use of a key; 200 with the identical body when the
    same key and body are sent again (no second post is recorded); 409 when the key was used
    with a different request; 400 ``{"error": ...}`` when the key is missing or the body is
    invalid; 404 for an unknown platform; 410 ``{"error": ...}`` when the comment was deleted
    (``/admin/deleted``; also for a key used before: no reply can go out under it); 429 with
    ``Retry-After`` when the per-account rate limit is hit; injected faults answer
    ``error_status`` (default 503).
``POST /youtube/v3/comments?part=snippet``, ``GET /youtube/v3/comments?part=snippet&parentId=``
    The YouTube Data API v3 calls for replying (``comments.insert``, body ``{"snippet": {"parentId",
    "textOriginal"}}``) and listing a comment's replies (``comments.list``, ``maxResults``/``pageToken``),
    with ``Authorization: Bearer`` access tokens from ``POST /token`` (Google's OAuth refresh-token grant,
    form ``grant_type=refresh_token``, ``client_id``, ``client_secret``, ``refresh_token``). No idempotency
    key: a repeated insert is a second post. Errors have Google's shape (``error.errors[].reason``: 401
    ``authError``, 403 ``rateLimitExceeded`` when the account's rate limit is hit; a deleted comment: 404
    ``parentCommentNotFound`` from ``comments.insert``, 404 ``commentNotFound`` from ``comments.list``).
``GET /youtube/v3/commentThreads?part=snippet,replies&allThreadsRelatedToChannelId=``
    ``commentThreads.list``: the channel's comment threads, newest top comment first (``order=time``), each with
    its first five replies (viewers' and the posted ones; ``comments.list`` by ``parentId`` gives all) and
    ``totalReplyCount``, ``maxResults``/``pageToken`` paging, any valid access token. Deleted comments are not
    listed.
``POST /admin/youtube/comments``
    A JSON array of ``{"comment_id", "channel_id", "video_id", "author_channel_id", "author_name", "text",
    "published_at"?, "parent_id"?}``: viewers' comments on the channel's videos, for ``commentThreads.list``.
``POST /{version}/{comment_id}/replies``, ``GET /{version}/{comment_id}/replies?fields=id,text,from``
    The Instagram Graph API calls for replying to a comment (``message``, ``access_token`` as form or query
    parameters; answers ``{"id"}``) and listing its replies (``limit``/``after`` cursor paging). No
    idempotency key either. Errors have Graph's shape (``error.code``: 190 bad token, 4 rate limit; a deleted
    comment: 400, code 100 with ``error_subcode`` 33).
``POST /admin/credentials``
    ``{"platform": "youtube", "account_id", "client_id", "client_secret", "refresh_token"}`` or
    ``{"platform": "instagram", "account_id", "access_token"}``: what the native APIs accept for an account.
``POST /admin/deleted``
    ``{"platform", "comment_id"}``: the comment was deleted on that platform (YouTube, Instagram or a generic
    one): replies to it are refused as above, and it is no longer listed.
``GET /v1/posts[?platform=&comment_id=&account_id=]``
    ``{"posts": [...], "duplicates_rejected": n, "conflicts_rejected": n}``.
``GET /healthz``, ``GET /metrics`` (Prometheus).
``GET|POST /admin/faults``
    Read or change fault injection at run time: ``error_rate``, ``error_status``,
    ``latency_ms``, ``rate_limit_per_account_per_minute``, ``timeout_sleep_s``,
    ``fail_next`` (the next N reply requests fail) and ``timeout_next`` (the next N reply
    requests are processed and recorded, then the answer is delayed by ``timeout_sleep_s``,
    longer than any sane client timeout: the post exists although the client never saw it).
``POST /admin/reset``
    Forget every post, viewer comment, deletion, replay counter, rate-limit window and metric, truncate the
    journal, restore the fault settings the process started with and release delayed answers.

Order of checks for a reply request: latency → request validation (400, never masked by an
injected fault) → ``fail_next`` / ``error_rate`` (nothing recorded) → deleted comment (410; the
native APIs' errors above) → idempotency (200 replay, 409 conflict) → rate limit (429, new posts
only) → record (+ journal) → ``timeout_next`` delay → answer. The check-and-record step has no
``await`` inside, so concurrent requests with one key can never create two posts.

Journal: with ``--journal FILE`` every accepted post and every idempotent replay is appended
as one JSON line and the file is replayed at start, so posts, idempotency and the replay count
survive a restart (deletions do not).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import math
import random
import time
from collections import deque
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import parse_qsl

import uvicorn
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, generate_latest
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints, ValidationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from loadtest.serving import RunningSimulator, serve_app_in_thread

log = logging.getLogger("loadtest.platform_simulator")

PLATFORMS = ("youtube", "instagram", "tiktok", "generic")
IDEMPOTENCY_HEADER = "Idempotency-Key"
RATE_WINDOW_S = 60.0
THREAD_REPLIES_LISTED = 5  # commentThreads.list lists a few replies of a thread; comments.list gives them all

NonEmpty = Annotated[str, StringConstraints(min_length=1, max_length=10_000)]
ShortId = Annotated[str, StringConstraints(min_length=1, max_length=200)]


@dataclass(frozen=True)
class Faults:
    """Fault injection settings; all off by default."""

    error_rate: float = 0.0
    error_status: int = 503
    latency_ms: float = 0.0
    rate_limit_per_account_per_minute: int = 0  # 0 = unlimited
    timeout_sleep_s: float = 30.0
    access_token_ttl_s: float = 3600.0  # lifetime of the YouTube access tokens /token issues
    youtube_quota_exceeded: bool = False  # every YouTube API call answers 403 quotaExceeded


@dataclass(frozen=True)
class SimulatorConfig:
    faults: Faults = field(default_factory=Faults)
    journal: Path | None = None
    seed: int = 0


class ReplyRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=False)

    account_id: ShortId
    text: NonEmpty
    reply_id: ShortId


class FaultsUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    error_rate: float | None = Field(default=None, ge=0.0, le=1.0)
    error_status: int | None = Field(default=None, ge=400, le=599)
    latency_ms: float | None = Field(default=None, ge=0.0, le=600_000)
    rate_limit_per_account_per_minute: int | None = Field(default=None, ge=0)
    timeout_sleep_s: float | None = Field(default=None, ge=0.0, le=3600)
    access_token_ttl_s: float | None = Field(default=None, ge=0.0, le=86_400)
    youtube_quota_exceeded: bool | None = None
    fail_next: int | None = Field(default=None, ge=0)
    timeout_next: int | None = Field(default=None, ge=0)


class YouTubeCredentials(BaseModel):
    model_config = ConfigDict(extra="forbid")

    platform: Literal["youtube"]
    account_id: ShortId
    client_id: ShortId
    client_secret: ShortId
    refresh_token: ShortId


class ViewerComment(BaseModel):
    """A viewer's comment on a YouTube channel's video, as ``POST /admin/youtube/comments`` takes it."""

    model_config = ConfigDict(extra="forbid")

    comment_id: ShortId
    channel_id: ShortId
    video_id: ShortId
    author_channel_id: ShortId
    author_name: ShortId
    text: NonEmpty
    published_at: AwareDatetime = Field(default_factory=lambda: datetime.now(UTC))
    parent_id: ShortId | None = None


class InstagramCredentials(BaseModel):
    model_config = ConfigDict(extra="forbid")

    platform: Literal["instagram"]
    account_id: ShortId
    access_token: ShortId


class DeletedComment(BaseModel):
    """A comment the platform deleted, as ``POST /admin/deleted`` takes it."""

    model_config = ConfigDict(extra="forbid")

    platform: ShortId
    comment_id: ShortId


def _error(status: int, message: str, **extra: Any) -> JSONResponse:
    return JSONResponse({"error": message, **extra}, status_code=status)


def _validation_message(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"]) or "body"
        parts.append(f"{loc}: {err['msg']}")
    return "; ".join(parts)


def _now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass
class _Entry:
    """One accepted post plus what its idempotency key was bound to."""

    key: str
    fingerprint: tuple[str, ...]
    body: dict[str, Any]
    replays: int = 0


class _Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "platform_sim_reply_requests",
            "Reply requests answered, by platform and HTTP status",
            ["platform", "status"],
            registry=self.registry,
        )
        self.posts = Counter(
            "platform_sim_posts_recorded",
            "Posts recorded (first use of an idempotency key), by platform",
            ["platform"],
            registry=self.registry,
        )
        self.replays = Counter(
            "platform_sim_idempotent_replays",
            "Repeats of an idempotency key answered with the stored post, by platform",
            ["platform"],
            registry=self.registry,
        )
        self.conflicts = Counter(
            "platform_sim_idempotency_conflicts",
            "Idempotency keys reused with a different request (409), by platform",
            ["platform"],
            registry=self.registry,
        )
        self.faults = Counter(
            "platform_sim_injected_faults",
            "Injected faults, by kind (error_rate, fail_next, rate_limit, timeout)",
            ["kind"],
            registry=self.registry,
        )


class PlatformSimulator:
    """All in-memory state; lives on one asyncio loop."""

    def __init__(self, config: SimulatorConfig) -> None:
        self.config = config
        self.metrics = _Metrics()
        self.rng = random.Random(config.seed)
        self.faults = config.faults
        self.fail_next = 0
        self.timeout_next = 0
        self.entries: dict[str, _Entry] = {}
        self.order: list[_Entry] = []
        self.conflicts_rejected = 0
        self.windows: dict[tuple[str, str], deque[float]] = {}
        self.viewer_comments: list[ViewerComment] = []  # YouTube comments for commentThreads.list
        self.deleted: set[tuple[str, str]] = set()  # (platform, comment id) deleted on the platform
        self._release: asyncio.Event | None = None  # created on the serving loop when first needed
        # Native API credentials (kept by /admin/reset: they are configuration, not state).
        self.refresh_tokens: dict[str, tuple[tuple[str, str], str]] = {}  # token -> ((client id, secret), account)
        self.access_tokens: dict[str, tuple[str, str, float | None]] = {}  # token -> (platform, account, expiry)
        self._load_journal()

    # -- journal -------------------------------------------------------------------------
    def _load_journal(self) -> None:
        path = self.config.journal
        if path is None or not path.exists():
            return
        with path.open(encoding="utf-8") as fh:
            for lineno, line in enumerate(fh, 1):
                if not line.strip():
                    continue
                try:
                    rec = json.loads(line)
                    if rec["event"] == "post":
                        entry = _Entry(rec["key"], tuple(rec["fingerprint"]), rec["body"])
                        self.entries[entry.key] = entry
                        self.order.append(entry)
                    elif rec["event"] == "replay" and rec["key"] in self.entries:
                        self.entries[rec["key"]].replays += 1
                except (ValueError, KeyError, TypeError):
                    log.warning("journal %s line %d unreadable, skipped", path, lineno)
        log.info("journal %s: %d posts reloaded", path, len(self.order))

    def _journal(self, record: dict[str, Any]) -> None:
        path = self.config.journal
        if path is None:
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a", encoding="utf-8") as fh:
            fh.write(json.dumps(record, ensure_ascii=False, separators=(",", ":")) + "\n")
            fh.flush()

    # -- helpers -------------------------------------------------------------------------
    @property
    def release(self) -> asyncio.Event:
        if self._release is None:
            self._release = asyncio.Event()
        return self._release

    def reset(self) -> None:
        self.faults = self.config.faults
        self.fail_next = 0
        self.timeout_next = 0
        self.entries.clear()
        self.order.clear()
        self.conflicts_rejected = 0
        self.windows.clear()
        self.viewer_comments.clear()
        self.deleted.clear()
        self.rng = random.Random(self.config.seed)
        self.metrics = _Metrics()
        if self.config.journal is not None and self.config.journal.exists():
            self.config.journal.write_text("", encoding="utf-8")
        # wake every answer delayed by timeout_next, then arm a fresh event
        self.release.set()
        self._release = asyncio.Event()

    def faults_view(self) -> dict[str, Any]:
        return {**asdict(self.faults), "fail_next": self.fail_next, "timeout_next": self.timeout_next}

    def _platform_reply_id(self, platform: str) -> str:
        seq = len(self.order) + 1
        suffix = "".join(self.rng.choices("abcdefghijklmnopqrstuvwxyz0123456789", k=10))
        if platform == "youtube":
            return f"Ugx{seq:06d}{suffix}"
        if platform == "instagram":
            return f"1790{seq:08d}{self.rng.randrange(10**6):06d}"
        return f"{platform}_{seq:06d}_{suffix}"

    def _rate_limited(self, platform: str, account_id: str) -> int | None:
        """Seconds to wait when the account is over its limit, else None."""
        limit = self.faults.rate_limit_per_account_per_minute
        if limit <= 0:
            return None
        now = time.monotonic()
        window = self.windows.setdefault((platform, account_id), deque())
        while window and now - window[0] >= RATE_WINDOW_S:
            window.popleft()
        if len(window) < limit:
            return None
        return max(1, math.ceil(RATE_WINDOW_S - (now - window[0])))

    def _note_post(self, platform: str, account_id: str) -> None:
        if self.faults.rate_limit_per_account_per_minute > 0:
            self.windows.setdefault((platform, account_id), deque()).append(time.monotonic())

    # -- handlers ------------------------------------------------------------------------
    async def create_reply(self, request: Request) -> Response:
        platform = request.path_params["platform"]
        response = await self._create_reply(request, platform)
        label = platform if platform in PLATFORMS else "unknown"
        self.metrics.requests.labels(label, str(response.status_code)).inc()
        return response

    async def _create_reply(self, request: Request, platform: str) -> Response:
        comment_id = request.path_params["comment_id"]
        if self.faults.latency_ms > 0:
            await asyncio.sleep(self.faults.latency_ms / 1000)

        # 1. validation: client bugs are always reported, never hidden behind a fault
        if platform not in PLATFORMS:
            return _error(404, f"unknown platform {platform!r}; expected one of {', '.join(PLATFORMS)}")
        key = request.headers.get(IDEMPOTENCY_HEADER, "").strip()
        if not key:
            return _error(400, f"missing {IDEMPOTENCY_HEADER} header")
        if len(key) > 255:
            return _error(400, f"{IDEMPOTENCY_HEADER} longer than 255 characters")
        raw = await request.body()
        try:
            payload = json.loads(raw)
        except ValueError:
            return _error(400, "body is not valid JSON")
        try:
            body = ReplyRequest.model_validate(payload)
        except ValidationError as exc:
            return _error(400, f"invalid body: {_validation_message(exc)}")

        # 2. injected failures: nothing is recorded
        if self.fail_next > 0:
            self.fail_next -= 1
            self.metrics.faults.labels("fail_next").inc()
            return _error(self.faults.error_status, "injected failure (fail_next)")
        if self.faults.error_rate > 0 and self.rng.random() < self.faults.error_rate:
            self.metrics.faults.labels("error_rate").inc()
            return _error(self.faults.error_status, "injected failure (error_rate)")
        if (platform, comment_id) in self.deleted:
            return _error(410, f"comment {comment_id!r} was deleted")

        # 3. idempotency, rate limit and recording: no await in between
        fingerprint = (platform, comment_id, body.account_id, body.text, body.reply_id)
        entry = self.entries.get(key)
        if entry is not None:
            if entry.fingerprint != fingerprint:
                self.conflicts_rejected += 1
                self.metrics.conflicts.labels(platform).inc()
                return _error(
                    409,
                    f"{IDEMPOTENCY_HEADER} {key!r} was already used with a different request",
                    platform_reply_id=entry.body["platform_reply_id"],
                )
            entry.replays += 1
            self.metrics.replays.labels(platform).inc()
            self._journal({"event": "replay", "key": key, "at": _now_iso()})
            status = 200
        else:
            retry_after = self._rate_limited(platform, body.account_id)
            if retry_after is not None:
                self.metrics.faults.labels("rate_limit").inc()
                return JSONResponse(
                    {
                        "error": f"rate limit for account {body.account_id!r} exceeded",
                        "retry_after": retry_after,
                    },
                    status_code=429,
                    headers={"Retry-After": str(retry_after)},
                )
            out = {
                "platform_reply_id": self._platform_reply_id(platform),
                "comment_id": comment_id,
                "platform": platform,
                "account_id": body.account_id,
                "text": body.text,
                "reply_id": body.reply_id,
                "created_at": _now_iso(),
            }
            entry = _Entry(key, fingerprint, out)
            self.entries[key] = entry
            self.order.append(entry)
            self._note_post(platform, body.account_id)
            self.metrics.posts.labels(platform).inc()
            self._journal({"event": "post", "key": key, "fingerprint": list(fingerprint), "body": out})
            status = 201

        # 4. the platform did the work but the client will not hear about it in time
        if self.timeout_next > 0:
            self.timeout_next -= 1
            self.metrics.faults.labels("timeout").inc()
            release = self.release
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(release.wait(), timeout=self.faults.timeout_sleep_s)
        return JSONResponse(entry.body, status_code=status)

    # -- native platform APIs (no idempotency key) ------------------------------------------
    def _account_for(self, platform: str, token: str) -> str | None:
        """The account an access token acts for; None when unknown, of another platform or expired."""
        found = self.access_tokens.get(token)
        if found is None or found[0] != platform or (found[2] is not None and time.monotonic() >= found[2]):
            return None
        return found[1]

    async def _record_native(self, platform: str, comment_id: str, account_id: str, text: str,
                             error: Any) -> _Entry | Response:
        """Faults, rate limit and recording of a native API post; ``error(status, kind, message)`` shapes the
        platform's error answer. A repeated request is simply a second post, as on the real platforms."""
        if self.faults.latency_ms > 0:
            await asyncio.sleep(self.faults.latency_ms / 1000)
        if self.fail_next > 0:
            self.fail_next -= 1
            self.metrics.faults.labels("fail_next").inc()
            return error(self.faults.error_status, "backend", "injected failure (fail_next)")
        if self.faults.error_rate > 0 and self.rng.random() < self.faults.error_rate:
            self.metrics.faults.labels("error_rate").inc()
            return error(self.faults.error_status, "backend", "injected failure (error_rate)")
        if (platform, comment_id) in self.deleted:
            return error(404, "gone", f"The comment {comment_id} was deleted.")
        if self._rate_limited(platform, account_id) is not None:
            self.metrics.faults.labels("rate_limit").inc()
            return error(429, "rate_limit", f"rate limit for account {account_id!r} exceeded")
        platform_reply_id = self._platform_reply_id(platform)
        out = {"platform_reply_id": platform_reply_id, "comment_id": comment_id, "platform": platform,
               "account_id": account_id, "text": text, "reply_id": None, "created_at": _now_iso()}
        entry = _Entry(f"{platform}:{platform_reply_id}", (platform, comment_id, account_id, text, ""), out)
        self.entries[entry.key] = entry
        self.order.append(entry)
        self._note_post(platform, account_id)
        self.metrics.posts.labels(platform).inc()
        self._journal({"event": "post", "key": entry.key, "fingerprint": list(entry.fingerprint), "body": out})
        if self.timeout_next > 0:
            self.timeout_next -= 1
            self.metrics.faults.labels("timeout").inc()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.release.wait(), timeout=self.faults.timeout_sleep_s)
        return entry

    def _replies_to(self, platform: str, comment_id: str) -> list[_Entry]:
        return [e for e in self.order if e.body["platform"] == platform and e.body["comment_id"] == comment_id]

    async def admin_credentials(self, request: Request) -> Response:
        try:
            data = json.loads(await request.body() or b"{}")
            if data.get("platform") == "youtube":
                yt = YouTubeCredentials.model_validate(data)
                self.refresh_tokens[yt.refresh_token] = ((yt.client_id, yt.client_secret), yt.account_id)
            else:
                ig = InstagramCredentials.model_validate(data)
                self.access_tokens[ig.access_token] = ("instagram", ig.account_id, None)
        except ValueError as exc:
            msg = _validation_message(exc) if isinstance(exc, ValidationError) else "body is not valid JSON"
            return _error(400, f"invalid credentials: {msg}")
        return JSONResponse({"status": "ok"})

    async def oauth_token(self, request: Request) -> Response:
        """Google's OAuth 2.0 token endpoint, refresh-token grant only."""
        form = dict(parse_qsl((await request.body()).decode()))
        if form.get("grant_type") != "refresh_token":
            return JSONResponse({"error": "unsupported_grant_type"}, status_code=400)
        known = self.refresh_tokens.get(form.get("refresh_token", ""))
        if known is None:
            return JSONResponse({"error": "invalid_grant", "error_description": "Token has been expired or revoked."},
                                status_code=400)
        client, account = known
        if (form.get("client_id"), form.get("client_secret")) != client:
            return JSONResponse({"error": "invalid_client", "error_description": "Unauthorized"}, status_code=401)
        token = "ya29." + "".join(self.rng.choices("abcdefghijklmnopqrstuvwxyz0123456789", k=24))
        ttl = self.faults.access_token_ttl_s
        self.access_tokens[token] = ("youtube", account, time.monotonic() + ttl)
        return JSONResponse({"access_token": token, "expires_in": int(ttl), "token_type": "Bearer",
                             "scope": "https://www.googleapis.com/auth/youtube.force-ssl"})

    @staticmethod
    def _google_error(status: int, kind: str, message: str) -> JSONResponse:
        reason = {"backend": "backendError", "rate_limit": "rateLimitExceeded",
                  "gone": "parentCommentNotFound"}.get(kind, kind)  # gone: the comment replied to
        status = 403 if kind == "rate_limit" else status  # YouTube reports its limits as 403
        return JSONResponse({"error": {"code": status, "message": message,
                                       "errors": [{"reason": reason, "message": message}]}}, status_code=status)

    def _youtube_account(self, request: Request) -> str | None:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        return self._account_for("youtube", token.strip()) if scheme.lower() == "bearer" else None

    @staticmethod
    def _youtube_comment(entry: _Entry) -> dict[str, Any]:
        body = entry.body
        return {"kind": "youtube#comment", "id": body["platform_reply_id"],
                "snippet": {"parentId": body["comment_id"], "textOriginal": body["text"], "textDisplay": body["text"],
                            "authorChannelId": {"value": body["account_id"]}, "publishedAt": body["created_at"]}}

    async def youtube_comments(self, request: Request) -> Response:
        """comments.insert (POST) and comments.list by parentId (GET) of the YouTube Data API v3."""
        response = await self._youtube_comments(request)
        self.metrics.requests.labels("youtube", str(response.status_code)).inc()
        return response

    def _youtube_refusal(self, request: Request) -> Response | None:
        """Google's answer to a call without a valid access token, or while the quota is spent."""
        if self._youtube_account(request) is None:
            return self._google_error(401, "authError", "Request had invalid authentication credentials.")
        if self.faults.youtube_quota_exceeded:
            return self._google_error(403, "quotaExceeded", "The request cannot be completed because you have "
                                      "exceeded your quota.")
        return None

    async def _youtube_comments(self, request: Request) -> Response:
        refusal = self._youtube_refusal(request)
        if refusal is not None:
            return refusal
        account = self._youtube_account(request)
        assert account is not None
        if request.query_params.get("part") != "snippet":
            return self._google_error(400, "invalidPart", "The 'part' parameter must be 'snippet'.")
        if request.method == "GET":
            parent = request.query_params.get("parentId", "")
            if not parent:
                return self._google_error(400, "missingRequiredParameter", "No filter selected: give parentId.")
            if ("youtube", parent) in self.deleted:
                return self._google_error(404, "commentNotFound", f"The comment {parent} was not found.")
            try:
                size = int(request.query_params.get("maxResults", 20))
                start = int(request.query_params.get("pageToken") or 0)
            except ValueError:
                return self._google_error(400, "invalidPageToken", "Invalid maxResults or pageToken.")
            replies = self._youtube_replies(parent)
            page = replies[start:start + max(1, min(size, 100))]
            out: dict[str, Any] = {"kind": "youtube#commentListResponse", "items": page}
            if start + len(page) < len(replies):
                out["nextPageToken"] = str(start + len(page))
            return JSONResponse(out)
        try:
            snippet = json.loads(await request.body())["snippet"]
            parent, text = snippet["parentId"], snippet["textOriginal"]
            if not (isinstance(parent, str) and parent and isinstance(text, str) and text):
                raise ValueError
        except (ValueError, KeyError, TypeError):
            return self._google_error(400, "invalidValue", "snippet.parentId and snippet.textOriginal are required.")
        result = await self._record_native("youtube", parent, account, text, self._google_error)
        return result if isinstance(result, Response) else JSONResponse(self._youtube_comment(result))

    def _youtube_replies(self, thread_id: str) -> list[dict[str, Any]]:
        """The replies under a YouTube thread, viewers' and posted ones, oldest first."""
        replies = [self._viewer_comment(c) for c in self.viewer_comments
                   if c.parent_id == thread_id and ("youtube", c.comment_id) not in self.deleted]
        replies += [self._youtube_comment(e) for e in self._replies_to("youtube", thread_id)]
        return sorted(replies, key=lambda r: datetime.fromisoformat(r["snippet"]["publishedAt"]))

    @staticmethod
    def _viewer_comment(comment: ViewerComment) -> dict[str, Any]:
        published = comment.published_at.isoformat().replace("+00:00", "Z")
        return {"kind": "youtube#comment", "id": comment.comment_id, "snippet": {
            "channelId": comment.channel_id, "videoId": comment.video_id, "textDisplay": comment.text,
            "textOriginal": comment.text, "authorDisplayName": comment.author_name,
            "authorChannelId": {"value": comment.author_channel_id}, "publishedAt": published, "updatedAt": published,
            **({"parentId": comment.parent_id} if comment.parent_id else {})}}

    async def youtube_comment_threads(self, request: Request) -> Response:
        """commentThreads.list by allThreadsRelatedToChannelId (order=time) of the YouTube Data API v3."""
        response = await self._youtube_comment_threads(request)
        self.metrics.requests.labels("youtube", str(response.status_code)).inc()
        return response

    async def _youtube_comment_threads(self, request: Request) -> Response:
        refusal = self._youtube_refusal(request)
        if refusal is not None:
            return refusal
        q = request.query_params
        if "snippet" not in q.get("part", "").split(","):
            return self._google_error(400, "invalidPart", "The 'part' parameter must include 'snippet'.")
        channel = q.get("allThreadsRelatedToChannelId", "")
        if not channel:
            return self._google_error(400, "missingRequiredParameter", "No filter selected: give "
                                      "allThreadsRelatedToChannelId.")
        try:
            size = max(1, min(int(q.get("maxResults", 20)), 100))
            start = int(q.get("pageToken") or 0)
        except ValueError:
            return self._google_error(400, "invalidPageToken", "Invalid maxResults or pageToken.")
        ours = [c for c in self.viewer_comments if c.channel_id == channel and ("youtube", c.comment_id) not in
                self.deleted]
        tops = sorted((c for c in ours if c.parent_id is None), key=lambda c: (c.published_at, c.comment_id),
                      reverse=True)
        page = tops[start:start + size]
        items = []
        for top in page:
            replies = self._youtube_replies(top.comment_id)
            thread: dict[str, Any] = {"kind": "youtube#commentThread", "id": top.comment_id, "snippet": {
                "channelId": channel, "videoId": top.video_id, "topLevelComment": self._viewer_comment(top),
                "totalReplyCount": len(replies), "canReply": True, "isPublic": True}}
            if "replies" in q.get("part", "").split(",") and replies:
                thread["replies"] = {"comments": replies[:THREAD_REPLIES_LISTED]}
            items.append(thread)
        out: dict[str, Any] = {"kind": "youtube#commentThreadListResponse", "items": items,
                               "pageInfo": {"totalResults": len(tops), "resultsPerPage": size}}
        if start + len(page) < len(tops):
            out["nextPageToken"] = str(start + len(page))
        return JSONResponse(out)

    async def admin_youtube_comments(self, request: Request) -> Response:
        try:
            data = json.loads(await request.body() or b"[]")
            comments = [ViewerComment.model_validate(c) for c in (data if isinstance(data, list) else [data])]
        except ValueError as exc:
            msg = _validation_message(exc) if isinstance(exc, ValidationError) else "body is not valid JSON"
            return _error(400, f"invalid comments: {msg}")
        self.viewer_comments += comments
        return JSONResponse({"added": len(comments)})

    @staticmethod
    def _graph_error(status: int, kind: str, message: str) -> JSONResponse:
        code = {"backend": 2, "rate_limit": 4, "token": 190}.get(kind, 100)
        error: dict[str, Any] = {"message": message, "type": "OAuthException" if code == 190 else
                                 "GraphMethodException", "code": code}
        if kind == "gone":  # what Graph answers about a deleted comment
            error |= {"error_subcode": 33, "message": "Unsupported request. Object does not exist, cannot be loaded "
                      f"due to missing permissions, or does not support this operation ({message})"}
        return JSONResponse({"error": error}, status_code=400 if kind in {"rate_limit", "token", "gone"} else status)

    async def instagram_replies(self, request: Request) -> Response:
        """POST and GET /{version}/{ig-comment-id}/replies of the Instagram Graph API."""
        response = await self._instagram_replies(request)
        self.metrics.requests.labels("instagram", str(response.status_code)).inc()
        return response

    async def _instagram_replies(self, request: Request) -> Response:
        comment_id = request.path_params["comment_id"]
        params = {**request.query_params, **dict(parse_qsl((await request.body()).decode()))}
        account = self._account_for("instagram", params.get("access_token", ""))
        if account is None:
            return self._graph_error(400, "token", "Invalid OAuth access token - Cannot parse access token")
        if request.method == "GET":
            if ("instagram", comment_id) in self.deleted:
                return self._graph_error(400, "gone", f"The comment {comment_id} was deleted.")
            try:
                size = max(1, min(int(params.get("limit", 25)), 100))
                start = int(params.get("after") or 0)
            except ValueError:
                return self._graph_error(400, "param", "(#100) Invalid limit or after")
            replies = self._replies_to("instagram", comment_id)
            page = replies[start:start + size]
            data = [{"id": e.body["platform_reply_id"], "text": e.body["text"], "timestamp": e.body["created_at"],
                     "from": {"id": e.body["account_id"], "username": e.body["account_id"]}} for e in page]
            out: dict[str, Any] = {"data": data, "paging": {"cursors": {"before": str(start),
                                                                        "after": str(start + len(page))}}}
            if start + len(page) < len(replies):
                out["paging"]["next"] = str(request.url.include_query_params(after=start + len(page)))
            return JSONResponse(out)
        message = params.get("message", "")
        if not message:
            return self._graph_error(400, "param", "(#100) The parameter message is required")
        result = await self._record_native("instagram", comment_id, account, message, self._graph_error)
        return result if isinstance(result, Response) else JSONResponse({"id": result.body["platform_reply_id"]})

    async def admin_deleted(self, request: Request) -> Response:
        try:
            deleted = DeletedComment.model_validate(json.loads(await request.body() or b"{}"))
        except ValueError as exc:
            msg = _validation_message(exc) if isinstance(exc, ValidationError) else "body is not valid JSON"
            return _error(400, f"invalid deletion: {msg}")
        if deleted.platform not in PLATFORMS:
            return _error(400, f"unknown platform {deleted.platform!r}; expected one of {', '.join(PLATFORMS)}")
        self.deleted.add((deleted.platform, deleted.comment_id))
        return JSONResponse({"status": "ok"})

    async def list_posts(self, request: Request) -> Response:
        q = request.query_params
        filters = {name: q[name] for name in ("platform", "comment_id", "account_id") if q.get(name)}
        selected = [e for e in self.order if all(e.body[k] == v for k, v in filters.items())]
        posts = [{**e.body, "idempotency_key": e.key} for e in selected]
        return JSONResponse(
            {
                "posts": posts,
                "duplicates_rejected": sum(e.replays for e in selected),
                "conflicts_rejected": self.conflicts_rejected,
            }
        )

    async def healthz(self, request: Request) -> Response:
        return JSONResponse({"status": "ok", "posts": len(self.order)})

    async def metrics_endpoint(self, request: Request) -> Response:
        return Response(generate_latest(self.metrics.registry), media_type=CONTENT_TYPE_LATEST)

    async def admin_faults(self, request: Request) -> Response:
        if request.method == "GET":
            return JSONResponse(self.faults_view())
        try:
            update = FaultsUpdate.model_validate(json.loads(await request.body() or b"{}"))
        except ValueError as exc:  # JSON and pydantic errors
            msg = _validation_message(exc) if isinstance(exc, ValidationError) else "body is not valid JSON"
            return _error(400, f"invalid faults: {msg}")
        changes = update.model_dump(exclude_none=True)
        if "fail_next" in changes:
            self.fail_next = changes.pop("fail_next")
        if "timeout_next" in changes:
            self.timeout_next = changes.pop("timeout_next")
        self.faults = replace(self.faults, **changes)
        log.info("faults now %s", self.faults_view())
        return JSONResponse(self.faults_view())

    async def admin_reset(self, request: Request) -> Response:
        self.reset()
        return JSONResponse({"status": "reset"})


def create_app(config: SimulatorConfig | None = None) -> Starlette:
    """Build the ASGI app; state lives on ``app.state.simulator``."""
    sim = PlatformSimulator(config or SimulatorConfig())
    app = Starlette(
        routes=[
            Route("/v1/{platform}/comments/{comment_id}/replies", sim.create_reply, methods=["POST"]),
            Route("/v1/posts", sim.list_posts, methods=["GET"]),
            Route("/youtube/v3/comments", sim.youtube_comments, methods=["GET", "POST"]),
            Route("/youtube/v3/commentThreads", sim.youtube_comment_threads, methods=["GET"]),
            Route("/admin/youtube/comments", sim.admin_youtube_comments, methods=["POST"]),
            Route("/token", sim.oauth_token, methods=["POST"]),
            Route("/{version}/{comment_id}/replies", sim.instagram_replies, methods=["GET", "POST"]),
            Route("/admin/credentials", sim.admin_credentials, methods=["POST"]),
            Route("/admin/deleted", sim.admin_deleted, methods=["POST"]),
            Route("/healthz", sim.healthz, methods=["GET"]),
            Route("/metrics", sim.metrics_endpoint, methods=["GET"]),
            Route("/admin/faults", sim.admin_faults, methods=["GET", "POST"]),
            Route("/admin/reset", sim.admin_reset, methods=["POST"]),
        ]
    )
    app.state.simulator = sim
    return app


def serve_in_thread(
    config: SimulatorConfig | None = None, port: int = 0
) -> contextlib.AbstractContextManager[RunningSimulator]:
    """Run the simulator under uvicorn in a background thread on a loopback port (0 = a free one)."""
    return serve_app_in_thread(create_app(config), port, "platform simulator")


def _parser() -> argparse.ArgumentParser:
    description = (__doc__ or "").split("\n")[0]
    p = argparse.ArgumentParser(prog="python -m loadtest.platform_simulator", description=description)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8090)
    p.add_argument("--journal", type=Path, default=None, help="append posts here and reload them at start")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--error-rate", type=float, default=0.0, help="fraction of reply requests that fail")
    p.add_argument("--error-status", type=int, default=503)
    p.add_argument("--latency-ms", type=float, default=0.0, help="added to every reply request")
    p.add_argument("--rate-limit-per-account-per-minute", type=int, default=0, help="0 = unlimited")
    p.add_argument("--timeout-sleep-s", type=float, default=30.0, help="delay used by timeout_next")
    p.add_argument("--log-level", default="info")
    return p


def main(argv: list[str] | None = None) -> None:
    args = _parser().parse_args(argv)
    if not 0.0 <= args.error_rate <= 1.0:
        raise SystemExit("--error-rate must be between 0 and 1")
    if not 400 <= args.error_status <= 599:
        raise SystemExit("--error-status must be a 4xx or 5xx code")
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s %(message)s")
    config = SimulatorConfig(
        faults=Faults(
            error_rate=args.error_rate,
            error_status=args.error_status,
            latency_ms=args.latency_ms,
            rate_limit_per_account_per_minute=args.rate_limit_per_account_per_minute,
            timeout_sleep_s=args.timeout_sleep_s,
        ),
        journal=args.journal,
        seed=args.seed,
    )
    uvicorn.run(
        create_app(config),
        host=args.host,
        port=args.port,
        log_level=args.log_level,
        lifespan="off",
        timeout_graceful_shutdown=5,
    )


if __name__ == "__main__":
    main()
