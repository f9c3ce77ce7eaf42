"""Authenticity: own voice ranks above other voices; the embeddings client against a real local server."""

from __future__ import annotations

import json
import math
import socket
import threading
import zlib
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar

import pytest

from loadtest.eval_authenticity import evaluate, load_dataset, roc_auc
from replyflow.events import CreatorProfile
from replyflow.policy.authenticity import (
    AuthenticityModel,
    EmbeddingClient,
    EmbeddingError,
    EmbeddingVoice,
    ModelCache,
    combine_scores,
    cosine,
    style_features,
)

# Small fixture voices, written for this test (not the evaluation data).
BAKER = [
    "Oh honey, thank you!! 🥰 A little extra vanilla never hurt anybody 🍰",
    "Yes sweetie, you can swap the butter for oil, the crumb gets softer 💕",
    "Awww that cake looks gorgeous, I'm so proud of you! 🎂✨",
    "Don't open the oven too early, darling, the sponge will sink 🙈",
    "Honey, room temperature eggs make all the difference, trust me 🥚💛",
    "Aww you made my day! Sprinkles on everything, always 🌈🧁",
    "Sweetie, a pinch of salt in the caramel and it tastes like heaven 🍯😋",
    "Yes darling, freeze the cookie dough in balls and bake them straight from frozen 🍪💕",
]
REVIEWER = [
    "Short answer: no. The battery lasted 5 hours in my test.",
    "It's fine. Fine is not a compliment at this price.",
    "The fan hits 44 dB under load. That is loud.",
    "Yes, USB-C. At 18 W. Technically a yes.",
    "I returned it after two weeks. I did not miss it.",
    "Benchmarks are in the description. Summary: fast, hot, expensive.",
    "The screen is 400 nits. My window is brighter.",
    "Two years of updates, then you are on your own.",
]
GENERIC = [
    "Thank you so much for your comment! I'm glad you enjoyed the video.",
    "Great question! It depends on your needs, but I'd recommend starting simple.",
    "Thanks for watching and for your support, it means a lot!",
    "I appreciate your feedback and will keep it in mind for future content.",
]


def test_own_voice_ranks_above_other_voices_and_generic_text() -> None:
    baker = AuthenticityModel().fit(BAKER[:5])
    reviewer = AuthenticityModel().fit(REVIEWER[:5])
    for model, own, other in ((baker, BAKER[5:], REVIEWER), (reviewer, REVIEWER[5:], BAKER)):
        own_scores = [model.score(t) for t in own]
        assert min(own_scores) > max(model.score(t) for t in other)
        assert min(own_scores) > max(model.score(t) for t in GENERIC)


def test_scores_are_in_unit_interval_and_explainable() -> None:
    model = AuthenticityModel().fit(BAKER)
    for text in [*BAKER, *REVIEWER, *GENERIC, "!!!", "a", "🍰" * 50, "x" * 2000]:
        score = model.score(text)
        assert 0.0 <= score <= 1.0
        parts = model.components(text)
        assert set(parts) == {"ngrams", "ngram_odds", "function_words", "style"}
        assert all(0.0 <= v <= 1.0 for v in parts.values())
    assert model.score("   ") == 0.0
    assert sum(model.effective_weights.values()) == pytest.approx(1.0)


def test_fit_needs_examples_and_score_needs_fit() -> None:
    with pytest.raises(ValueError):
        AuthenticityModel().fit(["", "  "])
    with pytest.raises(RuntimeError):
        AuthenticityModel().score("hello")
    with pytest.raises(ValueError):
        AuthenticityModel(weights={"nope": 1.0}).fit(BAKER)


def test_a_single_example_still_ranks_its_own_style_first() -> None:
    model = AuthenticityModel().fit([BAKER[0]])
    assert model.score(BAKER[2]) > model.score(REVIEWER[0])


def test_style_features_see_casing_punctuation_and_emoji() -> None:
    shout = style_features("NO EXCUSES!!! GO 💪")
    calm = style_features("no excuses, go.")
    assert len(shout) == len(calm)
    upper, caps_words, exclaim, emoji = 3, 4, 7, 16
    assert shout[upper] > calm[upper] and shout[caps_words] > calm[caps_words]
    assert shout[exclaim] > 0 == calm[exclaim]
    assert shout[emoji] > 0 == calm[emoji]


