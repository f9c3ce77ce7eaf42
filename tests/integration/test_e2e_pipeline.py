"""End to end through all four services, with the real llama.cpp model and the platform simulator.

A subset of the sample stream covering every category goes in over HTTP; the publisher is killed
(SIGKILL) mid-stream and restarted, and the platform fails some calls. Every comment must end in
exactly one terminal outcome, published replies carry the AI label, and nothing is posted twice.
"""

from __future__ import annotations

import asyncio
import json
import signal
from collections import defaultdict

import httpx
import pytest

from replyflow.events import Outcome
from replyflow.local.stack import (
    SAMPLES,
    Stack,
    deliver_comments,
    follow_outcomes,
    load_sample_comments,
    posts_per_comment,
)

pytestmark = [pytest.mark.kafka, pytest.mark.model]


def sample_subset(per_category: int = 2):
    categories = json.loads((SAMPLES / "comment_categories.json").read_text())
    taken: dict[str, int] = defaultdict(int)
    chosen = []
    for c in load_sample_comments():
        category = categories[c.comment_id]
        if taken[category] < per_category:
            taken[category] += 1
            chosen.append(c)
    return chosen, categories


@pytest.fixture
def pipeline(kafka_bootstrap, llm_base_url, tmp_path):
    stack = Stack(tmp_path / "stack", kafka_bootstrap=kafka_bootstrap, llm_base_url=llm_base_url,
                  extra_env={"KAFKA_GROUP_PREFIX": "e2e"})
    stack.start(log=lambda *_: None)
    yield stack
    stack.stop()


async def test_every_comment_reaches_one_terminal_outcome_and_nothing_is_posted_twice(pipeline):
    comments, categories = sample_subset()
    ids = {c.comment_id for c in comments}
    async with httpx.AsyncClient(base_url=pipeline.url("platform")) as platform:
        await platform.post("/admin/faults", json={"fail_next": 2})  # publisher must retry these
        await deliver_comments(pipeline, comments)

        # Crash the publisher (no graceful shutdown) once the first reply is out, then bring it back.
        for _ in range(600):
            if (await platform.get("/v1/posts")).json()["posts"]:
                break
            await asyncio.sleep(0.5)
        else:
            raise AssertionError("no reply was posted within 300 s")
        pipeline.stop_process("publisher", sig=signal.SIGKILL)
        pipeline.start_service("publisher")

        outcomes = await follow_outcomes(pipeline.kafka_bootstrap, ids, timeout_s=480)
        posts = (await platform.get("/v1/posts")).json()["posts"]
        faults = (await platform.get("/metrics")).text
    assert 'platform_sim_injected_faults_total{kind="fail_next"} 2.0' in faults

    missing = ids - set(outcomes.terminal)
    assert not missing, f"no terminal outcome for {sorted(missing)}"
    for comment_id, decisions in outcomes.terminal.items():
        assert len({d.outcome for d in decisions}) == 1, f"{comment_id}: {decisions}"
        # The two failed posts were retried, not given up on.
        assert decisions[0].outcome != Outcome.dead_lettered, f"{comment_id} dead-lettered: {decisions[0].reasons}"

    per_comment, unexplained = posts_per_comment(posts, outcomes, comments)
    assert not unexplained and set(per_comment.values()) <= {1}, "a reply was posted twice"
    published = {cid for cid, ds in outcomes.terminal.items() if ds[0].outcome == Outcome.published}
    assert published == set(per_comment)
    assert published, "the sample stream should get at least one reply out"

    profiles = {p["creator_id"]: p for p in json.loads((SAMPLES / "creators.json").read_text())}
    by_comment = {c.comment_id: c for c in comments}
    for cid in per_comment:
        label = profiles[by_comment[cid].creator_id]["disclosure_label"]
        assert all(label in p.text for p in outcomes.published[cid])
    for cid in ids:
        final = outcomes.terminal[cid][0]
        creator = by_comment[cid].creator_id
        if profiles[creator]["mode"] == "review":
            assert final.outcome != Outcome.published, "a review-mode creator's reply went out unreviewed"
        if categories[cid] in {"spam", "prompt_injection"}:
            assert final.outcome == Outcome.skipped, f"{cid} ({categories[cid]}) got {final.outcome}"
        assert all(r.message for r in final.reasons)
