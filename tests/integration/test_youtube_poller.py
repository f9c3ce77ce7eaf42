"""The YouTube poller as a real process against a real broker and the platform simulator's YouTube Data API:
comments on the creators' channels come into comments.received once each (all replies of a thread that lists
only some), the channel's own replies never; viewers answering back under an older thread replyflow answered in
come in too;
replicas share the channels through their consumer group and take over each other's from the cursors; a spent
quota pauses polling and a refused grant is counted."""

from __future__ import annotations

import asyncio
import json
import signal
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from loadtest.platform_simulator import SimulatorConfig, serve_in_thread
from replyflow.admin import put_profiles
from replyflow.events import (
    CommentReceived,
    CreatorProfile,
    Platform,
    ReplyMode,
    ReplyPublished,
    YouTubePollCursor,
)
from replyflow.settings import Settings
from replyflow.topics import COMMENTS_RECEIVED, REPLIES_PUBLISHED, YOUTUBE_POLL_CURSORS
from replyflow.youtube_poller import cursor_partition
from tests.helpers import TopicReader, scraped, wait_for

pytestmark = pytest.mark.kafka

CLIENT = {"client_id": "replyflow.apps.googleusercontent.com", "client_secret": "s3cret"}


def channel_ids(n: int) -> list[str]:
    """Fresh channel ids whose cursors land on partitions 0..n-1, so two pollers own some each."""
    found: dict[int, str] = {}
    while len(found) < n:
        candidate = f"UC{uuid.uuid4().hex[:22]}"
        found.setdefault(cursor_partition(candidate, YOUTUBE_POLL_CURSORS.partitions), candidate)
    return [found[p] for p in sorted(found)[:n]]


class Channels:
    """Creators with YouTube channels: their profiles on creators.config, their grants on the simulator and in
    the credentials file, and viewers' comments written on them."""

    def __init__(self, platform_url: str, credentials_path, bootstrap: str) -> None:
        self.platform_url, self.credentials_path, self.bootstrap = platform_url, credentials_path, bootstrap
        self.creator_of: dict[str, str] = {}
        self.grants: dict[str, str] = {}

    async def add(self, channels: list[str], *, granted: bool = True, mode: ReplyMode = ReplyMode.auto) -> None:
        profiles = []
        for channel in channels:
            creator = f"yt-{channel[-8:].lower()}"
            self.creator_of[channel] = creator
            profiles.append(CreatorProfile(creator_id=creator, display_name=creator, persona="A baker.", mode=mode,
                                           platform_accounts={Platform.youtube: channel}))
            if granted:
                self.grants[channel] = f"1//{channel}"
                grant = {"platform": "youtube", "account_id": channel, "refresh_token": self.grants[channel], **CLIENT}
                httpx.post(f"{self.platform_url}/admin/credentials", json=grant).raise_for_status()
        self.credentials_path.write_text(json.dumps({"youtube": {
            **CLIENT, "accounts": {c: {"refresh_token": t} for c, t in self.grants.items()}}}))
        await put_profiles(profiles, Settings(kafka_bootstrap_servers=self.bootstrap))

    def comment(self, channel: str, *, author: str = "UCviewerAnn", age: timedelta = timedelta(0),
                parent: str | None = None) -> str:
        comment_id = f"Ugz{uuid.uuid4().hex[:16]}"
        body = {"comment_id": comment_id, "channel_id": channel, "video_id": f"vid-{channel[-4:]}",
                "author_channel_id": author, "author_name": "Ann", "text": f"Lovely bread! ({comment_id})",
                "published_at": (datetime.now(UTC) - age).isoformat(), "parent_id": parent}
        httpx.post(f"{self.platform_url}/admin/youtube/comments", json=[body]).raise_for_status()
        return comment_id


@pytest.fixture
def platform():
    with serve_in_thread(SimulatorConfig()) as running:
        yield running


@pytest.fixture
def channels(platform, tmp_path, kafka_bootstrap):
    return Channels(platform.url, tmp_path / "credentials.json", kafka_bootstrap)


