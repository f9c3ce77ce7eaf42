"""How much a drafted reply sounds like the creator: a small stylometric model on CPU.

Fit on the creator's ``example_replies`` (and replies they edited), score any draft
in [0, 1]. Four views of style, each a similarity to the creator's examples:

- ``ngrams``: character 2–4-grams (lowercased, emoji included), sublinear TF weighted by an IDF
  from a small built-in background corpus, cosine to the centroid of the examples;
- ``ngram_odds``: the same n-grams as a naive-Bayes log-odds, creator's examples against the
  background corpus, averaged over the text's n-grams;
- ``function_words``: relative frequencies of 135 English function words, cosine to the centroid;
- ``style``: 22 dense habits (length, casing, all-caps words, ! ? … , ; — ( ) rates, emoji,
  digits, sentence length, contractions, lowercase "i", ...), a clipped z-distance to the
  examples' mean.

Each raw similarity is calibrated per creator between two anchors: how similar the creator's own
examples are to the others (leave-one-out median) and how similar the background corpus is
(median, each background text left out of what it is compared with). The own anchor maps to about
0.92, the background anchor to about 0.08 (a logistic in between). A view that does not separate
the two for this creator (e.g. function words for a creator who shouts in capitals without any)
gets less weight or none. The score is the weighted mean of the calibrated views; the weights
(``_BASE_WEIGHTS``) were chosen among a handful of candidates on the evaluation set.

Optionally an OpenAI-compatible ``/v1/embeddings`` endpoint (``EMBEDDINGS_BASE_URL``) adds a
semantic view: :class:`EmbeddingClient` does the HTTP call, :class:`EmbeddingVoice` holds the
creator's embedding centroid, :class:`VoiceEmbedder` does both per micro-batch for the verify
stage and :func:`combine_scores` mixes the stylometric score with the embedding cosine.

Cost: fitting 25 examples takes tens of milliseconds (cache the model: :class:`ModelCache`).
:meth:`AuthenticityModel.scores` scores a micro-batch with the n-gram views in one numpy pass
over 64-bit n-gram hashes, about 150 µs per reply in batches of 1,024; one reply alone costs
about 400 µs (``python -m loadtest.eval_authenticity`` measures the single-reply path).
"""

from __future__ import annotations

import logging
import math
import re
import statistics
from collections import Counter, OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx
import numpy as np
from prometheus_client import Counter as MetricCounter

from replyflow.events import CreatorProfile
from replyflow.policy.verify_checks import strip_disclosure

log = logging.getLogger(__name__)
EMBEDDING_REQUESTS = MetricCounter(
    "replyflow_authenticity_embeddings_total", "Embeddings requests of the verify stage, by result", ["result"]
)

__all__ = [
    "AuthenticityModel",
    "EmbeddingClient",
    "EmbeddingError",
    "EmbeddingVoice",
    "ModelCache",
    "VoiceEmbedder",
    "combine_scores",
    "cosine",
    "style_features",
]

_NGRAM_RANGE = (2, 4)
_MIN_SPREAD = 0.25  # spread never below a quarter of the separation: own median maps to <= 0.9997
_BASE_WEIGHTS = {"ngrams": 0.25, "ngram_odds": 0.25, "function_words": 0.10, "style": 0.40}
_FULL_WEIGHT_AT = 2.0  # a view whose d' (separation / spread) is this or more gets its full weight
_STYLE_FLOOR = 0.25  # a style feature's spread is at least this share of its spread in the background
_ODDS_LAMBDA = 0.5  # weight of the observed frequency against a uniform floor in the log-odds

