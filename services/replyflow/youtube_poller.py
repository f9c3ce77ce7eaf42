"""YouTube poller: YouTube sends no comment webhooks, so this service lists each creator channel's newest comment
threads (``commentThreads.list``, one quota unit a page) and sends the comments it has not taken yet to
``comments.received``, like ingest does for the platforms that push.

    python -m replyflow.youtube_poller

Who polls a channel: the pollers form one consumer group on ``youtube.poll.cursors``, and the replica that owns
the partition of a channel's cursor polls it. More replicas share the channels; when one stops or dies, the group
hands its channels to the others, which go on from the cursors.

A poll reads from the cursor's newest comment minus ``YOUTUBE_POLL_OVERLAP_S`` (YouTube can list a comment late)
and leaves out what the cursor says it took, the channel's own comments (its replies, so it never answers
itself) and anything older than ``YOUTUBE_POLL_MAX_AGE_S``. The comments are published (acks=all) before the new
cursor: a crash between the two sends them again, which the pipeline absorbs (the reply id derives from the
comment id and the publisher's ledger posts it once), and loses none.

Pacing: each channel is polled every max(``YOUTUBE_POLL_MIN_INTERVAL_S``, channels × units per poll × 86,400 s /
``YOUTUBE_POLL_QUOTA_UNITS_PER_DAY``), units per poll averaged over recent polls (a page; more for busy channels),
so the pollers together keep within their share of the project's quota;
a ``quotaExceeded`` answer pauses polling until the quota resets at midnight Pacific time.

Threads come newest first by when their top comment was written. The replies of new threads are taken too
(``comments.list`` gives those a thread does not list itself). A new reply under an older thread is not among them:
finding every one would cost a call per thread and poll. The ones that matter most, viewers answering back where
replyflow answered, are found by following those threads (``replies.published``, see ``Conversations``): each poll
lists the replies of a few (``YOUTUBE_POLL_CONVERSATIONS_PER_POLL``, a unit each, one more per 100 replies of a
busy thread). A new reply under an older thread nobody answered stays unseen. Where each followed thread was listed up
to goes into the channel's cursor (``conversations``), so a replica that takes a channel over (or restarts) goes on
from there rather than taking again the answers back since replyflow's first reply in the thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import KafkaError
from aiokafka.partitioner import DefaultPartitioner
from prometheus_client import Counter as MetricCounter
from prometheus_client import Gauge
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from replyflow.events import (
    Comment,
    CreatorProfile,
    Platform,
    ReplyMode,
    ReplyPublished,
    ThreadListed,
    YouTubePollCursor,
    utc_now,
)
from replyflow.ingest import Unusable, dead_letter_records, dead_lettered, received_events
from replyflow.kafka import (
    Emit,
    GroupMembership,
    PermanentError,
    TopicTable,
    TransientError,
    parse_ignoring_unknown_fields,
)
from replyflow.platform_api import CommentGone, CredentialsFile, YouTubeClient, YouTubeQuotaExceeded
from replyflow.service import ServiceParts, build_app, json_api, serve, service_parts
from replyflow.settings import Settings
from replyflow.topics import COMMENTS_RECEIVED, REPLIES_PUBLISHED, YOUTUBE_POLL_CURSORS

SERVICE = "youtube-poller"
YOUTUBE_SOURCE = "youtube:poll"  # x-original-topic of a comment a poll could not read: it came from no topic
MAX_PAGES_PER_POLL = 20  # 2,000 threads: a poll of a channel never runs away with the quota
MAX_RECENT_IDS = 2_000  # a cursor's comment ids in the overlap window (beyond: a repeat, absorbed downstream)
# Followed threads whose listing a cursor keeps, and their reply ids in the overlap (a cursor stays well under
# Kafka's 1 MB record); beyond, a poller taking the channel over lists them again: repeats the screen leaves out.
MAX_CURSOR_CONVERSATIONS = 100
MAX_CURSOR_THREAD_IDS = 50
POLL_CONCURRENCY = 8  # channels polled at once by one replica
SWEEP_EVERY = timedelta(minutes=1)  # how often the followed threads of every creator are looked at for expiry
# How long a stop or a handover waits for the polls in hand (a poll cut short is polled again by the next owner).
POLL_DRAIN_TIMEOUT_S = 20.0
# How long the coordinator waits for a replica's handover (its polls in hand) before it drops the replica; the
# default, the 10 s session timeout, is shorter than the handover may take.
CURSOR_REBALANCE_TIMEOUT_S = POLL_DRAIN_TIMEOUT_S + 10
QUOTA_TIME_ZONE = ZoneInfo("America/Los_Angeles")  # YouTube's daily quota resets at midnight Pacific time

POLLS = MetricCounter(
    "replyflow_youtube_polls_total",
    "Polls of a channel's comment threads, by result (ok; failed: YouTube or Kafka, retried at the next poll; "
    "refused: credentials missing or revoked, or a request YouTube refuses; quota_exceeded)",
    ["result"],
)
QUOTA_UNITS = MetricCounter(
    "replyflow_youtube_quota_units_total", "YouTube API quota units the polls spent (1 per list call: "
    "commentThreads.list pages, comments.list for new threads listing only some replies and for followed threads)"
)
POLLED_COMMENTS = MetricCounter(
    "replyflow_youtube_polled_comments_total",
    "New comments the polls found, by result (accepted; own_comment: the channel's own, its replies; "
    "unreadable: not a comment replyflow can take, logged with its id)",
    ["result"],
)
CHANNELS = Gauge(
    "replyflow_youtube_channels", "Channels to poll: creators with a YouTube channel and replies not off "
    "(every poller reports all of them)"
)
CHANNELS_OWNED = Gauge(
    "replyflow_youtube_channels_owned", "Channels this poller polls (its share of the cursor topic's partitions)"
)
POLL_INTERVAL = Gauge(
    "replyflow_youtube_poll_interval_seconds", "Time between two polls of a channel, stretched to keep within "
    "YOUTUBE_POLL_QUOTA_UNITS_PER_DAY"
)
POLL_AGE = Gauge(
    "replyflow_youtube_poll_age_seconds", "Longest time since a channel this poller owns had a poll answered: "
    "one that did not fail (a refused one counts as answered: the refused alert covers it); "
    "since it took the channel over, when it has not had one yet"
)
CONVERSATIONS = Gauge(
    "replyflow_youtube_conversations", "YouTube threads replyflow answered in lately whose replies the polls list "
    "for answers back (every poller reports all of them)"
)
QUOTA_EXHAUSTED = Gauge(
    "replyflow_youtube_quota_exhausted", "1 while this poller waits for YouTube's daily quota to reset"
)
log = logging.getLogger("replyflow.youtube_poller")  # not __main__ under `python -m`


# -- what a poll decides (pure) ---------------------------------------------------------------------------------
def channels_to_poll(profiles: Iterable[CreatorProfile]) -> dict[str, str]:
    """Channel id -> creator id of every creator with a YouTube channel whose replies are not off (polling those
    would spend quota on comments that get no reply)."""
    return {p.platform_accounts[Platform.youtube]: p.creator_id for p in profiles
            if Platform.youtube in p.platform_accounts and p.mode != ReplyMode.off}


def poll_interval(channels: int, quota_units_per_day: int, min_interval_s: float, units_per_poll: float) -> float:
    """Seconds between two polls of a channel, so that all channels' polls, at ``units_per_poll`` each (one page,
    more for busy channels), keep within the quota."""
    return max(min_interval_s, channels * units_per_poll * 86_400 / quota_units_per_day)


def units_per_poll_average(average: float, units: int) -> float:
    """The quota units a poll costs, averaged over recent polls (an exponential moving average of about 20)."""
    return average + (units - average) / 20


def quota_resets_at(now: datetime) -> datetime:
    """The next midnight Pacific time, when YouTube resets the daily quota."""
    pacific = now.astimezone(QUOTA_TIME_ZONE)
    midnight = datetime.combine(pacific.date() + timedelta(days=1), datetime.min.time(), QUOTA_TIME_ZONE)
    return midnight.astimezone(UTC)


def read_window(cursor: YouTubePollCursor | None, now: datetime, overlap_s: float,
                max_age_s: float) -> tuple[datetime, frozenset[str]]:
    """The oldest publishedAt a poll takes, and the comment ids in that window already taken."""
    oldest = now - timedelta(seconds=max_age_s)
    if cursor is None or cursor.newest_published_at is None:
        return oldest, frozenset()
    return max(oldest, cursor.newest_published_at - timedelta(seconds=overlap_s)), frozenset(cursor.recent)


@functools.lru_cache(maxsize=100_000)
def cursor_partition(channel_id: str, partitions: int) -> int:
    """The partition the producer's default partitioner (murmur2) picks for a channel's cursor. Cached: every
    loop of the poller asks it for every channel, and the hash is pure Python."""
    every = list(range(partitions))
    return DefaultPartitioner()(channel_id.encode(), every, every)


def _iso(at: datetime | None) -> str | None:
    return at.isoformat() if at else None


def _published(snippet: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(snippet["publishedAt"])


def youtube_comment(resource: dict[str, Any], creator_id: str, video_id: str) -> Comment:
    """A ``youtube#comment`` resource as replyflow's comment; raises on one that cannot be."""
    snippet = resource["snippet"]
    return Comment(
        platform=Platform.youtube, comment_id=resource["id"], creator_id=creator_id,
        post_id=snippet.get("videoId") or video_id, author_id=snippet["authorChannelId"]["value"],
        author_name=snippet.get("authorDisplayName") or snippet["authorChannelId"]["value"],
        # textOriginal is only guaranteed to the comment's author; with textFormat=plainText, textDisplay is plain.
        text=snippet.get("textDisplay") or snippet["textOriginal"], created_at=_published(snippet),
        parent_id=snippet.get("parentId"),
    )


