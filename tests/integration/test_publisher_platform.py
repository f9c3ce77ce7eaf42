"""The publisher's platform adapters against the real platform simulator over HTTP: the generic contract with
its idempotency key, and the YouTube Data API and Instagram Graph API, which have none, so a retry after a lost
answer must find the reply already there instead of posting it again."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Callable
from datetime import UTC, datetime

import httpx
import pytest

from loadtest.platform_simulator import SimulatorConfig, serve_in_thread
from replyflow.admin import put_profiles
from replyflow.events import (
    Action,
    Comment,
    CreatorProfile,
    Decision,
    Outcome,
    Reason,
    ReplyPublished,
    ReplyVerdict,
    reply_id_for,
)
from replyflow.kafka import Emit, EventProducer, PermanentError, TransientError, group_starts_at_end
from replyflow.platform_api import CommentGone
from replyflow.publisher.platform import PlatformApis
from replyflow.settings import Settings
from replyflow.topics import DECISIONS, REPLIES_APPROVED, REPLIES_PUBLISHED, REPLIES_REVIEW
from tests.helpers import TopicReader, scraped, wait_for

CHANNEL, IG_USER = "UCmaraCooks8fK2x1Qe9Lw3bA", "17841401234567890"
OTHER_CHANNEL, OTHER_IG_USER = "UCcoachDev4hT9mZq2Lx7Vb1s", "17841409876543210"
CLIENT = {"client_id": "replyflow.apps.googleusercontent.com", "client_secret": "s3cret"}
REFRESH_TOKENS = {CHANNEL: "1//mara", OTHER_CHANNEL: "1//coach"}
IG_TOKENS = {IG_USER: "IGQVJ-mara", OTHER_IG_USER: "IGQVJ-coach"}
TEXT = "Rest it an hour! [AI reply]"


@pytest.fixture
def platform():
    # Platform ids unlike earlier runs': a publisher's ledger on the session's broker holds those as taken.
    with serve_in_thread(SimulatorConfig(seed=uuid.uuid4().int)) as running:
        grants = [{"platform": "youtube", "account_id": a, "refresh_token": t, **CLIENT}
                  for a, t in REFRESH_TOKENS.items()]
        grants += [{"platform": "instagram", "account_id": a, "access_token": t} for a, t in IG_TOKENS.items()]
        for grant in grants:
            httpx.post(f"{running.url}/admin/credentials", json=grant).raise_for_status()
        yield running


def write_credentials(path, refresh_tokens: dict[str, str] = REFRESH_TOKENS,
                      ig_tokens: dict[str, str] = IG_TOKENS) -> None:
    path.write_text(json.dumps({
        "youtube": {**CLIENT, "accounts": {a: {"refresh_token": t} for a, t in refresh_tokens.items()}},
        "instagram": {"accounts": {a: {"access_token": t} for a, t in ig_tokens.items()}},
    }))


@pytest.fixture
async def native(platform, tmp_path):
    """YouTube and Instagram through their own APIs (served by the simulator), with a credentials file."""
    credentials = tmp_path / "credentials.json"
    write_credentials(credentials)
    apis = PlatformApis(Settings(
        platform_base_url=platform.url, platform_timeout_s=1.0, youtube_api_base_url=platform.url,
        youtube_token_url=f"{platform.url}/token", instagram_api_base_url=f"{platform.url}/v21.0",
        platform_credentials_file=str(credentials)))
    yield apis
    await apis.close()


def on(comment_id: str, parent_id: str | None = None) -> Comment:
    return Comment(platform="youtube", comment_id=comment_id, creator_id="mara-cooks", post_id="v1", author_id="a1",
                   author_name="Ann", text="How long?", created_at=datetime.now(UTC), parent_id=parent_id)


def posts(simulator, **filters) -> list[dict]:
    return httpx.get(f"{simulator.url}/v1/posts", params=filters).json()["posts"]


def faults(platform, **body) -> None:
    httpx.post(f"{platform.url}/admin/faults", json=body).raise_for_status()


def deleted(platform, platform_name: str, comment_id: str) -> None:
    """A viewer deletes their comment on the platform."""
    httpx.post(f"{platform.url}/admin/deleted", json={"platform": platform_name, "comment_id": comment_id}
               ).raise_for_status()


async def test_generic_contract_a_retry_after_a_lost_answer_does_not_post_twice(platform):
    apis = PlatformApis(Settings(platform_base_url=platform.url, platform_timeout_s=5))
    generic = apis.for_platform("youtube")
    first = await generic.post_reply(on("c1"), "acct", "r1", TEXT)
    again = await generic.post_reply(on("c1"), "acct", "r1", TEXT)
    # A redelivered draft with other text for the same reply id is recognised as already posted.
    redrafted = await generic.post_reply(on("c1"), "acct", "r1", "Thank you! [AI reply]")
    await apis.close()
    assert (first.replayed, again.replayed, redrafted.replayed) == (False, True, True)
    assert first.platform_reply_id == again.platform_reply_id == redrafted.platform_reply_id
    assert len(posts(platform, comment_id="c1")) == 1


async def test_generic_contract_failures_are_transient_and_bad_requests_permanent(platform):
    apis = PlatformApis(Settings(platform_base_url=platform.url, platform_timeout_s=5))
    faults(platform, fail_next=1)
    with pytest.raises(TransientError):
        await apis.for_platform("youtube").post_reply(on("c2"), "acct", "r2", "hi")
    with pytest.raises(PermanentError):
        await apis.for_platform("myspace").post_reply(on("c2"), "acct", "r2", "hi")
    await apis.close()


@pytest.mark.parametrize("platform_name, account", [("youtube", CHANNEL), ("instagram", IG_USER)])
async def test_native_reply_is_posted_as_the_creators_account(native, platform, platform_name, account):
    posted = await native.for_platform(platform_name).post_reply(on("parent-1"), account, "r1", TEXT)
    assert not posted.replayed
    (post,) = posts(platform, platform=platform_name, comment_id="parent-1")
    assert (post["account_id"], post["text"], post["platform_reply_id"]) == (account, TEXT, posted.platform_reply_id)
    assert post["idempotency_key"].startswith(f"{platform_name}:")  # the native route, not the generic one


@pytest.mark.parametrize("platform_name, account, other", [("youtube", CHANNEL, OTHER_CHANNEL),
                                                             ("instagram", IG_USER, OTHER_IG_USER)])
async def test_native_retry_after_a_lost_answer_finds_the_reply_instead_of_posting_it_again(
        native, platform, platform_name, account, other):
    api = native.for_platform(platform_name)
    # Other replies under the same comment must not be taken for this one: another text, another account.
    await api.post_reply(on("parent-2"), account, "r0", "Another reply. [AI reply]")
    await api.post_reply(on("parent-2"), other, "r1", TEXT)
    faults(platform, timeout_next=1, timeout_sleep_s=3)  # posted, but the answer comes after our 1 s timeout
    with pytest.raises(TransientError):
        await api.post_reply(on("parent-2"), account, "r2", TEXT)
    again = await api.post_reply(on("parent-2"), account, "r2", TEXT)
    ours = [p for p in posts(platform, comment_id="parent-2") if p["account_id"] == account and p["text"] == TEXT]
    assert len(ours) == 1, "posted twice"
    assert again.replayed and again.platform_reply_id == ours[0]["platform_reply_id"]


@pytest.mark.parametrize("platform_name, account", [("youtube", CHANNEL), ("instagram", IG_USER)])
async def test_a_second_reply_with_the_same_words_in_a_thread_is_posted_not_taken_for_the_first(
        native, platform, platform_name, account):
    """Two viewers in one thread can get the same words back; the publisher names the replies already out."""
    api = native.for_platform(platform_name)
    first = await api.post_reply(on("ann-1", parent_id="thread-s"), account, "r1", TEXT)
    second = await api.post_reply(on("bob-1", parent_id="thread-s"), account, "r2", TEXT,
                                  taken={first.platform_reply_id})
    assert not second.replayed and second.platform_reply_id != first.platform_reply_id
    assert len(posts(platform, comment_id="thread-s")) == 2
    # Without naming the first, reconciliation would take it for the second: what `taken` is for.
    assert (await api.post_reply(on("cy-1", parent_id="thread-s"), account, "r3", TEXT)).replayed


async def test_youtube_access_tokens_are_refreshed_before_they_expire_and_after_a_401(native, platform):
    faults(platform, access_token_ttl_s=2)
    api = native.for_platform("youtube")
    await api.post_reply(on("parent-3"), CHANNEL, "r1", TEXT)
    await asyncio.sleep(2.2)  # the simulator no longer accepts the first token
    await api.post_reply(on("parent-4"), CHANNEL, "r2", TEXT)
    faults(platform, access_token_ttl_s=3600)
    await api.post_reply(on("parent-5"), CHANNEL, "r3", TEXT)
    platform.simulator.access_tokens.clear()  # revoked on the platform's side
    with pytest.raises(TransientError, match="401"):
        await api.post_reply(on("parent-6"), CHANNEL, "r4", TEXT)
    await api.post_reply(on("parent-6"), CHANNEL, "r4", TEXT)  # a fresh token on the next attempt
    assert [p["comment_id"] for p in posts(platform, platform="youtube")] == [f"parent-{i}" for i in (3, 4, 5, 6)]


async def test_rate_limits_are_transient(native, platform):
    faults(platform, rate_limit_per_account_per_minute=1)
    for platform_name, account in (("youtube", CHANNEL), ("instagram", IG_USER)):
        api = native.for_platform(platform_name)
        await api.post_reply(on("parent-7"), account, "r1", TEXT)
        with pytest.raises(TransientError, match=r"rateLimitExceeded|code 4\b"):
            await api.post_reply(on("parent-8"), account, "r2", TEXT)


async def test_missing_or_refused_credentials_are_permanent_and_the_file_is_read_again(native, platform, tmp_path):
    credentials = tmp_path / "credentials.json"
    with pytest.raises(PermanentError, match="no YouTube credentials for channel UCnobody"):
        await native.for_platform("youtube").post_reply(on("parent-9"), "UCnobody", "r1", TEXT)
    write_credentials(credentials, ig_tokens={IG_USER: "expired-token"})
    with pytest.raises(PermanentError, match="code 190"):
        await native.for_platform("instagram").post_reply(on("parent-9"), IG_USER, "r1", TEXT)
    write_credentials(credentials)  # the operator renews the token: no restart needed
    await native.for_platform("instagram").post_reply(on("parent-9"), IG_USER, "r1", TEXT)
    write_credentials(credentials, refresh_tokens={CHANNEL: "1//revoked"})
    with pytest.raises(PermanentError, match="must grant access again"):
        await native.for_platform("youtube").post_reply(on("parent-10"), CHANNEL, "r2", TEXT)
    assert [p["platform"] for p in posts(platform)] == ["instagram"]


@pytest.mark.parametrize("platform_name, account", [("youtube", CHANNEL), ("instagram", IG_USER),
                                                    ("tiktok", "acct")])
async def test_a_reply_to_a_deleted_comment_is_comment_gone_and_nothing_is_posted(
        native, platform, platform_name, account):
    deleted(platform, platform_name, "gone-1")
    api = native.for_platform(platform_name)
    with pytest.raises(CommentGone):
        await api.post_reply(on("gone-1"), account, "r1", TEXT)
    if platform_name != "tiktok":  # the generic contract has no look-up
        with pytest.raises(CommentGone):
            await api.find_reply(on("gone-1"), account, TEXT)
        with pytest.raises(CommentGone):  # a reply to a reply goes under the thread, which is gone
            await api.post_reply(on("reply-1", parent_id="gone-1"), account, "r2", TEXT)
    assert posts(platform) == []


async def test_other_permanent_errors_are_not_comment_gone(native, platform, tmp_path):
    """Missing or refused credentials, an unknown platform: still dead letters for the operator to fix."""
    write_credentials(tmp_path / "credentials.json", ig_tokens={IG_USER: "expired-token"})
    deleted(platform, "youtube", "gone-2")
    refusals = [
        ("youtube", on("parent-11"), "UCnobody"),
        ("youtube", on("gone-2"), "UCnobody"),  # no grant, whatever became of the comment
        ("instagram", on("parent-11"), IG_USER),  # code 190: the token expired
        ("myspace", on("parent-11"), "acct"),  # 404: a platform the gateway does not know
    ]
    for platform_name, comment, account in refusals:
        with pytest.raises(PermanentError) as refused:
            await native.for_platform(platform_name).post_reply(comment, account, "r1", TEXT)
        assert not isinstance(refused.value, CommentGone), refused.value
    assert posts(platform) == []


@pytest.mark.parametrize("platform_name, account", [("youtube", CHANNEL), ("instagram", IG_USER)])
async def test_a_reply_to_a_reply_goes_into_its_thread(native, platform, platform_name, account):
    """Both platforms take replies under top-level comments only."""
    api = native.for_platform(platform_name)
    await api.post_reply(on("reply-9", parent_id="thread-9"), account, "r1", TEXT)
    again = await api.post_reply(on("reply-9", parent_id="thread-9"), account, "r1", TEXT)
    (post,) = posts(platform, platform=platform_name)
    assert post["comment_id"] == "thread-9" and again.replayed


async def start_publisher(stack, platform, kafka_bootstrap: str, tmp_path, **env: str) -> None:
    """The publisher service posting through the simulated native APIs, from the end of replies.approved."""
    credentials = tmp_path / "credentials.json"
    write_credentials(credentials)
    stack.extra_env.update({"PLATFORM_BASE_URL": platform.url, "YOUTUBE_API_BASE_URL": platform.url,
                            "YOUTUBE_TOKEN_URL": f"{platform.url}/token",
                            "INSTAGRAM_API_BASE_URL": f"{platform.url}/v21.0",
                            "PLATFORM_CREDENTIALS_FILE": str(credentials), **env})
    await group_starts_at_end(kafka_bootstrap, f"{stack.extra_env['KAFKA_GROUP_PREFIX']}.publisher",
                              REPLIES_APPROVED.name)
    stack.start_service("publisher")
    await asyncio.to_thread(stack.wait_ready, lambda *_: None, 60)


async def cooks_on_each_platform(kind: str, settings: Settings) -> tuple[str, str]:
    """Two new creators in auto mode, one replying as CHANNEL on YouTube, one as IG_USER on Instagram."""
    tag = uuid.uuid4().hex[:6]
    on_youtube, on_instagram = f"yt-{kind}-{tag}", f"ig-{kind}-{tag}"
    await put_profiles([
        CreatorProfile(creator_id=on_youtube, display_name="Cook", persona="A cook.", mode="auto",
                       platform_accounts={"youtube": CHANNEL}),
        CreatorProfile(creator_id=on_instagram, display_name="Cook", persona="A cook.", mode="auto",
                       platform_accounts={"instagram": IG_USER}),
    ], settings)
    return on_youtube, on_instagram


def approved(creator: str, platform_name: str, i: int, profile_version: int = 1) -> ReplyVerdict:
    comment = Comment(platform=platform_name, comment_id=f"{creator}-c{i}", creator_id=creator, post_id="v1",
                      author_id="a1", author_name="Ann", text="How long?", created_at=datetime.now(UTC))
    return ReplyVerdict(comment=comment, reply_id=reply_id_for(comment.platform, comment.comment_id),
                        text=f"Reply {i}. [AI reply]", outcome=Outcome.approved, policy_version="t",
                        profile_version=profile_version)


@pytest.mark.kafka
async def test_the_publisher_posts_a_reply_drafted_twice_once_where_the_platform_has_no_idempotency_key(
        platform, stack, kafka_bootstrap, tmp_path):
    """A redelivered comment can be drafted again and approved with other text; both verdicts reach the
    publisher, one right after the other (before its ledger reads the first back). YouTube must get one post."""
    creator = f"cook-{uuid.uuid4().hex[:6]}"
    settings = Settings(kafka_bootstrap_servers=kafka_bootstrap)
    await put_profiles([CreatorProfile(creator_id=creator, display_name="Cook", persona="A cook.", mode="auto",
                                       platform_accounts={"youtube": CHANNEL})], settings)
    await start_publisher(stack, platform, kafka_bootstrap, tmp_path)
    comment = Comment(platform="youtube", comment_id=f"yt-{uuid.uuid4().hex[:8]}", creator_id=creator, post_id="v1",
                      author_id="a1", author_name="Ann", text="How long?", created_at=datetime.now(UTC))
    drafts = [ReplyVerdict(comment=comment, reply_id=reply_id_for(comment.platform, comment.comment_id), text=text,
                           outcome=Outcome.approved, policy_version="test", profile_version=1)
              for text in ("Rest it an hour! [AI reply]", "An hour of rest does it. [AI reply]")]
    async with TopicReader(kafka_bootstrap, REPLIES_PUBLISHED.name) as reader, \
            EventProducer(settings, "test", [REPLIES_APPROVED]) as producer:
        await producer.publish([Emit(REPLIES_APPROVED, d) for d in drafts])
        records = await reader.collect(lambda rs: sum(comment.comment_id.encode() in r.value for r in rs) >= 2)
    out = [ReplyPublished.model_validate_json(r.value) for r in records if comment.comment_id.encode() in r.value]
    (post,) = posts(platform, comment_id=comment.comment_id)
    assert post["text"] == drafts[0].text
    assert {(p.platform_reply_id, p.text) for p in out} == {(post["platform_reply_id"], drafts[0].text)}


@pytest.mark.parametrize("platform_name, account, other", [("youtube", CHANNEL, OTHER_CHANNEL),
                                                             ("instagram", IG_USER, OTHER_IG_USER)])
async def test_reconciliation_reads_every_page_of_a_busy_thread(native, platform, platform_name, account, other):
    api = native.for_platform(platform_name)
    for i in range(100):  # a full first page (100 per page) of other replies
        await api.post_reply(on("busy"), other, f"o{i}", f"Reply {i} [AI reply]")
    faults(platform, timeout_next=1, timeout_sleep_s=3)
    with pytest.raises(TransientError):
        await api.post_reply(on("busy"), account, "r1", TEXT)
    again = await api.post_reply(on("busy"), account, "r1", TEXT)  # ours is the 101st: on the second page
    ours = [p for p in posts(platform, comment_id="busy") if p["account_id"] == account]
    assert len(ours) == 1 and again.replayed and again.platform_reply_id == ours[0]["platform_reply_id"]


@pytest.mark.kafka
async def test_one_platform_down_holds_back_only_its_replies_which_go_out_once_in_order_when_it_is_back(
        platform, stack, kafka_bootstrap, tmp_path):
    """YouTube's quota is spent until midnight Pacific: Instagram replies must still go out meanwhile, and the pod
    stays ready (it still does its work for Instagram; ReplyflowPublishFailing names YouTube)."""
    settings = Settings(kafka_bootstrap_servers=kafka_bootstrap)
    on_youtube, on_instagram = await cooks_on_each_platform("cook", settings)
    await start_publisher(stack, platform, kafka_bootstrap, tmp_path, RETRY_BACKOFF_INITIAL_S="0.2",
                          RETRY_BACKOFF_MAX_S="1")

    youtube = [approved(on_youtube, "youtube", i) for i in range(3)]
    instagram = [approved(on_instagram, "instagram", i) for i in range(3)]

    def published(records, verdicts) -> list[str]:
        ids = {v.reply_id for v in verdicts}
        return [e.reply_id for e in (ReplyPublished.model_validate_json(r.value) for r in records) if e.reply_id in ids]

    faults(platform, youtube_quota_exceeded=True)
    async with TopicReader(kafka_bootstrap, REPLIES_PUBLISHED.name) as reader, \
            EventProducer(settings, "test", [REPLIES_APPROVED]) as producer:
        interleaved = [v for pair in zip(youtube, instagram, strict=True) for v in pair]
        await producer.publish([Emit(REPLIES_APPROVED, v) for v in interleaved])
        records = await reader.collect(lambda rs: len(set(published(rs, instagram))) == 3)
        assert (scraped(stack.url("publisher"), "replyflow_messages_processed_total", service="publisher",
                        topic=REPLIES_APPROVED.name, result="deferred") or 0) >= 1
        assert not published(records, youtube)
        deferred = scraped(stack.url("publisher"), "replyflow_messages_processed_total", service="publisher",
                           topic=REPLIES_APPROVED.name, result="deferred")
        await asyncio.to_thread(wait_for, lambda: scraped(
            stack.url("publisher"), "replyflow_messages_processed_total", service="publisher",
            topic=REPLIES_APPROVED.name, result="deferred") > deferred, 30, "YouTube retried")
        ready = httpx.get(f"{stack.url('publisher')}/readyz")
        assert ready.status_code == 200, ready.text  # YouTube's replies still wait: not the pod's fault

        faults(platform, youtube_quota_exceeded=False)  # midnight Pacific
        records += await reader.collect(lambda rs: len(set(published(records + rs, youtube))) == 3)
        await asyncio.sleep(2)
        records += await reader.read_to_end()
    assert sorted(published(records, instagram)) == sorted(v.reply_id for v in instagram)
    assert published(records, youtube) == [v.reply_id for v in youtube]  # once each, in order
    assert [p["comment_id"] for p in posts(platform, platform="youtube")] == [v.comment_id for v in youtube]
    assert len(posts(platform, platform="instagram")) == 3


@pytest.mark.kafka
async def test_a_publisher_no_platform_takes_replies_from_is_not_ready_until_one_does(
        platform, stack, kafka_bootstrap, tmp_path):
    settings = Settings(kafka_bootstrap_servers=kafka_bootstrap)
    on_youtube, on_instagram = await cooks_on_each_platform("down", settings)
    await start_publisher(stack, platform, kafka_bootstrap, tmp_path, RETRY_BACKOFF_INITIAL_S="0.2",
                          RETRY_BACKOFF_MAX_S="1")
    ready = f"{stack.url('publisher')}/readyz"
    faults(platform, error_rate=1.0, error_status=503)  # every platform answers 503
    async with EventProducer(settings, "test", [REPLIES_APPROVED]) as producer:
        await producer.publish([Emit(REPLIES_APPROVED, approved(creator, name, 0))
                                for creator, name in ((on_youtube, "youtube"), (on_instagram, "instagram"))])
        await asyncio.to_thread(wait_for, lambda: httpx.get(ready).status_code == 503, 30, "not ready")
        assert "503" in httpx.get(ready).json()["failing"]
        faults(platform, error_rate=0.0)
        await asyncio.to_thread(wait_for, lambda: httpx.get(ready).status_code == 200, 30, "ready again")
    assert len(posts(platform, platform="youtube")) == len(posts(platform, platform="instagram")) == 1


@pytest.mark.kafka
async def test_a_reply_nobody_reviewed_waits_for_review_if_the_creator_changed_their_profile_since_it_was_checked(
        platform, stack, kafka_bootstrap, tmp_path):
    """Say a platform was down: approved replies wait in the publisher while the creator switches to review, or
    bans a word. What verify checked under the old profile is not posted under the new one unreviewed."""
    tag = uuid.uuid4().hex[:6]
    switched, edited, unchanged = f"to-review-{tag}", f"edited-{tag}", f"same-{tag}"
    settings = Settings(kafka_bootstrap_servers=kafka_bootstrap)
    await put_profiles([
        CreatorProfile(creator_id=switched, display_name="Cook", persona="A cook.", mode="review", version=2,
                       platform_accounts={"youtube": CHANNEL}),
        CreatorProfile(creator_id=edited, display_name="Cook", persona="A cook.", mode="auto", version=2,
                       banned_words=["reply"], platform_accounts={"youtube": CHANNEL}),
        CreatorProfile(creator_id=unchanged, display_name="Cook", persona="A cook.", mode="auto", version=1,
                       platform_accounts={"youtube": CHANNEL}),
    ], settings)
    await start_publisher(stack, platform, kafka_bootstrap, tmp_path)
    checked_under_v1 = {creator: approved(creator, "youtube", 0) for creator in (switched, edited, unchanged)}
    async with TopicReader(kafka_bootstrap, REPLIES_REVIEW.name, REPLIES_PUBLISHED.name) as reader, \
            EventProducer(settings, "test", [REPLIES_APPROVED]) as producer:
        await producer.publish([Emit(REPLIES_APPROVED, v) for v in checked_under_v1.values()])
        records = await reader.collect(lambda rs: len(rs) >= 3)
    held = {ReplyVerdict.model_validate_json(r.value).creator_id: ReplyVerdict.model_validate_json(r.value)
            for r in records if r.topic == REPLIES_REVIEW.name}
    published = {ReplyPublished.model_validate_json(r.value).comment.creator_id
                 for r in records if r.topic == REPLIES_PUBLISHED.name}
    assert set(held) == {switched, edited} and published == {unchanged}
    assert held[switched].outcome == Outcome.held and held[switched].reasons[-1].code == "creator_reviews_all"
    # Held now, as a new event: the control API lists and pages holds by when they were held.
    assert held[switched].occurred_at > checked_under_v1[switched].occurred_at
    assert held[switched].event_id != checked_under_v1[switched].event_id
    assert held[edited].reasons[-1].code == "profile_changed"
    assert [p["comment_id"] for p in posts(platform, platform="youtube")] == [checked_under_v1[unchanged].comment_id]


@pytest.mark.kafka
async def test_a_reply_the_platform_will_never_take_is_dead_lettered_with_why_and_counted(
        platform, stack, kafka_bootstrap, tmp_path):
    """A channel whose grant is not in the credentials file: no retry helps; the reply is kept in the dead-letter
    topic (replayed once the grant is back) and the platform's calls panel shows it refused."""
    tag = uuid.uuid4().hex[:6]
    ungranted, fine = f"no-grant-{tag}", f"granted-{tag}"
    await put_profiles([
        CreatorProfile(creator_id=ungranted, display_name="Cook", persona="A cook.", mode="auto",
                       platform_accounts={"youtube": f"UCnoGrant{tag}"}),
        CreatorProfile(creator_id=fine, display_name="Cook", persona="A cook.", mode="auto",
                       platform_accounts={"youtube": CHANNEL}),
    ], Settings(kafka_bootstrap_servers=kafka_bootstrap))
    await start_publisher(stack, platform, kafka_bootstrap, tmp_path)
    refused, good = approved(ungranted, "youtube", 0), approved(fine, "youtube", 1)
    async with TopicReader(kafka_bootstrap, REPLIES_APPROVED.dlq, REPLIES_PUBLISHED.name, DECISIONS.name) as reader, \
            EventProducer(Settings(kafka_bootstrap_servers=kafka_bootstrap), "test", [REPLIES_APPROVED]) as producer:
        await producer.publish([Emit(REPLIES_APPROVED, refused), Emit(REPLIES_APPROVED, good)])
        records = await reader.collect(lambda rs: any(r.topic == REPLIES_APPROVED.dlq for r in rs) and any(
            r.topic == REPLIES_PUBLISHED.name and good.reply_id.encode() in r.value for r in rs) and any(
            r.topic == DECISIONS.name and refused.reply_id.encode() in r.value for r in rs))
    (dead,) = [r for r in records if r.topic == REPLIES_APPROVED.dlq]
    headers = {k: v.decode() for k, v in dead.headers}
    assert headers["x-exception-class"] == "PermanentError" and "no YouTube credentials" in headers[
        "x-exception-message"]
    assert ReplyVerdict.model_validate_json(dead.value).reply_id == refused.reply_id
    decisions = [Decision.model_validate_json(r.value) for r in records if r.topic == DECISIONS.name]
    assert [d.outcome for d in decisions if d.reply_id == refused.reply_id] == [Outcome.dead_lettered]
    url = stack.url("publisher")
    assert scraped(url, "replyflow_publish_attempts_total", platform="youtube", result="refused") >= 1
    assert scraped(url, "replyflow_publish_attempts_total", platform="youtube", result="posted") == 1
    assert scraped(url, "replyflow_decisions_total", stage="dead_letter", outcome="dead_lettered",
                   reason="dead_lettered") == 1