# Written for this module: a spread of ordinary reply registers (assistant-like, casual, formal).
# It sets the IDF of the n-gram view and the "anyone else" anchor of the calibration.
_BACKGROUND = (
    "Thank you for the comment, I really appreciate it and I'm glad you liked it.",
    "Thanks a lot! Let us know if you have any other questions about this.",
    "We appreciate your feedback and will take it into account for the next update.",
    "That is a good question. It depends on what you want to achieve, but start small.",
    "I'm happy this was useful. Feel free to share it with anyone who might need it.",
    "Sorry for the confusion, the details are in the description below the video.",
    "Hope you have a great weekend and thanks again for watching.",
    "I agree with you, it was a difficult decision but I think it worked out in the end.",
    "Interesting point! I hadn't thought about it that way before.",
    "The link is pinned at the top of the comments if you want to read more.",
    "Yes, it should work on older versions too, though I haven't tested every one of them.",
    "Unfortunately we don't ship to that country yet, but we are working on it.",
    "Haha that's so true, happens to me all the time.",
    "omg thank you!! this made me smile",
    "lol yeah i noticed that too after i posted it",
    "Not sure, to be honest. Maybe someone else in the comments knows?",
    "Welcome! Glad to have you here.",
    "I used the standard settings, nothing special.",
    "Good luck with your project, it sounds like a lot of fun.",
    "We filmed it last summer, so some things may have changed since then.",
    "Please note that prices and opening times may vary depending on the season.",
    "It took about two hours in total, including the preparation.",
    "Great to hear that it helped you, keep going!",
    "Congratulations on finishing it, that is a big achievement.",
    "I think both options are fine, it really comes down to personal taste.",
    "Thanks for the kind words, they mean a lot to the whole team.",
    "That's a fair criticism and we'll try to do better next time.",
    "You can find the full list on our website under the resources section.",
    "I don't have a strong opinion on that one, sorry!",
    "Aw thanks so much, you're very kind.",
    "Exactly, that's the main reason we changed the format this year.",
    "Really appreciate you watching all the way through, see you in the next one.",
    "It might be a regional thing, it was available in the shop near me.",
    "Yes, you can replace it with something similar, it will still taste good.",
    "The second part is coming out next month if everything goes to plan.",
    "Same here, it was one of my favourite moments of the whole series.",
)

_FUNCTION_WORDS_TEXT = """
    a about above after again against all am an and any are as at be because been before being below
    between both but by can could did do does doing down during each few for from further had
    has have having he her here hers herself him himself his how i if in into is it its itself just
    me more most my myself no nor not now of off on once only or other our ours out over own same
    she should so some such than that the their theirs them then there these they this those through
    to too under until up very was we were what when where which while who whom why will with would
    you your yours yourself yourselves also really still even though yet however maybe perhaps
    quite rather"""
_FUNCTION_WORDS = tuple(_FUNCTION_WORDS_TEXT.split())
_FUNCTION_WORD_SET = frozenset(_FUNCTION_WORDS)

_WORD = re.compile(r"[^\W\d_]+(?:['’][^\W\d_]+)*")
_SENTENCE_END = re.compile(r"[.!?…]+(?:\s|$)")
_STYLE_FEATURES = (
    "log_chars", "log_words", "mean_word_len", "upper_ratio", "caps_words", "starts_upper",
    "ends_punct", "exclaim", "question", "period", "comma", "semicolon_colon", "dash", "paren",
    "ellipsis", "repeat_punct", "emoji", "digits", "words_per_sentence", "contractions",
    "lower_i", "second_person",
)  # fmt: skip


_EMOJI = re.compile("[\U0001f000-\U0001faff\u2600-\u27bf\u2b00-\u2bff\u203c\u2049\u3030\u303d]")
_DIGIT = re.compile(r"\d")
_ENDS_SENTENCE = re.compile(r"[.!?…]\W*$")
_DOUBLED_PUNCT = re.compile(r"([!?.])\1")


def style_features(text: str) -> list[float]:
    """Dense style habits of one text, in :data:`_STYLE_FEATURES` order (rates per 100 chars)."""
    chars = max(len(text), 1)
    per100 = 100.0 / chars
    words = _WORD.findall(text)
    n_words = max(len(words), 1)
    word_chars = sum(map(len, words))
    n_letters = max(word_chars, 1)
    upper = sum(map(str.isupper, text))
    caps_words = sum(1 for w in words if len(w) >= 2 and w.isupper())
    stripped = text.strip()
    sentences = max(
        len(_SENTENCE_END.findall(stripped)) + (0 if _ENDS_SENTENCE.search(stripped) else 1), 1
    )
    lower_words = [w.casefold().replace("’", "'") for w in words]
    return [
        math.log1p(len(text)),
        math.log1p(len(words)),
        word_chars / n_words,
        upper / n_letters,
        caps_words / n_words,
        1.0 if stripped[:1].isupper() else 0.0,
        1.0 if stripped[-1:] in ".!?…" else 0.0,
        text.count("!") * per100,
        text.count("?") * per100,
        text.count(".") * per100,
        text.count(",") * per100,
        (text.count(";") + text.count(":")) * per100,
        (text.count("—") + text.count("–") + text.count(" - ")) * per100,
        (text.count("(") + text.count(")")) * per100,
        (text.count("…") + text.count("...")) * per100,
        len(_DOUBLED_PUNCT.findall(text)) * per100,
        len(_EMOJI.findall(text)) * per100,
        len(_DIGIT.findall(text)) * per100,
        len(words) / sentences,
        sum(1 for w in lower_words if "'" in w) / n_words,
        sum(1 for w in words if w == "i") / n_words,
        sum(1 for w in lower_words if w in ("you", "your", "you're", "u", "ur", "yours")) / n_words,
    ]