def new_comments(resources: list[dict[str, Any]], channel_id: str, creator_id: str, video_id: str, since: datetime,
                 taken: frozenset[str]) -> tuple[list[Comment], Counter[str], list[Unusable]]:
    """The ``youtube#comment`` resources to take: published at or after ``since``, not in ``taken``, not the
    channel's own (its replies, counted as ``own_comment``); and those replyflow cannot read (counted as
    ``unreadable``), as they came with where from and why, for the dead-letter topic."""
    comments: list[Comment] = []
    left_out: Counter[str] = Counter()
    unreadable: list[Unusable] = []
    for resource in resources:
        try:
            if resource["id"] in taken or _published(resource["snippet"]) < since:
                continue
            if resource["snippet"].get("authorChannelId", {}).get("value") == channel_id:
                left_out["own_comment"] += 1
                continue
            comments.append(youtube_comment(resource, creator_id, video_id))
        except (KeyError, TypeError, ValueError) as e:  # pydantic's ValidationError is a ValueError
            left_out["unreadable"] += 1
            unreadable.append(Unusable({"channel_id": channel_id, "creator_id": creator_id, "video_id": video_id,
                                        "comment": resource}, f"unreadable YouTube comment: {type(e).__name__}: {e}"))
    return comments, left_out, unreadable


