"""What a YouTube poll decides: which channels, how often, from where, which comments, the next cursor, which
answered threads it lists again."""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import httpx
import pytest

from replyflow.events import (
    Comment,
    CreatorProfile,
    Platform,
    ReplyMode,
    ReplyPublished,
    ThreadListed,
    YouTubePollCursor,
)
from replyflow.platform_api import CredentialsFile, YouTubeClient
from replyflow.settings import Settings
from replyflow.youtube_poller import (
    MAX_CURSOR_CONVERSATIONS,
    MAX_CURSOR_THREAD_IDS,
    MAX_RECENT_IDS,
    Conversations,
    YouTubePoller,
    advanced_cursor,
    channels_to_poll,
    comments_in_page,
    poll_interval,
    quota_resets_at,
    read_window,
    taken_ids,
    units_per_poll_average,
)

CHANNEL = "UCmaraCooks8fK2x1Qe9Lw3bA"
NOW = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)


def profile(creator_id: str, mode: ReplyMode = ReplyMode.auto, **accounts: str) -> CreatorProfile:
    return CreatorProfile(creator_id=creator_id, display_name=creator_id, persona="p", mode=mode,
                          platform_accounts={Platform(k): v for k, v in accounts.items()})


def resource(comment_id: str, at: datetime, author: str = "UCviewer", parent: str | None = None, **over) -> dict:
    snippet = {"videoId": "vid1", "textDisplay": f"text of {comment_id}", "authorDisplayName": "Ann",
               "authorChannelId": {"value": author}, "publishedAt": at.isoformat().replace("+00:00", "Z"),
               **({"parentId": parent} if parent else {}), **over}
    return {"kind": "youtube#comment", "id": comment_id, "snippet": snippet}


def thread(top: dict, *replies: dict, video: str | None = "vid1") -> dict:
    snippet = {"channelId": CHANNEL, "topLevelComment": top, **({"videoId": video} if video else {})}
    return {"kind": "youtube#commentThread", "id": top["id"], "snippet": snippet,
            **({"replies": {"comments": list(replies)}} if replies else {})}


def test_channels_to_poll_are_the_youtube_channels_of_creators_whose_replies_are_on():
    profiles = [profile("a", youtube="UCa"), profile("b", ReplyMode.review, youtube="UCb", instagram="1784"),
                profile("c", ReplyMode.off, youtube="UCc"), profile("d", instagram="1785")]
    assert channels_to_poll(profiles) == {"UCa": "a", "UCb": "b"}


def test_poll_interval_keeps_all_channels_within_the_quota_and_never_below_the_floor():
    assert poll_interval(3, 5_000, 60.0, 1.0) == 60.0
    assert poll_interval(500, 5_000, 60.0, 1.0) == pytest.approx(8_640.0)  # 500 one-unit polls, 10 times a day
    assert poll_interval(500, 5_000, 60.0, 2.5) == pytest.approx(21_600.0)  # busy channels: more pages a poll
    assert poll_interval(0, 5_000, 60.0, 1.0) == 60.0


def test_units_per_poll_follow_what_recent_polls_cost():
    average = 1.0
    for _ in range(100):  # channels turned busy: three calls a poll
        average = units_per_poll_average(average, 3)
    assert average == pytest.approx(3.0, abs=0.02)
    assert units_per_poll_average(3.0, 1) == pytest.approx(2.9)  # one cheap poll moves it a twentieth


@pytest.mark.parametrize(("now", "resets"), [
    (datetime(2026, 11, 29, 7, 59, tzinfo=UTC), datetime(2026, 11, 29, 8, 0, tzinfo=UTC)),  # 23:59 PST
    (datetime(2026, 11, 29, 8, 0, 1, tzinfo=UTC), datetime(2026, 11, 30, 8, 0, tzinfo=UTC)),
    (datetime(2026, 7, 1, 12, 0, tzinfo=UTC), datetime(2026, 7, 2, 7, 0, tzinfo=UTC)),  # PDT: midnight is 07:00 UTC
    (datetime(2026, 3, 8, 7, 30, tzinfo=UTC), datetime(2026, 3, 8, 8, 0, tzinfo=UTC)),  # the day clocks go forward
])
def test_the_quota_resets_at_midnight_pacific_time(now, resets):
    assert quota_resets_at(now) == resets