def _char_ngrams(text: str) -> Counter[str]:
    t = " " + " ".join(text.casefold().split()) + " "
    lo, hi = _NGRAM_RANGE
    return Counter(t[i : i + n] for n in range(lo, hi + 1) for i in range(len(t) - n + 1))


_HASH_MULTIPLIER = 0x9E3779B97F4A7C15  # odd 64-bit constant (golden ratio): spreads code points
_HASH_MASK = (1 << 64) - 1


def _gram_hash(gram: str) -> int:
    """64-bit hash of an n-gram; :func:`_gram_hashes_of` computes the same for every n-gram of a text."""
    h = len(gram)
    for ch in gram:
        h = (h * _HASH_MULTIPLIER + ord(ch)) & _HASH_MASK
    return h


def _gram_hashes_of(texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """``(text index, _gram_hash)`` of each n-gram :func:`_char_ngrams` counts in each text (with
    repeats), for all texts at once: n-grams are hashed over the texts laid end to end and the
    ones that cross from one text into the next are dropped."""
    padded = [" " + " ".join(t.casefold().split()) + " " for t in texts]
    points = np.frombuffer("".join(padded).encode("utf-32-le"), dtype=np.uint32).astype(np.uint64)
    lengths = np.fromiter(map(len, padded), dtype=np.int64, count=len(padded))
    ends = np.cumsum(lengths)
    doc_of = np.repeat(np.arange(len(padded)), lengths)
    lo, hi = _NGRAM_RANGE
    docs, hashes = [np.zeros(0, np.int64)], [np.zeros(0, np.uint64)]
    for n in range(lo, hi + 1):
        m = len(points) - n + 1
        if m <= 0:
            break
        h = np.full(m, n, dtype=np.uint64)
        for j in range(n):  # uint64 arithmetic wraps around, like the mask in _gram_hash
            h = h * np.uint64(_HASH_MULTIPLIER) + points[j : j + m]
        inside = np.arange(n, m + n) <= ends[doc_of[:m]]
        docs.append(doc_of[:m][inside])
        hashes.append(h[inside])
    return np.concatenate(docs), np.concatenate(hashes)


def _function_word_counts(text: str) -> Counter[str]:
    return Counter(w for w in (w.casefold() for w in _WORD.findall(text)) if w in _FUNCTION_WORD_SET)


def _normalise(vec: dict[str, float]) -> dict[str, float]:
    norm = math.sqrt(sum(v * v for v in vec.values()))
    return {k: v / norm for k, v in vec.items()} if norm > 0 else {}


def cosine(a: dict[str, float] | Sequence[float], b: dict[str, float] | Sequence[float]) -> float:
    """Cosine similarity of two sparse (dict) or dense (sequence) vectors; 0.0 if either is zero."""
    if isinstance(a, dict) and isinstance(b, dict):
        if len(a) > len(b):
            a, b = b, a
        dot = sum(v * b.get(k, 0.0) for k, v in a.items())
        na = math.sqrt(sum(v * v for v in a.values()))
        nb = math.sqrt(sum(v * v for v in b.values()))
    else:
        av, bv = list(a), list(b)  # type: ignore[arg-type]
        if len(av) != len(bv):
            raise ValueError(f"vectors differ in length: {len(av)} != {len(bv)}")
        dot = sum(x * y for x, y in zip(av, bv, strict=True))
        na = math.sqrt(sum(x * x for x in av))
        nb = math.sqrt(sum(y * y for y in bv))
    return dot / (na * nb) if na > 0 and nb > 0 else 0.0


def _sum_vector(vectors: Sequence[dict[str, float]]) -> dict[str, float]:
    total: dict[str, float] = {}
    for v in vectors:
        for k, x in v.items():
            total[k] = total.get(k, 0.0) + x
    return total


def _dot(small: dict[str, float], big: dict[str, float]) -> float:
    get = big.get
    return sum(v * get(k, 0.0) for k, v in small.items())


def _loo_cosines(units: Sequence[dict[str, float]], total: dict[str, float]) -> list[float]:
    """Cosine of each unit vector to the sum of all the others, from one pass over each vector."""
    total_sq = sum(x * x for x in total.values())
    out = []
    for u in units:
        if not u:
            out.append(0.0)
            continue
        d = _dot(u, total)
        rest_sq = total_sq - 2 * d + 1.0
        out.append((d - 1.0) / math.sqrt(rest_sq) if rest_sq > 1e-12 else 0.0)
    return out


def _log_odds(own: float, n_own: float, bg: float, n_bg: float, floor: float) -> float:
    """log P(g | creator) - log P(g | background), both interpolated with the same uniform floor,
    so an n-gram neither corpus has seen is neutral (0) whatever the corpus sizes."""
    lam = _ODDS_LAMBDA
    return math.log(lam * own / n_own + floor) - math.log(lam * bg / n_bg + floor)


def _sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x)) if x > -60 else 0.0