def taken_ids(comments: list[Comment], unreadable: list[Unusable]) -> list[tuple[str, datetime]]:
    """(id, publishedAt) of what a poll took or dead-lettered, for the cursor: the next polls leave both out (one
    without a readable id and time cannot be told apart, and goes to the dead-letter topic at each poll)."""
    taken = [(c.comment_id, c.created_at) for c in comments]
    for item in unreadable:
        with contextlib.suppress(KeyError, TypeError, ValueError):
            resource = item.part["comment"]  # type: ignore[index]
            taken.append((str(resource["id"]), _published(resource["snippet"])))
    return taken


@dataclass
class PageRead:
    """What one ``commentThreads.list`` page gave a poll."""

    comments: list[Comment]
    left_out: Counter[str]
    unreadable: list[Unusable]
    reached_older: bool  # it holds threads older than the window: the later pages hold only older ones
    partial_threads: dict[str, str]  # thread id -> video id: new threads listing only some of their replies


def comments_in_page(items: list[dict[str, Any]], channel_id: str, creator_id: str, since: datetime,
                     taken: frozenset[str]) -> PageRead:
    """The comments of one ``commentThreads.list`` page to take (see ``new_comments``), top comments and the
    replies each thread lists with it. YouTube lists only some replies of a thread with many: those new
    threads are named, for ``comments.list`` to give the rest."""
    page = PageRead([], Counter(), [], False, {})
    for thread in items:
        snippet = thread.get("snippet", {})
        top = snippet.get("topLevelComment", {})
        listed = thread.get("replies", {}).get("comments", [])
        video_id = snippet.get("videoId") or channel_id  # a thread on the channel itself has no video
        try:
            if _published(top["snippet"]) < since:
                page.reached_older = True
            elif snippet.get("totalReplyCount", 0) > len(listed):
                page.partial_threads[thread["id"]] = video_id
        except (KeyError, TypeError, ValueError):
            pass  # an unreadable top comment is counted by new_comments
        comments, left_out, unreadable = new_comments([top, *listed], channel_id, creator_id, video_id, since, taken)
        page.comments += comments
        page.left_out += left_out
        page.unreadable += unreadable
    return page


def advanced_cursor(cursor: YouTubePollCursor | None, channel_id: str, creator_id: str,
                    taken: list[tuple[str, datetime]], polled_at: datetime, overlap_s: float,
                    conversations: dict[str, ThreadListed]) -> YouTubePollCursor:
    """The cursor after a poll took ``taken`` (id, publishedAt): the newest publishedAt so far and the ids within
    the overlap; and where its followed threads are listed up to (``conversations``)."""
    newest = max([at for _, at in taken] + ([cursor.newest_published_at] if cursor and
                                            cursor.newest_published_at else []), default=None)
    recent = {**(cursor.recent if cursor else {}), **dict(taken)}
    kept = [] if newest is None else sorted(
        ((cid, at) for cid, at in recent.items() if at >= newest - timedelta(seconds=overlap_s)), key=lambda r: r[1])
    return YouTubePollCursor(channel_id=channel_id, creator_id=creator_id, newest_published_at=newest,
                             recent=dict(kept[-MAX_RECENT_IDS:]), polled_at=polled_at, conversations=conversations)


@dataclass
class FollowedThread:
    """A YouTube thread replyflow answered in, followed for the viewers' answers back."""

    thread_id: str
    creator_id: str
    video_id: str
    first_answered_at: datetime  # replyflow's first reply there (within the follow window)
    last_answered_at: datetime
    listed_at: datetime | None = None  # when a poll last listed its replies (the poll's start)
    refused_at: datetime | None = None  # when YouTube last refused to list them (not deleted): tried, not listed
    taken: dict[str, datetime] = field(default_factory=dict)  # ids taken (or answered) there, with publishedAt

    def since(self, overlap_s: float) -> datetime:
        """The oldest publishedAt the next listing of its replies takes."""
        return (self.listed_at or self.first_answered_at) - timedelta(seconds=overlap_s)


