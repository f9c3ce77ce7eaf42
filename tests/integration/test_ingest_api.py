"""Ingest's HTTP API against a real broker: 202 only after Kafka has the events, clear 4xx otherwise."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import uuid
from datetime import UTC, datetime

import httpx
import pytest

from replyflow.events import CommentReceived
from replyflow.local.stack import INGEST_AUTH
from replyflow.schemas import OPENAPI_DIR, SCHEMA_DIR
from replyflow.topics import COMMENTS_RECEIVED
from tests.helpers import TopicReader, assert_documented, scraped, wait_for
from tests.integration.conftest import VERIFY_TOKEN, signed

pytestmark = pytest.mark.kafka


def comment(**over) -> dict:
    return {"platform": "youtube", "comment_id": f"it-{uuid.uuid4().hex[:10]}", "creator_id": "mara-cooks",
            "post_id": "v1", "author_id": "a1", "author_name": "Ann", "text": "Lovely bread!",
            "created_at": datetime.now(UTC).isoformat(), **over}


@pytest.fixture
def ingest(stack):
    stack.start_service("ingest")
    stack.wait_ready(log=lambda *_: None, timeout_s=60)
    return stack.url("ingest")


async def test_single_and_batch_comments_reach_the_topic_keyed_by_comment(ingest, kafka_bootstrap):
    single, batch = comment(), [comment(), comment(platform="instagram")]
    wanted = {single["comment_id"], *(c["comment_id"] for c in batch)}
    async with TopicReader(kafka_bootstrap, COMMENTS_RECEIVED.name) as reader:
        async with httpx.AsyncClient(base_url=ingest, headers=INGEST_AUTH) as http:
            r1 = await http.post("/v1/comments", json=single)
            r2 = await http.post("/v1/comments", json=batch)
        assert (r1.status_code, r1.json()["accepted"]) == (202, 1)
        assert (r2.status_code, r2.json()["accepted"]) == (202, 2)
        assert_documented(r1)
        assert_documented(r2)
        records = await reader.collect(
            lambda rs: wanted <= {CommentReceived.model_validate_json(r.value).comment_id for r in rs}
        )
    for record in records:
        event = CommentReceived.model_validate_json(record.value)
        if event.comment_id in wanted:
            assert record.key.decode() == event.comment_id
            assert event.schema_version == 1 and event.event_id


@pytest.mark.parametrize(
    ("body", "status", "says"),
    [
        (b"", 400, "empty"),
        (b"{not json", 400, "not valid JSON"),
        (b"[]", 400, "empty"),
        (b'{"platform": "youtube"}', 422, "comment_id"),
        (b"[" * 5000 + b"]" * 5000, 400, "nested too deeply"),
        (b'{"text": "\xff"}', 400, "not valid JSON"),
        (b"42", 400, "body is a number; send a comment object"),
        (b"null", 400, "body is null; send a comment object"),
        (b'"hello"', 400, "body is a string; send a comment object"),
        # Refused for its size before any item is validated: the work a request costs is bounded by the batch.
        (b"[" + b",".join([b"{}"] * 501) + b"]", 400, "at most 500 comments, got 501"),
    ],
)
async def test_bad_requests_get_a_4xx_that_says_what_is_wrong(ingest, body, status, says):
    async with httpx.AsyncClient(base_url=ingest, headers=INGEST_AUTH) as http:
        response = await http.post("/v1/comments", content=body, headers={"content-type": "application/json"})
    assert response.status_code == status
    assert says in response.text
    assert_documented(response)


async def test_a_batch_of_bad_comments_is_answered_with_the_first_hundred_problems(ingest):
    async with httpx.AsyncClient(base_url=ingest, headers=INGEST_AUTH) as http:
        response = await http.post("/v1/comments", json=[{}] * 500)  # seven missing fields each
    assert response.status_code == 422
    details = response.json()["details"]
    assert len(details) == 100 and details[0]["field"].startswith("0.")


async def test_field_errors_name_the_field(ingest):
    async with httpx.AsyncClient(base_url=ingest, headers=INGEST_AUTH) as http:
        response = await http.post("/v1/comments", json=[comment(), comment(text="", platform="myspace")])
    assert response.status_code == 422
    fields = {d["field"] for d in response.json()["details"]}
    assert {"1.text", "1.platform"} <= fields
    assert_documented(response)


async def test_only_callers_with_the_token_may_post_comments(ingest, stack):
    async with httpx.AsyncClient(base_url=ingest) as http:
        anonymous = await http.post("/v1/comments", json=comment())
        wrong = await http.post("/v1/comments", json=comment(), headers={"Authorization": "Bearer guess"})
        other_scheme = await http.post("/v1/comments", json=comment(), headers={"Authorization": "Basic eDp5"})
    for response in (anonymous, wrong, other_scheme):
        assert response.status_code == 401 and "INGEST_API_TOKEN" in response.json()["error"]
        assert response.headers["www-authenticate"] == "Bearer"
        assert_documented(response)
    stack.extra_env["INGEST_API_TOKEN"] = ""  # not configured: the route is off, whatever is sent
    stack.start_service("ingest", instance="ingest-open")
    wait_for(lambda: httpx.get(f"{stack.url('ingest-open')}/readyz").is_success, 60, "the second ingest ready")
    response = httpx.post(f"{stack.url('ingest-open')}/v1/comments", json=comment(), headers=INGEST_AUTH)
    assert response.status_code == 403 and "set INGEST_API_TOKEN" in response.json()["error"]
    assert_documented(response)


async def test_a_body_over_the_limit_is_refused_before_it_is_read_whole(ingest):
    async def endless():  # a chunked upload that would never end
        for _ in range(10_000):
            yield b" " * 65536

    # A declared length over the limit is answered before any of the body is read (raw HTTP: clients
    # will not send a length they do not mean).
    host, port = ingest.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(f"POST /v1/comments HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
                 f"Authorization: {INGEST_AUTH['Authorization']}\r\nContent-Length: {3 * 1024 * 1024}\r\n\r\n{{"
                 .encode())
    await writer.drain()
    status_line = await asyncio.wait_for(reader.readline(), 10)
    writer.close()
    assert status_line.split()[1] == b"413"
    async with httpx.AsyncClient(base_url=ingest, headers=INGEST_AUTH) as http:
        streamed = await http.post("/v1/comments", content=endless(), headers={"content-type": "application/json"})
        upper_case = await http.post("/v1/comments", content=json.dumps(comment()).encode(),
                                     headers={"content-type": "Application/JSON"})
    assert streamed.status_code == 413
    assert upper_case.status_code == 202
    assert_documented(streamed)
    assert_documented(upper_case)


async def test_oversized_batch_and_wrong_content_type(ingest):
    async with httpx.AsyncClient(base_url=ingest, headers=INGEST_AUTH) as http:
        too_many = await http.post("/v1/comments", json=[comment() for _ in range(501)])
        form = await http.post("/v1/comments", data={"a": "b"})
        lookalike = await http.post("/v1/comments", content=b"{}", headers={"content-type": "text/x-notjson"})
        suffixed = await http.post("/v1/comments", content=b"{}",
                                   headers={"content-type": "application/vnd.replyflow+json; charset=utf-8"})
    assert too_many.status_code == 400 and "at most 500" in too_many.text
    assert form.status_code == lookalike.status_code == 415
    assert suffixed.status_code == 422  # JSON all the same: the comment's fields are what is wrong
    assert_documented(too_many)
    assert_documented(form)


async def test_a_wrong_path_or_method_gets_a_json_error_naming_it(ingest):
    async with httpx.AsyncClient(base_url=ingest, headers=INGEST_AUTH) as http:
        wrong_method = await http.get("/v1/comments")
        typo = await http.post("/v1/comment", json=comment())
    assert wrong_method.status_code == 405 and wrong_method.headers["allow"] == "POST"
    assert wrong_method.json()["error"] == "GET /v1/comments: Method Not Allowed"
    assert typo.status_code == 404 and typo.json()["error"] == "POST /v1/comment: Not Found"


async def test_health_and_metrics(ingest):
    async with httpx.AsyncClient(base_url=ingest, headers=INGEST_AUTH) as http:
        assert (await http.get("/healthz")).status_code == 200
        ready = await http.get("/readyz")
        metrics = await http.get("/metrics")
    assert ready.status_code == 200 and ready.json()["broker"] is True
    assert "replyflow_consumer_ready" in metrics.text


async def test_replay_cli_publishes_valid_lines_and_names_bad_ones(kafka_bootstrap, tmp_path):
    good = [comment(), comment()]
    path = tmp_path / "comments.jsonl"
    path.write_text(f"{json.dumps(good[0])}\n{{\"platform\": \"youtube\"}}\n\n{json.dumps(good[1])}\n")
    wanted = {c["comment_id"] for c in good}
    async with TopicReader(kafka_bootstrap, COMMENTS_RECEIVED.name) as reader:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "replyflow.ingest", "replay", str(path),
            env={**os.environ, "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap},
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )
        out, err = await proc.communicate()
        await reader.collect(
            lambda rs: wanted <= {CommentReceived.model_validate_json(r.value).comment_id for r in rs}
        )
    assert proc.returncode == 1  # one line was invalid
    assert b"published 2 comments, 1 invalid lines" in out
    assert b"line 2" in err and b"comment_id" in err


async def test_instagram_webhook_handshake_and_signed_comments_reach_the_topic(instagram_webhook, kafka_bootstrap):
    url, creator, account = instagram_webhook
    comment_id = f"179{uuid.uuid4().int % 10**14}"
    delivery = {"object": "instagram", "entry": [{"id": account, "time": 1_764_400_000, "changes": [
        {"field": "comments", "value": {"id": comment_id, "text": "Which flour?",
                                        "from": {"id": "9001", "username": "ann"}, "media": {"id": "18000000001"}}},
        {"field": "comments", "value": {"id": f"{comment_id}9", "text": "Type 00! [AI reply]",
                                        "from": {"id": account, "username": "cook"}, "media": {"id": "18000000001"}}},
    ]}]}
    body = json.dumps(delivery).encode()
    async with httpx.AsyncClient(base_url=url) as http:
        handshake = {"hub.mode": "subscribe", "hub.challenge": "1158201444"}
        accepted = await http.get("/v1/webhooks/instagram", params={**handshake, "hub.verify_token": VERIFY_TOKEN})
        refused = await http.get("/v1/webhooks/instagram", params={**handshake, "hub.verify_token": "guess"})
        assert (accepted.status_code, accepted.text) == (200, "1158201444") and refused.status_code == 403

        forged = await http.post("/v1/webhooks/instagram", content=body, headers=signed(body, "not-the-secret"))
        assert forged.status_code == 401 and "X-Hub-Signature-256" in forged.json()["error"]
        async with TopicReader(kafka_bootstrap, COMMENTS_RECEIVED.name) as reader:
            response = await http.post("/v1/webhooks/instagram", content=body, headers=signed(body))
            assert response.status_code == 200, response.text
            assert response.json() == {"accepted": 1, "left_out": {"own_comment": 1}}
            records = await reader.collect(lambda rs: any(comment_id.encode() in r.value for r in rs))
        not_a_webhook = b'{"object": "instagram"}'
        malformed = await http.post("/v1/webhooks/instagram", content=not_a_webhook, headers=signed(not_a_webhook))
        assert malformed.status_code == 400 and "not an Instagram webhook" in malformed.json()["error"]
    for answered in (accepted, refused, forged, response, malformed):
        assert_documented(answered)
    served = httpx.get(f"{url}/openapi.json")  # no token, like /healthz; the webhook's ingest is the committed one
    assert served.json() == json.loads((SCHEMA_DIR / OPENAPI_DIR / "ingest.json").read_text())

    received = [CommentReceived.model_validate_json(r.value) for r in records if comment_id.encode() in r.value]
    assert [(e.comment.creator_id, e.comment_id, e.comment.text) for e in received] == [
        (creator, comment_id, "Which flour?")]  # the account's own reply is not a comment to answer
    assert scraped(url, "replyflow_webhook_changes_total", platform="instagram", result="accepted") == 1


async def test_a_bad_change_or_an_unknown_account_is_dead_lettered_and_the_rest_comes_in(
        instagram_webhook, kafka_bootstrap):
    url, _, account = instagram_webhook
    good, bad, stranger = (f"179{uuid.uuid4().int % 10**14}" for _ in range(3))
    value = {"from": {"id": "9001", "username": "ann"}, "media": {"id": "18000000001"}}
    delivery = {"object": "instagram", "entry": [
        {"id": account, "time": 1_764_400_000, "changes": [
            {"field": "comments", "value": {"id": good, "text": "Which flour?", **value}},
            {"field": "comments", "value": {"id": bad, "text": "", **value}}]},  # an empty comment
        {"id": "17849999999999999", "time": 1_764_400_000, "changes": [  # an account no creator has
            {"field": "comments", "value": {"id": stranger, "text": "Hello?", **value}}]},
    ]}
    body = json.dumps(delivery).encode()

    def dead_lettered() -> float:  # what the dead-letter alert and dashboard panels count
        return scraped(url, "replyflow_dlq_messages_total", service="ingest", topic="webhook:instagram",
                       error="UnusableComment") or 0.0

    before = dead_lettered()
    async with TopicReader(kafka_bootstrap, COMMENTS_RECEIVED.name, COMMENTS_RECEIVED.dlq) as reader:
        response = httpx.post(f"{url}/v1/webhooks/instagram", content=body, headers=signed(body))
        assert response.status_code == 200, response.text
        assert response.json() == {"accepted": 1, "left_out": {"unusable": 1, "unknown_account": 1}}
        assert_documented(response)
        records = await reader.collect(lambda rs: sum(r.topic == COMMENTS_RECEIVED.dlq for r in rs) >= 2
                                       and any(good.encode() in r.value for r in rs))
    dead = {json.loads(r.value)["changes"][0]["value"]["id"]: {k: v.decode() for k, v in r.headers}
            for r in records if r.topic == COMMENTS_RECEIVED.dlq}
    assert set(dead) == {bad, stranger}
    assert dead[stranger]["x-original-topic"] == "webhook:instagram"
    assert "17849999999999999" in dead[stranger]["x-exception-message"]
    assert "text" in dead[bad]["x-exception-message"]
    assert dead_lettered() - before == 2
