"""Control API: the creator approves, edits or rejects held replies and changes their profile.

    python -m replyflow.control                            # HTTP API on :8084 (plus /metrics /healthz /readyz)
    python -m replyflow.control creator-token <creator_id>  # print that creator's bearer token

It follows ``replies.review`` (held replies) and ``replies.reviewed`` (decisions; first one wins) from
the beginning, so the pending list is the same on every replica and survives restarts. A request
writes its decision to ``replies.reviewed`` (acks=all) and answers once it has read it back. The
decision's outputs (``replies.approved`` for the publisher, ``decisions`` for the audit trail) are
sent by the service's ``control-review`` stage, which consumes ``replies.reviewed`` at least once:
a crash or a Kafka outage right after the write delays them but cannot lose them.

Profile and mode changes have one writer per creator: a request writes its change to ``creators.changes`` (key
creator_id), and the ``control-profiles`` stage of the replica that owns the creator's partition applies the changes
one after the other on the profile last written (read to the end first: it may have just taken the partition over),
and saves the next version to ``creators.config`` (which every service follows within seconds: the kill switch)
with the answer to ``creators.changes.results``, where the replica that took the request finds it, in one Kafka
transaction. Each batch first claims the partition's transactional id, so the next owner fences a replica that
stalled past its session timeout: its save is aborted, never read. Two changes read
at the same version, on any replicas, cannot both be saved: the later one is stale (409); a mode change is made on
whatever is current.

Every request carries a bearer token: ``$CONTROL_API_TOKEN`` (the operator: every creator) or a
creator token derived from it (control.tokens: that creator's reviews and profile only; a few
profile fields stay the operator's). Without the setting the service does not start. Decisions and
profile versions record who made them (``decided_by``, ``updated_by``).
"""

from __future__ import annotations

import asyncio
import sys
import time
import uuid
import weakref
from collections.abc import Awaitable, Callable
from typing import TypeVar

from aiokafka import ConsumerRecord
from prometheus_client import Gauge
from pydantic import BaseModel, ValidationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from replyflow.control.review import (
    CHANGE_MAX_WAIT,
    EditCheck,
    InvalidReview,
    ModeChange,
    PendingReviews,
    Position,
    ReviewConflict,
    ReviewRequest,
    apply_change,
    decide,
    decode_cursor,
    encode_cursor,
    held_position,
    page_after,
    queue_position,
    recorded_outputs,
    review_view,
    same_decision,
    unreadable_change,
)
from replyflow.control.tokens import InvalidCreatorId, Principal, authenticate, creator_token, looks_like_creator_token
from replyflow.events import (
    Comment,
    CreatorProfile,
    ProfileChange,
    ProfileChangeResult,
    Reason,
    ReplyReviewed,
    ReplyVerdict,
    utc_now,
)
from replyflow.ingest import validation_errors
from replyflow.kafka import (
    Deferred,
    Emit,
    PartitionWriters,
    TopicTable,
    TraceHeaders,
    TransientError,
    new_traces,
    subscribe_stage,
)
from replyflow.openapi import control_openapi
from replyflow.policy.rules import PolicySource
from replyflow.policy.stages import PolicyStages
from replyflow.service import (
    ServiceParts,
    acknowledged_for_request,
    bearer_token,
    build_app,
    decode_json,
    json_api,
    json_request_body,
    serve,
    service_parts,
    unavailable,
)
from replyflow.settings import Settings
from replyflow.topics import (
    CREATORS_CHANGE_RESULTS,
    CREATORS_CHANGES,
    CREATORS_CONFIG,
    DECISIONS,
    PROFILE_WRITER_STAGE,
    REPLIES_APPROVED,
    REPLIES_REVIEW,
    REPLIES_REVIEWED,
)

MAX_BODY_BYTES = 1_000_000
DEFAULT_REVIEWS_LIMIT = 100
MAX_REVIEWS_LIMIT = 1_000
# How long a writer waits to read its own record back (read-your-writes on this replica).
READ_BACK_TIMEOUT_S = 10.0
# How long a request waits for its change's answer: the creator's writer may be taking its partition over (a
# rebalance: seconds; a replica that died: its session timeout first). Longer, the change stays queued and is made.
CHANGE_TIMEOUT_S = 15.0
# How long replicas keep the answers to changes: as long as creators.changes keeps the changes, so a change read
# again (a batch retried after a crash) is always known as answered.
CHANGE_RESULTS_KEPT_S = CREATORS_CHANGES.retention_ms / 1000  # type: ignore[operator]