@pytest.fixture
def start_poller(stack, platform, channels):
    stack.extra_env.update({
        "YOUTUBE_API_BASE_URL": platform.url, "YOUTUBE_TOKEN_URL": f"{platform.url}/token",
        "PLATFORM_CREDENTIALS_FILE": str(channels.credentials_path),
        "YOUTUBE_POLL_MIN_INTERVAL_S": "0.5", "YOUTUBE_POLL_QUOTA_UNITS_PER_DAY": "10000000",
    })

    def start(instance: str) -> str:
        stack.start_service("youtube_poller", instance=instance)
        wait_for(lambda: httpx.get(f"{stack.url(instance)}/readyz").is_success, 60, instance)
        return stack.url(instance)

    return start


def received_ids(records) -> Counter[str]:
    return Counter(CommentReceived.model_validate_json(r.value).comment_id
                   for r in records if r.topic == COMMENTS_RECEIVED.name)


async def test_new_comments_come_in_once_and_the_channels_own_replies_and_old_comments_do_not(
        stack, channels, start_poller, kafka_bootstrap):
    mara, quiet = channel_ids(2)
    await channels.add([mara])
    await channels.add([quiet], mode=ReplyMode.off)
    top = channels.comment(mara)
    reply = channels.comment(mara, parent=top)
    own = channels.comment(mara, author=mara, parent=top)  # what replyflow posts as the creator
    too_old = channels.comment(mara, age=timedelta(hours=7))  # YOUTUBE_POLL_MAX_AGE_S is 6 hours
    off = channels.comment(quiet)  # the creator switched replies off: not polled at all
    busy = channels.comment(mara)
    busy_replies = {channels.comment(mara, parent=busy) for _ in range(7)}  # the thread lists five of them
    unreadable = channels.comment(mara, author="UC not a channel id")  # no comment replyflow can take
    async with TopicReader(kafka_bootstrap, COMMENTS_RECEIVED.name, YOUTUBE_POLL_CURSORS.name,
                           COMMENTS_RECEIVED.dlq) as reader:
        poller = start_poller("poller-a")
        first = await reader.collect(lambda rs: {top, reply, busy, *busy_replies} <= set(received_ids(rs)))
        await asyncio.sleep(3)  # six more polls of the channel: nothing new to take
        later = channels.comment(mara)
        records = first + await reader.collect(lambda rs: later in received_ids(rs))
        await asyncio.sleep(2)
        records += await reader.read_to_end()

    counts = received_ids(records)
    assert counts[top] == counts[reply] == counts[later] == counts[busy] == 1, counts
    assert all(counts[r] == 1 for r in busy_replies), counts
    assert not {own, too_old, off} & set(counts)
    events = {e.comment_id: e.comment for e in (CommentReceived.model_validate_json(r.value) for r in records
                                                 if r.topic == COMMENTS_RECEIVED.name)}
    assert events[reply].parent_id == top and events[top].parent_id is None
    assert events[top].creator_id == channels.creator_of[mara] and events[top].post_id == f"vid-{mara[-4:]}"
    assert events[top].platform == Platform.youtube and events[top].author_id == "UCviewerAnn"
    cursors = [YouTubePollCursor.model_validate_json(r.value) for r in records
               if r.topic == YOUTUBE_POLL_CURSORS.name and r.key.decode() == mara]
    assert cursors[-1].newest_published_at == events[later].created_at
    assert {top, reply, later} <= set(cursors[-1].recent)
    assert scraped(poller, "replyflow_youtube_polled_comments_total", result="own_comment") >= 1
    assert scraped(poller, "replyflow_youtube_polled_comments_total", result="accepted") == 11
    # The unreadable one goes to the dead-letter topic once (the cursor keeps it like a taken one), with the
    # channel, creator and video a replay needs, and why.
    (dead,) = [r for r in records if r.topic == COMMENTS_RECEIVED.dlq and unreadable.encode() in r.value]
    headers = {k: v.decode() for k, v in dead.headers}
    assert headers["x-original-topic"] == "youtube:poll" and "author_id" in headers["x-exception-message"]
    assert json.loads(dead.value)["creator_id"] == channels.creator_of[mara]
    assert unreadable not in counts
    assert scraped(poller, "replyflow_dlq_messages_total", service="youtube-poller", topic="youtube:poll",
                   error="UnusableComment") == 1
    assert scraped(poller, "replyflow_youtube_polls_total", result="ok") >= 6