def test_a_first_poll_reaches_back_max_age_and_later_ones_overlap_the_cursor():
    assert read_window(None, NOW, 300, 21_600) == (NOW - timedelta(hours=6), frozenset())
    cursor = YouTubePollCursor(channel_id=CHANNEL, creator_id="m", newest_published_at=NOW - timedelta(minutes=2),
                               recent={"c1": NOW - timedelta(minutes=2)}, polled_at=NOW)
    assert read_window(cursor, NOW, 300, 21_600) == (NOW - timedelta(minutes=7), frozenset({"c1"}))
    # after a long outage the cursor is older than max age: comments that old get no reply any more
    stale = cursor.model_copy(update={"newest_published_at": NOW - timedelta(days=2)})
    assert read_window(stale, NOW, 300, 21_600)[0] == NOW - timedelta(hours=6)


def test_a_page_gives_new_comments_and_replies_and_leaves_out_the_channels_own_and_what_was_taken():
    since = NOW - timedelta(minutes=10)
    items = [
        thread(resource("new", NOW - timedelta(minutes=1)),
               resource("reply", NOW, parent="new"),
               resource("ours", NOW, author=CHANNEL, parent="new")),  # the creator's (replyflow's) reply
        thread(resource("taken", NOW - timedelta(minutes=5))),  # in the overlap, taken by the last poll
        thread(resource("on-channel", NOW - timedelta(minutes=6)), video=None),  # a thread on the channel itself
    ]
    page = comments_in_page(items, CHANNEL, "mara", since, frozenset({"taken"}))
    assert [c.comment_id for c in page.comments] == ["new", "reply", "on-channel"]
    assert page.left_out == Counter(own_comment=1)
    assert not page.reached_older and not page.partial_threads
    new, reply, on_channel = page.comments
    assert (new.platform, new.creator_id, new.post_id, new.author_id, new.text) == (
        Platform.youtube, "mara", "vid1", "UCviewer", "text of new")
    assert new.created_at == NOW - timedelta(minutes=1) and new.parent_id is None
    assert reply.parent_id == "new"
    assert on_channel.post_id == "vid1"  # the resource's own videoId wins; without one, the channel's id


def test_a_page_reaching_threads_older_than_the_window_ends_the_poll_but_keeps_their_new_replies():
    since = NOW - timedelta(minutes=10)
    items = [thread(resource("old", NOW - timedelta(hours=1)), resource("late-reply", NOW, parent="old"),
                    resource("old-reply", NOW - timedelta(minutes=50), parent="old"))]
    page = comments_in_page(items, CHANNEL, "mara", since, frozenset())
    assert [c.comment_id for c in page.comments] == ["late-reply"]
    assert page.reached_older


def test_new_threads_listing_only_some_of_their_replies_are_named_for_comments_list():
    since = NOW - timedelta(minutes=10)
    busy = thread(resource("busy", NOW), *(resource(f"r{i}", NOW, parent="busy") for i in range(5)))
    busy["snippet"]["totalReplyCount"] = 9
    complete = thread(resource("complete", NOW), resource("only", NOW, parent="complete"))
    complete["snippet"]["totalReplyCount"] = 1
    old = thread(resource("old", NOW - timedelta(hours=1)), video="vid-old")
    old["snippet"]["totalReplyCount"] = 40  # its replies are old too, or the thread would be listed as new
    page = comments_in_page([busy, complete, old], CHANNEL, "mara", since, frozenset())
    assert page.partial_threads == {"busy": "vid1"}
    assert len(page.comments) == 8


