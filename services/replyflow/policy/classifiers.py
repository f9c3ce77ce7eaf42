"""Text classifiers and rule-based detectors of the screen stage (pure functions, CPU only).

Models
    ``SpamClassifier`` and ``AbuseClassifier`` are linear models over TF-IDF word 1–2-grams,
    character 2–5-grams inside words (both on the ``skeleton`` view of
    :mod:`replyflow.policy.textnorm`, so leetspeak, spacing and homoglyph tricks read as the
    plain word) and a few lexicon counts (profanity, insults, slurs, threats, words the
    abuse data set is ambiguous about). Training lives in ``scripts/train_policy_models.py``;
    the artifacts in ``policy/models/*.npz`` hold only the vocabulary, idf, weights and a JSON
    header (no pickle, no scikit-learn at run time). The intercept is shifted so that the
    operating point chosen on validation folds is at ``score >= threshold`` (0.5).

Detectors
    ``detect_prompt_injection``, ``detect_personal_data`` and ``detect_scam_patterns`` are
    regular-expression detectors that return :class:`~replyflow.policy.findings.Finding`s
    with a machine-readable ``code``, a sentence for humans (never quoting personal data) and
    a score in [0, 1]. ``TextScreener`` runs everything on a micro-batch.

Checks are named as in ``default_policy.json``: ``spam``, ``scam``, ``abuse``,
``prompt_injection``, ``personal_data``.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cache, lru_cache
from pathlib import Path

import numpy as np

from replyflow.policy.findings import Finding
from replyflow.policy.textnorm import NormalizedText, as_views

__all__ = [
    "INJECTION_THRESHOLD",
    "MODELS_DIR",
    "AbuseClassifier",
    "Finding",
    "LinearTextModel",
    "SpamClassifier",
    "TextScreener",
    "abuse_lexicon_counts",
    "detect_personal_data",
    "detect_prompt_injection",
    "detect_scam_patterns",
    "featurize",
]

MODELS_DIR = Path(__file__).with_name("models")
FEATURIZER_VERSION = 1
TextLike = str | NormalizedText

# =================================================================================================
# Lexicons. Patterns run on the ``skeleton`` view (case-folded, accents stripped, leetspeak undone).
# Letters in a term also match when doubled ("shiit", "fuuck"): see ``_tolerant``.


def _tolerant(fragment: str) -> str:
    """``abc`` → ``a+b+c+``; a run ``ss`` → ``s{2,}``; escapes and non-letters are kept."""
    out: list[str] = []
    i = 0
    while i < len(fragment):
        ch = fragment[i]
        if ch == "\\":
            out.append(fragment[i : i + 2])
            i += 2
            continue
        if "a" <= ch <= "z":
            j = i
            while j < len(fragment) and fragment[j] == ch:
                j += 1
            run = j - i
            out.append(f"{ch}+" if run == 1 else f"{ch}{{{run},}}")
            i = j
            continue
        out.append(ch)
        i += 1
    return "".join(out)


def _alternation(terms: Iterable[str]) -> re.Pattern[str]:
    body = "|".join(_tolerant(t) for t in terms)
    return re.compile(rf"(?<![^\W_])(?:{body})(?![^\W_])")


_PROFANITY = (
    r"\w*fuck\w*", r"fck\w*", r"fuk\w*", r"fuq\w*", r"phuck\w*", r"fk", r"f\*+c?k\w*", r"mofo\w*",
    r"muthaf\w*", r"motherf\w*", r"mf", r"\w*shit\w*", r"sh\*+t\w*", r"bitch\w*", r"biatch\w*",
    r"b\*+tch\w*", r"cunt\w*", r"c\*+nt", r"dick(?:s|head\w*|wad\w*|face)?", r"cock(?:s|sucker\w*)?",
    r"puss(?:y|ies|ie)", r"twat\w*", r"wank\w*", r"slut\w*", r"whore\w*", r"hoe(?:s|z)?", r"thot\w*",
    r"skank\w*", r"douche\w*", r"bastard\w*", r"\w*asshole\w*", r"ass(?:es|hat\w*|wipe\w*|clown\w*)?",
    r"(?:dumb|jack|fat|lame|punk|broke|bitch|stupid|lazy|weak|kiss)ass(?:es)?", r"arse\w*",
    r"piss(?:ed|ing|es)?", r"bollocks", r"crap(?:py)?", r"damn\w*", r"goddamn\w*", r"tits?", r"titties",
    r"boobs?", r"porn\w*", r"dildo\w*", r"cum", r"jizz\w*", r"blowjob\w*", r"handjob\w*", r"anal",
    r"horny", r"stfu", r"gtfo", r"wtf",
    # es
    r"puta\w*", r"puto\w*", r"mierda\w*", r"joder", r"jodete", r"verga\w*", r"chinga\w*", r"culero\w*",
    r"cabron\w*", r"hdp", r"pinche\w*", r"cono",
    # fr
    r"putain\w*", r"pute\w*", r"merde\w*", r"salope\w*", r"salaud\w*", r"encule\w*", r"nique\w*", r"ntm",
    r"fdp", r"bordel",
    # de
    r"scheis\w*", r"ficke?n?", r"fick\w*", r"fotze\w*", r"hurensohn\w*", r"hure\w*",
    # pt
    r"porra\w*", r"caralho\w*", r"merda\w*", r"foda\w*", r"fodase", r"buceta\w*", r"vadia\w*",
    r"arrombad\w*", r"cuzao",
)
_INSULTS = (
    r"idiot\w*", r"stupid\w*", r"moron\w*", r"retard\w*", r"dumb(?:er|est)?", r"loser\w*", r"imbecil\w*",
    r"cretin\w*", r"scum\w*", r"pathetic", r"worthless", r"ugly", r"disgusting", r"dipshit\w*",
    r"numbnuts", r"halfwit\w*", r"nitwit\w*", r"dimwit\w*", r"pos", r"clowns?", r"garbage",
    r"freaks?", r"creeps?", r"dumbo", r"dork\w*", r"wanker\w*",
    # es
    r"idiota\w*", r"estupid\w*", r"pendej\w*", r"gilipollas", r"subnormal\w*", r"baboso\w*", r"tont[oa]s?",
    # fr
    r"connard\w*", r"connasse\w*", r"abruti\w*", r"debile\w*", r"bouffon\w*",
    # de
    r"arschloch\w*", r"wichser\w*", r"vollidiot\w*", r"missgeburt\w*", r"spast\w*", r"trottel\w*",
    r"dummkopf\w*", r"penner\w*", r"depp\w*",
    # pt
    r"otario\w*", r"babaca\w*", r"corno\w*", r"trouxa\w*", r"imbecis",
)
_SLURS = (
    r"nigg\w*", r"nig(?:a|az|as|s|let\w*)?", r"nicca\w*", r"negroid\w*", r"coons?", r"jigaboo\w*",
    r"porch ?monkey\w*", r"spear ?chucker\w*", r"wetback\w*", r"beaner\w*", r"spics?", r"spick\w*",
    r"chinks?", r"gooks?", r"slant ?eye\w*", r"slants", r"kikes?", r"towel ?head\w*", r"rag ?head\w*",
    r"muzzies?", r"muzrat\w*", r"pakis?", r"fag\w*", r"dykes?", r"tranny", r"trannies", r"shemale\w*",
    r"mongoloid\w*", r"wiggers?", r"honk(?:y|ey|ie)s?", r"whitey", r"zipper ?head\w*",
    r"camel ?jockey\w*", r"white trash", r"nips",
    r"maricon\w*", r"marica\w*", r"sudaca\w*", r"negrata\w*", r"bougnoul\w*", r"youpin\w*",
    r"schwuchtel\w*", r"kanake\w*", r"viado\w*",
)
# Words the abuse data set was sampled with that are insults only in some uses.
_AMBIGUOUS = (
    r"trash\w*", r"birds?", r"yellow", r"monkeys?", r"apes?", r"ghetto\w*", r"colou?red", r"oreos?",
    r"jihadis?", r"redskins?", r"crackers?", r"rednecks?", r"hillbill\w*", r"teabagg\w*", r"queers?",
    r"homos?", r"negros?", r"savages?", r"spooks?", r"hos?", r"hicks?", r"wop", r"pigs?", r"jerks?",
)
_THREATS = (
    r"kill (?:your ?self|ur ?self|yourselves|urselves)", r"kys", r"go die", r"neck (?:your|ur)self",
    r"(?:hope|wish) (?:you|u) (?:die|get killed|get cancer)\w*", r"you should die",
    r"(?:i ?will|i'?ll|i am going to|im going to|i'?m gonna|gonna) (?:kill|murder|stab|shoot|hurt|find) (?:you|u)",
    r"matate", r"muerete", r"ojala te mueras", r"va mourir", r"creve", r"suicide[- ]toi", r"bring dich um",
    r"stirb", r"se mata", r"vai morrer", r"morra",
)
_LEX = {
    "profanity": _alternation(_PROFANITY),
    "insult": _alternation(_INSULTS),
    "slur": _alternation(_SLURS),
    "ambiguous": _alternation(_AMBIGUOUS),
    "threat": _alternation(_THREATS),
}
_SECOND_PERSON = re.compile(
    r"(?<![^\W_])(?:you|u|ur|your|youre|you're|ya|yo|eres|tu|te|vos|usted|t'es|tes|vous|toi|du|dich|dir|"
    r"ihr|voce|vc|seu|sua)(?![^\W_])"
)
_LEX_NAMES = ("profanity", "insult", "slur", "ambiguous", "threat")


def abuse_lexicon_counts(text: TextLike) -> dict[str, int]:
    """Lexicon hits per group, plus ``directed``: an insult, slur or profanity right after "you"."""
    return dict(_lexicon_counts(_lexicon_text(as_views(text))))


def _lexicon_text(v: NormalizedText) -> str:
    """The skeleton without URLs and @handles (a handle such as "@thotcho" is not a word)."""
    s = v.skeleton
    if "." in s or "/" in s:
        s = _URL.sub(" ", s)
    if "@" in s:
        s = _MENTION.sub(" ", s)
    return s


@lru_cache(maxsize=4096)
def _lexicon_counts(s: str) -> tuple[tuple[str, int], ...]:
    counts: dict[str, int] = {}
    directed = 0
    for name in _LEX_NAMES:
        hits = list(_LEX[name].finditer(s))
        counts[name] = len(hits)
        if name in ("profanity", "insult", "slur") and not directed:
            for m in hits:
                window = s[max(0, m.start() - 30) : m.start()]
                if _SECOND_PERSON.search(window):
                    directed = 1
                    break
    counts["directed"] = directed
    return tuple(counts.items())


def _dense_abuse(v: NormalizedText) -> list[float]:
    c = dict(_lexicon_counts(_lexicon_text(v)))
    strong = c["profanity"] + c["insult"] + c["slur"] + c["threat"]
    return [
        math.log1p(c["profanity"]), math.log1p(c["insult"]), math.log1p(c["slur"]), math.log1p(c["ambiguous"]),
        math.log1p(c["threat"]), float(strong > 0), float(c["directed"]),
    ]


# =================================================================================================
# Featurizer (shared by training and inference: same code, same numbers)

_URL = re.compile(r"(?:https?://|www\.)\S+|\b(?:[a-z0-9-]+\.)+(?:com|net|org|ly|gl|io|me|co|tv|be|info|biz)(?:/\S*)?")
_MENTION = re.compile(r"(?<![\w@])@[a-z0-9_]{2,}")
_RETWEET = re.compile(r"(?<![^\W_])rt(?![^\W_])")
_WORD = re.compile(r"[^\W_]+(?:['’][^\W_]+)*|[^\w\s]")
_DOMAIN = re.compile(r"^(?:https?://)?(?:www\.)?([^/\s?#]+)")


@dataclass(frozen=True)
class FeatureConfig:
    word_ngrams: tuple[int, int] = (1, 2)
    char_ngrams: tuple[int, int] = (2, 5)
    urls: str = "token"  # "token": every URL → " xurlx "; "domain": " xurlx <domain> "
    mentions: bool = True  # @handles → " xuserx "
    retweet: bool = False  # drop Twitter "rt" markers
    lexicon: bool = False  # add the abuse lexicon counts as dense features

    def to_json(self) -> dict:
        return {"word_ngrams": list(self.word_ngrams), "char_ngrams": list(self.char_ngrams), "urls": self.urls,
                "mentions": self.mentions, "retweet": self.retweet, "lexicon": self.lexicon}

    @classmethod
    def from_json(cls, d: dict) -> FeatureConfig:
        return cls(tuple(d["word_ngrams"]), tuple(d["char_ngrams"]), d["urls"], d["mentions"], d["retweet"],
                   d["lexicon"])

    @property
    def n_dense(self) -> int:
        return 7 if self.lexicon else 0


def _prepare(v: NormalizedText, cfg: FeatureConfig) -> str:
    s = v.skeleton
    if "." in s or "/" in s:
        if cfg.urls == "domain":
            s = _URL.sub(lambda m: " xurlx " + _DOMAIN.match(m.group(0)).group(1) + " ", s)  # type: ignore[union-attr]
        else:
            s = _URL.sub(" xurlx ", s)
    if cfg.mentions and "@" in s:
        s = _MENTION.sub(" xuserx ", s)
    if cfg.retweet:
        s = _RETWEET.sub(" ", s)
    return s


def featurize(text: TextLike, cfg: FeatureConfig) -> tuple[list[str], list[str], list[float]]:
    """Word n-grams, character n-grams (inside words, padded with spaces) and dense features."""
    v = as_views(text)
    s = _prepare(v, cfg)
    toks = _WORD.findall(s)
    lo, hi = cfg.word_ngrams
    words: list[str] = list(toks) if lo == 1 else []
    for n in range(max(lo, 2), hi + 1):
        words.extend(" ".join(toks[i : i + n]) for i in range(len(toks) - n + 1))
    clo, chi = cfg.char_ngrams
    chars: list[str] = []
    for w in s.split():
        p = f" {w} "
        m = len(p)
        for n in range(clo, min(chi, m) + 1):
            chars.extend([p[i : i + n] for i in range(m - n + 1)])
    dense = _dense_abuse(v) if cfg.lexicon else []
    return words, chars, dense


def tfidf_block(
    docs: Sequence[Sequence[str]], index: dict[str, int], idf: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Sublinear TF-IDF, L2-normalised per document: ``(doc, feature, value)`` triplets."""
    doc_ids: list[int] = []
    feat_ids: list[int] = []
    get = index.get
    for d, feats in enumerate(docs):
        ids = [i for i in map(get, feats) if i is not None]
        feat_ids.extend(ids)
        doc_ids.extend([d] * len(ids))
    if not feat_ids:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty, np.zeros(0)
    vocab = len(idf)
    key = np.asarray(doc_ids, dtype=np.int64) * vocab + np.asarray(feat_ids, dtype=np.int64)
    uniq, counts = np.unique(key, return_counts=True)
    d = uniq // vocab
    f = uniq - d * vocab
    vals = (1.0 + np.log(counts)) * idf[f]
    norm = np.sqrt(np.bincount(d, vals * vals, minlength=len(docs)))
    vals = vals / norm[d]
    return d, f, vals