async def test_answers_back_under_an_older_thread_replyflow_answered_in_come_in(
        stack, channels, start_poller, kafka_bootstrap, producer):
    (mara,) = channel_ids(1)
    await channels.add([mara])
    answered_thread, quiet_thread = channels.comment(mara, age=timedelta(hours=1)), channels.comment(
        mara, age=timedelta(hours=1))
    # Six replies each: commentThreads.list lists five, so a seventh is not among them.
    answered_replies = [channels.comment(mara, parent=answered_thread, age=timedelta(minutes=50)) for _ in range(6)]
    for _ in range(6):
        channels.comment(mara, parent=quiet_thread, age=timedelta(minutes=50))
    async with TopicReader(kafka_bootstrap, COMMENTS_RECEIVED.name) as reader:
        poller = start_poller("poller-a")
        records = await reader.collect(lambda rs: {answered_thread, *answered_replies} <= set(received_ids(rs)))
        followed = scraped(poller, "replyflow_youtube_conversations")  # other tests' YouTube replies, if any
        # replyflow answers one of the replies (the publisher posts as the channel, then tells replies.published).
        channels.comment(mara, author=mara, parent=answered_thread)
        answered = next(CommentReceived.model_validate_json(r.value).comment for r in records
                        if r.topic == COMMENTS_RECEIVED.name
                        and CommentReceived.model_validate_json(r.value).comment_id == answered_replies[0])
        published = ReplyPublished(comment=answered, reply_id=f"r-{answered.comment_id}", text="Thank you! (AI)",
                                   platform_reply_id=f"yt-{uuid.uuid4().hex[:8]}", attempts=1)
        await producer.send_and_wait(REPLIES_PUBLISHED.name, published.model_dump_json().encode(),
                                     key=answered.creator_id.encode())
        newest = channels.comment(mara)  # the window moves past both older threads
        records += await reader.collect(lambda rs: newest in received_ids(rs))
        wait_for(lambda: scraped(poller, "replyflow_youtube_conversations") == followed + 1, 30,
                 "the answered thread followed")
        answer_back = channels.comment(mara, parent=answered_thread)
        unfollowed = channels.comment(mara, parent=quiet_thread)
        records += await reader.collect(lambda rs: answer_back in received_ids(rs))
        await asyncio.sleep(3)  # six more polls: each lists the followed thread again
        records += await reader.read_to_end()

    counts = received_ids(records)
    assert counts[answer_back] == 1, counts
    assert all(counts[r] == 1 for r in answered_replies), counts
    # Nobody answered in the quiet thread: its new reply is not polled (a call per thread and poll would be).
    assert unfollowed not in counts
    events = {e.comment_id: e.comment for e in (CommentReceived.model_validate_json(r.value) for r in records
                                                 if r.topic == COMMENTS_RECEIVED.name)}
    assert events[answer_back].parent_id == answered_thread and events[answer_back].post_id == f"vid-{mara[-4:]}"


async def test_a_poller_taking_a_channel_over_goes_on_from_where_its_followed_threads_were_listed(
        stack, channels, start_poller, kafka_bootstrap, producer):
    """The channel's cursor says how far each followed thread's replies were listed: the next poller does not take
    again the answers back the one before it took (it used to, once, from replyflow's first reply in the thread).
    A 2 s overlap: what the cursor's recent ids cover is soon behind, as 300 s are in production."""
    stack.extra_env["YOUTUBE_POLL_OVERLAP_S"] = "2"
    (mara,) = channel_ids(1)
    await channels.add([mara])
    thread = channels.comment(mara, age=timedelta(hours=1))
    async with TopicReader(kafka_bootstrap, COMMENTS_RECEIVED.name) as reader:
        poller = start_poller("poller-a")
        records = await reader.collect(lambda rs: thread in received_ids(rs))
        followed = scraped(poller, "replyflow_youtube_conversations")  # other tests' YouTube replies, if any
        top = next(CommentReceived.model_validate_json(r.value).comment for r in records
                   if CommentReceived.model_validate_json(r.value).comment_id == thread)
        published = ReplyPublished(comment=top, reply_id=f"r-{top.comment_id}", text="Thank you! (AI)",
                                   platform_reply_id=f"yt-{uuid.uuid4().hex[:8]}", attempts=1)
        await producer.send_and_wait(REPLIES_PUBLISHED.name, published.model_dump_json().encode(),
                                     key=top.creator_id.encode())
        newest = channels.comment(mara)  # the window moves past the thread
        records += await reader.collect(lambda rs: newest in received_ids(rs))
        wait_for(lambda: scraped(poller, "replyflow_youtube_conversations") == followed + 1, 30, "thread followed")
        answer_back = channels.comment(mara, parent=thread)
        records += await reader.collect(lambda rs: answer_back in received_ids(rs))
        await asyncio.sleep(3)  # past the overlap: the next listings read from after the answer back
        later = channels.comment(mara)  # and the newest comment moves on, so the cursor's recent ids drop it
        records += await reader.collect(lambda rs: later in received_ids(rs))
        await asyncio.sleep(1)

        stack.stop_process("poller-a")  # SIGTERM: a rolling deploy
        start_poller("poller-b")
        second = channels.comment(mara, parent=thread)
        records += await reader.collect(lambda rs: second in received_ids(rs))
        await asyncio.sleep(2)
        records += await reader.read_to_end()

    counts = received_ids(records)
    assert (counts[answer_back], counts[second], counts[thread]) == (1, 1, 1), counts