def test_unreadable_comments_are_counted_and_the_rest_of_the_page_still_comes_in():
    since = NOW - timedelta(minutes=10)
    no_author = resource("no-author", NOW)
    del no_author["snippet"]["authorChannelId"]
    empty = resource("empty", NOW, textDisplay="")
    bad_id = resource("bad id with spaces", NOW)
    items = [thread(no_author), thread(empty), thread(bad_id), thread(resource("fine", NOW))]
    page = comments_in_page(items, CHANNEL, "mara", since, frozenset())
    assert [c.comment_id for c in page.comments] == ["fine"]
    assert page.left_out == Counter(unreadable=3)
    # Kept as they came, with the channel, creator and video, for the dead-letter topic (and a replay).
    assert [u.part["comment"]["id"] for u in page.unreadable] == ["no-author", "empty", "bad id with spaces"]
    assert all(u.part["creator_id"] == "mara" and u.part["video_id"] == "vid1" for u in page.unreadable)
    assert "authorChannelId" in page.unreadable[0].why
    # Dead-lettered ones join the cursor like taken ones: the overlap reads them again and leaves them out.
    taken = taken_ids(page.comments, page.unreadable)
    assert {cid for cid, _ in taken} == {"fine", "no-author", "empty", "bad id with spaces"}
    again = comments_in_page(items, CHANNEL, "mara", since, frozenset(cid for cid, _ in taken))
    assert again.comments == [] and again.unreadable == []


def test_the_cursor_advances_to_the_newest_and_keeps_only_the_overlap():
    items = [thread(resource(f"c{i}", NOW - timedelta(minutes=i))) for i in range(10)]
    comments = comments_in_page(items, CHANNEL, "mara", NOW - timedelta(hours=1), frozenset()).comments
    cursor = advanced_cursor(None, CHANNEL, "mara", taken_ids(comments, []), NOW, 300, {})
    assert cursor.newest_published_at == NOW
    assert set(cursor.recent) == {"c0", "c1", "c2", "c3", "c4", "c5"}  # within 5 minutes of the newest
    # the next poll found one older comment (listed late): the newest stays, the late one joins the window
    late = comments_in_page([thread(resource("late", NOW - timedelta(minutes=2)))], CHANNEL, "mara",
                            NOW - timedelta(minutes=5), frozenset(cursor.recent)).comments
    after = advanced_cursor(cursor, CHANNEL, "mara", taken_ids(late, []), NOW + timedelta(minutes=1), 300, {})
    assert after.newest_published_at == NOW and "late" in after.recent and "c1" in after.recent
    assert after.polled_at == NOW + timedelta(minutes=1)


def test_a_cursor_keeps_at_most_the_newest_ids_of_a_busy_window():
    items = [thread(resource(f"c{i}", NOW - timedelta(milliseconds=i))) for i in range(MAX_RECENT_IDS + 50)]
    comments = comments_in_page(items, CHANNEL, "mara", NOW - timedelta(hours=1), frozenset()).comments
    cursor = advanced_cursor(None, CHANNEL, "mara", taken_ids(comments, []), NOW, 300, {})
    assert len(cursor.recent) == MAX_RECENT_IDS and "c0" in cursor.recent and f"c{MAX_RECENT_IDS + 49}" not in \
        cursor.recent
    YouTubePollCursor.model_validate_json(cursor.model_dump_json())  # fits its own schema


def yt_comment(comment_id: str, at: datetime, parent: str | None = None, creator: str = "mara",
               platform: Platform = Platform.youtube) -> Comment:
    return Comment(platform=platform, comment_id=comment_id, creator_id=creator, post_id="vid1", author_id="UCann",
                   author_name="Ann", text="Lovely!", created_at=at, parent_id=parent)


def answered(comment: Comment, at: datetime) -> ReplyPublished:
    return ReplyPublished(comment=comment, reply_id=f"r-{comment.comment_id}", text="Thanks! (AI)",
                          platform_reply_id=f"p-{comment.comment_id}", attempts=1, published_at=at)


