"""The platform simulator over real HTTP: uvicorn on a loopback port, httpx as the client."""

from __future__ import annotations

import contextlib
import json
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

try:
    from loadtest import platform_simulator as ps
except ModuleNotFoundError:  # `loadtest` lives at the repository root, next to `services`
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    from loadtest import platform_simulator as ps

REPLY = {"account_id": "UCmaracooks01", "text": "Thanks so much! [AI reply]", "reply_id": "r-1"}


def url(comment_id: str = "yt-000101", platform: str = "youtube") -> str:
    return f"/v1/{platform}/comments/{comment_id}/replies"


@contextlib.contextmanager
def client_for(config: ps.SimulatorConfig) -> Iterator[httpx.Client]:
    with ps.serve_in_thread(config) as running, httpx.Client(base_url=running.url, timeout=5) as client:
        yield client


@pytest.fixture(scope="module")
def shared() -> Iterator[httpx.Client]:
    with client_for(ps.SimulatorConfig(seed=7)) as client:
        yield client


@pytest.fixture
def sim(shared: httpx.Client) -> httpx.Client:
    """One server for the module; every test starts from ``POST /admin/reset``."""
    assert shared.post("/admin/reset").status_code == 200
    return shared


def test_create_then_idempotent_replay(sim: httpx.Client) -> None:
    first = sim.post(url(), json=REPLY, headers={"Idempotency-Key": "k-1"})
    assert first.status_code == 201, first.text
    body = first.json()
    assert body["platform_reply_id"]
    assert body["comment_id"] == "yt-000101"
    assert body["platform"] == "youtube"
    assert body["account_id"] == REPLY["account_id"]
    assert body["text"] == REPLY["text"]
    assert body["created_at"].endswith("Z")

    again = sim.post(url(), json=REPLY, headers={"Idempotency-Key": "k-1"})
    assert again.status_code == 200
    assert again.json() == body

    listing = sim.get("/v1/posts").json()
    assert len(listing["posts"]) == 1
    assert listing["duplicates_rejected"] == 1
    assert listing["posts"][0]["idempotency_key"] == "k-1"

    other = sim.post(url("ig-000201", "instagram"), json=REPLY, headers={"Idempotency-Key": "k-2"})
    assert other.status_code == 201
    assert other.json()["platform_reply_id"] != body["platform_reply_id"]
    only_ig = sim.get("/v1/posts", params={"platform": "instagram"}).json()
    assert [p["comment_id"] for p in only_ig["posts"]] == ["ig-000201"]
    assert only_ig["duplicates_rejected"] == 0
    by_comment = sim.get("/v1/posts", params={"comment_id": "yt-000101"}).json()
    assert len(by_comment["posts"]) == 1 and by_comment["duplicates_rejected"] == 1

    metrics = sim.get("/metrics").text
    assert 'platform_sim_reply_requests_total{platform="youtube",status="201"} 1.0' in metrics
    assert 'platform_sim_reply_requests_total{platform="youtube",status="200"} 1.0' in metrics
    assert 'platform_sim_idempotent_replays_total{platform="youtube"} 1.0' in metrics
    assert sim.get("/healthz").json()["status"] == "ok"


def test_concurrent_repeats_create_one_post(sim: httpx.Client) -> None:
    sim.post("/admin/faults", json={"latency_ms": 100})  # all requests overlap in the latency sleep

    def post(_: int) -> int:
        return sim.post(url(), json=REPLY, headers={"Idempotency-Key": "same"}).status_code

    with ThreadPoolExecutor(max_workers=8) as pool:
        statuses = sorted(pool.map(post, range(8)))
    assert statuses == [200] * 7 + [201]
    listing = sim.get("/v1/posts").json()
    assert len(listing["posts"]) == 1 and listing["duplicates_rejected"] == 7


def test_same_key_different_body_conflicts(sim: httpx.Client) -> None:
    assert sim.post(url(), json=REPLY, headers={"Idempotency-Key": "k-1"}).status_code == 201
    changed = sim.post(url(), json={**REPLY, "text": "something else"}, headers={"Idempotency-Key": "k-1"})
    assert changed.status_code == 409
    assert "error" in changed.json()
    other_comment = sim.post(url("yt-000999"), json=REPLY, headers={"Idempotency-Key": "k-1"})
    assert other_comment.status_code == 409
    listing = sim.get("/v1/posts").json()
    assert len(listing["posts"]) == 1
    assert listing["posts"][0]["text"] == REPLY["text"]
    assert listing["conflicts_rejected"] == 2