async def test_a_followed_thread_deleted_on_youtube_is_no_longer_followed_and_the_others_still_are(
        stack, channels, start_poller, kafka_bootstrap, producer, platform):
    (mara,) = channel_ids(1)
    await channels.add([mara])
    deleted_thread, kept_thread = (channels.comment(mara, age=timedelta(hours=1)) for _ in range(2))
    async with TopicReader(kafka_bootstrap, COMMENTS_RECEIVED.name) as reader:
        poller = start_poller("poller-a")
        records = await reader.collect(lambda rs: {deleted_thread, kept_thread} <= set(received_ids(rs)))
        followed = scraped(poller, "replyflow_youtube_conversations")  # other tests' YouTube replies, if any
        for record in records:  # replyflow answers both threads
            comment = CommentReceived.model_validate_json(record.value).comment
            published = ReplyPublished(comment=comment, reply_id=f"r-{comment.comment_id}", text="Thanks! (AI)",
                                       platform_reply_id=f"yt-{uuid.uuid4().hex[:8]}", attempts=1)
            await producer.send_and_wait(REPLIES_PUBLISHED.name, published.model_dump_json().encode(),
                                         key=comment.creator_id.encode())
        newest = channels.comment(mara)  # the window moves past both threads
        await reader.collect(lambda rs: newest in received_ids(rs))
        wait_for(lambda: scraped(poller, "replyflow_youtube_conversations") == followed + 2, 30, "both followed")
        httpx.post(f"{platform.url}/admin/deleted", json={"platform": "youtube", "comment_id": deleted_thread}
                   ).raise_for_status()  # the viewer deletes their comment, and its thread with it
        wait_for(lambda: scraped(poller, "replyflow_youtube_conversations") == followed + 1, 30,
                 "the deleted thread forgotten")
        answer_back = channels.comment(mara, parent=kept_thread)
        await reader.collect(lambda rs: answer_back in received_ids(rs))
    # Routine: mara's polls are not refused (other tests' channels without a grant may be).
    (status,) = [c for c in httpx.get(f"{poller}/v1/channels").json()["channels"] if c["channel_id"] == mara]
    assert status["last_result"] == "ok", status


