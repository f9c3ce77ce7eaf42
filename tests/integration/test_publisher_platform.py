"""The publisher's platform client against the real platform simulator over HTTP."""

from __future__ import annotations

import httpx
import pytest

from loadtest.platform_simulator import SimulatorConfig, serve_in_thread
from replyflow.kafka import PermanentError, TransientError
from replyflow.publisher.platform import PlatformClient


@pytest.fixture
def platform():
    with serve_in_thread(SimulatorConfig()) as running:
        yield running


async def test_a_retry_after_a_lost_answer_does_not_post_twice(platform):
    client = PlatformClient(platform.url, timeout_s=5)
    first = await client.post_reply("youtube", "c1", "acct", "r1", "Thanks! [AI reply]")
    again = await client.post_reply("youtube", "c1", "acct", "r1", "Thanks! [AI reply]")
    # A redelivered draft with other text for the same reply id is recognised as already posted.
    redrafted = await client.post_reply("youtube", "c1", "acct", "r1", "Thank you! [AI reply]")
    await client.close()
    assert (first.replayed, again.replayed, redrafted.replayed) == (False, True, True)
    assert first.platform_reply_id == again.platform_reply_id == redrafted.platform_reply_id
    posts = httpx.get(f"{platform.url}/v1/posts", params={"comment_id": "c1"}).json()["posts"]
    assert len(posts) == 1


async def test_platform_failures_are_transient_and_bad_requests_permanent(platform):
    client = PlatformClient(platform.url, timeout_s=5)
    httpx.post(f"{platform.url}/admin/faults", json={"fail_next": 1}).raise_for_status()
    with pytest.raises(TransientError):
        await client.post_reply("youtube", "c2", "acct", "r2", "hi")
    with pytest.raises(PermanentError):
        await client.post_reply("myspace", "c2", "acct", "r2", "hi")
    await client.close()