@dataclass(frozen=True)
class _Anchor:
    """Where one view's raw similarity sits for the creator's own replies and for anyone else.

    ``calibrate`` is the posterior that a raw value came from the creator (equal priors, two
    normal distributions with a pooled spread): steep when the two are far apart, gentle when
    they overlap, 0.5 when the view can't tell them apart.
    """

    own: float  # median similarity of the creator's own replies (leave-one-out)
    own_sd: float
    background: float  # median similarity of the background corpus
    background_sd: float

    @property
    def separation(self) -> float:
        return self.own - self.background

    @property
    def spread(self) -> float:
        pooled = (self.own_sd**2 + self.background_sd**2) / 2
        return math.sqrt(max(pooled, (_MIN_SPREAD * self.separation) ** 2, 1e-12))

    @property
    def discrimination(self) -> float:
        """Separation in units of spread (d'); 0 when the view does not separate at all."""
        return max(self.separation, 0.0) / self.spread

    def calibrate(self, raw: float) -> float:
        if self.separation <= 0:
            return 0.5
        mid = (self.own + self.background) / 2
        return _sigmoid(self.separation / self.spread**2 * (raw - mid))


@dataclass
class AuthenticityModel:
    """A creator's voice. ``AuthenticityModel().fit(examples)``, then ``score(text)`` per draft."""

    background: Sequence[str] = _BACKGROUND
    weights: dict[str, float] = field(default_factory=lambda: dict(_BASE_WEIGHTS))
    n_examples: int = 0
    _idf: dict[str, float] = field(default_factory=dict, repr=False)
    _default_idf: float = 1.0
    _ngram_centroid: dict[str, float] = field(default_factory=dict, repr=False)
    _log_odds: dict[str, float] = field(default_factory=dict, repr=False)
    # n-gram -> (idf, centroid weight, log-odds): one lookup per n-gram when scoring
    # n-gram hash (sorted) -> idf, centroid weight, log-odds: scoring looks a text's n-grams up in
    # numpy instead of one dict lookup per n-gram in Python (most of the cost of a score).
    _gram_hashes: np.ndarray = field(default_factory=lambda: np.zeros(0, np.uint64), repr=False)
    _gram_values: np.ndarray = field(default_factory=lambda: np.zeros((0, 3)), repr=False)
    _fw_centroid: dict[str, float] = field(default_factory=dict, repr=False)
    _style_mean: list[float] = field(default_factory=list, repr=False)
    _style_scale: list[float] = field(default_factory=list, repr=False)
    _style_floor: list[float] = field(default_factory=list, repr=False)
    _anchors: dict[str, _Anchor] = field(default_factory=dict, repr=False)
    _effective_weights: dict[str, float] = field(default_factory=dict, repr=False)

    # -- vectors -------------------------------------------------------------------------------

    def _ngram_vector(self, text: str) -> dict[str, float]:
        idf, default = self._idf, self._default_idf
        return _normalise(
            {g: (1.0 + math.log(c)) * idf.get(g, default) for g, c in _char_ngrams(text).items()}
        )

    def _gram_views(self, texts: Sequence[str]) -> list[tuple[float, float]]:
        """Both n-gram views of each text, for a whole batch at once: cosine to the (unit) centroid,
        and the mean log-odds. One numpy pass over every n-gram of the batch; per text it would be
        dominated by numpy's call overhead."""
        k = len(texts)
        docs, hashes = _gram_hashes_of(texts)
        if not len(hashes):
            return [(0.0, 0.0)] * k
        # Group equal (text, n-gram) pairs with one sort of a key mixing both: ~7x quicker than a
        # lexsort on the two, and two pairs share a key only as rarely as two n-grams share a hash.
        key = hashes ^ (docs.astype(np.uint64) * np.uint64(_HASH_MULTIPLIER))
        order = np.argsort(key)
        key, docs, hashes = key[order], docs[order], hashes[order]
        first = np.ones(len(hashes), dtype=bool)
        first[1:] = key[1:] != key[:-1]
        starts = np.flatnonzero(first)
        counts = np.diff(np.append(starts, len(hashes))).astype(np.float64)
        docs, hashes = docs[starts], hashes[starts]
        at = np.minimum(np.searchsorted(self._gram_hashes, hashes), len(self._gram_hashes) - 1)
        values = np.where((self._gram_hashes[at] == hashes)[:, None], self._gram_values[at],
                          (self._default_idf, 0.0, 0.0))
        w = np.where(counts > 1, 1.0 + np.log(counts), 1.0) * values[:, 0]
        sq = np.bincount(docs, w * w, minlength=k)
        dot = np.bincount(docs, w * values[:, 1], minlength=k)
        odds = np.bincount(docs, counts * values[:, 2], minlength=k)
        n = np.bincount(docs, counts, minlength=k)
        cos = np.divide(dot, np.sqrt(sq), out=np.zeros(k), where=sq > 0)
        mean_odds = np.divide(odds, n, out=np.zeros(k), where=n > 0)
        return list(zip(cos.tolist(), mean_odds.tolist(), strict=True))

    @staticmethod
    def _fw_vector(text: str) -> dict[str, float]:
        return _normalise({w: float(c) for w, c in _function_word_counts(text).items()})

    def _style_distance(self, feats: Sequence[float], mean: Sequence[float], scale: Sequence[float]) -> float:
        total = 0.0
        for x, mu, sd in zip(feats, mean, scale, strict=True):
            z = (x - mu) / sd
            total += min(z * z, 9.0)
        return total / len(feats)

    def _style_params(
        self, sums: Sequence[float], sq_sums: Sequence[float], n: int
    ) -> tuple[list[float], list[float]]:
        mean = [s / n for s in sums]
        var = [max(q / n - mu * mu, 0.0) for q, mu in zip(sq_sums, mean, strict=True)]
        scale = [math.sqrt(v + f * f) for v, f in zip(var, self._style_floor, strict=True)]
        return mean, scale

    # -- fit / score ---------------------------------------------------------------------------

    def fit(self, examples: Iterable[str]) -> AuthenticityModel:
        """Learn the voice from the creator's replies (at least one non-empty text)."""
        texts = [t for t in (e.strip() for e in examples) if t]
        if not texts:
            raise ValueError("authenticity needs at least one example reply")
        self.n_examples = len(texts)
        background = [t for t in self.background if t.strip()]

        # Log-odds of each n-gram: creator's examples against the background corpus.
        own_counts: Counter[str] = Counter()
        per_text = [_char_ngrams(t) for t in texts]
        for c in per_text:
            own_counts.update(c)
        bg_per_text = [_char_ngrams(t) for t in background]
        bg_counts: Counter[str] = Counter()
        for c in bg_per_text:
            bg_counts.update(c)
        n_bg = sum(bg_counts.values())
        n_own = sum(own_counts.values())
        floor = (1.0 - _ODDS_LAMBDA) / len(own_counts.keys() | bg_counts.keys())
        self._log_odds = {
            g: _log_odds(own_counts.get(g, 0), n_own, bg_counts.get(g, 0), n_bg, floor)
            for g in own_counts.keys() | bg_counts.keys()
        }

        # IDF over the background corpus only: n-grams everybody uses weigh little, the
        # creator's own habits (absent from the background) weigh most.
        df: Counter[str] = Counter()
        for t in background:
            df.update(set(_char_ngrams(t)))
        n_docs = len(background)
        self._idf = {g: math.log((1 + n_docs) / (1 + c)) + 1.0 for g, c in df.items()}
        self._default_idf = math.log(1 + n_docs) + 1.0

        bg_style = [style_features(t) for t in background]
        bg_cols = list(zip(*bg_style, strict=True))
        self._style_floor = [max(statistics.pstdev(c) * _STYLE_FLOOR, 1e-3) for c in bg_cols]

        ng = [self._ngram_vector(t) for t in texts]
        fw = [self._fw_vector(t) for t in texts]
        st = [style_features(t) for t in texts]
        ng_sum, fw_sum = _sum_vector(ng), _sum_vector(fw)
        # Centroids are stored unit-length, so scoring is one sparse dot product per view.
        self._ngram_centroid = _normalise(ng_sum)
        self._fw_centroid = _normalise(fw_sum)
        grams = sorted(self._idf.keys() | self._ngram_centroid.keys() | self._log_odds.keys())
        hashes = np.fromiter((_gram_hash(g) for g in grams), dtype=np.uint64, count=len(grams))
        order = np.argsort(hashes)
        self._gram_hashes = hashes[order]
        self._gram_values = np.array(
            [(self._idf.get(g, self._default_idf), self._ngram_centroid.get(g, 0.0), self._log_odds.get(g, 0.0))
             for g in grams]
        ).reshape(-1, 3)[order]
        n = len(texts)
        sums = [sum(col) for col in zip(*st, strict=True)]
        sq_sums = [sum(x * x for x in col) for col in zip(*st, strict=True)]
        self._style_mean, self._style_scale = self._style_params(sums, sq_sums, n)

        # Anchors: leave-one-out similarity of each example to the rest, and background similarity.
        own: dict[str, list[float]] = {"ngrams": [], "ngram_odds": [], "function_words": [], "style": []}
        if n >= 2:
            for c in per_text:
                # The odds of this example's n-grams with the example itself left out.
                rest = n_own - sum(c.values())
                total = sum(
                    k * _log_odds(own_counts[g] - k, rest, bg_counts.get(g, 0), n_bg, floor)
                    for g, k in c.items()
                )
                own["ngram_odds"].append(total / max(sum(c.values()), 1))
            own["ngrams"] = _loo_cosines(ng, ng_sum)
            own["function_words"] = _loo_cosines(fw, fw_sum)
            for row in st:
                mean, scale = self._style_params(
                    [s - x for s, x in zip(sums, row, strict=True)],
                    [q - x * x for q, x in zip(sq_sums, row, strict=True)],
                    n - 1,
                )
                own["style"].append(-self._style_distance(row, mean, scale))
        bg_raw = {
            "ngrams": [cos for cos, _ in self._gram_views(background)],
            "function_words": [self._raw("function_words", t) for t in background],
            "style": [self._raw("style", t, feats) for t, feats in zip(background, bg_style, strict=True)],
        }
        # Background texts are part of the odds' background counts: leave each one out too.
        bg_raw["ngram_odds"] = []
        for c in bg_per_text:
            rest = n_bg - sum(c.values())
            total = sum(
                k * _log_odds(own_counts.get(g, 0), n_own, bg_counts[g] - k, rest, floor)
                for g, k in c.items()
            )
            bg_raw["ngram_odds"].append(total / max(sum(c.values()), 1))
        self._anchors = {}
        for view in own:
            bg = statistics.median(bg_raw[view])
            bg_sd = statistics.pstdev(bg_raw[view])
            # With one example there is no leave-one-out: its similarity to itself overstates, so
            # take halfway between the background and that, with the background's spread.
            values = own[view] or [bg + 0.5 * (self._raw(view, texts[0], st[0]) - bg)]
            own_sd = statistics.pstdev(values) if len(values) >= 3 else bg_sd
            self._anchors[view] = _Anchor(statistics.median(values), own_sd, bg, bg_sd)

        # A view that doesn't separate this creator's replies from the background counts less.
        eff = {}
        for view, w in self.weights.items():
            if view not in self._anchors:
                raise ValueError(f"unknown view {view!r}; known: {sorted(self._anchors)}")
            eff[view] = w * min(1.0, self._anchors[view].discrimination / _FULL_WEIGHT_AT)
        total = sum(eff.values())
        self._effective_weights = (
            {k: v / total for k, v in eff.items()} if total > 0 else {k: 1 / len(eff) for k in eff}
        )
        return self

    def _raw(self, view: str, text: str, feats: Sequence[float] | None = None) -> float:
        if view in ("ngrams", "ngram_odds"):
            ((cos, odds),) = self._gram_views([text])
            return cos if view == "ngrams" else odds
        if view == "function_words":
            return _dot(self._fw_vector(text), self._fw_centroid)
        feats = style_features(text) if feats is None else feats
        return -self._style_distance(feats, self._style_mean, self._style_scale)

    @property
    def fitted(self) -> bool:
        return self.n_examples > 0

    def components(self, text: str) -> dict[str, float]:
        """Calibrated similarity in [0, 1] per view (for explanations in the review UI)."""
        return self._components([text])[0]

    def _components(self, texts: Sequence[str]) -> list[dict[str, float]]:
        if not self.fitted:
            raise RuntimeError("AuthenticityModel.fit() first")
        out = []
        for text, (cos, odds) in zip(texts, self._gram_views(texts), strict=True):
            raw = {
                "ngrams": cos,
                "ngram_odds": odds,
                "function_words": self._raw("function_words", text),
                "style": self._raw("style", text),
            }
            out.append({view: anchor.calibrate(raw[view]) for view, anchor in self._anchors.items()})
        return out

    def score(self, text: str) -> float:
        """How much ``text`` sounds like the creator, in [0, 1] (label already stripped)."""
        return self.scores([text])[0]

    def scores(self, texts: Sequence[str]) -> list[float]:
        """:meth:`score` of each text, a micro-batch at a time (the n-gram views are batched)."""
        scored = [t for t in texts if t.strip()]
        parts = iter(self._components(scored) if scored else [])
        out = []
        for text in texts:
            if not text.strip():
                out.append(0.0)
                continue
            p = next(parts)
            total = sum(w * p[v] for v, w in self._effective_weights.items())
            out.append(float(min(1.0, max(0.0, total))))
        return out

    @property
    def effective_weights(self) -> dict[str, float]:
        return dict(self._effective_weights)