def test_model_cache_refits_when_the_profile_changes() -> None:
    cache = ModelCache()
    profile = CreatorProfile(
        creator_id="bea", display_name="Bea", persona="A baker.", example_replies=BAKER[:4]
    )
    assert cache.get(profile.model_copy(update={"example_replies": []})) is None
    first = cache.get(profile)
    assert first is not None and cache.get(profile) is first
    assert first.n_examples == 4
    newer = cache.get(profile.model_copy(update={"version": 2, "example_replies": BAKER}))
    assert newer is not first and newer is not None and newer.n_examples == len(BAKER)
    with_edits = cache.get(profile.model_copy(update={"version": 2, "example_replies": BAKER}), ["edit 🍰"])
    assert with_edits is not None and with_edits.n_examples == len(BAKER) + 1
    # Two examples do not tell a voice from anyone's: not scored, until edits make three.
    two = profile.model_copy(update={"version": 3, "example_replies": [*BAKER[:2], "  "]})
    assert cache.get(two) is None
    assert cache.get(two, ["an edit of theirs 🍰"]) is not None


# -- evaluation helpers --------------------------------------------------------------------------


def test_roc_auc_matches_scikit_learn() -> None:
    from sklearn.metrics import roc_auc_score

    pos = [0.9, 0.8, 0.8, 0.3, 0.55]
    neg = [0.1, 0.8, 0.4, 0.3, 0.2, 0.55]
    expected = roc_auc_score([1] * len(pos) + [0] * len(neg), pos + neg)
    assert roc_auc(pos, neg) == pytest.approx(expected)
    assert roc_auc([1.0], [0.0]) == 1.0 and roc_auc([0.0], [1.0]) == 0.0 and roc_auc([0.5], [0.5]) == 0.5


def test_evaluation_on_the_shipped_dataset_separates_voices() -> None:
    creators, generic, _meta = load_dataset()
    assert len(creators) >= 4 and all(len(r) >= 40 for r in creators.values()) and len(generic) >= 40
    report = evaluate(creators, generic, train_sizes=(20,), repeats=1, seed=3)
    macro = report["macro"]["20"]
    assert macro["auc_vs_others"] > 0.9
    assert macro["auc_vs_generic"] > 0.9
    assert macro["mean_score_own"] > macro["mean_score_others"]


# -- embeddings ----------------------------------------------------------------------------------


def test_combine_scores() -> None:
    assert combine_scores(0.8, None) == 0.8
    assert combine_scores(0.8, math.nan) == 0.8
    assert combine_scores(1.7, None) == 1.0
    assert combine_scores(0.5, 0.8, embedding_weight=0.5, own_cosine=0.8, floor_cosine=0.2) == pytest.approx(
        0.75
    )
    assert combine_scores(0.5, 0.1, embedding_weight=0.5) == pytest.approx(0.25)  # below the floor: 0
    assert combine_scores(0.5, 0.99, embedding_weight=1.0) == 1.0
    assert combine_scores(0.5, 0.9, own_cosine=0.2, floor_cosine=0.2) == 0.5  # degenerate anchors: ignored
    low, high = combine_scores(0.6, 0.3), combine_scores(0.6, 0.7)
    assert 0.0 <= low < high <= 1.0


def test_embedding_voice_and_cosine() -> None:
    voice = EmbeddingVoice.from_vectors([[1.0, 0.0, 0.0], [0.8, 0.2, 0.0], [0.9, 0.0, 0.1]])
    assert voice.similarity([1.0, 0.05, 0.0]) > voice.similarity([0.0, 0.0, 1.0])
    assert 0.9 < voice.own <= 1.0
    assert EmbeddingVoice.from_vectors([[0.0, 2.0]]).own == 1.0
    assert cosine({"a": 1.0}, {"b": 1.0}) == 0.0 and cosine([1.0, 1.0], [2.0, 2.0]) == pytest.approx(1.0)
    with pytest.raises(ValueError):
        cosine([1.0], [1.0, 2.0])


def fake_embedding(text: str, dim: int = 16) -> list[float]:
    """Deterministic bag-of-character-bigrams embedding, so similar texts get similar vectors."""
    vec = [0.0] * dim
    for i in range(len(text) - 1):
        vec[zlib.crc32(text[i : i + 2].encode()) % dim] += 1.0
    return vec