@pytest.mark.parametrize(
    ("headers", "content", "needle"),
    [
        ({}, json.dumps(REPLY), "Idempotency-Key"),
        ({"Idempotency-Key": ""}, json.dumps(REPLY), "Idempotency-Key"),
        ({"Idempotency-Key": "k"}, "not json", "JSON"),
        ({"Idempotency-Key": "k"}, json.dumps([1, 2]), "invalid body"),
        ({"Idempotency-Key": "k"}, json.dumps({"account_id": "a", "text": "hi"}), "reply_id"),
        ({"Idempotency-Key": "k"}, json.dumps({**REPLY, "text": ""}), "text"),
        ({"Idempotency-Key": "k"}, json.dumps({**REPLY, "extra": 1}), "extra"),
    ],
)
def test_bad_requests_are_400(sim: httpx.Client, headers: dict, content: str, needle: str) -> None:
    resp = sim.post(url(), content=content, headers={"Content-Type": "application/json", **headers})
    assert resp.status_code == 400
    assert needle in resp.json()["error"]
    assert sim.get("/v1/posts").json()["posts"] == []


def test_unknown_platform_is_404(sim: httpx.Client) -> None:
    resp = sim.post(url(platform="myspace"), json=REPLY, headers={"Idempotency-Key": "k"})
    assert resp.status_code == 404
    assert "error" in resp.json()


def test_fail_next_then_recover(sim: httpx.Client) -> None:
    faults = sim.post("/admin/faults", json={"fail_next": 2, "error_status": 502}).json()
    assert faults["fail_next"] == 2 and faults["error_status"] == 502
    statuses = [sim.post(url(), json=REPLY, headers={"Idempotency-Key": "k-1"}).status_code for _ in range(3)]
    assert statuses == [502, 502, 201]
    assert len(sim.get("/v1/posts").json()["posts"]) == 1
    assert sim.get("/admin/faults").json()["fail_next"] == 0
    assert 'platform_sim_injected_faults_total{kind="fail_next"} 2.0' in sim.get("/metrics").text
    assert sim.post("/admin/faults", json={"fail_next": -1}).status_code == 400
    assert sim.post("/admin/faults", json={"nonsense": 1}).status_code == 400


def test_error_rate_is_seeded() -> None:
    def run() -> list[int]:
        with client_for(ps.SimulatorConfig(seed=3, faults=ps.Faults(error_rate=0.5))) as client:
            return [
                client.post(url(f"c{i}"), json=REPLY, headers={"Idempotency-Key": f"k{i}"}).status_code
                for i in range(20)
            ]

    first, second = run(), run()
    assert first == second
    assert set(first) == {201, 503}


def test_rate_limit_429_with_retry_after(sim: httpx.Client) -> None:
    sim.post("/admin/faults", json={"rate_limit_per_account_per_minute": 2})
    for i in range(2):
        assert sim.post(url(f"c{i}"), json=REPLY, headers={"Idempotency-Key": f"k{i}"}).status_code == 201
    limited = sim.post(url("c2"), json=REPLY, headers={"Idempotency-Key": "k2"})
    assert limited.status_code == 429
    assert 1 <= int(limited.headers["Retry-After"]) <= 60
    # a replay creates nothing, so it is not limited; another account has its own budget
    assert sim.post(url("c0"), json=REPLY, headers={"Idempotency-Key": "k0"}).status_code == 200
    other = {**REPLY, "account_id": "someone-else"}
    assert sim.post(url("c3"), json=other, headers={"Idempotency-Key": "k3"}).status_code == 201
    assert len(sim.get("/v1/posts").json()["posts"]) == 3