# Every control pod reads every hold, so all pods report the same figures (aggregate with max, not sum).
REVIEWS_PENDING = Gauge("replyflow_reviews_pending", "Held replies waiting for the creator's decision")
REVIEWS_OLDEST_PENDING = Gauge(
    "replyflow_reviews_oldest_pending_seconds",
    "How long the longest-waiting held reply has waited for a decision (0: none waits)",
)

B = TypeVar("B", bound=BaseModel)
Handler = Callable[[Request], Awaitable[JSONResponse]]


class Unavailable(Exception):
    """Kafka did not acknowledge, a write was not read back in time, or a profile change was not answered in time
    (503: retry; repeating a decision is safe; GET a profile before sending its change again)."""


def error(status: int, message: str, details: list[dict[str, object]] | None = None, **extra: object) -> JSONResponse:
    return JSONResponse({"error": message, **({"details": details} if details else {}), **extra}, status_code=status)


def page_params(request: Request) -> tuple[int, Position | None] | JSONResponse:
    """The ``limit`` and ``after`` (a previous page's ``next``) query parameters of a listing; 422 naming the
    parameter when one is wrong."""
    query = request.query_params
    try:
        limit = int(query.get("limit", DEFAULT_REVIEWS_LIMIT))
        if not 1 <= limit <= MAX_REVIEWS_LIMIT:
            raise ValueError
    except ValueError:
        return error(422, "invalid query", [{"field": "limit", "problem": f"an integer from 1 to {MAX_REVIEWS_LIMIT}"}])
    try:
        after = decode_cursor(query["after"]) if "after" in query else None
    except ValueError as e:
        return error(422, "invalid query", [{"field": "after", "problem": str(e)}])
    return limit, after


def lock_for(locks: weakref.WeakValueDictionary[str, asyncio.Lock], key: str) -> asyncio.Lock:
    """``key``'s lock, kept while anyone holds or awaits it."""
    return locks.get(key) or locks.setdefault(key, asyncio.Lock())