# Fewer examples than this do not tell a voice from anyone's: with two, some pairs score every draft 0.5, and
# one forces every view to its steepest (a "Thanks!" scores 0.002). Such drafts are not scored.
MIN_EXAMPLES = 3


class ModelCache:
    """Fitted models per creator, refit when the profile version or the extra examples change."""

    def __init__(self, max_size: int = 1024) -> None:
        self.max_size = max_size
        self._models: OrderedDict[tuple[str, int, int], AuthenticityModel] = OrderedDict()

    def get(self, profile: CreatorProfile, extra_examples: Sequence[str] = ()) -> AuthenticityModel | None:
        """The model for ``profile``; ``None`` below ``MIN_EXAMPLES`` example replies (edits included)."""
        examples = [*profile.example_replies, *extra_examples]
        if sum(1 for e in examples if e.strip()) < MIN_EXAMPLES:
            return None
        key = (profile.creator_id, profile.version, hash(tuple(extra_examples)))
        model = self._models.get(key)
        if model is None:
            model = AuthenticityModel().fit(examples)
            for old in [k for k in self._models if k[0] == profile.creator_id]:
                del self._models[old]
            self._models[key] = model
            while len(self._models) > self.max_size:
                self._models.popitem(last=False)
        else:
            self._models.move_to_end(key)
        return model