def test_timeout_next_records_the_post_before_stalling(sim: httpx.Client) -> None:
    sim.post("/admin/faults", json={"timeout_next": 1, "timeout_sleep_s": 30})
    with pytest.raises(httpx.ReadTimeout):
        sim.post(url(), json=REPLY, headers={"Idempotency-Key": "k-1"}, timeout=0.5)
    posts = sim.get("/v1/posts").json()["posts"]
    assert len(posts) == 1  # the platform did it although the client never heard back
    retry = sim.post(url(), json=REPLY, headers={"Idempotency-Key": "k-1"})
    assert retry.status_code == 200
    assert retry.json()["platform_reply_id"] == posts[0]["platform_reply_id"]
    assert sim.post("/admin/reset").status_code == 200  # also releases the stalled answer
    assert sim.get("/v1/posts").json() == {"posts": [], "duplicates_rejected": 0, "conflicts_rejected": 0}


def test_journal_survives_restart(tmp_path: Path) -> None:
    journal = tmp_path / "posts.jsonl"
    with client_for(ps.SimulatorConfig(journal=journal)) as client:
        created = client.post(url(), json=REPLY, headers={"Idempotency-Key": "k-1"})
        assert created.status_code == 201
        assert client.post(url(), json=REPLY, headers={"Idempotency-Key": "k-1"}).status_code == 200
    lines = [json.loads(line) for line in journal.read_text().splitlines()]
    assert [rec["event"] for rec in lines] == ["post", "replay"]

    with client_for(ps.SimulatorConfig(journal=journal)) as client:
        listing = client.get("/v1/posts").json()
        assert [p["platform_reply_id"] for p in listing["posts"]] == [created.json()["platform_reply_id"]]
        assert listing["duplicates_rejected"] == 1
        replay = client.post(url(), json=REPLY, headers={"Idempotency-Key": "k-1"})
        assert replay.status_code == 200 and replay.json() == created.json()
        conflict = client.post(url(), json={**REPLY, "text": "x"}, headers={"Idempotency-Key": "k-1"})
        assert conflict.status_code == 409
        fresh = client.post(url("yt-2"), json=REPLY, headers={"Idempotency-Key": "k-2"})
        assert fresh.status_code == 201
        assert fresh.json()["platform_reply_id"] != created.json()["platform_reply_id"]
        assert len(client.get("/v1/posts").json()["posts"]) == 2


def test_latency_is_added(sim: httpx.Client) -> None:
    assert sim.post("/admin/faults", json={"latency_ms": 150}).json()["latency_ms"] == 150
    started = time.monotonic()
    assert sim.post(url(), json=REPLY, headers={"Idempotency-Key": "k-1"}).status_code == 201
    assert time.monotonic() - started >= 0.15


def test_cli_rejects_bad_flags() -> None:
    with pytest.raises(SystemExit):
        ps.main(["--error-rate", "2"])


def test_runs_as_a_program(tmp_path: Path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    root = Path(ps.__file__).resolve().parents[1]
    cmd = [sys.executable, "-m", "loadtest.platform_simulator", "--port", str(port), "--log-level", "warning"]
    proc = subprocess.Popen([*cmd, "--journal", str(tmp_path / "j.jsonl")], cwd=root)
    try:
        deadline = time.monotonic() + 8
        while True:
            try:
                assert httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).json()["status"] == "ok"
                break
            except httpx.TransportError:
                assert proc.poll() is None and time.monotonic() < deadline, "simulator did not start"
                time.sleep(0.05)
        base = f"http://127.0.0.1:{port}"
        resp = httpx.post(base + url(), json=REPLY, headers={"Idempotency-Key": "k"}, timeout=2)
        assert resp.status_code == 201
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=8) in (0, -signal.SIGTERM)  # uvicorn re-raises the signal after shutdown
    assert json.loads((tmp_path / "j.jsonl").read_text())["body"] == resp.json()


def youtube_token(sim: httpx.Client, channel: str = "UCmara") -> dict[str, str]:
    grant = {"platform": "youtube", "account_id": channel, "client_id": "cid", "client_secret": "cs",
             "refresh_token": f"1//{channel}"}
    assert sim.post("/admin/credentials", json=grant).status_code == 200
    token = sim.post("/token", data={"grant_type": "refresh_token", "client_id": "cid", "client_secret": "cs",
                                     "refresh_token": f"1//{channel}"}).json()["access_token"]
    return {"Authorization": f"Bearer {token}"}