def test_threads_replyflow_answered_on_youtube_are_followed_and_the_fresh_ones_listed_first():
    talks = Conversations(follow_s=86_400, per_poll=2, overlap_s=300)
    talks.answered(answered(yt_comment("top1", NOW - timedelta(hours=5)), NOW - timedelta(hours=5)))
    talks.answered(answered(yt_comment("c2", NOW - timedelta(hours=2), parent="top2"), NOW - timedelta(hours=2)))
    talks.answered(answered(yt_comment("top3", NOW - timedelta(hours=1)), NOW - timedelta(hours=1)))
    talks.answered(answered(yt_comment("ig1", NOW, platform=Platform.instagram), NOW))  # not a YouTube thread
    talks.answered(answered(yt_comment("top9", NOW, creator="other"), NOW))
    assert len(talks) == 4
    assert talks.to_list("nobody", NOW) == []
    # None listed yet: all equally due; two a poll.
    first = talks.to_list("mara", NOW)
    assert len(first) == 2 and {t.thread_id for t in first} <= {"top1", "top2", "top3"}
    talks.listed(first, NOW, [])
    (left,) = {"top1", "top2", "top3"} - {t.thread_id for t in first}
    assert talks.to_list("mara", NOW + timedelta(minutes=1))[0].thread_id == left
    # All listed at NOW: ten minutes later, the youngest conversation is the most due (unlisted time / age).
    talks.listed(talks.to_list("mara", NOW), NOW, [])
    later = NOW + timedelta(minutes=10)
    assert [t.thread_id for t in talks.to_list("mara", later)] == ["top3", "top2"]
    # replyflow answers in the oldest thread again: it is due at once.
    talks.answered(answered(yt_comment("c5", later, parent="top1"), later))
    assert talks.to_list("mara", later)[0].thread_id == "top1"


def test_a_thread_is_followed_for_the_window_after_replyflows_last_reply_there():
    talks = Conversations(follow_s=3_600, per_poll=5, overlap_s=300)
    talks.answered(answered(yt_comment("top1", NOW - timedelta(hours=3)), NOW - timedelta(hours=3)))
    talks.answered(answered(yt_comment("c1", NOW - timedelta(minutes=30), parent="top1"), NOW - timedelta(minutes=30)))
    talks.answered(answered(yt_comment("top2", NOW - timedelta(hours=2)), NOW - timedelta(hours=2)))
    assert [t.thread_id for t in talks.to_list("mara", NOW)] == ["top1"]
    assert len(talks) == 1
    assert talks.to_list("mara", NOW + timedelta(minutes=31)) == []


def test_a_listing_takes_replies_since_the_first_answer_then_since_the_last_listing_and_nothing_twice():
    talks = Conversations(follow_s=86_400, per_poll=3, overlap_s=300)
    answered_at = NOW - timedelta(hours=1)
    talks.answered(answered(yt_comment("c1", answered_at - timedelta(minutes=3), parent="top1"), answered_at))
    (followed,) = talks.to_list("mara", NOW)
    assert followed.since(300) == answered_at - timedelta(seconds=300)
    assert "c1" in followed.taken  # the comment replyflow answered is not taken again
    back = yt_comment("c2", NOW - timedelta(seconds=30), parent="top1")
    elsewhere = yt_comment("c3", NOW - timedelta(seconds=20), parent="top7")  # a thread nobody follows
    talks.listed([followed], NOW, [back, elsewhere])
    assert followed.since(300) == NOW - timedelta(seconds=300)
    assert set(followed.taken) == {"c2"}  # c1 is older than any listing from now on reads
    talks.forget(followed)
    assert talks.to_list("mara", NOW) == [] and len(talks) == 0


def test_answers_back_taken_from_the_new_threads_are_not_taken_again_from_the_followed_one():
    talks = Conversations(follow_s=86_400, per_poll=3, overlap_s=300)
    talks.answered(answered(yt_comment("top1", NOW - timedelta(minutes=2)), NOW - timedelta(minutes=1)))
    (followed,) = talks.to_list("mara", NOW)
    talks.listed([], NOW, [yt_comment("c2", NOW - timedelta(seconds=10), parent="top1")])  # found in a new thread
    assert "c2" in followed.taken