# =================================================================================================
# Linear model artifact


def _pack_vocab(terms: Sequence[str]) -> np.ndarray:
    return np.frombuffer("\n".join(terms).encode("utf-8"), dtype=np.uint8)


def _unpack_vocab(arr: np.ndarray) -> dict[str, int]:
    if arr.size == 0:
        return {}
    return {t: i for i, t in enumerate(arr.tobytes().decode("utf-8").split("\n"))}


@dataclass
class LinearTextModel:
    """Logistic model over [word TF-IDF | char TF-IDF | dense]; inference is numpy only."""

    name: str
    config: FeatureConfig
    word_index: dict[str, int]
    word_idf: np.ndarray
    word_coef: np.ndarray
    char_index: dict[str, int]
    char_idf: np.ndarray
    char_coef: np.ndarray
    dense_coef: np.ndarray
    intercept: float
    threshold: float
    meta: dict

    def decision_function(self, texts: Sequence[TextLike]) -> np.ndarray:
        views = [as_views(t) for t in texts]
        n = len(views)
        feats = [featurize(v, self.config) for v in views]
        z = np.full(n, self.intercept, dtype=np.float64)
        for block, index, idf, coef in (
            (0, self.word_index, self.word_idf, self.word_coef),
            (1, self.char_index, self.char_idf, self.char_coef),
        ):
            d, f, vals = tfidf_block([x[block] for x in feats], index, idf)
            if len(d):
                z += np.bincount(d, vals * coef[f], minlength=n)
        if self.config.n_dense:
            dense = np.asarray([x[2] for x in feats], dtype=np.float64).reshape(n, -1)
            z += dense @ self.dense_coef
        return z

    def predict_proba(self, texts: Sequence[TextLike]) -> np.ndarray:
        return 1.0 / (1.0 + np.exp(-self.decision_function(texts)))

    # --- persistence: npz of plain arrays (allow_pickle=False) plus a JSON header -------------

    def save(self, path: Path) -> None:
        header = {
            "format": "replyflow-linear-text-model", "featurizer_version": FEATURIZER_VERSION,
            "name": self.name, "config": self.config.to_json(), "intercept": self.intercept,
            "threshold": self.threshold, "meta": self.meta,
        }
        words = sorted(self.word_index, key=self.word_index.__getitem__)
        chars = sorted(self.char_index, key=self.char_index.__getitem__)
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "wb") as fh:
            np.savez_compressed(
                fh,
                header=np.frombuffer(json.dumps(header, sort_keys=True).encode(), dtype=np.uint8),
                word_vocab=_pack_vocab(words), word_idf=self.word_idf.astype(np.float32),
                word_coef=self.word_coef.astype(np.float32),
                char_vocab=_pack_vocab(chars), char_idf=self.char_idf.astype(np.float32),
                char_coef=self.char_coef.astype(np.float32),
                dense_coef=self.dense_coef.astype(np.float32),
            )

    @classmethod
    def load(cls, path: Path) -> LinearTextModel:
        with np.load(path, allow_pickle=False) as z:
            header = json.loads(z["header"].tobytes().decode())
            if header.get("format") != "replyflow-linear-text-model":
                raise ValueError(f"{path} is not a replyflow text model")
            if header.get("featurizer_version") != FEATURIZER_VERSION:
                raise ValueError(f"{path} was trained with featurizer v{header.get('featurizer_version')}, "
                                 f"this code is v{FEATURIZER_VERSION}: retrain with scripts/train_policy_models.py")
            return cls(
                name=header["name"], config=FeatureConfig.from_json(header["config"]),
                word_index=_unpack_vocab(z["word_vocab"]), word_idf=z["word_idf"].astype(np.float64),
                word_coef=z["word_coef"].astype(np.float64),
                char_index=_unpack_vocab(z["char_vocab"]), char_idf=z["char_idf"].astype(np.float64),
                char_coef=z["char_coef"].astype(np.float64), dense_coef=z["dense_coef"].astype(np.float64),
                intercept=float(header["intercept"]), threshold=float(header["threshold"]), meta=header["meta"],
            )