class ControlApi:
    """The HTTP handlers; each parses, calls a pure function of control.review, and writes to Kafka."""

    def __init__(self, parts: ServiceParts, held: TopicTable[ReplyVerdict], pending_reviews: PendingReviews,
                 reviewed: TopicTable[ReplyReviewed], change_results: TopicTable[ProfileChangeResult], token: str,
                 check_edit: EditCheck) -> None:
        self.parts = parts
        self.profiles = parts.profiles
        self.held = held
        self.pending_reviews = pending_reviews
        self.check_edit = check_edit
        self.reviewed = reviewed
        self.change_results = change_results
        self._token = token
        # One decision at a time per reply on this replica; replicas agree through replies.reviewed.
        self._locks: weakref.WeakValueDictionary[str, asyncio.Lock] = weakref.WeakValueDictionary()

    # ------------------------------------------------------------------ plumbing

    def guarded(self, handler: Handler) -> Handler:
        """Bearer token first (401), then the creator in the path must be the caller's (403), then
        state caught up; only then the handler, with the caller in ``request.state.principal``."""
        async def guarded_handler(request: Request) -> JSONResponse:
            token = bearer_token(request)
            principal = authenticate(self._token, token) if token is not None else None
            if principal is None:
                if token is not None and looks_like_creator_token(token):
                    message = ("creator token not valid (altered, or issued before CONTROL_API_TOKEN was rotated): "
                               "ask the operator for a new one")
                else:
                    message = ("missing or wrong bearer token "
                               "(Authorization: Bearer <CONTROL_API_TOKEN or a creator token>)")
                response = error(401, message)
                response.headers["WWW-Authenticate"] = "Bearer"
                return response
            creator_id = request.path_params.get("creator_id")
            if creator_id is not None and not principal.may_access(creator_id):
                return error(403, f"this token is for creator {principal.creator_id!r}: it may not see or change "
                                  f"creator {creator_id!r}")
            request.state.principal = principal
            if not all(t.caught_up.is_set() for t in (self.profiles, self.held, self.reviewed, self.change_results)):
                return unavailable("still reading replies and profiles from Kafka; retry in a few seconds")
            try:
                return await handler(request)
            except (Unavailable, TransientError) as e:  # Kafka behind, or no usable policy file yet
                return unavailable(f"{e}; retry")
        return guarded_handler

    async def body(self, request: Request, model: type[B]) -> B | JSONResponse:
        raw = await json_request_body(request, MAX_BODY_BYTES)
        if isinstance(raw, JSONResponse):
            return raw
        if not raw.strip():
            return error(400, f"request body is empty; send a {model.__name__} JSON object")
        try:
            data = decode_json(raw)
        except ValueError as e:
            return error(400, str(e))
        if not isinstance(data, dict):
            return error(400, f"request body must be a JSON object ({model.__name__}), not {type(data).__name__}")
        try:
            return model.model_validate(data)
        except ValidationError as e:
            return error(422, f"invalid {model.__name__}", validation_errors(e))

    async def publish(self, emits: list[Emit], what: str, traces: TraceHeaders | None = None) -> None:
        if not await acknowledged_for_request(self.parts, self.parts.producer.publish(emits, traces)):
            raise Unavailable(f"{what} not saved: Kafka unavailable")

    async def publish_decision(self, decision: ReplyReviewed) -> None:
        """Write a decision in a trace of its own linked to the held reply's, not in it: a review may come days
        after the hold, and a trace days long would time the creator's wait, not the pipeline."""
        emits = [Emit(REPLIES_REVIEWED, decision)]
        held = self.held.trace_of(decision.reply_id)
        with new_traces(emits, [held] if held is not None else []) as traces:
            await self.publish(emits, "the decision", traces)

    # ------------------------------------------------------------------ reviews

    async def list_reviews(self, request: Request) -> JSONResponse:
        creator_id = request.path_params["creator_id"]
        paging = page_params(request)
        if isinstance(paging, JSONResponse):
            return paging
        pending = self.pending_reviews.of(creator_id)
        if not pending and self.profiles.get(creator_id) is None:
            return error(404, f"unknown creator {creator_id!r}")
        page, last = page_after(pending, held_position, paging[1], paging[0])
        return JSONResponse({"creator_id": creator_id, "pending": len(pending),
                             "reviews": [review_view(v) for v in page], "next": last and encode_cursor(last)})

    async def list_queues(self, request: Request) -> JSONResponse:
        """The operator's view of the review backlog: each creator's count and longest wait."""
        if request.state.principal.creator_id is not None:
            return error(403, "only the operator sees every creator's review queue; "
                              "a creator lists their own at /v1/creators/{creator_id}/reviews")
        paging = page_params(request)
        if isinstance(paging, JSONResponse):
            return paging
        queues = self.pending_reviews.queues()
        page, last = page_after(queues, queue_position, paging[1], paging[0])
        return JSONResponse({
            "pending": sum(q.pending for q in queues),
            "creators": [{"creator_id": q.creator_id, "pending": q.pending,
                          "oldest_held_at": q.oldest_held_at.isoformat()} for q in page],
            "next": last and encode_cursor(last),
        })

    async def post_review(self, request: Request) -> JSONResponse:
        reply_id = request.path_params["reply_id"]
        parsed = await self.body(request, ReviewRequest)
        if isinstance(parsed, JSONResponse):
            return parsed
        async with lock_for(self._locks, reply_id):
            return await self._review(reply_id, parsed, request.state.principal)

    async def _review(self, reply_id: str, request: ReviewRequest, principal: Principal) -> JSONResponse:
        held, previous = self.held.get(reply_id), self.reviewed.get(reply_id)
        subject = previous or held
        # Another creator's reply reads as an unknown one: a creator token does not learn which ids exist.
        if subject is None or not principal.may_access(subject.creator_id):
            return error(404, f"no held reply {reply_id!r}")
        creator_id = subject.creator_id
        try:
            decided = decide(request, held=held, previous=previous, profile=self.profiles.get(creator_id),
                             check_edit=self.check_edit,
                             by=principal.actor)
        except InvalidReview as e:
            return error(422, "invalid review", e.details)  # type: ignore[arg-type]
        except ReviewConflict as e:
            return error(409, str(e), decided=e.decided.value if e.decided else None)
        repeated = decided is previous
        if not repeated:
            decided, repeated = await self._record(decided)
            if decided is None:
                stored = self.reviewed.get(reply_id)
                assert stored is not None
                return error(409, f"reply {reply_id} was just decided otherwise by another request",
                             decided=stored.action.value)
        return JSONResponse({"reply_id": reply_id, "creator_id": creator_id, "action": decided.action.value,
                             "text": decided.text, "note": decided.note, "repeated": repeated,
                             "decided_by": decided.decided_by.value if decided.decided_by else None,
                             "decided_at": decided.occurred_at.isoformat()})

    async def _record(self, decided: ReplyReviewed) -> tuple[ReplyReviewed | None, bool]:
        """Write the decision durably and read it back; returns the decision that holds (None: a
        different one won) and whether it is a repeat of one made elsewhere."""
        await self.publish_decision(decided)
        if not await self.reviewed.wait_until(lambda: decided.reply_id in self.reviewed, READ_BACK_TIMEOUT_S):
            raise Unavailable("the decision was written but has not been read back yet")
        stored = self.reviewed.get(decided.reply_id)
        assert stored is not None
        if stored.event_id == decided.event_id:
            return stored, False
        # Another replica decided first: the first record wins everywhere. Write it again so that
        # compaction, which keeps the last record of a key, keeps the winner too.
        await self.publish_decision(stored)
        return (stored, True) if same_decision(stored, decided) else (None, False)

    # ------------------------------------------------------------------ profiles

    async def get_profile(self, request: Request) -> JSONResponse:
        creator_id = request.path_params["creator_id"]
        profile = self.profiles.get(creator_id)
        if profile is None:
            return error(404, f"unknown creator {creator_id!r}")
        return JSONResponse(profile.model_dump(mode="json"))

    async def put_profile(self, request: Request) -> JSONResponse:
        creator_id = request.path_params["creator_id"]
        wanted = await self.body(request, CreatorProfile)
        if isinstance(wanted, JSONResponse):
            return wanted
        if wanted.creator_id != creator_id:
            return error(422, "invalid CreatorProfile", [{
                "field": "creator_id",
                "problem": f"the body is for {wanted.creator_id!r} but the path names {creator_id!r}"}])
        principal: Principal = request.state.principal
        return await self._change(ProfileChange(
            change_id=str(uuid.uuid4()), creator_id=creator_id, by=principal.actor, profile=wanted,
            version_sent="version" in wanted.model_fields_set, mode=None))

    async def put_mode(self, request: Request) -> JSONResponse:
        creator_id = request.path_params["creator_id"]
        change = await self.body(request, ModeChange)
        if isinstance(change, JSONResponse):
            return change
        try:
            queued = ProfileChange(change_id=str(uuid.uuid4()), creator_id=creator_id, by=request.state.principal.actor,
                                   profile=None, version_sent=False, mode=change.mode)
        except ValidationError:  # no creator has such an id
            return error(404, f"unknown creator {creator_id!r}")
        return await self._change(queued)

    async def _change(self, change: ProfileChange) -> JSONResponse:
        """Queue ``change`` for the creator's writer and answer with what it made of it."""
        await self.publish([Emit(CREATORS_CHANGES, change)], "the change")
        if not await self.change_results.wait_until(lambda: change.change_id in self.change_results,
                                                    CHANGE_TIMEOUT_S):
            raise Unavailable(
                f"the change is queued but was not answered within {CHANGE_TIMEOUT_S:.0f} s (a control replica "
                f"taking the creator over?); it is made in its turn if that comes within "
                f"{CHANGE_MAX_WAIT.total_seconds() / 60:.0f} minutes (a kill switch however late), else dropped: "
                "GET the profile before sending it again")
        result = self.change_results.get(change.change_id)
        assert result is not None  # the table keeps a change's first answer
        if result.status == 503:
            return unavailable(result.error or "not made")
        if result.profile is None:
            return error(result.status, result.error or "not changed", list(result.details) or None)
        saved = result.profile
        # The next GET (and the next change) on this replica starts from this version; the other services
        # follow within seconds.
        if not await self.profiles.wait_until(
            lambda: (p := self.profiles.get(saved.creator_id)) is not None and p.version >= saved.version,
            READ_BACK_TIMEOUT_S,
        ):
            raise Unavailable("the profile was saved but has not been read back yet")
        return JSONResponse(saved.model_dump(mode="json"), status_code=result.status)

    def app(self) -> Starlette:
        return json_api([
            Route("/v1/creators/{creator_id}/reviews", self.guarded(self.list_reviews), methods=["GET"]),
            Route("/v1/reviews", self.guarded(self.list_queues), methods=["GET"]),
            Route("/v1/reviews/{reply_id}", self.guarded(self.post_review), methods=["POST"]),
            Route("/v1/creators/{creator_id}", self.guarded(self.get_profile), methods=["GET"]),
            Route("/v1/creators/{creator_id}", self.guarded(self.put_profile), methods=["PUT"]),
            Route("/v1/creators/{creator_id}/mode", self.guarded(self.put_mode), methods=["PUT"]),
        ])