def test_every_creators_threads_past_the_window_are_forgotten_not_only_the_polled_ones():
    # A replica polls its own channels only, but reads every creator's replies: the others' must not pile up.
    talks = Conversations(follow_s=3_600, per_poll=3, overlap_s=300)
    for i in range(50):
        talks.answered(answered(yt_comment(f"t{i}", NOW, creator=f"creator-{i}"), NOW))
    assert len(talks) == 50
    later = NOW + timedelta(hours=2)
    talks.answered(answered(yt_comment("fresh", later, creator="someone"), later))
    assert len(talks) == 1


def test_where_the_followed_threads_are_listed_goes_with_the_channels_cursor_to_the_next_poller():
    mine = Conversations(follow_s=86_400, per_poll=3, overlap_s=300)
    first_answer = NOW - timedelta(hours=3)
    for talks in (mine, theirs := Conversations(follow_s=86_400, per_poll=3, overlap_s=300)):
        talks.answered(answered(yt_comment("c1", first_answer - timedelta(minutes=1), parent="top1"), first_answer))
        talks.answered(answered(yt_comment("c9", first_answer, parent="top9"), first_answer))
    top1, _ = sorted(mine.to_list("mara", NOW), key=lambda t: t.thread_id)
    mine.listed([top1], NOW, [yt_comment("c2", NOW - timedelta(seconds=30), parent="top1")])
    # A poll that took nothing still writes where it listed to (a cursor without new comments).
    cursor = advanced_cursor(None, CHANNEL, "mara", [], NOW, 300, mine.positions("mara"))
    assert cursor.newest_published_at is None and cursor.recent == {}
    assert cursor.conversations == {"top1": ThreadListed(listed_at=NOW, taken={"c2": NOW - timedelta(seconds=30)})}
    cursor = YouTubePollCursor.model_validate_json(cursor.model_dump_json())
    # The poller taking the channel over goes on from there, not from replyflow's first answer three hours ago; a
    # thread the cursor does not name is listed from its first answer.
    theirs.resume("mara", cursor.conversations)
    taken_over = {t.thread_id: t for t in theirs.to_list("mara", NOW)}
    assert taken_over["top1"].since(300) == NOW - timedelta(seconds=300) and "c2" in taken_over["top1"].taken
    assert taken_over["top9"].since(300) == first_answer - timedelta(seconds=300)
    # An older cursor does not move a thread back.
    theirs.listed([taken_over["top1"]], NOW + timedelta(minutes=5), [])
    theirs.resume("mara", cursor.conversations)
    assert taken_over["top1"].listed_at == NOW + timedelta(minutes=5)


def test_a_cursor_keeps_the_latest_listed_threads_and_their_latest_ids_only():
    talks = Conversations(follow_s=86_400, per_poll=MAX_CURSOR_CONVERSATIONS + 10, overlap_s=86_400)
    for i in range(MAX_CURSOR_CONVERSATIONS + 10):
        first_answer = NOW - timedelta(hours=1)
        talks.answered(answered(yt_comment(f"a{i}", first_answer, parent=f"t{i}"), first_answer))
    for i, thread in enumerate(sorted(talks.to_list("mara", NOW), key=lambda t: int(t.thread_id[1:]))):
        replies = [yt_comment(f"r{i}-{j}", NOW - timedelta(seconds=j), parent=thread.thread_id)
                   for j in range(MAX_CURSOR_THREAD_IDS + 5)]
        talks.listed([thread], NOW + timedelta(seconds=i), replies)
    positions = talks.positions("mara")
    assert len(positions) == MAX_CURSOR_CONVERSATIONS and "t0" not in positions and "t109" in positions
    assert all(len(p.taken) == MAX_CURSOR_THREAD_IDS for p in positions.values())
    assert set(positions["t109"].taken) == {f"r109-{j}" for j in range(MAX_CURSOR_THREAD_IDS)}
    YouTubePollCursor.model_validate_json(advanced_cursor(None, CHANNEL, "mara", [], NOW, 300, positions)
                                          .model_dump_json())  # fits its own schema