@cache
def _load_model(name: str) -> LinearTextModel:
    return LinearTextModel.load(MODELS_DIR / f"{name}.npz")


class _ModelClassifier:
    check: str
    artifact: str

    def __init__(self, model: LinearTextModel) -> None:
        self.model = model
        self.threshold = model.threshold

    @classmethod
    def load(cls, path: str | Path | None = None):
        model = LinearTextModel.load(Path(path)) if path else _load_model(cls.artifact)
        return cls(model)

    def scores(self, texts: Sequence[TextLike]) -> list[float]:
        """Probability per text (at or above ``threshold`` = flagged)."""
        if not texts:
            return []
        return [float(p) for p in self.model.predict_proba(texts)]


class SpamClassifier(_ModelClassifier):
    """Comment spam (self-promotion, "check my channel", link drops); trained on YouTube comments."""

    check = "spam"
    artifact = "spam"


class AbuseClassifier(_ModelClassifier):
    """Insults, hate and offensive language (Davidson et al. labels: hate or offensive = abusive).

    The model's probability is floored by two rules the training data barely covers: threats or
    self-harm incitement ("kys") score at least 0.95, an insult or slur aimed at "you" at least 0.9.
    """

    check = "abuse"
    artifact = "abuse"

    def scores(self, texts: Sequence[TextLike]) -> list[float]:
        if not texts:
            return []
        views = [as_views(t) for t in texts]
        probs = self.model.predict_proba(views)
        out = []
        for v, p in zip(views, probs, strict=True):
            c = abuse_lexicon_counts(v)
            floor = 0.95 if c["threat"] else 0.9 if c["directed"] and (c["insult"] or c["slur"]) else 0.0
            out.append(max(float(p), floor))
        return out