class Conversations:
    """The threads replyflow answered in on YouTube lately (``replies.published``), per creator. A viewer who
    answers back under a thread that is no longer among the newest is not in what ``commentThreads.list`` reads,
    so each poll of a channel also lists the replies (``comments.list``, a unit per 100) of up to ``per_poll`` of its
    followed threads: those not listed since replyflow last answered there first, then those listed longest ago
    for their age, so a fresh conversation is listed at almost every poll and a day-old one seldom. A thread is
    followed for ``follow_s`` after replyflow's last reply there."""

    def __init__(self, follow_s: float, per_poll: int, overlap_s: float) -> None:
        self._follow = timedelta(seconds=follow_s)
        self._per_poll, self._overlap_s = per_poll, overlap_s
        self._threads: dict[str, dict[str, FollowedThread]] = {}  # creator -> thread id -> thread
        self._swept_at: datetime | None = None

    def __len__(self) -> int:
        return sum(len(threads) for threads in self._threads.values())

    def answered(self, published: ReplyPublished) -> None:
        comment = published.comment
        if comment.platform != Platform.youtube:
            return
        thread_id, at = comment.parent_id or comment.comment_id, published.published_at
        if self._swept_at is None or at - self._swept_at >= SWEEP_EVERY:
            self._sweep(at)
        threads = self._threads.setdefault(comment.creator_id, {})
        thread = threads.setdefault(thread_id, FollowedThread(thread_id, comment.creator_id, comment.post_id, at, at))
        thread.first_answered_at = min(thread.first_answered_at, at)
        thread.last_answered_at = max(thread.last_answered_at, at)
        thread.taken[comment.comment_id] = comment.created_at  # answered: taken before, whoever took it

    def _sweep(self, now: datetime) -> None:
        """Forget every creator's threads past the window: a replica lists only its own channels' threads, but
        reads every creator's replies."""
        self._swept_at = now
        for creator_id in list(self._threads):
            self._forget_expired(creator_id, now)

    def _forget_expired(self, creator_id: str, now: datetime) -> None:
        threads = self._threads.get(creator_id, {})
        for thread_id in [t.thread_id for t in threads.values() if t.last_answered_at < now - self._follow]:
            del threads[thread_id]
        if not threads:
            self._threads.pop(creator_id, None)

    def to_list(self, creator_id: str, now: datetime) -> list[FollowedThread]:
        """The creator's followed threads whose replies this poll lists, most due first."""
        self._forget_expired(creator_id, now)
        threads = self._threads.get(creator_id, {})

        def due(thread: FollowedThread) -> float:  # 1: not tried since answered; else time untried / age
            # A refusal counts as a try: a thread refused at every poll must not take a slot at every poll.
            tried = max((at for at in (thread.listed_at, thread.refused_at) if at is not None), default=None)
            if tried is None or tried < thread.last_answered_at:
                return 1.0
            return (now - tried) / max(now - thread.last_answered_at, timedelta(seconds=1))

        return sorted(threads.values(), key=due, reverse=True)[:self._per_poll]

    def listed(self, threads: list[FollowedThread], polled_at: datetime, taken: list[Comment]) -> None:
        """After a poll's comments are sent: ``threads`` were listed at ``polled_at`` and ``taken`` (from them or
        from the new threads) are not taken again."""
        for thread in threads:
            thread.listed_at = polled_at
        for comment in taken:
            thread = self._threads.get(comment.creator_id, {}).get(comment.parent_id or "")
            if thread is not None:
                thread.taken[comment.comment_id] = comment.created_at
        for thread in threads:  # what a next listing cannot read again
            since = thread.since(self._overlap_s)
            thread.taken = {cid: at for cid, at in thread.taken.items() if at >= since}

    def forget(self, thread: FollowedThread) -> None:
        self._threads.get(thread.creator_id, {}).pop(thread.thread_id, None)

    def positions(self, creator_id: str) -> dict[str, ThreadListed]:
        """Where the creator's followed threads are listed up to, for the channel's cursor (the latest listed
        first, as many as a cursor holds)."""
        listed = sorted(((at, t) for t in self._threads.get(creator_id, {}).values() if (at := t.listed_at)),
                        key=lambda pair: pair[0], reverse=True)[:MAX_CURSOR_CONVERSATIONS]
        return {t.thread_id: ThreadListed(listed_at=at, taken=dict(sorted(t.taken.items(), key=lambda i: i[1])
                                                                   [-MAX_CURSOR_THREAD_IDS:]))
                for at, t in listed}

    def resume(self, creator_id: str, positions: dict[str, ThreadListed]) -> None:
        """Go on from where the channel's cursor says its threads were listed (written by whichever poller had the
        channel before), rather than from replyflow's first reply in each."""
        threads = self._threads.get(creator_id, {})
        for thread_id, position in positions.items():
            thread = threads.get(thread_id)
            if thread is not None and (thread.listed_at is None or thread.listed_at < position.listed_at):
                thread.listed_at = position.listed_at
                thread.taken |= position.taken