def google_error(status: int, reason: str) -> httpx.Response:
    return httpx.Response(status, json={"error": {"code": status, "message": reason,
                                                  "errors": [{"reason": reason, "message": reason}]}})


async def test_a_followed_thread_gone_on_youtube_is_forgotten_and_one_refused_otherwise_stays_followed(tmp_path):
    """Viewers delete threads: forgotten quietly. Another refusal (a grant revoked mid-poll, say) may be fixed: the
    thread stays followed and unlisted, so its next listing misses nothing. Either way the poll goes on."""
    threads = {"deleted": google_error(404, "commentNotFound"), "private": google_error(400, "parentCommentIsPrivate"),
               "refused": google_error(403, "forbidden")}

    def youtube(request: httpx.Request) -> httpx.Response:  # Google's token endpoint, no new threads, the followed
        if request.url.path == "/token":
            return httpx.Response(200, json={"access_token": "ya29.t", "expires_in": 3600})
        if request.url.path.endswith("/commentThreads"):
            return httpx.Response(200, json={"items": []})
        parent = request.url.params["parentId"]
        back = resource(f"back-{parent}", NOW + timedelta(minutes=1), parent=parent)
        return threads.get(parent) or httpx.Response(200, json={"items": [back]})

    credentials = tmp_path / "credentials.json"
    credentials.write_text(json.dumps({"youtube": {"client_id": "c", "client_secret": "s",
                                                   "accounts": {CHANNEL: {"refresh_token": "1//m"}}}}))
    async with httpx.AsyncClient(transport=httpx.MockTransport(youtube)) as http:
        client = YouTubeClient(http, "https://youtube.test", "https://youtube.test/token",
                               CredentialsFile(str(credentials)))
        settings = Settings(youtube_poll_conversations_per_poll=5)
        poller = YouTubePoller(SimpleNamespace(settings=settings, memberships=[]), client)
        for thread_id in ("deleted", "private", "refused", "fine"):
            poller.conversations.answered(answered(yt_comment(thread_id, NOW), NOW))
        listing = poller.conversations.to_list("mara", NOW)
        found, _, _, units = await poller._new_comments(CHANNEL, "mara", NOW, frozenset(), listing)

    assert [c.comment_id for c in found] == ["back-fine"] and units == 1 + 4  # the threads page, then each
    assert [t.thread_id for t in listing] == ["fine"]  # what the poll marks listed
    poller.conversations.listed(listing, NOW, found)
    assert {t.thread_id for t in poller.conversations.to_list("mara", NOW)} == {"refused", "fine"}
    (refused,) = [t for t in poller.conversations.to_list("mara", NOW) if t.thread_id == "refused"]
    assert refused.listed_at is None and refused.refused_at is not None  # tried: no slot at every poll


def test_threads_youtube_refuses_at_every_poll_do_not_starve_a_fresh_conversation():
    """A thread refused for good (comments turned off there, say) stays followed, but its refusal counts as a try:
    it must not take a slot at every poll while a thread answered since waits."""
    conversations = Conversations(follow_s=86_400, per_poll=3, overlap_s=0)
    for thread_id in ("off1", "off2", "off3"):
        conversations.answered(answered(yt_comment(thread_id, NOW), NOW))
    conversations.answered(answered(yt_comment("fresh", NOW), NOW + timedelta(minutes=1)))
    first = conversations.to_list("mara", NOW + timedelta(minutes=2))
    assert [t.thread_id for t in first] == ["off1", "off2", "off3"]
    for thread in first:  # what the poll does when YouTube refuses to list a thread
        thread.refused_at = NOW + timedelta(minutes=2)
    second = conversations.to_list("mara", NOW + timedelta(minutes=3))
    assert second[0].thread_id == "fresh" and all(t.listed_at is None for t in first)