def viewer(comment_id: str, minute: int, parent: str | None = None, channel: str = "UCmara") -> dict:
    return {"comment_id": comment_id, "channel_id": channel, "video_id": "v1", "author_channel_id": "UCann",
            "author_name": "Ann", "text": f"hi {comment_id}", "published_at": f"2025-11-29T10:{minute:02d}:00Z",
            "parent_id": parent}


def test_comment_threads_list_the_channels_threads_newest_first_with_their_replies(sim: httpx.Client) -> None:
    headers = youtube_token(sim)
    comments = [viewer("t1", 1), viewer("t2", 2), viewer("t3", 3), viewer("r1", 4, parent="t1"),
                viewer("elsewhere", 5, channel="UCother")]
    assert sim.post("/admin/youtube/comments", json=comments).json() == {"added": 5}
    reply = sim.post("/youtube/v3/comments", params={"part": "snippet"}, headers=headers,
                     json={"snippet": {"parentId": "t1", "textOriginal": "thanks [AI reply]"}}).json()
    params = {"part": "snippet,replies", "allThreadsRelatedToChannelId": "UCmara", "maxResults": 2}
    first = sim.get("/youtube/v3/commentThreads", params=params, headers=headers).json()
    assert [t["id"] for t in first["items"]] == ["t3", "t2"]
    second = sim.get("/youtube/v3/commentThreads", params={**params, "pageToken": first["nextPageToken"]},
                     headers=headers).json()
    assert [t["id"] for t in second["items"]] == ["t1"] and "nextPageToken" not in second
    (t1,) = second["items"]
    assert t1["snippet"]["topLevelComment"]["snippet"]["publishedAt"] == "2025-11-29T10:01:00Z"
    assert t1["snippet"]["videoId"] == "v1" and t1["snippet"]["totalReplyCount"] == 2
    replies = t1["replies"]["comments"]
    assert [r["id"] for r in replies] == ["r1", reply["id"]]  # the viewer's, then the channel's (posted now)
    assert replies[1]["snippet"]["authorChannelId"]["value"] == "UCmara"
    assert replies[0]["snippet"]["parentId"] == "t1"


def test_comment_threads_answer_like_google_when_refused(sim: httpx.Client) -> None:
    headers = youtube_token(sim)
    params = {"part": "snippet", "allThreadsRelatedToChannelId": "UCmara"}
    assert sim.get("/youtube/v3/commentThreads", params=params).status_code == 401
    missing = sim.get("/youtube/v3/commentThreads", params={"part": "snippet"}, headers=headers)
    assert missing.status_code == 400 and "allThreadsRelatedToChannelId" in missing.text
    assert sim.post("/admin/faults", json={"youtube_quota_exceeded": True}).status_code == 200
    spent = sim.get("/youtube/v3/commentThreads", params=params, headers=headers)
    assert spent.status_code == 403 and spent.json()["error"]["errors"][0]["reason"] == "quotaExceeded"
    bad = sim.post("/admin/youtube/comments", json=[{**viewer("x", 1), "text": ""}])
    assert bad.status_code == 400 and "text" in bad.json()["error"]


def test_a_thread_lists_five_replies_and_comments_list_gives_them_all(sim: httpx.Client) -> None:
    headers = youtube_token(sim)
    sim.post("/admin/youtube/comments", json=[viewer("t1", 1), *(viewer(f"r{i}", 10 + i, parent="t1")
                                                                  for i in range(7))])
    (t1,) = sim.get("/youtube/v3/commentThreads", headers=headers, params={
        "part": "snippet,replies", "allThreadsRelatedToChannelId": "UCmara"}).json()["items"]
    assert t1["snippet"]["totalReplyCount"] == 7 and len(t1["replies"]["comments"]) == 5
    listed = sim.get("/youtube/v3/comments", headers=headers, params={"part": "snippet", "parentId": "t1",
                                                                       "maxResults": 4}).json()
    rest = sim.get("/youtube/v3/comments", headers=headers, params={
        "part": "snippet", "parentId": "t1", "maxResults": 4, "pageToken": listed["nextPageToken"]}).json()
    assert [c["id"] for c in listed["items"] + rest["items"]] == [f"r{i}" for i in range(7)]