# -- who polls what ---------------------------------------------------------------------------------------------
class _Handover(ConsumerRebalanceListener):
    def __init__(self, cursors: ChannelCursors) -> None:
        self._cursors = cursors

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        self._cursors.membership.revoked()
        await self._cursors.hand_over(revoked)

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        self._cursors.membership.assigned(assigned)
        await self._cursors.take_over(assigned)


class ChannelCursors:
    """The channels this replica polls, and how far each was read. The pollers' consumer group shares out the
    cursor topic's partitions; a channel belongs to the owner of the partition its cursor is written to (what
    the producer's default partitioner picks for the channel id). An owner reads its partitions from the start
    and polls their channels only once it has read them to the end; a replica giving partitions up first lets
    its polls in hand finish, so their cursors are written before the next owner reads."""

    def __init__(self, settings: Settings, polls_in_hand: Callable[[], Awaitable[None]]) -> None:
        group = settings.group_id(SERVICE)
        self._options = {"bootstrap_servers": settings.kafka_bootstrap_servers, "group_id": group,
                         "enable_auto_commit": False, "client_id": f"replyflow-{SERVICE}",
                         "rebalance_timeout_ms": int(CURSOR_REBALANCE_TIMEOUT_S * 1000)}
        self.membership = GroupMembership(group, YOUTUBE_POLL_CURSORS.name, CURSOR_REBALANCE_TIMEOUT_S)
        self._polls_in_hand = polls_in_hand
        self._consumer: AIOKafkaConsumer | None = None
        self._task: asyncio.Task | None = None
        self._reading: dict[TopicPartition, int | None] = {}  # taken over, not read to the end yet (end offset)
        self._owned: set[int] = set()  # partitions read to the end: their channels are polled here
        self._cursors: dict[str, YouTubePollCursor] = {}

    async def start(self) -> None:
        self._consumer = AIOKafkaConsumer(**self._options)
        self._consumer.subscribe([YOUTUBE_POLL_CURSORS.name], listener=_Handover(self))
        await self._consumer.start()
        self._task = asyncio.create_task(self._read(), name="youtube-poller-cursors")

    async def take_over(self, assigned: set[TopicPartition]) -> None:
        assert self._consumer is not None
        if assigned:
            await self._consumer.seek_to_beginning(*assigned)  # nothing committed: the whole partition, every time
        for tp in assigned:
            self._reading[tp] = None

    async def hand_over(self, revoked: set[TopicPartition]) -> None:
        partitions = {tp.partition for tp in revoked}
        self._owned -= partitions  # no new polls of these channels here
        for tp in revoked:
            self._reading.pop(tp, None)
        await self._polls_in_hand()
        self._cursors = {c: cursor for c, cursor in self._cursors.items() if self._partition(c) not in partitions}

    async def _read(self) -> None:
        consumer = self._consumer
        assert consumer is not None
        while True:
            try:
                batches = await consumer.getmany(timeout_ms=500)  # a group member must poll
                for records in batches.values():
                    for record in records:
                        self._apply(record.value)
                await self._catch_up(consumer)  # after applying: owned means its cursors are read
            except KafkaError as e:  # the broker away, say: the consumer reconnects; keep reading
                log.warning("reading youtube.poll.cursors failed; retrying", extra={"fields": {"error": repr(e)}})
                await asyncio.sleep(1.0)

    def _apply(self, value: bytes | None) -> None:
        if value is None:
            return
        try:
            cursor = parse_ignoring_unknown_fields(YouTubePollCursor, value)
        except ValueError:  # pydantic's ValidationError too; the channel is read from the cursor before it
            log.exception("ignoring an unreadable cursor on %s", YOUTUBE_POLL_CURSORS.name)
            return
        self._cursors[cursor.channel_id] = cursor

    async def _catch_up(self, consumer: AIOKafkaConsumer) -> None:
        """Own the partitions taken over once they are read to the end. A rebalance can revoke one meanwhile
        (each await gives it the chance): only partitions still being read count."""
        unknown_end = [tp for tp, end in self._reading.items() if end is None]
        if unknown_end:
            ends = await consumer.end_offsets(unknown_end)
            for tp in unknown_end:
                if tp in self._reading:
                    self._reading[tp] = ends[tp]
        for tp, end in list(self._reading.items()):
            if end is None or tp not in consumer.assignment():
                continue
            position = await consumer.position(tp)
            if self._reading.get(tp) == end and position >= end:
                del self._reading[tp]
                self._owned.add(tp.partition)

    def _partition(self, channel_id: str) -> int:
        assert self._consumer is not None
        return cursor_partition(channel_id, len(self._consumer.partitions_for_topic(YOUTUBE_POLL_CURSORS.name) or ()))

    def owns(self, channel_id: str) -> bool:
        return bool(self._owned) and self._partition(channel_id) in self._owned

    def get(self, channel_id: str) -> YouTubePollCursor | None:
        return self._cursors.get(channel_id)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._consumer is not None:
            await self._consumer.stop()  # leaves the group: the others take the channels over at once


