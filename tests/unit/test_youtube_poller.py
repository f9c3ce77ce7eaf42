"""What a YouTube poll decides: which channels, how often, from where, which comments, the next cursor."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest

from replyflow.events import CreatorProfile, Platform, ReplyMode, YouTubePollCursor
from replyflow.youtube_poller import (
    MAX_RECENT_IDS,
    advanced_cursor,
    channels_to_poll,
    comments_in_page,
    poll_interval,
    quota_resets_at,
    read_window,
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


def test_the_cursor_advances_to_the_newest_and_keeps_only_the_overlap():
    items = [thread(resource(f"c{i}", NOW - timedelta(minutes=i))) for i in range(10)]
    comments = comments_in_page(items, CHANNEL, "mara", NOW - timedelta(hours=1), frozenset()).comments
    cursor = advanced_cursor(None, CHANNEL, "mara", comments, NOW, 300)
    assert cursor.newest_published_at == NOW
    assert set(cursor.recent) == {"c0", "c1", "c2", "c3", "c4", "c5"}  # within 5 minutes of the newest
    # the next poll found one older comment (listed late): the newest stays, the late one joins the window
    late = comments_in_page([thread(resource("late", NOW - timedelta(minutes=2)))], CHANNEL, "mara",
                            NOW - timedelta(minutes=5), frozenset(cursor.recent)).comments
    after = advanced_cursor(cursor, CHANNEL, "mara", late, NOW + timedelta(minutes=1), 300)
    assert after.newest_published_at == NOW and "late" in after.recent and "c1" in after.recent
    assert after.polled_at == NOW + timedelta(minutes=1)


def test_a_cursor_keeps_at_most_the_newest_ids_of_a_busy_window():
    items = [thread(resource(f"c{i}", NOW - timedelta(milliseconds=i))) for i in range(MAX_RECENT_IDS + 50)]
    comments = comments_in_page(items, CHANNEL, "mara", NOW - timedelta(hours=1), frozenset()).comments
    cursor = advanced_cursor(None, CHANNEL, "mara", comments, NOW, 300)
    assert len(cursor.recent) == MAX_RECENT_IDS and "c0" in cursor.recent and f"c{MAX_RECENT_IDS + 49}" not in \
        cursor.recent
    YouTubePollCursor.model_validate_json(cursor.model_dump_json())  # fits its own schema