def delete(sim: httpx.Client, platform: str, comment_id: str) -> None:
    resp = sim.post("/admin/deleted", json={"platform": platform, "comment_id": comment_id})
    assert resp.status_code == 200, resp.text


def test_a_reply_to_a_deleted_comment_is_410_on_the_generic_contract_after_validation(sim: httpx.Client) -> None:
    assert sim.post(url("gone-1", "tiktok"), json=REPLY, headers={"Idempotency-Key": "k-1"}).status_code == 201
    delete(sim, "tiktok", "gone-1")
    # Even the key used before: nothing can go out under a deleted comment.
    again = sim.post(url("gone-1", "tiktok"), json=REPLY, headers={"Idempotency-Key": "k-1"})
    assert again.status_code == 410 and "deleted" in again.json()["error"]
    assert sim.post(url("gone-1", "tiktok"), json=REPLY).status_code == 400  # validation first
    assert sim.post(url("gone-1", "youtube"), json=REPLY, headers={"Idempotency-Key": "k-2"}).status_code == 201
    listing = sim.get("/v1/posts").json()
    assert len(listing["posts"]) == 2 and listing["duplicates_rejected"] == 0
    bad = sim.post("/admin/deleted", json={"platform": "myspace", "comment_id": "x"})
    assert bad.status_code == 400 and "myspace" in bad.json()["error"]
    assert sim.post("/admin/deleted", json={"platform": "tiktok"}).status_code == 400
    sim.post("/admin/reset")  # forgets deletions
    assert sim.post(url("gone-1", "tiktok"), json=REPLY, headers={"Idempotency-Key": "k-3"}).status_code == 201


def test_youtube_answers_like_google_about_a_deleted_comment_and_no_longer_lists_it(sim: httpx.Client) -> None:
    headers = youtube_token(sim)
    sim.post("/admin/youtube/comments", json=[viewer("t1", 1), viewer("t2", 2), viewer("r1", 3, parent="t2"),
                                               viewer("r2", 4, parent="t2")])
    delete(sim, "youtube", "t1")
    delete(sim, "youtube", "r1")
    insert = sim.post("/youtube/v3/comments", params={"part": "snippet"}, headers=headers,
                      json={"snippet": {"parentId": "t1", "textOriginal": "thanks [AI reply]"}})
    assert insert.status_code == 404
    assert insert.json()["error"]["errors"][0]["reason"] == "parentCommentNotFound"
    listed = sim.get("/youtube/v3/comments", headers=headers, params={"part": "snippet", "parentId": "t1"})
    assert listed.status_code == 404 and listed.json()["error"]["errors"][0]["reason"] == "commentNotFound"
    (t2,) = sim.get("/youtube/v3/commentThreads", headers=headers, params={
        "part": "snippet,replies", "allThreadsRelatedToChannelId": "UCmara"}).json()["items"]
    assert t2["id"] == "t2" and [r["id"] for r in t2["replies"]["comments"]] == ["r2"]
    assert sim.get("/v1/posts").json()["posts"] == []


def test_instagram_answers_like_graph_about_a_deleted_comment(sim: httpx.Client) -> None:
    grant = {"platform": "instagram", "account_id": "1784", "access_token": "IGtoken"}
    assert sim.post("/admin/credentials", json=grant).status_code == 200
    delete(sim, "instagram", "17900001")
    posted = sim.post("/v21.0/17900001/replies", data={"message": "thanks [AI reply]", "access_token": "IGtoken"})
    listed = sim.get("/v21.0/17900001/replies", params={"fields": "id,text,from", "access_token": "IGtoken"})
    for answer in (posted, listed):
        assert answer.status_code == 400
        error = answer.json()["error"]
        assert (error["code"], error["error_subcode"]) == (100, 33) and "does not exist" in error["message"]
    assert sim.post("/v21.0/17900002/replies", data={"message": "hi", "access_token": "IGtoken"}).status_code == 200
    assert [p["comment_id"] for p in sim.get("/v1/posts").json()["posts"]] == ["17900002"]