# -- the polling loop -------------------------------------------------------------------------------------------
class YouTubePoller:
    def __init__(self, parts: ServiceParts, youtube: YouTubeClient) -> None:
        self._parts, self._settings, self._youtube = parts, parts.settings, youtube
        self.conversations = Conversations(self._settings.youtube_poll_conversation_s,
                                           self._settings.youtube_poll_conversations_per_poll,
                                           self._settings.youtube_poll_overlap_s)
        self.cursors = ChannelCursors(parts.settings, self._polls_in_hand)
        parts.memberships.append(self.cursors.membership)
        self._written: dict[str, YouTubePollCursor] = {}  # cursors this replica wrote, until it reads them back
        self._due: dict[str, float] = {}  # owned channel -> when to poll it next (monotonic)
        self._last_answered: dict[str, float] = {}  # owned channel -> last poll that did not fail (or takeover)
        self._creator_of: dict[str, str] = {}  # owned channel -> its creator
        self._last_poll: dict[str, tuple[str, str | None, datetime]] = {}  # owned channel -> (result, error, when)
        self._quota_resets_at: datetime | None = None
        self._units_per_poll = 1.0  # what this replica's polls cost on average (its channels stand for all)
        self._batch: asyncio.Future | None = None  # the polls in hand
        self._stopping = asyncio.Event()
        self._task: asyncio.Task | None = None
        POLL_AGE.set_function(lambda: max((time.monotonic() - t for t in self._last_answered.values()), default=0.0))
        QUOTA_EXHAUSTED.set_function(lambda: 1.0 if self._quota_resets_at else 0.0)
        CONVERSATIONS.set_function(lambda: len(self.conversations))

    async def start(self) -> None:
        await self.cursors.start()
        self._task = asyncio.create_task(self._run(), name="youtube-poller")

    async def stop(self) -> None:
        """Let the polls in hand finish (their comments and cursors published), then leave the group."""
        self._stopping.set()
        if self._task is not None:
            try:
                await asyncio.wait_for(self._task, POLL_DRAIN_TIMEOUT_S)
            except TimeoutError:
                log.warning("polls still in hand at shutdown were cut short; the next owner polls them again")
        await self.cursors.stop()

    async def _polls_in_hand(self) -> None:
        if self._batch is not None:
            with contextlib.suppress(TimeoutError):  # the rebalance must go on; the next owner polls again
                await asyncio.wait_for(asyncio.shield(self._batch), POLL_DRAIN_TIMEOUT_S)

    async def _run(self) -> None:
        while not self._stopping.is_set():
            due = self._due_channels()
            if due:
                self._batch = asyncio.gather(*(self._poll(channel, creator, interval)
                                               for channel, creator, interval in due), return_exceptions=True)
                for failure in await self._batch:
                    if isinstance(failure, BaseException):
                        log.error("YouTube poll crashed", exc_info=failure)
                self._batch = None
            else:
                with contextlib.suppress(TimeoutError):  # wakes for new channels, a new owner, the quota, a stop
                    await asyncio.wait_for(self._stopping.wait(), 0.5)

    def _due_channels(self) -> list[tuple[str, str, float]]:
        channels = channels_to_poll(self._parts.profiles.rows())
        interval = poll_interval(len(channels), self._settings.youtube_poll_quota_units_per_day,
                                 self._settings.youtube_poll_min_interval_s, self._units_per_poll)
        owned = {c: creator for c, creator in channels.items() if self.cursors.owns(c)}
        CHANNELS.set(len(channels))
        CHANNELS_OWNED.set(len(owned))
        POLL_INTERVAL.set(interval)
        now = time.monotonic()
        for channel in set(self._due) - set(owned):  # no longer ours, or no longer polled
            del self._due[channel], self._last_answered[channel]
            self._last_poll.pop(channel, None)
        self._creator_of = owned
        for channel in owned:
            self._due.setdefault(channel, now)
            self._last_answered.setdefault(channel, now)
        if self._quota_resets_at is not None:
            if utc_now() < self._quota_resets_at:
                return []
            self._quota_resets_at = None
        due = sorted((c for c in owned if self._due[c] <= now), key=self._due.__getitem__)
        return [(c, owned[c], interval) for c in due[:POLL_CONCURRENCY]]

    def _note(self, channel_id: str, result: str, error: str | None) -> None:
        if channel_id in self._due:  # still owned
            self._last_poll[channel_id] = (result, error and error[:500], utc_now())

    def _answered(self, channel_id: str) -> None:
        if channel_id in self._last_answered:  # still owned
            self._last_answered[channel_id] = time.monotonic()

    def channels_report(self) -> dict[str, Any]:
        """``GET /v1/channels``: the channels this replica polls, longest without an answered poll first."""
        now = time.monotonic()
        channels = []
        for channel, creator in self._creator_of.items():  # the channels of self._due, with their creators
            result, error, polled_at = self._last_poll.get(channel, (None, None, None))
            cursor = self._cursor(channel)
            channels.append({
                "channel_id": channel, "creator_id": creator, "last_result": result, "last_error": error,
                "last_polled_at": _iso(polled_at),
                "seconds_since_answered_poll": round(now - self._last_answered[channel], 1),
                "next_poll_in_s": round(max(0.0, self._due[channel] - now), 1),
                "newest_comment_at": _iso(cursor.newest_published_at if cursor else None),
            })
        channels.sort(key=lambda c: -c["seconds_since_answered_poll"])
        return {"owned": len(channels), "quota_paused_until": _iso(self._quota_resets_at), "channels": channels}

    def _cursor(self, channel_id: str) -> YouTubePollCursor | None:
        found = [c for c in (self.cursors.get(channel_id), self._written.get(channel_id)) if c is not None]
        return max(found, key=lambda c: c.polled_at, default=None)

    async def _poll(self, channel_id: str, creator_id: str, interval: float) -> None:
        self._due[channel_id] = time.monotonic() + interval
        started = utc_now()
        cursor = self._cursor(channel_id)
        since, taken = read_window(cursor, started, self._settings.youtube_poll_overlap_s,
                                   self._settings.youtube_poll_max_age_s)
        fields = {"channel_id": channel_id, "creator_id": creator_id}
        if cursor is not None:
            self.conversations.resume(creator_id, cursor.conversations)
        threads = self.conversations.to_list(creator_id, started)
        try:
            found, left_out, unreadable, units = await self._new_comments(channel_id, creator_id, since, taken,
                                                                          threads)
        except YouTubeQuotaExceeded as e:
            self._quota_resets_at = quota_resets_at(utc_now())
            POLLS.labels("quota_exceeded").inc()
            self._note(channel_id, "quota_exceeded", str(e))
            log.warning("YouTube quota spent: polling paused until it resets", extra={"fields": {
                **fields, "until": self._quota_resets_at.isoformat(), "error": str(e)}})
            return
        except PermanentError as e:
            POLLS.labels("refused").inc()
            self._note(channel_id, "refused", str(e))
            self._answered(channel_id)  # not stale: ReplyflowYouTubePollsRefused is the alert for it
            log.warning("YouTube poll refused", extra={"fields": {**fields, "error": str(e)}})
            return
        except TransientError as e:
            POLLS.labels("failed").inc()
            self._note(channel_id, "failed", str(e))
            log.warning("YouTube poll failed; retried at the next poll", extra={"fields": {**fields, "error": str(e)}})
            return
        took = taken_ids(found, unreadable)
        if took or threads:
            found.sort(key=lambda c: c.created_at)
            try:
                # Comments first: a crash before the cursor sends them again rather than never.
                await self._parts.producer.publish(received_events(found))
                await self._parts.producer.send(dead_letter_records(unreadable, YOUTUBE_SOURCE))
                self.conversations.listed(threads, started, found)
                advanced = advanced_cursor(cursor, channel_id, creator_id, took, started,
                                           self._settings.youtube_poll_overlap_s,
                                           self.conversations.positions(creator_id))
                await self._parts.producer.publish([Emit(YOUTUBE_POLL_CURSORS, advanced)])
            except Exception as e:
                self._parts.health.failing(f"{type(e).__name__}: {e}")
                POLLS.labels("failed").inc()
                self._note(channel_id, "failed", f"Kafka: {type(e).__name__}: {e}")
                log.warning("polled comments not published; retried at the next poll",
                            extra={"fields": {**fields, "error": f"{type(e).__name__}: {e}"}})
                return
            self._parts.health.ok()
            self._written[channel_id] = advanced
            dead_lettered(SERVICE, YOUTUBE_SOURCE, unreadable)
        POLLS.labels("ok").inc()
        self._note(channel_id, "ok", None)
        self._units_per_poll = units_per_poll_average(self._units_per_poll, units)
        POLLED_COMMENTS.labels("accepted").inc(len(found))
        for result, n in left_out.items():
            POLLED_COMMENTS.labels(result).inc(n)
        self._answered(channel_id)

    async def _new_comments(self, channel_id: str, creator_id: str, since: datetime, taken: frozenset[str],
                            threads: list[FollowedThread]) -> tuple[list[Comment], Counter[str], list[Unusable], int]:
        """The comments to take (from the new threads, then from the followed ``threads``), what was left out, what
        cannot be read, and the quota units the calls cost. A followed thread that could not be listed is taken out of
        ``threads``, which then holds the ones listed."""
        params = {"part": "snippet,replies", "allThreadsRelatedToChannelId": channel_id, "order": "time",
                  "maxResults": "100", "textFormat": "plainText"}
        found: list[Comment] = []
        left_out: Counter[str] = Counter()
        unreadable: list[Unusable] = []
        partial_threads: dict[str, str] = {}
        units = 0
        for _ in range(MAX_PAGES_PER_POLL):
            units += 1
            page = await self._list(channel_id, "/youtube/v3/commentThreads", params)
            read = comments_in_page(page.get("items", []), channel_id, creator_id, since, taken)
            found += read.comments
            left_out += read.left_out
            unreadable += read.unreadable
            partial_threads |= read.partial_threads
            if read.reached_older or not page.get("nextPageToken"):
                break
            params = {**params, "pageToken": page["nextPageToken"]}
        else:
            log.warning("more new comment threads than one poll reads; the oldest are left for good",
                        extra={"fields": {"channel_id": channel_id, "pages": MAX_PAGES_PER_POLL}})
        for thread_id, video_id in partial_threads.items():
            replies, calls = await self._thread_replies(channel_id, thread_id)
            units += calls
            comments, out, bad = new_comments(replies, channel_id, creator_id, video_id, since,
                                              taken | {c.comment_id for c in found})
            found += comments
            left_out += out
            unreadable += bad
        for thread in list(threads):  # either way below, the rest of the poll goes on
            try:
                replies, calls = await self._thread_replies(channel_id, thread.thread_id)
            except CommentGone as e:  # deleted or made private: routine, and nothing more can come from it
                units += 1  # at least: the pages read before the refusal are not known here (QUOTA_UNITS has them)
                threads.remove(thread)
                self.conversations.forget(thread)
                log.info("a followed YouTube thread is gone; no longer followed", extra={"fields": {
                    "channel_id": channel_id, "thread_id": thread.thread_id, "error": str(e)}})
                continue
            except PermanentError as e:  # a grant revoked mid-poll, say: the thread may come back once it is fixed
                units += 1
                threads.remove(thread)  # not listed: its next listing reads from the last one that was
                thread.refused_at = datetime.now(UTC)
                log.warning("a followed YouTube thread cannot be listed; still followed", extra={"fields": {
                    "channel_id": channel_id, "thread_id": thread.thread_id, "error": str(e)}})
                continue
            units += calls
            comments, out, bad = new_comments(replies, channel_id, creator_id, thread.video_id,
                                              thread.since(self._settings.youtube_poll_overlap_s),
                                              taken | thread.taken.keys() | {c.comment_id for c in found})
            found += comments
            left_out += out
            unreadable += bad
        return found, left_out, unreadable, units

    async def _thread_replies(self, channel_id: str, thread_id: str) -> tuple[list[dict[str, Any]], int]:
        """All replies of a thread (``comments.list`` pages), and the calls that took."""
        params = {"part": "snippet", "parentId": thread_id, "maxResults": "100", "textFormat": "plainText"}
        replies: list[dict[str, Any]] = []
        for calls in range(1, MAX_PAGES_PER_POLL + 1):
            page = await self._list(channel_id, "/youtube/v3/comments", params)
            replies += page.get("items", [])
            if not page.get("nextPageToken"):
                return replies, calls
            params = {**params, "pageToken": page["nextPageToken"]}
        return replies, MAX_PAGES_PER_POLL

    async def _list(self, channel_id: str, path: str, params: dict[str, str]) -> dict[str, Any]:
        QUOTA_UNITS.inc()  # every list call costs a unit, answered or not
        return (await self._youtube.call("GET", path, channel_id, params=params)).json()