def create_app(settings: Settings | None = None):
    settings = settings or Settings()
    if not settings.control_api_token:
        raise RuntimeError("CONTROL_API_TOKEN is not set: the control API does not run without a bearer token")
    parts = service_parts("control", settings, sends=[REPLIES_REVIEWED, REPLIES_APPROVED, DECISIONS, CREATORS_CONFIG,
                                                       CREATORS_CHANGES, CREATORS_CHANGE_RESULTS])
    bootstrap = settings.kafka_bootstrap_servers
    # keep_first: a reply's first hold keeps its held_at; a reply's first decision wins on every replica.
    held_for_s = REPLIES_REVIEW.retention_ms / 1000  # type: ignore[operator]
    pending_reviews = PendingReviews(keep_s=held_for_s)
    held = TopicTable[ReplyVerdict](bootstrap, REPLIES_REVIEW, lambda v: v.reply_id, keep_first=True,
                                    on_row=pending_reviews.add, since_s=held_for_s, keep_traces=True)

    def forget_hold(decision: ReplyReviewed) -> None:
        # A decision carries all the API and its outputs need, so only undecided holds stay in memory.
        held.forget(decision.reply_id)
        pending_reviews.discard(decision.creator_id, decision.reply_id)

    reviewed = TopicTable[ReplyReviewed](bootstrap, REPLIES_REVIEWED, lambda r: r.reply_id, keep_first=True,
                                         on_row=forget_hold)
    # Decisions are read first, so holds already decided are skipped as they are read, never stored.
    parts.tables += [reviewed, held]
    REVIEWS_PENDING.set_function(pending_reviews.count)

    def oldest_pending_seconds() -> float:
        oldest = pending_reviews.oldest_held_at()
        return 0.0 if oldest is None else max(0.0, (utc_now() - oldest).total_seconds())

    REVIEWS_OLDEST_PENDING.set_function(oldest_pending_seconds)

    async def send_outputs(records: list[ReplyReviewed]) -> list[Emit]:
        # Which record of a reply holds is what the table (read in the same order) says; wait for it.
        if not await reviewed.wait_until(lambda: all(r.reply_id in reviewed for r in records), READ_BACK_TIMEOUT_S):
            raise TransientError("replies.reviewed is not read up to these decisions yet")
        now = utc_now()
        return [emit for r in records for emit in recorded_outputs(r, reviewed.get(r.reply_id), now)]

    subscribe_stage(parts, stage="control-review", topic=REPLIES_REVIEWED, handle=send_outputs)

    # keep_first: a change answered twice (its writer died before committing) is answered as the first time.
    change_results = TopicTable[ProfileChangeResult](bootstrap, CREATORS_CHANGE_RESULTS, lambda r: r.change_id,
                                                     keep_first=True, since_s=CHANGE_RESULTS_KEPT_S)
    parts.tables.append(change_results)

    async def apply_changes(partition: int, changes: list[ProfileChange]) -> list[Emit] | Deferred:
        # This replica owns the partition, so it is its creators' one writer. It may have just taken the partition
        # over: claiming the partition first fences its previous writer (what that left open is aborted, what it
        # committed is read next), then it starts from what was written last.
        if not owns(partition):
            return Deferred([], set(range(len(changes))), "the partition is being handed over", failing=False)
        async with writers.claim(partition) as producer:
            creators = {change.creator_id for change in changes}  # both topics are keyed by creator
            for table in (parts.profiles, change_results):
                if not await table.read_to_end(READ_BACK_TIMEOUT_S, keys=creators):
                    raise TransientError(f"{table.topic.name} is not read to its end yet")
            latest: dict[str, CreatorProfile] = {}  # what this batch saved, before the table reads it back
            for i, change in enumerate(changes):
                if change.change_id in change_results:
                    continue  # answered before a crash or a rebalance: made once
                if not owns(partition):  # being handed over: the next owner goes on from here; no failure of ours
                    return Deferred([], set(range(i, len(changes))), "the partition is being handed over",
                                    failing=False)
                creator = change.creator_id
                saved, answer = apply_change(change, latest.get(creator) or parts.profiles.get(creator), utc_now())
                # One change at a time, saved and answered in one transaction: a batch retried after a crash skips
                # what was answered and makes nothing twice; a fenced writer's save is never read.
                await producer.publish([*([Emit(CREATORS_CONFIG, saved)] if saved is not None else []),
                                        Emit(CREATORS_CHANGE_RESULTS, answer)])
                if saved is not None:
                    latest[creator] = saved
        return []

    def owns(partition: int) -> bool:
        return profile_writing.partitions is not None and partition in profile_writing.partitions

    def answer_unreadable(record: ConsumerRecord, error: BaseException) -> list[Emit]:
        answer = unreadable_change(record.value, error)
        return [Emit(CREATORS_CHANGE_RESULTS, answer)] if answer is not None else []

    profile_writing = subscribe_stage(parts, stage=PROFILE_WRITER_STAGE, topic=CREATORS_CHANGES,
                                      handle_partition=apply_changes, dead_lettered_too=answer_unreadable)
    writers = PartitionWriters(settings, "control", [CREATORS_CONFIG, CREATORS_CHANGE_RESULTS],
                               profile_writing.group, profile_writing.topic)
    # An edit is held to the verify stage's content checks, under the same policy file.
    checks = PolicyStages(parts.profiles.get, PolicySource(settings.policy_file))
    parts.ready_checks.append(lambda: checks.policies.unusable(time.time()))

    def check_edit(text: str, comment: Comment, profile: CreatorProfile) -> list[Reason]:
        return checks.edit_reasons(text, comment, profile, time.time())

    api = ControlApi(parts, held, pending_reviews, reviewed, change_results, settings.control_api_token, check_edit)
    openapi = control_openapi(max_body_bytes=MAX_BODY_BYTES, default_limit=DEFAULT_REVIEWS_LIMIT,
                              max_limit=MAX_REVIEWS_LIMIT, change_timeout_s=CHANGE_TIMEOUT_S)
    return build_app(parts, api=api.app(), openapi=openapi)


USAGE = """usage: python -m replyflow.control                          run the control API
       python -m replyflow.control creator-token CREATOR_ID  print CREATOR_ID's bearer token

A creator token lets that creator (only) list and decide their held replies and change their own
profile and mode; it is derived from CONTROL_API_TOKEN (read from the environment, as the service
does), so rotating CONTROL_API_TOKEN revokes every creator token."""


def issue_creator_token(args: list[str], operator_token: str | None) -> int:
    if len(args) != 1:
        print(USAGE, file=sys.stderr)
        return 2
    if not operator_token:
        print("replyflow.control: CONTROL_API_TOKEN is not set: creator tokens are derived from it", file=sys.stderr)
        return 2
    try:
        print(creator_token(operator_token, args[0]))
    except InvalidCreatorId as e:
        print(f"replyflow.control: {e}", file=sys.stderr)
        return 2
    return 0


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args and args[0] == "creator-token":
        return issue_creator_token(args[1:], Settings().control_api_token)
    if args:
        print(USAGE, file=sys.stderr)
        return 2
    settings = Settings()
    try:
        app = create_app(settings)
    except RuntimeError as e:
        print(f"replyflow.control: {e}", file=sys.stderr)
        return 2
    serve(app, settings, "control")
    return 0
