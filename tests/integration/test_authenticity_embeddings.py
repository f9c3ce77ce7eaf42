"""The authenticity score's optional embeddings view against a real OpenAI-compatible server
(llama.cpp serving SmolLM2's embeddings), in the stage and through the policy service; an
unreachable endpoint degrades to the stylometric score instead of stopping replies."""

from __future__ import annotations

import json
import math
import time
import uuid

import pytest

from replyflow.admin import put_profiles
from replyflow.events import Comment, CreatorProfile, GenerationStats, ReplyDrafted, ReplyVerdict, reply_id_for
from replyflow.local.kafka_server import free_port
from replyflow.local.stack import SAMPLES
from replyflow.policy.authenticity import EmbeddingClient, VoiceEmbedder, combine_scores
from replyflow.policy.rules import PolicySource
from replyflow.policy.stages import PolicyStages
from replyflow.settings import Settings
from replyflow.topics import REPLIES_APPROVED, REPLIES_DRAFTED, REPLIES_REVIEW
from tests.helpers import TopicReader, llama_server, scraped

pytestmark = pytest.mark.kafka


@pytest.fixture(scope="module")
def embeddings_url(tmp_path_factory) -> str:
    with llama_server(tmp_path_factory.mktemp("embeddings"), threads=1, embedding=True) as url:
        yield url


def sample_creator(creator_id: str | None = None) -> CreatorProfile:
    mara = json.loads((SAMPLES / "creators.json").read_text())[0]
    return CreatorProfile.model_validate({**mara, "creator_id": creator_id or mara["creator_id"]})


def draft(profile: CreatorProfile, text: str) -> ReplyDrafted:
    comment = Comment(platform="youtube", comment_id=f"emb-{uuid.uuid4().hex[:10]}", creator_id=profile.creator_id,
                      post_id="v1", author_id="a1", author_name="Ann", text="Can I use lime instead of lemon?",
                      created_at="2025-06-02T08:00:00Z")
    return ReplyDrafted(comment=comment, reply_id=reply_id_for(comment.platform, comment.comment_id), text=text,
                        profile_version=profile.version,
                        generation=GenerationStats(model="m", prompt_tokens=1, completion_tokens=1, latency_ms=1))


async def test_embedding_similarity_enters_the_authenticity_score(embeddings_url):
    profile = sample_creator()
    texts = ["Yes! Lime works too, a bit more tart 🍋 taste as you go!",
             "Citrus fruits differ in acidity. Lime is generally more sour than lemon."]
    embedder = VoiceEmbedder(EmbeddingClient(embeddings_url, "smollm2", timeout_s=30))
    try:
        similarities = await embedder.similarities([(t, profile) for t in texts] + [(texts[0], None)])
        labelled = await embedder.similarities([(f"{texts[0]} {profile.disclosure_label}", profile)])
    finally:
        await embedder.close()
    assert labelled == similarities[:1]  # the AI label a model may write itself is not part of the voice
    assert similarities[2] is None  # no profile, no voice
    assert all(math.isfinite(v) for pair in similarities[:2] for v in pair)
    assert similarities[0] != similarities[1]  # the two drafts' vectors differ

    # SmolLM2's mean-pooled states barely cluster a voice (its own cosine may sit under the floor, where
    # combine_scores ignores the embedding): the voice's anchor is pinned at 1 so the cosine must move the score.
    calibrated = [(cosine, 1.0) for cosine, _ in similarities[:2]]
    stages = PolicyStages({profile.creator_id: profile}.get, PolicySource(), embedding_weight=0.5)
    events = [draft(profile, t) for t in texts]
    plain = [e.event.authenticity for e in stages.verify(events, time.time()) if isinstance(e.event, ReplyVerdict)]
    mixed = [e.event.authenticity for e in stages.verify(events, time.time(), calibrated)
             if isinstance(e.event, ReplyVerdict)]
    assert len(plain) == len(mixed) == 2
    for score, combined, (cosine, own) in zip(plain, mixed, calibrated, strict=True):
        assert combined == pytest.approx(combine_scores(score, cosine, own_cosine=own, embedding_weight=0.5))
    assert mixed != plain


@pytest.mark.parametrize("reachable", [True, False], ids=["endpoint-up", "endpoint-down"])
async def test_policy_service_uses_the_endpoint_and_survives_its_outage(
    reachable, embeddings_url, stack, producer, kafka_bootstrap
):
    profile = sample_creator(f"mara-{uuid.uuid4().hex[:6]}")
    await put_profiles([profile], Settings(kafka_bootstrap_servers=kafka_bootstrap))
    stack.extra_env["EMBEDDINGS_BASE_URL"] = embeddings_url if reachable else f"http://127.0.0.1:{free_port()}/v1"
    stack.extra_env["EMBEDDINGS_TIMEOUT_S"] = "30"
    stack.start_service("policy")
    stack.wait_ready(log=lambda *_: None, timeout_s=90)
    event = draft(profile, "Lime works too, just a little more tart 🍋")
    async with TopicReader(kafka_bootstrap, REPLIES_APPROVED.name, REPLIES_REVIEW.name) as reader:
        await producer.send_and_wait(REPLIES_DRAFTED.name, event.model_dump_json().encode(),
                                     key=event.comment_id.encode())
        records = await reader.collect(lambda rs: any(event.comment_id.encode() in r.value for r in rs))
    verdict = ReplyVerdict.model_validate_json(next(r.value for r in records if event.comment_id.encode() in r.value))
    assert verdict.authenticity is not None and 0.0 <= verdict.authenticity <= 1.0
    counter = "replyflow_authenticity_embeddings_total"
    used, unused = ("ok", "error") if reachable else ("error", "ok")
    assert (scraped(stack.url("policy"), counter, result=used) or 0) >= 1
    assert (scraped(stack.url("policy"), counter, result=unused) or 0) == 0