@pytest.mark.kafka
async def test_a_reply_to_a_comment_deleted_before_it_went_out_is_skipped_with_why_not_dead_lettered(
        platform, stack, kafka_bootstrap, tmp_path):
    """Viewers delete comments all the time, and a held reply can wait days: the creator is told why their reply
    did not go out, nobody is paged, and the account's next reply still goes out."""
    settings = Settings(kafka_bootstrap_servers=kafka_bootstrap)
    on_youtube, on_instagram = await cooks_on_each_platform("gone", settings)
    await start_publisher(stack, platform, kafka_bootstrap, tmp_path)
    gone = [approved(on_youtube, "youtube", 0), approved(on_instagram, "instagram", 0)]
    good = approved(on_youtube, "youtube", 1)  # same account, after the gone one
    for reply in gone:
        deleted(platform, reply.comment.platform.value, reply.comment_id)

    def decided(reply_ids: set[str]) -> Callable[[list], bool]:
        return lambda rs: reply_ids <= {Decision.model_validate_json(r.value).reply_id for r in rs
                                        if r.topic == DECISIONS.name}

    async with TopicReader(kafka_bootstrap, REPLIES_APPROVED.dlq, REPLIES_PUBLISHED.name, DECISIONS.name) as reader, \
            EventProducer(settings, "test", [REPLIES_APPROVED]) as producer:
        await producer.publish([Emit(REPLIES_APPROVED, v) for v in [*gone, good]])
        records = await reader.collect(decided({v.reply_id for v in [*gone, good]}))
        # The comment of a reply already out is deleted, then the reply comes again (a redelivery): it went out
        # before, so it stays published. The next reply on the account's partition tells it was handled.
        deleted(platform, "youtube", good.comment_id)
        later = approved(on_youtube, "youtube", 2)
        await producer.publish([Emit(REPLIES_APPROVED, good), Emit(REPLIES_APPROVED, later)])
        records += await reader.collect(decided({later.reply_id}))
        await asyncio.sleep(1)
        records += await reader.read_to_end()
    decisions = [Decision.model_validate_json(r.value) for r in records if r.topic == DECISIONS.name]
    for reply in gone:
        (decision,) = [d for d in decisions if d.reply_id == reply.reply_id]
        assert decision.outcome == Outcome.skipped, decision
        (reason,) = decision.reasons
        assert (reason.check, reason.code, reason.action) == ("platform", "comment_gone", Action.skip)
        assert reply.comment.platform.value in reason.message and "deleted" in reason.message
        assert posts(platform, comment_id=reply.comment_id) == []
    ids = {v.reply_id for v in [*gone, good, later]}
    assert not [r for r in records if r.topic == REPLIES_APPROVED.dlq
                and ReplyVerdict.model_validate_json(r.value).reply_id in ids]
    # Published once; the redelivery records it again (this publisher posted it) or nothing (its ledger has it).
    assert {d.outcome for d in decisions if d.reply_id == good.reply_id} == {Outcome.published}
    (post,) = posts(platform, comment_id=good.comment_id)
    assert post["text"] == good.text
    assert [d.outcome for d in decisions if d.reply_id == later.reply_id] == [Outcome.published]
    url = stack.url("publisher")
    for platform_name in ("youtube", "instagram"):
        assert scraped(url, "replyflow_publish_attempts_total", platform=platform_name, result="comment_gone") == 1
        assert not scraped(url, "replyflow_publish_attempts_total", platform=platform_name, result="refused")
    assert scraped(url, "replyflow_decisions_total", stage="publish", outcome="skipped", reason="comment_gone") == 2