async def test_pollers_share_the_channels_and_take_over_a_stopped_or_crashed_ones(
        stack, channels, start_poller, kafka_bootstrap):
    watched = channel_ids(6)
    await channels.add(watched)

    def owned(url: str) -> float:
        return scraped(url, "replyflow_youtube_channels_owned", ) or 0.0

    async with TopicReader(kafka_bootstrap, COMMENTS_RECEIVED.name) as reader:
        a, b = start_poller("poller-a"), start_poller("poller-b")
        # Other tests' creators have channels too: the pollers own the ones whose partitions they hold.
        wait_for(lambda: owned(a) > 0 and owned(b) > 0 and owned(a) + owned(b) == scraped(
            a, "replyflow_youtube_channels"), 60, "two pollers sharing the channels")
        wave1 = {channels.comment(c) for c in watched}
        records = await reader.collect(lambda rs: wave1 <= set(received_ids(rs)))

        stack.stop_process("poller-a")  # SIGTERM: a rolling deploy, or a scale-in
        wait_for(lambda: owned(b) == scraped(b, "replyflow_youtube_channels"), 60, "b owning every channel")
        wave2 = {channels.comment(c) for c in watched}
        records += await reader.collect(lambda rs: wave2 <= set(received_ids(rs)))

        c = start_poller("poller-c")
        wait_for(lambda: owned(c) > 0, 60, "c owning channels")
        stack.stop_process("poller-b", sig=signal.SIGKILL)  # a crash: c takes over when b's session times out
        wave3 = {channels.comment(ch) for ch in watched}
        records += await reader.collect(lambda rs: wave3 <= set(received_ids(rs)), timeout_s=90)
        await asyncio.sleep(2)
        records += await reader.read_to_end()

    counts = received_ids(records)
    # Handovers let the polls in hand finish first: each comment once. After a crash nothing is lost.
    assert all(counts[cid] == 1 for cid in wave1 | wave2), {cid: counts[cid] for cid in wave1 | wave2}
    assert all(counts[cid] >= 1 for cid in wave3)
    assert owned(c) == scraped(c, "replyflow_youtube_channels")


async def test_a_spent_quota_pauses_polling_and_a_missing_grant_is_refused(
        stack, channels, start_poller, kafka_bootstrap, platform):
    granted, ungranted = channel_ids(2)
    await channels.add([granted])
    await channels.add([ungranted], granted=False)
    poller = start_poller("poller-a")

    def ungranted_status() -> dict:
        return next((c for c in httpx.get(f"{poller}/v1/channels").json()["channels"]
                     if c["channel_id"] == ungranted and c["last_result"] == "refused"), {})

    wait_for(lambda: ungranted_status(), 30, "a refused poll of the channel without a grant")
    first_poll = ungranted_status()["last_polled_at"]
    wait_for(lambda: ungranted_status()["last_polled_at"] != first_poll, 30, "a second refused poll")
    # Refused is an answer (ReplyflowYouTubePollsRefused tickets it), not a stale channel that would page: the
    # time since its last answered poll is the time since its last poll. Had refusals not counted, it would run
    # from the takeover, before the first of the two polls.
    status = ungranted_status()
    since_poll = (datetime.now(UTC) - datetime.fromisoformat(status["last_polled_at"])).total_seconds()
    assert status["seconds_since_answered_poll"] <= since_poll + 0.5, status
    wait_for(lambda: (scraped(poller, "replyflow_youtube_polls_total", result="ok") or 0) >= 1, 30, "a good poll")
    assert scraped(poller, "replyflow_youtube_quota_exhausted") == 0
    report = httpx.get(f"{poller}/v1/channels").json()  # which channel, and why: for the person on call
    status = {c["channel_id"]: c for c in report["channels"]}
    assert status[granted]["last_result"] == "ok" and status[granted]["last_error"] is None
    assert status[ungranted]["last_result"] == "refused"
    assert "no YouTube credentials" in status[ungranted]["last_error"]
    assert status[ungranted]["creator_id"] == channels.creator_of[ungranted]
    assert report["owned"] == len(report["channels"]) and report["quota_paused_until"] is None

    httpx.post(f"{platform.url}/admin/faults", json={"youtube_quota_exceeded": True}).raise_for_status()
    wait_for(lambda: scraped(poller, "replyflow_youtube_quota_exhausted") == 1, 30, "the quota pause")
    assert scraped(poller, "replyflow_youtube_polls_total", result="quota_exceeded") >= 1

    def youtube_requests() -> float:
        text = httpx.get(f"{platform.url}/metrics").text
        return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
                   if line.startswith("platform_sim_reply_requests_total{") and 'platform="youtube"' in line)

    before = youtube_requests()
    await asyncio.sleep(3)  # six poll intervals: paused until midnight Pacific, so not one call
    assert youtube_requests() == before
    assert scraped(poller, "replyflow_youtube_poll_age_seconds") >= 3
    paused = httpx.get(f"{poller}/v1/channels").json()
    assert paused["quota_paused_until"].endswith(("T08:00:00+00:00", "T07:00:00+00:00"))  # midnight Pacific
    assert {c["last_result"] for c in paused["channels"] if c["channel_id"] == granted} == {"quota_exceeded"}