# ---------------------------------------------------------------------------------------------
# optional embeddings (OpenAI-compatible /v1/embeddings)


class EmbeddingError(RuntimeError):
    """The embeddings endpoint failed or answered something unusable."""


def _embeddings_url(base_url: str) -> str:
    base = base_url.rstrip("/")
    if base.endswith("/embeddings"):
        return base
    return f"{base}/embeddings" if base.endswith("/v1") else f"{base}/v1/embeddings"


def _pooled(embedding: Sequence[Any]) -> list[float]:
    """A vector; servers without pooling (llama.cpp with a causal LM) send one per token: mean-pool."""
    if embedding and isinstance(embedding[0], list):
        return [sum(column) / len(embedding) for column in zip(*embedding, strict=True)]
    return [float(x) for x in embedding]


def _parse_embeddings(payload: Any, expected: int) -> list[list[float]]:
    try:
        items = sorted(payload["data"], key=lambda d: d.get("index", 0))
        vectors = [_pooled(item["embedding"]) for item in items]
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise EmbeddingError(f"unexpected embeddings response: {exc!r}") from exc
    if len(vectors) != expected:
        raise EmbeddingError(f"asked for {expected} embeddings, got {len(vectors)}")
    return vectors


@dataclass(frozen=True)
class EmbeddingClient:
    """Client for an OpenAI-compatible embeddings endpoint (vLLM, llama.cpp server, ...)."""

    base_url: str
    model: str
    api_key: str | None = None
    timeout_s: float = 2.0

    def _request(self, texts: Sequence[str]) -> tuple[str, dict[str, str], dict[str, Any]]:
        headers = {"Content-Type": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        return _embeddings_url(self.base_url), headers, {"model": self.model, "input": list(texts)}

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        if not texts:
            return []
        url, headers, body = self._request(texts)
        try:
            response = httpx.post(url, json=body, headers=headers, timeout=self.timeout_s)
            response.raise_for_status()
            payload = response.json()
        except (httpx.HTTPError, ValueError) as exc:
            raise EmbeddingError(f"embeddings request failed: {exc!r}") from exc
        return _parse_embeddings(payload, len(texts))

    async def aembed(
        self, texts: Sequence[str], client: httpx.AsyncClient | None = None
    ) -> list[list[float]]:
        if not texts:
            return []
        url, headers, body = self._request(texts)
        try:
            if client is None:
                async with httpx.AsyncClient(timeout=self.timeout_s) as own:
                    response = await own.post(url, json=body, headers=headers)
            else:
                response = await client.post(url, json=body, headers=headers, timeout=self.timeout_s)
            response.raise_for_status()
            payload = response.json()
        except (httpx.HTTPError, ValueError) as exc:
            raise EmbeddingError(f"embeddings request failed: {exc!r}") from exc
        return _parse_embeddings(payload, len(texts))


@dataclass(frozen=True)
class EmbeddingVoice:
    """The creator's examples as an embedding centroid, with a calibration like the views above."""

    centroid: tuple[float, ...]
    own: float  # median leave-one-out cosine of the examples (or 1.0 with a single example)

    @classmethod
    def from_vectors(cls, vectors: Sequence[Sequence[float]]) -> EmbeddingVoice:
        if not vectors:
            raise ValueError("need at least one example embedding")
        units = [_unit(v) for v in vectors]
        dim = len(units[0])
        n = len(units)
        total = [sum(u[d] for u in units) for d in range(dim)]
        if n >= 2:
            own = statistics.median(
                cosine(u, [(t - x) / (n - 1) for t, x in zip(total, u, strict=True)]) for u in units
            )
        else:
            own = 1.0
        return cls(tuple(t / n for t in total), float(own))

    def similarity(self, vector: Sequence[float]) -> float:
        return cosine(list(vector), list(self.centroid))


def _unit(v: Sequence[float]) -> list[float]:
    norm = math.sqrt(sum(x * x for x in v))
    return [x / norm for x in v] if norm > 0 else [0.0 for _ in v]


def combine_scores(
    stylometric: float,
    embedding_cosine: float | None,
    *,
    embedding_weight: float = 0.35,
    own_cosine: float = 0.8,
    floor_cosine: float = 0.2,
) -> float:
    """Mix the stylometric score with an embedding cosine (``None``: stylometric only).

    The cosine is mapped linearly from ``floor_cosine`` (0) to ``own_cosine`` (1) and clipped,
    so that embedding models with different cosine ranges can be calibrated by the two anchors
    (pass ``EmbeddingVoice.own`` as ``own_cosine``).
    """
    stylometric = min(1.0, max(0.0, stylometric))
    if embedding_cosine is None or not math.isfinite(embedding_cosine):
        return stylometric
    if own_cosine <= floor_cosine:
        return stylometric
    e = min(1.0, max(0.0, (embedding_cosine - floor_cosine) / (own_cosine - floor_cosine)))
    w = min(1.0, max(0.0, embedding_weight))
    return (1.0 - w) * stylometric + w * e


class VoiceEmbedder:
    """Embedding similarity of drafts to their creator's example replies, one request per micro-batch.

    The creators' voices are embedded once per profile version. When the endpoint fails the
    drafts get ``None`` (the stylometric score alone decides): an embeddings outage must not stop
    replies, and the failure shows in ``replyflow_authenticity_embeddings_total``.
    """

    def __init__(self, client: EmbeddingClient) -> None:
        self.client = client
        self._voices: dict[tuple[str, int], EmbeddingVoice] = {}
        self._http = httpx.AsyncClient(timeout=client.timeout_s)

    async def close(self) -> None:
        await self._http.aclose()

    async def similarities(
        self, drafts: Sequence[tuple[str, CreatorProfile | None]]
    ) -> list[tuple[float, float] | None]:
        """``(cosine to the creator's voice, the voice's own cosine)`` per draft, or ``None``."""
        voiced = [p is not None and any(e.strip() for e in p.example_replies) for _, p in drafts]
        wanted = [draft for draft, ok in zip(drafts, voiced, strict=True) if ok]
        if not wanted:
            return [None] * len(drafts)
        try:
            for _, profile in wanted:
                key = (profile.creator_id, profile.version)
                if key not in self._voices:
                    examples = [e for e in profile.example_replies if e.strip()]
                    voice = EmbeddingVoice.from_vectors(await self.client.aembed(examples, self._http))
                    for old in [k for k in self._voices if k[0] == profile.creator_id]:
                        del self._voices[old]
                    self._voices[key] = voice
            # Without the AI label, as the stylometric model scores them (a model may write the label itself).
            vectors = iter(await self.client.aembed(
                [strip_disclosure(text, profile.disclosure_label) for text, profile in wanted], self._http))
        except EmbeddingError as error:
            EMBEDDING_REQUESTS.labels("error").inc()
            log.warning("embeddings endpoint failed; scoring authenticity without it",
                        extra={"fields": {"error": str(error)[:300]}})
            return [None] * len(drafts)
        EMBEDDING_REQUESTS.labels("ok").inc()
        out: list[tuple[float, float] | None] = []
        for (_, profile), ok in zip(drafts, voiced, strict=True):
            if not ok:
                out.append(None)
                continue
            voice = self._voices[(profile.creator_id, profile.version)]
            out.append((voice.similarity(next(vectors)), voice.own))
        return out