@pytest.mark.kafka
@pytest.mark.parametrize("mode_after", ["auto", "off"])
async def test_a_reply_the_platform_stored_before_its_answer_was_lost_is_published_not_held_and_not_posted_again(
        platform, stack, kafka_bootstrap, tmp_path, mode_after):
    """YouTube stores the reply but the answer never comes; before the retry the creator changes their profile (or
    turns AI replies off). The reply is out: it is recorded as published, not held for review, where an edit of it
    would go out as a second reply under the comment (reconciliation matches by text), nor skipped."""
    creator = f"lost-{uuid.uuid4().hex[:6]}"
    settings = Settings(kafka_bootstrap_servers=kafka_bootstrap)

    def profile(version: int, mode: str) -> CreatorProfile:
        return CreatorProfile(creator_id=creator, display_name="Cook", persona="A cook.", mode=mode,
                              version=version, platform_accounts={"youtube": CHANNEL})

    def decided(reply_id: str) -> Callable[[list], bool]:
        return lambda rs: any(r.topic == DECISIONS.name and reply_id.encode() in r.value for r in rs)

    await put_profiles([profile(1, "auto")], settings)
    await start_publisher(stack, platform, kafka_bootstrap, tmp_path, PLATFORM_TIMEOUT_S="1",
                          RETRY_BACKOFF_INITIAL_S="0.5", RETRY_BACKOFF_MAX_S="1")
    reply = approved(creator, "youtube", 0)
    faults(platform, timeout_next=1, timeout_sleep_s=3)  # stored, but the answer comes after the 1 s timeout
    async with TopicReader(kafka_bootstrap, REPLIES_PUBLISHED.name, REPLIES_REVIEW.name, DECISIONS.name) as reader, \
            EventProducer(settings, "test", [REPLIES_APPROVED]) as producer:
        await producer.publish([Emit(REPLIES_APPROVED, reply)])
        await asyncio.to_thread(wait_for, lambda: posts(platform, comment_id=reply.comment_id), 30, "the post")
        faults(platform, youtube_quota_exceeded=True)  # the retries fail until the publisher has the new profile
        await put_profiles([profile(2, mode_after)], settings)
        await asyncio.sleep(3)  # the publisher follows creators.config within a second
        faults(platform, youtube_quota_exceeded=False)
        records = await reader.collect(decided(reply.reply_id))
        # The creator edits the reply (as if it had been held); then a reply checked under the new profile, which
        # comes after the edit on the account's partition: once it is decided, so was the edit.
        edit = reply.model_copy(update={"text": "Rest the dough an hour. [AI reply]", "profile_version": 2,
                                        "reasons": [Reason(check="review", code="creator_edited",
                                                           action=Action.allow, message="Edited.")]})
        later = approved(creator, "youtube", 1, profile_version=2)
        await producer.publish([Emit(REPLIES_APPROVED, edit), Emit(REPLIES_APPROVED, later)])
        records += await reader.collect(decided(later.reply_id))
    ours = [r for r in records if reply.reply_id.encode() in r.value]
    outcomes = {Decision.model_validate_json(r.value).outcome for r in ours if r.topic == DECISIONS.name}
    assert outcomes == {Outcome.published} and REPLIES_REVIEW.name not in {r.topic for r in ours}
    (post,) = posts(platform, comment_id=reply.comment_id)
    # The edit meets the reply already out (the ledger, or what this publisher posted): at most the same record again.
    out = {(e.platform_reply_id, e.text) for e in (ReplyPublished.model_validate_json(r.value)
                                                   for r in ours if r.topic == REPLIES_PUBLISHED.name)}
    assert out == {(post["platform_reply_id"], reply.text)} and post["text"] == reply.text
