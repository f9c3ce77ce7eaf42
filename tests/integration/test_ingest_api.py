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
from replyflow.topics import COMMENTS_RECEIVED
from tests.helpers import TopicReader

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
        async with httpx.AsyncClient(base_url=ingest) as http:
            r1 = await http.post("/v1/comments", json=single)
            r2 = await http.post("/v1/comments", json=batch)
        assert (r1.status_code, r1.json()["accepted"]) == (202, 1)
        assert (r2.status_code, r2.json()["accepted"]) == (202, 2)
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
    ],
)
async def test_bad_requests_get_a_4xx_that_says_what_is_wrong(ingest, body, status, says):
    async with httpx.AsyncClient(base_url=ingest) as http:
        response = await http.post("/v1/comments", content=body, headers={"content-type": "application/json"})
    assert response.status_code == status
    assert says in response.text


async def test_field_errors_name_the_field(ingest):
    async with httpx.AsyncClient(base_url=ingest) as http:
        response = await http.post("/v1/comments", json=[comment(), comment(text="", platform="myspace")])
    assert response.status_code == 422
    fields = {d["field"] for d in response.json()["details"]}
    assert {"list[Comment].1.text", "list[Comment].1.platform"} <= fields


async def test_oversized_batch_and_wrong_content_type(ingest):
    async with httpx.AsyncClient(base_url=ingest) as http:
        too_many = await http.post("/v1/comments", json=[comment() for _ in range(501)])
        form = await http.post("/v1/comments", data={"a": "b"})
    assert too_many.status_code == 400 and "at most 500" in too_many.text
    assert form.status_code == 415


async def test_health_and_metrics(ingest):
    async with httpx.AsyncClient(base_url=ingest) as http:
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