class _EmbeddingHandler(BaseHTTPRequestHandler):
    requests: ClassVar[list[dict]] = []

    def log_message(self, *args: object) -> None:  # keep test output quiet
        pass

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        type(self).requests.append(
            {"path": self.path, "auth": self.headers.get("Authorization"), "body": body}
        )
        if self.path != "/v1/embeddings":
            self.send_error(404)
            return
        if body["model"] == "broken":
            payload = b'{"data": [{"index": 0}]}'
        elif body["model"] == "overloaded":
            self.send_error(503)
            return
        else:
            data = [
                {"object": "embedding", "index": i, "embedding": fake_embedding(t)}
                for i, t in enumerate(body["input"])
            ]
            payload = json.dumps(
                {"object": "list", "data": list(reversed(data)), "model": body["model"]}
            ).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)


@pytest.fixture
def embeddings_server() -> Iterator[str]:
    _EmbeddingHandler.requests = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _EmbeddingHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def test_embedding_client_talks_to_an_openai_compatible_server(embeddings_server: str) -> None:
    client = EmbeddingClient(base_url=embeddings_server, model="tiny", api_key="sekret")
    texts = ["hello there", "completely different words", "hello there!"]
    vectors = client.embed(texts)
    assert vectors == [fake_embedding(t) for t in texts]  # server answered in reverse; order restored
    [request] = _EmbeddingHandler.requests
    assert request == {
        "path": "/v1/embeddings",
        "auth": "Bearer sekret",
        "body": {"model": "tiny", "input": texts},
    }
    assert client.embed([]) == []
    # base URLs ending in /v1 work too
    assert EmbeddingClient(base_url=embeddings_server + "/v1/", model="tiny").embed(["x y"]) == [
        fake_embedding("x y")
    ]


def test_embedding_client_errors_are_embedding_errors(embeddings_server: str) -> None:
    with pytest.raises(EmbeddingError):
        EmbeddingClient(base_url=embeddings_server, model="overloaded").embed(["hi"])
    with pytest.raises(EmbeddingError):
        EmbeddingClient(base_url=embeddings_server, model="broken").embed(["hi"])
    with pytest.raises(EmbeddingError):  # 404
        EmbeddingClient(base_url=embeddings_server + "/nope", model="tiny").embed(["hi"])
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        closed = sock.getsockname()[1]
    with pytest.raises(EmbeddingError):
        EmbeddingClient(base_url=f"http://127.0.0.1:{closed}", model="tiny", timeout_s=1.0).embed(["hi"])


async def test_async_embedding_and_the_combined_score(embeddings_server: str) -> None:
    client = EmbeddingClient(base_url=embeddings_server, model="tiny")
    examples = BAKER[:5]
    voice = EmbeddingVoice.from_vectors(await client.aembed(examples))
    own_vec, other_vec = await client.aembed([BAKER[6], REVIEWER[0]])
    model = AuthenticityModel().fit(examples)
    own = combine_scores(model.score(BAKER[6]), voice.similarity(own_vec), own_cosine=voice.own)
    other = combine_scores(model.score(REVIEWER[0]), voice.similarity(other_vec), own_cosine=voice.own)
    assert own > other


def test_verify_mixes_the_embedding_similarity_into_the_score() -> None:
    from replyflow.events import Comment, CreatorProfile, GenerationStats, ReplyDrafted, ReplyVerdict
    from replyflow.policy.rules import PolicySource
    from replyflow.policy.stages import PolicyStages

    profile = CreatorProfile(creator_id="baker", display_name="Baker", persona="A baker.", example_replies=BAKER[:5])
    comment = Comment(platform="youtube", comment_id="c1", creator_id="baker", post_id="p", author_id="a",
                      author_name="A", text="How long do I proof it?", created_at="2025-06-02T08:00:00Z")
    event = ReplyDrafted(comment=comment, reply_id="r1", text=BAKER[6], profile_version=profile.version,
                         generation=GenerationStats(model="m", prompt_tokens=1, completion_tokens=1, latency_ms=1))
    stages = PolicyStages({"baker": profile}.get, PolicySource(), embedding_weight=0.5)

    def score(similarities):
        (verdict,) = [e.event for e in stages.verify([event], 0.0, similarities) if isinstance(e.event, ReplyVerdict)]
        return verdict.authenticity

    plain = score(None)
    assert score([(0.95, 0.9)]) > plain > score([(0.0, 0.9)])  # close to the voice lifts it, far lowers it
    assert score([None]) == plain