def create_app(settings: Settings | None = None):
    settings = settings or Settings()
    if not settings.youtube_api_base_url:
        raise ValueError("the YouTube poller needs YOUTUBE_API_BASE_URL (https://www.googleapis.com)")
    parts = service_parts(SERVICE, settings, sends=[COMMENTS_RECEIVED, YOUTUBE_POLL_CURSORS])
    parts.owned_partitions.append((YOUTUBE_POLL_CURSORS, settings.group_id(SERVICE)))
    parts.dead_letters_for.append(COMMENTS_RECEIVED)  # comments it cannot read
    http = httpx.AsyncClient(timeout=settings.platform_timeout_s)
    credentials = CredentialsFile(settings.platform_credentials_file)
    parts.ready_checks.append(credentials.unusable)  # a Secret change that cannot be used
    youtube = YouTubeClient(http, settings.youtube_api_base_url, settings.youtube_token_url, credentials)
    poller = YouTubePoller(parts, youtube)
    if settings.youtube_poll_conversations_per_poll:
        parts.tables.append(TopicTable[ReplyPublished](
            settings.kafka_bootstrap_servers, REPLIES_PUBLISHED, lambda e: e.reply_id,
            since_s=settings.youtube_poll_conversation_s, keep_rows=False, on_row=poller.conversations.answered))

    async def stop_polling() -> None:
        await poller.stop()
        await http.aclose()

    async def channels(request: Request) -> JSONResponse:
        return JSONResponse(poller.channels_report())

    # Cluster-internal like /metrics: channel ids and the platforms' error messages, no comments.
    api = json_api([Route("/v1/channels", channels, methods=["GET"])])
    return build_app(parts, routes=[("/v1/channels", api)], after_startup=[poller.start], on_shutdown=[stop_polling])


def main() -> None:
    settings = Settings()
    serve(create_app(settings), settings, SERVICE)


if __name__ == "__main__":
    main()
