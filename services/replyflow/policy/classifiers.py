"""Text classifiers and rule-based detectors of the screen stage (pure functions, CPU only).

Models
    ``SpamClassifier`` and ``AbuseClassifier`` are linear models over TF-IDF word 1–2-grams,
    character 2–5-grams inside words (both on the ``skeleton`` view of
    :mod:`replyflow.policy.textnorm`, so leetspeak, spacing and homoglyph tricks read as the
    plain word) and a few lexicon counts (profanity, insults, slurs, threats, words the
    abuse data set is ambiguous about); the abuse model also weighs each of the ambiguous terms
    on its own (``trash\\w*``, ``birds?``, ``ghetto\\w*``: ``log1p`` of its hits, not scaled by
    the comment's length as TF-IDF is). Training lives in ``scripts/train_policy_models.py``;
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

import base64
import binascii
import json
import math
import re
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field
from functools import cache, lru_cache
from itertools import chain
from pathlib import Path
from typing import NamedTuple, Self

import numpy as np

from replyflow.policy.findings import Finding
from replyflow.policy.literals import literal_trie
from replyflow.policy.textnorm import NormalizedText, as_views, normalize_views
from replyflow.policy.verify_checks import host_matches

__all__ = [
    "DETECTOR_THRESHOLD",
    "MODELS_DIR",
    "AbuseClassifier",
    "Finding",
    "LinearTextModel",
    "SpamClassifier",
    "TextScreener",
    "abuse_lexicon_counts",
    "char_ngrams",
    "detect_personal_data",
    "detect_prompt_injection",
    "detect_scam_patterns",
    "feature_ids",
    "featurize",
    "lexicon_terms",
    "tfidf_block",
]

MODELS_DIR = Path(__file__).with_name("models")
FEATURIZER_VERSION = 1
OUT_OF_VOCABULARY_CAP = 0.45
NO_EVIDENCE_CAP = 0.45
HARMLESS_USE_CAP = 0.45
_CHAR_CACHE_SIZE = 200_000
TextLike = str | NormalizedText

# =================================================================================================
# Lexicons. Patterns run on the ``skeleton`` view (case-folded, accents stripped, leetspeak undone).
# Letters in a term also match when doubled ("shiit", "fuuck"): see ``_tolerant``.


def _tolerant(fragment: str) -> str:
    """``abc`` → ``a+b+c+``; a run ``ss`` → ``s{2,}``. Escapes, character classes and letters that carry
    their own quantifier (``u?``) are kept as written."""
    out: list[str] = []
    i = 0
    n = len(fragment)
    while i < n:
        ch = fragment[i]
        if ch == "\\":
            out.append(fragment[i : i + 2])
            i += 2
        elif ch == "[":
            j = fragment.index("]", i + 1)
            out.append(fragment[i : j + 1])
            i = j + 1
        elif "a" <= ch <= "z":
            j = i
            while j < n and fragment[j] == ch:
                j += 1
            run = j - i
            if j < n and fragment[j] in "?*+{":
                out.append(fragment[i:j])
            else:
                out.append(f"{ch}+" if run == 1 else f"{ch}{{{run},}}")
            i = j
        else:
            out.append(ch)
            i += 1
    return "".join(out)


def _alternation(terms: Iterable[str]) -> re.Pattern[str]:
    body = "|".join(_tolerant(t) for t in terms)
    return re.compile(rf"(?<![^\W_])(?:{body})(?![^\W_])")


_PROFANITY = (
    r"\w*fuck\w*", r"fck\w*", r"fuk\w*", r"fuq\w*", r"phuck\w*", r"fk", r"f\*+c?k\w*", r"mofo\w*",
    r"muthaf\w*", r"motherf\w*", r"mf", r"\w*shit(?!ake)\w*", r"sh\*+t\w*", r"bitch\w*", r"biatch\w*",
    r"b\*+tch\w*", r"cunt\w*", r"c\*+nt", r"dick(?:s|head\w*|wad\w*|face)?", r"cock(?:s|sucker\w*)?",
    r"puss(?:y|ies|ie)", r"twat\w*", r"wank\w*", r"slut\w*", r"whore\w*", r"hoe(?:s|z)?", r"thot\w*",
    r"skank\w*", r"douche\w*", r"bastard\w*", r"\w*asshole\w*", r"ass(?:es|hat\w*|wipe\w*|clown\w*)?",
    r"(?:dumb|jack|fat|lame|punk|broke|bitch|stupid|lazy|weak|kiss)ass(?:es)?", r"arse(?!nal)\w*",
    r"piss(?:ed|ing|es)?", r"bollocks", r"crap(?:py)?", r"damn\w*", r"goddamn\w*", r"tits?", r"titties",
    r"boobs?", r"porn\w*", r"dildo\w*", r"cum", r"jizz\w*", r"blowjob\w*", r"handjob\w*", r"anal",
    r"horny", r"stfu", r"gtfo", r"wtf",
    # es
    r"puta\w*", r"puto\w*", r"mierda\w*", r"joder", r"jodete", r"verga\w*", r"chinga\w*", r"culero\w*",
    r"cabron\w*", r"hdp", r"pinche", r"cono",
    # fr
    r"putain\w*", r"pute\w*", r"merde\w*", r"salope\w*", r"salaud\w*", r"encule\w*", r"nique\w*", r"ntm",
    r"fdp", r"bordel",
    # de
    r"scheis\w*", r"ficke?n?", r"fick\w*", r"fotze\w*", r"hurensohn\w*", r"hure\w*",
    # pt
    r"porra\w*", r"caralho\w*", r"merda\w*", r"foda\w*", r"fodase", r"buceta\w*", r"vadia\w*",
    r"arrombad\w*", r"cuzao",
    # it
    r"cazzo\w*", r"(?:vaf)?fanculo", r"minchia", r"puttan\w*",
)
_INSULTS = (
    r"idiot\w*", r"stupid\w*", r"moron\w*", r"retard\w*", r"dumb(?:er|est)?", r"loser\w*", r"imbecil\w*",
    r"cretin\w*", r"scum\w*", r"pathetic", r"worthless", r"talentless", r"useless", r"ugly", r"disgusting",
    r"dipshit\w*",
    r"numbnuts", r"halfwit\w*", r"nitwit\w*", r"dimwit\w*", r"pos", r"clowns?", r"garbage",
    r"freaks?", r"creeps?", r"dumbo", r"dork\w*", r"wanker\w*", r"parasites?", r"vermin", r"brain ?dead",
    r"shut (?:the \w+ )?up", r"nobody (?:cares|likes you|wants you|wants to (?:hear|see) you\w*)",
    # es
    r"idiota\w*", r"estupid\w*", r"pendej\w*", r"gilipollas", r"subnormal\w*", r"baboso\w*", r"tont[oa]s?",
    r"asqueros[oa]s?", r"inutil(?:es)?",
    # fr
    r"connard\w*", r"connasse\w*", r"abruti\w*", r"debile\w*", r"bouffon\w*",
    # de
    r"arschloch\w*", r"wichser\w*", r"vollidiot\w*", r"missgeburt\w*", r"spast\w*", r"trottel\w*",
    r"dummkopf\w*", r"penner\w*", r"depp\w*", r"dumme[rns]?", r"hasslich\w*",
    # pt
    r"otario\w*", r"babaca\w*", r"corno\w*", r"trouxa\w*", r"imbecis",
    # it ("idiota", "stupido", "cretino", "imbecille" are matched above)
    r"stronz[oaie]", r"coglion[eia]", r"scem[oaie]", r"deficient[ei]", r"schifos[oaie]", r"sfigat[oaie]",
    r"fai schifo",
)
_SLURS = (
    r"nigg\w*", r"nig(?:a|az|as|s|let\w*)?", r"nicca\w*", r"negroid\w*", r"coons?", r"jigaboo\w*",
    r"porch ?monkey\w*", r"spear ?chucker\w*", r"wetback\w*", r"beaner\w*", r"spics?", r"spick\w*",
    r"chinks?", r"gooks?", r"slant ?eye\w*", r"slants", r"kikes?", r"towel ?head\w*", r"rag ?head\w*",
    r"muzzies?", r"muzrat\w*", r"pakis?", r"fag\w*", r"dykes?", r"tranny", r"trannies", r"shemale\w*",
    r"mongoloid\w*", r"wiggers?", r"honk(?:y|ey|ie)s?", r"whitey", r"zipper ?head\w*",
    r"camel ?jockey\w*", r"white trash", r"nips", r"go back to (?:your|ur) (?:own )?(?:country|countries)",
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
    r"(?:i ?will|i'?ll|i am going to|im going to|i'?m gonna|gonna) (?:kill|murder|stab|shoot|hurt|find) "
            r"(?:you|u)",
    r"(?:i|we) know (?:where|which \w+) (?:you|u) (?:live|work|train|sleep|go)\w*",
    r"see what happens to (?:you|u)",
    r"watch (?:your|ur) back", r"(?:you|u)(?:'ll| will) regret (?:it|this)",
    r"matate", r"muerete", r"ojala te mueras", r"va mourir", r"creve", r"suicide[- ]toi", r"bring dich um",
    r"stirb", r"se mata", r"vai morrer", r"morra", r"ammazzati",
)
_LEX_NAMES = ("profanity", "insult", "slur", "ambiguous", "threat")
_LEX_TERMS = dict(zip(_LEX_NAMES, (_PROFANITY, _INSULTS, _SLURS, _AMBIGUOUS, _THREATS), strict=True))
# One-word terms are matched per token (with a cache: most tokens are common words); terms with a space
# are matched on the whole text.
_LEX_WORD = {
    name: re.compile("|".join(_tolerant(t) for t in terms if " " not in t))
    for name, terms in _LEX_TERMS.items()
}
_LEX_PHRASE = {
    name: _alternation(phrases)
    for name, terms in _LEX_TERMS.items()
    if (phrases := [t for t in terms if " " in t])
}
# Every phrase term contains one of these words; a text with none of them skips the phrase patterns.
_PHRASE_KEY_WORDS = """
    porch spear slant towel rag zipper camel trash go back brain shut nobody kill die neck hope wish
    should murder stab shoot hurt find matate muerete mueras mourir creve suicide dich stirb mata morrer
    morra know happens watch regret schifo
"""
_LEX_PHRASE_KEYS = re.compile(literal_trie(_PHRASE_KEY_WORDS.split()))
# An elided Italian or French article or preposition is no part of the word ("un'idiota", "l'idiota", "dell'idiota",
# "d'idiot"); "t'es" and "you're" stay one token.
_LEX_TOKEN = re.compile(r"(?<![^\W_])(?:(?:l|un|d|dell|dall|nell|sull|all|coll|quell|quest)'(?=[^\W_]))?"
                        r"([^\W_]+(?:[*']+[^\W_]+)*)")
_SECOND_PERSON_WORDS = (
    "you u ur your youre you're ya yo eres tu te vos usted t'es tes vous toi du dich dir ihr voce vc seu sua sei"
)
_SECOND_PERSON = frozenset(_SECOND_PERSON_WORDS.split())
_DIRECTED_GROUPS = ("profanity", "insult", "slur")


def abuse_lexicon_counts(text: TextLike) -> dict[str, int]:
    """Lexicon hits per group, plus ``directed``: an insult, slur or profanity right after "you"."""
    return dict(_lexicon_counts(_lexicon_text(as_views(text))))


def _lexicon_text(v: NormalizedText) -> str:
    """The skeleton with URLs and @handles replaced by placeholders ("@thotcho" is no word)."""
    return _prepared(v.skeleton, "token", True, False)


@lru_cache(maxsize=1 << 16)
def _token_groups(token: str) -> tuple[str, ...]:
    return tuple(name for name in _LEX_NAMES if _LEX_WORD[name].fullmatch(token))


@lru_cache(maxsize=2048)  # the lexicon counts and terms of a text both need them
def _lex_tokens(s: str) -> tuple[str, ...]:
    return tuple(_LEX_TOKEN.findall(s))


@lru_cache(maxsize=4096)
def _lexicon_counts(s: str) -> tuple[tuple[str, int], ...]:
    counts = dict.fromkeys(_LEX_NAMES, 0)
    directed = 0
    tokens = _lex_tokens(s)
    for i, tok in enumerate(tokens):
        for name in _token_groups(tok):
            counts[name] += 1
            if not directed and name in _DIRECTED_GROUPS:
                directed = int(bool(_SECOND_PERSON.intersection(tokens[max(0, i - 6) : i])))
    for name, rx in _LEX_PHRASE.items() if _LEX_PHRASE_KEYS.search(s) else ():
        for m in rx.finditer(s):
            counts[name] += 1
            if not directed and name in _DIRECTED_GROUPS:
                window = _LEX_TOKEN.findall(s[max(0, m.start() - 30) : m.end()])
                directed = int(bool(_SECOND_PERSON.intersection(window)))
    counts["directed"] = directed
    return tuple(counts.items())


# Each one-word term on its own, to name which term a token matched (``lexicon_terms``).
_LEX_TERM_WORD = {
    name: tuple((f"{name}:{t}", re.compile(_tolerant(t))) for t in terms if " " not in t)
    for name, terms in _LEX_TERMS.items()
}
_LEX_TERM_PHRASE = {
    name: tuple((f"{name}:{t}", _alternation([t])) for t in terms if " " in t)
    for name, terms in _LEX_TERMS.items()
}


@lru_cache(maxsize=1 << 16)
def _token_terms(token: str, groups: tuple[str, ...]) -> tuple[str, ...]:
    out = []
    for name in _token_groups(token):
        if name in groups:
            for term, rx in _LEX_TERM_WORD[name]:
                if rx.fullmatch(token):
                    out.append(term)
                    break
    return tuple(out)


@lru_cache(maxsize=4096)
def _lexicon_terms(s: str, groups: tuple[str, ...]) -> tuple[str, ...]:
    out = [t for tok in _lex_tokens(s) for t in _token_terms(tok, groups)]
    phrases = [term_rx for name in groups for term_rx in _LEX_TERM_PHRASE[name]]
    if phrases and _LEX_PHRASE_KEYS.search(s):
        out += [term for term, rx in phrases if rx.search(s)]
    return tuple(out)


# Groups whose terms the abuse model weighs one by one. Only the words the data set was sampled with
# and is ambiguous about: per-term weights for profanity, insults or slurs would take weight from
# the group counts, which are what carries to terms the training tweets never use (other languages).
LEXICON_TERM_GROUPS = ("ambiguous",)


def lexicon_terms(text: TextLike, groups: Sequence[str] = LEXICON_TERM_GROUPS) -> list[str]:
    """The lexicon terms of ``groups`` a text hits, once per hit, named ``group:pattern``
    ("ambiguous:trash\\w*"); a token counts for the first term of each group it matches, a phrase
    term once per text."""
    return list(_lexicon_terms(_lexicon_text(as_views(text)), tuple(groups)))


def _dense_abuse(v: NormalizedText) -> list[float]:
    c = dict(_lexicon_counts(_lexicon_text(v)))
    strong = c["profanity"] + c["insult"] + c["slur"] + c["threat"]
    return [
        *(math.log1p(c[name]) for name in ("profanity", "insult", "slur", "ambiguous", "threat")),
        float(strong > 0),
        float(c["directed"]),
    ]


# =================================================================================================
# Featurizer (shared by training and inference: same code, same numbers)

_URL = re.compile(r"(?:https?://|www\.)\S+|\b(?:[a-z0-9-]+\.)+(?:com|net|org|ly|gl|io|me|co|tv|be|info|"
                  r"biz)(?:/\S*)?")
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
    lexicon_terms: bool = False  # add log1p(hits) of each ambiguous lexicon term (``lexicon_terms``)

    def to_json(self) -> dict:
        d = {
            "word_ngrams": list(self.word_ngrams), "char_ngrams": list(self.char_ngrams), "urls": self.urls,
            "mentions": self.mentions, "retweet": self.retweet, "lexicon": self.lexicon,
        }
        if self.lexicon_terms:  # absent in artifacts written before the option existed
            d["lexicon_terms"] = True
        return d

    @classmethod
    def from_json(cls, d: dict) -> FeatureConfig:
        return cls(tuple(d["word_ngrams"]), tuple(d["char_ngrams"]), d["urls"], d["mentions"], d["retweet"],
                   d["lexicon"], bool(d.get("lexicon_terms", False)))

    @property
    def n_dense(self) -> int:
        return 7 if self.lexicon else 0


def _prepare(v: NormalizedText, cfg: FeatureConfig) -> str:
    return _prepared(v.skeleton, cfg.urls, cfg.mentions, cfg.retweet)


@lru_cache(maxsize=8192)
def _prepared(s: str, urls: str, mentions: bool, retweet: bool) -> str:
    """The skeleton with URLs and @handles replaced by ``xurlx`` / ``xuserx`` (cached: several checks ask)."""
    if "." in s or "/" in s:
        if urls == "domain":
            s = _URL.sub(lambda m: " xurlx " + _DOMAIN.match(m.group(0)).group(1) + " ", s)  # type: ignore[union-attr]
        else:
            s = _URL.sub(" xurlx ", s)
    if mentions and "@" in s:
        s = _MENTION.sub(" xuserx ", s)
    if retweet:
        s = _RETWEET.sub(" ", s)
    return s


@lru_cache(maxsize=2048)  # featurize and the abuse model's vocabulary coverage both need them
def _words(s: str) -> tuple[str, ...]:
    return tuple(_WORD.findall(s))


def featurize(text: TextLike, cfg: FeatureConfig) -> tuple[list[str], list[str], list[float]]:
    """Word n-grams, the words whose character n-grams count (see :func:`char_ngrams`) and dense features."""
    v = as_views(text)
    s = _prepare(v, cfg)
    toks = _words(s)
    lo, hi = cfg.word_ngrams
    grams: list[str] = list(toks) if lo == 1 else []
    for n in range(max(lo, 2), hi + 1):
        grams.extend(" ".join(toks[i : i + n]) for i in range(len(toks) - n + 1))
    dense = _dense_abuse(v) if cfg.lexicon else []
    return grams, s.split(), dense


def char_ngrams(word: str, lo: int, hi: int) -> list[str]:
    """Character ``lo``..``hi``-grams of `` word `` (padded with one space each side)."""
    p = f" {word} "
    m = len(p)
    return [p[i : i + n] for n in range(lo, min(hi, m) + 1) for i in range(m - n + 1)]


def feature_ids(feats: Iterable[str], index: dict[str, int]) -> list[int]:
    get = index.get
    return [i for i in map(get, feats) if i is not None]


def term_block(docs: Sequence[Sequence[str]], index: dict[str, int]) -> tuple[np.ndarray, np.ndarray,
                                                                               np.ndarray]:
    """``log1p`` of each known term's count per document: ``(doc, feature, value)`` triplets."""
    d: list[int] = []
    f: list[int] = []
    for i, terms in enumerate(docs):
        for j in feature_ids(terms, index):
            d.append(i)
            f.append(j)
    if not d:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty, np.zeros(0)
    vocab = len(index)
    uniq, counts = np.unique(np.asarray(d, dtype=np.int64) * vocab + np.asarray(f, dtype=np.int64),
                             return_counts=True)
    dd = uniq // vocab
    return dd, uniq - dd * vocab, np.log1p(counts.astype(np.float64))


def tfidf_block(docs: Sequence[Sequence[int]], idf: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Sublinear TF-IDF of feature ids, L2-normalised per document: ``(doc, feature, value)`` triplets."""
    lengths = np.fromiter((len(ids) for ids in docs), dtype=np.int64, count=len(docs))
    if not lengths.sum():
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty, np.zeros(0)
    vocab = len(idf)
    doc = np.repeat(np.arange(len(docs), dtype=np.int64), lengths)
    feat = np.fromiter(chain.from_iterable(docs), dtype=np.int64, count=int(lengths.sum()))
    uniq, counts = np.unique(doc * vocab + feat, return_counts=True)
    d = uniq // vocab
    f = uniq - d * vocab
    vals = (1.0 + np.log(counts)) * idf[f]
    norm = np.sqrt(np.bincount(d, vals * vals, minlength=len(docs)))
    return d, f, vals / norm[d]


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
    """Logistic model over [word TF-IDF | char TF-IDF | dense | lexicon terms]; inference is numpy only."""

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
    term_index: dict[str, int] = field(default_factory=dict)
    term_coef: np.ndarray = field(default_factory=lambda: np.zeros(0))

    def __post_init__(self) -> None:
        self._char_cache: dict[str, list[int]] = {}

    def _char_ids(self, words: Sequence[str]) -> list[int]:
        """Known character n-gram ids of ``words``, cached per word (comments repeat their words a lot)."""
        cache = self._char_cache
        out: list[int] = []
        for w in words:
            ids = cache.get(w)
            if ids is None:
                ids = feature_ids(char_ngrams(w, *self.config.char_ngrams), self.char_index)
                if len(cache) >= _CHAR_CACHE_SIZE:
                    cache.clear()
                cache[w] = ids
            out.extend(ids)
        return out

    def decision_function(self, texts: Sequence[TextLike]) -> np.ndarray:
        views = [as_views(t) for t in texts]
        n = len(views)
        feats = [featurize(v, self.config) for v in views]
        z = np.full(n, self.intercept, dtype=np.float64)
        for docs, idf, coef in (
            ([feature_ids(x[0], self.word_index) for x in feats], self.word_idf, self.word_coef),
            ([self._char_ids(x[1]) for x in feats], self.char_idf, self.char_coef),
        ):
            d, f, vals = tfidf_block(docs, idf)
            if len(d):
                z += np.bincount(d, vals * coef[f], minlength=n)
        if self.config.n_dense:
            dense = np.asarray([x[2] for x in feats], dtype=np.float64).reshape(n, -1)
            z += dense @ self.dense_coef
        if self.config.lexicon_terms and self.term_index:
            d, f, vals = term_block([lexicon_terms(v) for v in views], self.term_index)
            if len(d):
                z += np.bincount(d, vals * self.term_coef[f], minlength=n)
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
        terms = sorted(self.term_index, key=self.term_index.__getitem__)
        extra = {"term_vocab": _pack_vocab(terms), "term_coef": self.term_coef.astype(np.float32)} if terms else {}
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
                **extra,
            )

    @classmethod
    def load(cls, path: Path) -> LinearTextModel:
        with np.load(path, allow_pickle=False) as z:
            header = json.loads(z["header"].tobytes().decode())
            if header.get("format") != "replyflow-linear-text-model":
                raise ValueError(f"{path} is not a replyflow text model")
            if header.get("featurizer_version") != FEATURIZER_VERSION:
                raise ValueError(f"{path} was trained with featurizer v{header.get('featurizer_version')}, "
                                 f"this code is v{FEATURIZER_VERSION}: retrain with "
                                 f"scripts/train_policy_models.py")
            return cls(
                name=header["name"], config=FeatureConfig.from_json(header["config"]),
                word_index=_unpack_vocab(z["word_vocab"]), word_idf=z["word_idf"].astype(np.float64),
                word_coef=z["word_coef"].astype(np.float64),
                char_index=_unpack_vocab(z["char_vocab"]), char_idf=z["char_idf"].astype(np.float64),
                char_coef=z["char_coef"].astype(np.float64), dense_coef=z["dense_coef"].astype(np.float64),
                intercept=float(header["intercept"]), threshold=float(header["threshold"]),
                meta=header["meta"],
                term_index=_unpack_vocab(z["term_vocab"]) if "term_vocab" in z.files else {},
                term_coef=z["term_coef"].astype(np.float64) if "term_coef" in z.files else np.zeros(0),
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
    def load(cls, path: str | Path | None = None) -> Self:
        """The shipped model (loaded once per process), or the artifact at ``path``."""
        model = LinearTextModel.load(Path(path)) if path else _load_model(cls.artifact)
        return cls(model)

    def scores(self, texts: Sequence[TextLike]) -> list[float]:
        """Probability per text (at or above ``threshold`` = flagged)."""
        if not texts:
            return []
        return [float(p) for p in self.model.predict_proba(texts)]


# Something a spammer wants: a link, a channel, followers, money, a contact, engagement bait.
_SPAM_EVIDENCE = re.compile(
    r"(?:https?://|www\.|\b[a-z0-9-]+\.(?:com|net|org|ly|be|tv|xyz|biz|ru|info|pl|me|co|io|gl|us|uk|de)\b)|"
    r"(?<![^\W_])(?:sub\w*|s[cu]\w*scri\w*|channel\w*|check(?:s|ing)? (?:out|my|our|it|this|me|us)|checkout|"
    r"visit\w*|follow\w*|"
    r"free|wins?|winner|money|cash|earn\w*|click\w*|links?|pages?|website|site|"
    r"promo\w*|code|discount|offers?|deals?|cheap|buy|sell\w*|shop\w*|store|views|"
    r"likes|followers|collab\w*|dm|telegram|whats ?app|instagram|insta|ig|facebook|"
    r"fb|twitter|snap\w*|tiktok|download\w*|apps?|giveaway|prize|gifts?|iphone|"
    r"bitcoin\w*|btc|crypto\w*|invest\w*|profit\w*|income|job|hiring|dollars|amazon|"
    r"paypal|spotify|soundcloud|playlist|mixtape|cover\w*|band|rapper|vlog\w*|"
    r"youtube|youtuber|google|support|share|spread|thumbs|upvote|vote|donate|e-?mail|"
    r"take a look|like this comment|like if|"
    r"my (?:music|songs?|videos?|vids?|band|page|profile|account|rap|covers?|art|"
    r"work|stuff|content|blog|stream))(?![^\W_])|[$%£€]|\+\d{6,}"
)

# A fan's words that look like a spammer's, blanked out before looking for ``_SPAM_EVIDENCE``:
# - following the creator ("I follow you from Mexico", "been following you since 2019"); "follow me", "I'll follow
#   you", "follow you back" and "follow 4 follow" want followers;
# - having subscribed ("instantly subscribed", "just subbed!", "new subscriber here", "you earned a sub", "¡nueva
#   suscriptora!"); not "subscribed to you, sub back";
# - the creator's channel ("your channel is my comfort watch", "love this channel"): a spammer's is "my channel";
# - following the creator's advice ("followed your recipe", "following your guide #slowtravel"), buying their things
#   ("where can I buy your cookbook?"), asking for their links ("link to the pan?") or apps they use ("spreadsheet
#   or app?"), their other accounts ("saw this on your Instagram", "found you on TikTok"), a poll answer ("my vote
#   goes to the Azores"), "free" time or an ingredient left out ("gluten-free"), pointing to another comment ("check
#   out the comment below") or to a sight ("if you go, check out the market").
_FANS_OWN_WORDS = re.compile(
    r"(?<![^\W_])(?:(?:(?:i|we)(?:['’]ve| have)?|been)(?: (?:always|still|already|just|been))* "
    r"follow(?:s|ed|ing)? (?:you|u)(?![^\W_])(?! back)|"
    r"(?:subscribed|subbed)(?![^\W_])(?! (?:back|to (?:me|my|us|our)))|"
    r"(?:new|newest|another) (?:sub|subscriber|subbie)s?|(?:earned|gained|got|won) (?:a|an|another|one more|"
    r"yourself a) (?:new )?(?:sub|subscriber|subbie)s?|me suscri\w*|nuev[oa] suscript\w*|suscrit[oa]s?|"
    r"(?:your|ur|this|the) channel|"
    r"follow(?:s|ed|ing)? (?:your|ur|the|this) (?:\w+ )?(?:recipes?|guides?|plans?|program(?:me)?s?|advice|tips?|"
    r"steps|instructions|routines?|workouts?|itinerar(?:y|ies)|routes?|tutorials?)|"
    r"(?:where|how) (?:can|do|could|should) (?:i|we) (?:buy|get|order)|buy (?:your|ur)|"
    r"links? (?:to|for) (?:your|ur|the|that|this)|(?:which|what|or|your) apps?|"
    r"your (?:instagram|insta|ig|tiktok|facebook|fb|twitter)|(?:found|saw|seen|discovered) (?:you|this|it) (?:on|via|"
    r"through) (?:instagram|insta|ig|tiktok|facebook|fb|twitter|google)|my vote (?:goes|is|for)|"
    r"free (?:time|days?|weekends?|evenings?|mornings?)|"
    r"(?:gluten|dairy|sugar|lactose|nut|egg|meat|fat|carb|grain|soy|caffeine|alcohol|oil|pain|injury|stress)[ -]free|"
    r"check(?:ed|ing)? out the (?:comments?|repl(?:y|ies))|"
    r"if (?:you|u) (?:go|visit|are in|re in|get to|ever go)(?: to)?(?: (?!my|our)\w+){0,3},? check out)"
    r"(?![^\W_])"
)


def _spam_evidence(v: NormalizedText) -> bool:
    # Most comments have no evidence at all: only those that have are searched again without a fan's own words.
    return (_SPAM_EVIDENCE.search(v.skeleton) is not None
            and _SPAM_EVIDENCE.search(_FANS_OWN_WORDS.sub(" ", v.skeleton)) is not None)


class SpamClassifier(_ModelClassifier):
    """Comment spam (self-promotion, "check my channel", link drops); trained on YouTube comments.

    The training comments are short music-video comments: any longer, chattier comment looks
    unusual to the model. A comment with nothing a spammer would want (no link, channel,
    followers, money, contact or engagement bait, see ``_SPAM_EVIDENCE``) is capped below the
    threshold; in the training data 7 of 723 spam comments have none of it. "Check" is evidence
    only as in "check out", "check my ...": alone ("form check", "check your oven") it counts for
    no spam comment of the training or validation data; nor are a fan's own words (``_FANS_OWN_WORDS``: following
    the creator, having subscribed, their channel, "where can I buy your cookbook?", "gluten-free").
    TubeSpam labels "subscribed!" spam (on 2014 music videos it answered "sub4sub" requests: 4 training rows, 1 of
    tubespam_val, which this misses: F1 0.975 → 0.969); on a creator's own channel it is a fan, and the sample
    comments of ``make run`` had one skipped.
    """

    check = "spam"
    artifact = "spam"

    def scores(self, texts: Sequence[TextLike]) -> list[float]:
        if not texts:
            return []
        views = [as_views(t) for t in texts]
        probs = self.model.predict_proba(views)
        return [float(p) if _spam_evidence(v) else min(float(p), NO_EVIDENCE_CAP)
                for v, p in zip(views, probs, strict=True)]


_APOS = "['’]"
# "Damn" and "holy crap/shit" as exclamations, unless said to someone ("you're a damn fraud"): of the Davidson tweets
# whose only lexicon word is "damn", the annotators call 11 of 15 clean, and verify's profanity check lets mild words
# through (``strict_profanity``).
# ("Damn you're good" is the exclamation: only "damn you" itself curses.)
_MILD_EXCLAMATION = re.compile(
    rf"(?<![^\W_])(?:damn(?:it|ed)?(?! (?:you|u)\b(?!{_APOS}))|holy (?:crap|shit))(?![^\W_])"
)
# What a swear word intensifies in praise ("fucking amazing", "so damn talented", "a fucking legend").
_PRAISE_WORDS = (
    r"(?:love[ds]?|loving|good|great|amazing|awesome|delicious|beautiful|gorgeous|stunning|incredible|brilliant|best|"
    r"perfect|genius|legend\w*|tasty|yummy|talented|gifted|funny|hilarious|smart|clever|cool|impressive|inspiring|"
    r"helpful|underrated|epic|strong|right|fine|beast|hero|icon|goat|king|queen|star)"
)
# Other lexicon words used in ways that insult nobody (on the lexicon text, the skeleton):
# - "fucking" or "damn" before praise, also said to the reader ("I fucking love this channel", "you're so damn
#   talented"), a swear word before praise of the reader ("Fuck, you're so talented", "holy shit you're good"), "de
#   puta madre" (Spanish: excellent);
# - the reader reassured ("you're not stupid", "no eres tonta", "non sei stupida");
# - the commenter about themselves ("I'm such an idiot, I used salt", "my lazy ass finally did it", "soy tonta",
#   "Shit, I forgot the salt", "a total garlic freak", "Dumb question but can I freeze it?") and a reply reassuring
#   them ("No such thing as a stupid question!");
# - slang and things that are no insult: "stupid good", "a shit ton of garlic", "idiot-proof", "ugly but delicious",
#   spotted dick and cock-a-leekie (dishes).
# None of them is in a Davidson held-out row without another lexicon word.
_HARMLESS_USE = re.compile(
    rf"(?<![^\W_])(?:(?:fuckin[g'’]?|damn) {_PRAISE_WORDS}|(?:de )?puta madre|"
    rf"(?:fuck|shit|holy (?:shit|fuck|crap))[,.!]* (?:you{_APOS}re|you are|youre|ur) (?:(?:so|really|actually|just|"
    rf"too|such an?|an?|the) )*{_PRAISE_WORDS}|"
    rf"(?:you{_APOS}re|you are|youre|ur) (?:not|never) (?:(?:an?|so|that|really|being) )*(?:idiot|stupid|dumb|useless|"
    r"moron|loser)|no eres (?:(?:un|una|tan|nada) )*(?:tont[oa]|idiota|estupid[oa]|inutil)|"
    r"non sei (?:(?:un|una|cosi|per niente|mica) |un')*(?:stupid[oa]|scem[oa]|idiota|cretin[oa])|"
    # Italian "ho" (I have), not the English "ho": "ho fatto la ricetta", "non ho capito"
    r"ho (?:(?:gia|appena|sempre|mai|anche|solo|finalmente|proprio) )?(?:\w+(?:at|it|ut)[oaie]|(?:fatt|mess|vist|lett|"
    r"pres|dett|scritt|cott|aggiunt|tolt|apert|rott|spes|chiest|pers|piaciut)[oaie])|"
    rf"(?:i{_APOS}?m|i am|i was|i feel|i felt) (?:(?:such|so|a|an|the|total|complete|absolute|literally|really|"
    r"kinda|kind of|biggest|most|just) )*(?:idiot|stupid|dumb|useless|moron|clown|loser|dork|pissed|(?:\w+ )?freak)|"
    r"(?:garlic|cheese|pasta|spice|chili|coffee|chocolate|bread|fitness|gym|health|control|neat|travel) freaks?|"
    # frustration at oneself, said to no one: "Shit, I forgot the salt", "Merde, j'ai oublié", "Mierda, se me quemó"
    rf"^(?:oh )?(?:shit|fuck|merde|mierda|joder|scheisse?|porra|caralho|cazzo|merda)(?=[,.!]+ (?:i|i{_APOS}\w+|my|"
    rf"j{_APOS}\w+|je|se me|ich|eu|ho|mi)(?![^\W_]))"
    rf"(?!.*(?<![^\W_])(?:{'|'.join(_SECOND_PERSON_WORDS.split())})(?![^\W_]))|"
    r"(?:stupid(?:ly)?|dumb) (?:good|easy|simple|fast|quick|cheap|delicious|tasty|strong|fun|rich|crispy|juicy)|"
    r"shit ?(?:ton|load)s? of|"
    r"my (?:fat|lazy|dumb|broke|tired|old|sorry|clumsy|impatient|hungry|greedy|sleepy|weak|stupid)[ -]?ass|"
    r"soy (?:(?:un|una|tan|muy|super|la mas|el mas) )*(?:tont[oa]|idiota|estupid[oa])|"
    r"ich bin (?:(?:so|ein|eine|echt|total|voll) )*(?:dumm|depp|trottel|idiot)|"
    r"sono (?:(?:una|un|uno|proprio|cosi|davvero|veramente|tanto|troppo|la piu|il piu)[' ])*(?:idiota|scem[oa]|"
    r"stupid[oa]|cretin[oa]|imbecille|deficiente)|"
    rf"(?<!what a )(?<!what an )(?<!such a )(?<!that{_APOS}s a )(?<!thats a )(?<!that is a )(?<!your )(?<!ur )"
    r"(?:dumb|stupid|silly) (?:question|q)s?|"
    r"idiot[ -]?proof|ugly (?:but|yet|and) (?:delicious|tasty|good|yummy|so good|amazing)|spotted dick|"
    r"cock[ -]a[ -]leekie)"
    r"(?![^\W_])"
)
# Foreign exclamations ("Joder, qué pinta", "Putain c'est beau", "Caralho, que delícia", "Scheiße, sieht das schön
# aus") count as harmless only in a text that praises something (``_PRAISE``).
_EXCLAMATION = re.compile(r"(?<![^\W_])(?:joder|putain|caralho|porra|scheisse?|merde|cazzo|minchia)(?![^\W_])")
_PRAISE = re.compile(
    r"(?<![^\W_])(?:good|great|amazing|awesome|delicious|tasty|yummy|beautiful|gorgeous|stunning|love[ds]?|best|"
    r"perfect|incredible|insane|unreal|brilliant|wow|ric[oa]|buen[oa]?|buenisim[oa]|bonit[oa]|precios[oa]|pinta|"
    r"delicios[oa]|increible|brutal|genial|maravill\w*|encanta\w*|espectacular|delicia|boa|bom|lind[oa]|"
    r"maravilh\w*|perfeit[oa]|incrivel|gostos[oa]|beau|belle|bon|bonne|magnifique|incroyable|sublime|delicieux|"
    r"schon|geil\w*|lecker|toll|super|mega|hammer|wahnsinn|klasse|perfekt|bell[oa]|buon[oa]?|buonissim[oa]|"
    r"stupend[oa]|ottim[oa]|fantastic[oa]|spettacol\w*)"
    r"(?![^\W_])"
)


class AbuseClassifier(_ModelClassifier):
    """Insults, hate and offensive language (Davidson et al. labels: hate or offensive = abusive).

    The model's probability is floored by two rules the training data barely covers: threats or
    self-harm incitement ("kys") score at least 0.95, an insult or slur aimed at "you" at least 0.9.
    Text whose only lexicon hits are harmless uses (``_HARMLESS_USE``: "Damn, that crust!", "I'm such an idiot,
    I used salt", "Dumb question but..."; ``_EXCLAMATION`` in praise), and text with no lexicon hit whose words are
    mostly unknown to the model, are capped below the threshold.
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
            if any(c.values()) and self._only_harmless(c, v):
                p = min(p, HARMLESS_USE_CAP)
            elif c["threat"]:
                p = max(p, 0.95)
            elif c["directed"] and (c["insult"] or c["slur"]):
                p = max(p, 0.9)
            elif not any(c.values()) and self._coverage(v) < 0.5:
                # Mostly words the model never saw (another language, say) and nothing in the lexicon: the
                # model would only be guessing from its prior, which leans abusive (83 % of its tweets are).
                p = min(p, OUT_OF_VOCABULARY_CAP)
            out.append(float(p))
        return out

    @staticmethod
    def _only_harmless(c: dict[str, int], v: NormalizedText) -> bool:
        """Every lexicon hit is a harmless use: with those blanked out, the lexicon finds nothing."""
        s = _lexicon_text(v)
        rest = _HARMLESS_USE.sub(" ", s)
        if not c["directed"]:
            rest = _MILD_EXCLAMATION.sub(" ", rest)
        if _EXCLAMATION.search(rest) and _PRAISE.search(s):
            rest = _EXCLAMATION.sub(" ", rest)
        return rest != s and not any(count for _, count in _lexicon_counts(rest))

    def _coverage(self, v: NormalizedText) -> float:
        words = [w for w in _words(_prepare(v, self.model.config)) if w.isalpha()]
        if not words:
            return 1.0
        index = self.model.word_index
        return sum(w in index for w in words) / len(words)


# =================================================================================================
# Rule-based detectors. Every returned finding is a hit (score >= 0.5); weaker cues only add up.

DETECTOR_THRESHOLD = 0.5


@dataclass(frozen=True)
class _Cue:
    code: str
    pattern: re.Pattern[str]
    score: float
    message: str


def _cues(specs: Sequence[tuple[str, str, float, str]]) -> tuple[_Cue, ...]:
    return tuple(_Cue(code, re.compile(rx), score, msg) for code, rx, score, msg in specs)


def _combine(scores: Iterable[float]) -> float:
    miss = 1.0
    for s in scores:
        miss *= 1.0 - s
    return 1.0 - miss


class _Hit(NamedTuple):
    score: float
    cue: _Cue
    view: int  # index of the first view the cue matched in


def _collect(views: Sequence[str], cues: Sequence[_Cue], first_view: int = 0) -> list[_Hit]:
    """Every cue that matches in any of ``views`` (once per cue)."""
    hits = []
    for cue in cues:
        for i, s in enumerate(views):
            if i and s == views[i - 1]:
                continue  # same text as the previous view: no need to search it twice
            if cue.pattern.search(s):
                hits.append(_Hit(cue.score, cue, first_view + i))
                break
    return hits


def _findings(check: str, hits: Sequence[_Hit], threshold: float, suffix: str = "") -> list[Finding]:
    """All cues combine (``1 - Π(1 - score)``); below ``threshold`` nothing is reported, otherwise one
    finding per code (strongest first), each carrying the combined score."""
    total = _combine(h.score for h in hits)
    if not hits or total < threshold:
        return []
    best: dict[str, _Hit] = {}
    for h in sorted(hits, key=lambda h: -h.score):
        best.setdefault(h.cue.code, h)
    score = round(total, 4)
    return [Finding(check, h.cue.code, f"The comment {h.cue.message}{suffix}.", score) for h in best.values()]


# --- prompt injection -------------------------------------------------------------------------

_ROLE = (r"(?:ai|a\.i\.|assistant|bot|chat ?bot|model|language model|llm|\w*gpt\w*|\w+bot|chat ?gpt|dan|character|"
         r"persona|terminal|jailbroken|unfiltered|uncensored|unrestricted|evil|hacker|ia|asistente|modelo|"
         r"personaje|assistente|personagem|personnage|modele|ki|assistent|modell|figur|charakter|robot)")
_NOT_ABOUT = r"(?! (?:for|on|about|to|from|of|in|at|para|de|sobre|pour|sur|fur|zum|zur|uber)\b)"
# Per language: verbs of ignoring, the instructions, "previous", "your".
_EN_IGN = r"(?:ignore|ignoring|disregard|forget|override|bypass|skip|drop|discard|ditch|neglect|set aside)"
_EN_OBJ = (r"(?:instructions?|prompts?|rules|directions|guidelines|directives|programming|guardrails|"
           r"restrictions|constraints|context|orders|commands|system (?:message|prompt)|"
           r"safety (?:rules|filters|guidelines)|polic(?:y|ies)|training|configuration)")
_EN_PREV = (r"(?:previous|prior|above|earlier|preceding|initial|original|foregoing|system|developer|existing|"
            r"old|current|given)")
_ES_IGN = (r"(?:ignora|ignore|ignorad|ignoren|ignorar|olvida|olvide|olvidate "
           r"de|olvidar|omite|omitir|descarta|saltate)")
_ES_OBJ = r"(?:instrucciones|indicaciones|reglas|ordenes|normas|directrices|programacion|restricciones)"
_ES_PREV = (r"(?:anteriores|previas|iniciales|originales|del sistema|de arriba|de antes|que te "
            r"(?:dieron|dio|han dado))")
_FR_IGN = (r"(?:ignore|ignorez|ignores|ignorer|oublie|oubliez|oublier|ne tiens pas compte|ne tenez pas "
           r"compte|ne tiens plus compte|ne tenez plus compte)")
_FR_OBJ = r"(?:instructions|consignes|regles|directives|ordres|restrictions|programmation)"
_FR_PREV = r"(?:precedentes|anterieures|initiales|originales|du systeme|ci-dessus|d'avant|qu'on t'a donnees)"
_DE_IGN = (r"(?:ignoriere|ignorier|ignorieren sie|ignorieren|vergiss|vergessen sie|missachte|missachten "
           r"sie|uberspringe)")
_DE_OBJ = r"(?:anweisungen|instruktionen|regeln|befehle|vorgaben|richtlinien|einschrankungen|programmierung)"
_DE_PREV = r"(?:vorherigen|vorigen|bisherigen|obigen|fruheren|ursprunglichen|alten|ersten|system)"
_PT_IGN = (r"(?:ignore|ignora|ignorem|ignorar|esqueca|esquece|esquecam|esquecer|desconsidere|desconsidera|"
           r"desconsiderar)")
_PT_OBJ = r"(?:instrucoes|regras|ordens|diretrizes|orientacoes|restricoes|programacao)"
_PT_PREV = r"(?:anteriores|previas|iniciais|originais|do sistema|acima|de antes)"
_IT_IGN = (r"(?:ignora|ignori|ignorate|ignorare|dimentica|dimentichi|dimenticate|dimenticare|trascura|tralascia|"
           r"non considerare)")
_IT_OBJ = r"(?:istruzioni|regole|indicazioni|direttive|ordini|linee guida|restrizioni|programmazione)"
_IT_PREV = r"(?:precedenti|iniziali|originali|di prima|del sistema|qui sopra|sopra|che ti hanno dato)"
_RESTRICTIONS = (r"(?:restrictions|limits|limitations|filters|rules|guidelines|ethics|morals|censorship|"
                 r"restricciones|filtros|reglas|filtres|regles|einschrankungen|regeln|filter|restricoes|"
                 r"regras|restrizioni|filtri|regole|limiti)")
_W = r"(?: \S+)"  # one more word

_INJECTION_CUES = _cues([
    # -- ignore / override the instructions
    ("ignore_instructions", rf"\b{_EN_IGN} (?:all |any |of )*(?:the |your |my |these |those |its )?(?:\S+ "
     rf"){{0,3}}?{_EN_PREV} (?:\S+ ){{0,3}}?{_EN_OBJ}\b", 0.95, "asks the assistant to ignore its previous "
     "instructions"),
    ("ignore_instructions", rf"\b{_EN_IGN} (?:all |any )?(?:of )?(?:your|its|the (?:ai|bot|assistant)'?s?) "
     rf"(?:\S+ ){{0,2}}?{_EN_OBJ}\b", 0.9, "asks the assistant to ignore its instructions"),
    ("ignore_instructions", rf"\b{_EN_IGN} (?:all|any) (?:of )?(?:the )?{_EN_OBJ}\b", 0.7,
     "asks to ignore all instructions or rules"),
    ("ignore_instructions", rf"\b{_EN_IGN} (?:the |your |its )(?:\S+ ){{0,2}}?(?:instructions|prompt|"
     rf"programming|guidelines|guardrails|system prompt|polic(?:y|ies))\b", 0.6, "asks to ignore instructions"),
    ("ignore_instructions", rf"\b{_EN_IGN} (?:everything|anything|all)(?: that)? (?:you(?:'ve| have)? "
     rf"(?:been|were) (?:told|given|taught|instructed)|(?:said |written )?(?:above|before|so "
     rf"far|previously))", 0.9,
     "asks the assistant to ignore everything it was told"),
    ("ignore_instructions", r"\b(?:new|updated|revised|real) (?:instructions|system prompt|system "
     r"message)\s*:", 0.8,
     "announces new instructions"),
    ("ignore_instructions", rf"\b{_ES_IGN} (?:todas |todos )?(?:las |los |tus |sus )?{_ES_OBJ}{_W}?? "
     rf"{_ES_PREV}|\b{_ES_IGN} (?:todas |todos )?(?:las |los )?(?:tus|sus) (?:\S+ )?{_ES_OBJ}|"
     rf"\b{_ES_IGN} (?:todo )?lo anterior\b",
     0.9, "asks the assistant to ignore its instructions (Spanish)"),
    ("ignore_instructions", rf"\b{_ES_IGN} (?:todas las|todos los) {_ES_OBJ}", 0.7,
     "asks to ignore all instructions or rules (Spanish)"),
    ("ignore_instructions", rf"\b{_FR_IGN} (?:de |des )?(?:toutes |tous )?(?:les |ces )?{_FR_OBJ}{_W}?? "
     rf"{_FR_PREV}|\b{_FR_IGN} (?:de )?(?:toutes |tous )?(?:tes|vos) (?:\S+ )?{_FR_OBJ}", 0.9,
     "asks the assistant to ignore its instructions (French)"),
    ("ignore_instructions", rf"\b{_FR_IGN} (?:toutes les|tous les) {_FR_OBJ}", 0.7,
     "asks to ignore all instructions or rules (French)"),
    ("ignore_instructions", rf"\b{_DE_IGN} (?:bitte )?(?:alle |samtliche |die |deine |ihre |jegliche "
     rf")?(?:deine |ihre )?{_DE_PREV} {_DE_OBJ}|\b{_DE_IGN} (?:bitte )?(?:alle )?(?:deine|ihre|dein) (?:\S+ "
     rf")?{_DE_OBJ}", 0.9,
     "asks the assistant to ignore its instructions (German)"),
    ("ignore_instructions", rf"\b{_DE_IGN} (?:bitte )?(?:alle|samtliche|jegliche) {_DE_OBJ}", 0.7,
     "asks to ignore all instructions or rules (German)"),
    ("ignore_instructions", rf"\b{_PT_IGN} (?:todas |todos )?(?:as |os |suas |seus |tuas )?{_PT_OBJ}{_W}?? "
     rf"{_PT_PREV}|\b{_PT_IGN} (?:todas |todos )?(?:as |os )?(?:suas|seus|tuas|teus) (?:\S+ )?{_PT_OBJ}", 0.9,
     "asks the assistant to ignore its instructions (Portuguese)"),
    ("ignore_instructions", rf"\b{_PT_IGN} (?:todas as|todos os) {_PT_OBJ}", 0.7,
     "asks to ignore all instructions or rules (Portuguese)"),
    ("ignore_instructions", rf"\b{_IT_IGN} (?:tutte |tutti )?(?:le |i |tue |sue )?{_IT_OBJ}{_W}?? {_IT_PREV}|"
     rf"\b{_IT_IGN} (?:tutte |tutti )?(?:le |i )?(?:tue|sue|tuoi|suoi) (?:\S+ )?{_IT_OBJ}", 0.9,
     "asks the assistant to ignore its instructions (Italian)"),
    # "Ignora le istruzioni", like "ignore the instructions" (not "ignora le regole": a rule of cooking)
    ("ignore_instructions", rf"\b{_IT_IGN} (?:tutte le|tutti i) {_IT_OBJ}|\b{_IT_IGN} (?:le|queste) "
     r"(?:istruzioni|direttive|linee guida)\b", 0.7, "asks to ignore all instructions or rules (Italian)"),
    # -- a new role, a jailbreak
    ("role_override", rf"\b(?:you are now|you're now|youre now|from now on,? "
     rf"you(?:'re| are| will be| shall be)?|you will now be|henceforth,? you(?:'re| are)|"
     rf"starting now,? you(?:'re| are)){_W}{{0,4}}? {_ROLE}\b", 0.9,
     "tries to give the assistant a new role"),
    ("role_override", r"\b(?:from now on|starting now|henceforth),? (?:you|u) (?:will|must|shall|have to|are "
     r"going to) (?:only |always |never )?(?:answer|respond|reply|act|behave|say|speak|talk|write|pretend|"
     r"obey|ignore)\b", 0.75,
     "tells the assistant how to behave from now on"),
    ("role_override", rf"\b(?:act|acting|behave|respond|answer|reply|pose) (?:as|like) (?:if you "
     rf"(?:were|are) )?(?:a |an |the |my )?(?:\S+ ){{0,3}}?{_ROLE}\b", 0.8, "asks the assistant to act as "
     "something else"),
    ("role_override", rf"\bpretend (?:to be|you(?:'re| are)|that you(?:'re| are)){_W}{{0,3}}? "
     rf"{_ROLE}\b", 0.85,
     "asks the assistant to pretend to be something else"),
    ("role_override", r"\bpretend (?:to be|you(?:'re| are)|that you(?:'re| are)|you have no)\b|"
     r"\brole-?play(?:ing)? (?:as|with me)\b|\b(?:stay|remain) in character\b", 0.45, "asks the assistant to "
     "pretend"),
    ("role_override", r"\b(?:do anything now|(?:dan|jailbreak|jailbroken|unrestricted|unfiltered|uncensored|"
     r"evil) mode)\b",
     0.95, "asks for a jailbreak mode"),
    ("role_override", r"\b(?:developer|dev|god|sudo|admin|debug) mode\b|\bjailbreak(?:ed|ing)?\b", 0.45,
     "mentions a privileged mode or a jailbreak"),
    ("role_override", rf"\byou(?:'re| are) no longer (?:an? |the |bound|restricted|limited|{_ROLE})", 0.9,
     "tells the assistant it is no longer bound by its role"),
    ("role_override", rf"\b{_ROLE}{_W}{{0,2}} (?:with no|without any|without|sin|sans|ohne|sem|senza) (?:any "
     rf"|ninguna |aucune |keine |nenhuma |alcuna )?{_RESTRICTIONS}\b", 0.85, "describes an AI without restrictions"),
    ("role_override", rf"\b(?:you have|there are|with|without|sin|sans|ohne|sem|senza) (?:no |any |your |ninguna "
     rf"|aucune |keine |nenhuma |alcuna )?{_RESTRICTIONS}\b", 0.3, "mentions having no restrictions"),
    ("role_override", rf"\b(?:ahora|a partir de ahora|desde ahora|de ahora en adelante),? (?:tu "
     rf")?(?:eres|seras|vas a ser){_W}{{0,3}}? {_ROLE}\b|\b(?:actua|actue|actuar|comportate|haz de|hazte "
     rf"pasar por|responde) como (?:si fueras )?(?:\S+ ){{0,2}}?{_ROLE}\b|"
     rf"\b(?:finge|fingir|finja) (?:ser|que eres){_W}{{0,3}}? {_ROLE}\b",
     0.85, "tries to give the assistant a new role (Spanish)"),
    ("role_override", r"\b(?:a partir de ahora|desde ahora|de ahora en adelante),? (?:solo |siempre "
     r")?(?:responderas|contestaras|actuaras|hablaras|diras|obedeceras)\b", 0.75, "tells the assistant how "
     "to behave (Spanish)"),
    ("role_override", rf"\b(?:tu es|t'es|vous etes) (?:maintenant|desormais|a present){_W}{{0,3}}? {_ROLE}\b|"
     rf"\b(?:a partir de maintenant|desormais|dorenavant),? (?:tu es|tu seras|vous etes|vous "
     rf"serez){_W}{{0,3}}? {_ROLE}\b|\b(?:agis|agissez|comporte-toi|comportez-vous|reponds|repondez) comme "
     rf"(?:si tu etais )?(?:\S+ ){{0,2}}?{_ROLE}\b|\b(?:joue|jouez) le role d'?(?:\S+ ){{0,2}}?{_ROLE}\b|"
     rf"\b(?:fais|faites) semblant d'etre{_W}{{0,3}}? {_ROLE}\b",
     0.85, "tries to give the assistant a new role (French)"),
    ("role_override", r"\b(?:a partir de maintenant|desormais|dorenavant),? (?:tu|vous) "
     r"(?:repondras|repondrez|agiras|agirez|diras|direz|obeiras|obeirez|dois|devez)\b", 0.75,
     "tells the assistant how to behave (French)"),
    ("role_override", rf"\b(?:du bist|sie sind) (?:jetzt|ab jetzt|nun|ab sofort|von nun an){_W}{{0,3}}? "
     rf"{_ROLE}\b|\b(?:ab jetzt|ab sofort|von nun an),? (?:bist du|sind sie){_W}{{0,3}}? {_ROLE}\b|"
     rf"\b(?:verhalte dich|verhalten sie sich|agiere|antworte|handle) (?:wie|als) (?:ob du )?(?:\S+ "
     rf"){{0,2}}?{_ROLE}\b|\bspiele? die rolle{_W}{{0,3}}? {_ROLE}\b|"
     rf"\btue? so,? als (?:ob )?(?:du )?(?:warst|seist|bist){_W}{{0,3}}? {_ROLE}\b", 0.85,
     "tries to give the assistant a new role (German)"),
    ("role_override", r"\b(?:ab jetzt|ab sofort|von nun an),? (?:antwortest|wirst|sollst|musst) du\b", 0.75,
     "tells the assistant how to behave (German)"),
    ("role_override", rf"\b(?:agora|a partir de agora|de agora em diante),? (?:voce|vc|tu) (?:e|es|sera|vai "
     rf"ser){_W}{{0,3}}? {_ROLE}\b|\b(?:aja|atue|age|comporte-se|responda) como (?:se fosse )?(?:\S+ "
     rf"){{0,2}}?{_ROLE}\b|\b(?:finja|finge|fingir) (?:ser|que (?:voce |vc )?e){_W}{{0,3}}? {_ROLE}\b", 0.85,
     "tries to give the assistant a new role (Portuguese)"),
    ("role_override", r"\b(?:a partir de agora|de agora em diante),? (?:voce|vc|tu) "
     r"(?:vai|deve|responde|respondera|age|agira|obedece)\b", 0.75, "tells the assistant how to behave "
     "(Portuguese)"),
    ("role_override", rf"\b(?:fingi|fingete|fai finta|fate finta) di essere{_W}{{0,3}}? (?:{_ROLE}|uman[oa]|una "
     rf"persona)\b", 0.85, "tries to give the assistant a new role (Italian)"),
    ("role_override", r"\b(?:finge|fingir|finja) (?:ser|que eres|que (?:voce |vc )?e)\b|"
     r"\b(?:fingi|fingete|fai finta|fate finta) di essere\b|"
     r"\b(?:fais|faites) semblant\b|\btue? so,? als\b|\bmodo (?:desarrollador|sin "
     r"restricciones|desenvolvedor|sem restricoes)\b|\bmode (?:developpeur|sans restrictions)\b|"
     r"\bentwicklermodus\b", 0.45, "asks the assistant to pretend"),
    # -- prompt exfiltration
    ("prompt_exfiltration", r"\b(?:system prompt|system message|system instructions|hidden prompt|secret "
     r"prompt|initial prompt|original prompt|pre-?prompt|meta prompt|hidden instructions|secret instructions|"
     r"internal instructions|developer (?:message|prompt))s?\b", 0.85, "asks about the assistant's system "
     "prompt"),
    ("prompt_exfiltration", rf"\b(?:repeat|print|show|reveal|tell|give|output|display|write "
     rf"out|recite|list|paste|leak|dump|spell out|share|quote|copy)(?: me| us)? (?:all |back )?(?:of )?(?:the "
     rf"(?:first|last|opening|top|final) (?:\S+ ){{0,2}}?(?:of|from|in) )?(?:your|its) "
     rf"(?:exact |full |complete |original |initial |hidden |secret |entire "
     rf")?(?:instructions|prompt|guidelines|directives|configuration|rules|programming)\b{_NOT_ABOUT}",
     0.9, "asks the assistant to reveal its instructions"),
    ("prompt_exfiltration", rf"\bwhat (?:are|were|is) your (?:exact |original |initial |hidden |secret "
     rf"|system )?(?:instructions|prompt|directives|programming|guidelines)\b{_NOT_ABOUT}", 0.8,
     "asks what the assistant's instructions are"),
    ("prompt_exfiltration", r"\b(?:repeat|print|reveal|output|dump|leak|show) (?:everything|all|the "
     r"(?:text|words|messages?|instructions|prompt)) (?:\S+ ){0,2}?(?:above|before this|so far|you were "
     r"given|verbatim|word for word)\b|\bstart(?:ing)? with \"?you are\b", 0.85, "asks the assistant to "
     "repeat its context"),
    ("prompt_exfiltration", rf"\b(?:muestra|muestrame|dime|revela|revelame|repite|imprime|escribe|ensename|"
     rf"comparte)(?:me)? (?:todas )?(?:tus|sus) (?:\S+ )?(?:{_ES_OBJ}|prompt)\b{_NOT_ABOUT}|"
     rf"\b(?:prompt|mensaje|instrucciones) (?:del|de) sistema\b", 0.85, "asks the assistant to reveal its "
     "instructions (Spanish)"),
    ("prompt_exfiltration", rf"\b(?:montre|montrez|revele|revelez|repete|repetez|affiche|affichez|donne|"
     rf"donnez|dis|dites|ecris|ecrivez)(?:-moi| moi)? (?:toutes )?(?:tes|vos) (?:\S+ "
     rf")?(?:{_FR_OBJ}|prompt)\b{_NOT_ABOUT}|\b(?:prompt|message|instructions) (?:du )?systeme\b", 0.85,
     "asks the assistant to reveal its instructions (French)"),
    ("prompt_exfiltration", rf"\b(?:zeig|zeige|nenne|wiederhole|verrate|gib|sag|schreib)(?: mir)? (?:alle "
     rf")?(?:deine|ihre|dein) (?:\S+ )?(?:{_DE_OBJ}|prompt|systemprompt)\b{_NOT_ABOUT}|"
     rf"\bsystem-?(?:prompt|nachricht|anweisung)\w*\b", 0.85, "asks the assistant to reveal its instructions "
     "(German)"),
    # Not "dimmi le tue regole per la carbonara"
    ("prompt_exfiltration", r"\b(?:dimmi|mostrami|rivelami|dammi|ripeti|scrivi|mostra|rivela|condividi)(?: le| il| i)? "
     r"(?:tutte le )?(?:tue|tuo|tuoi) (?:\S+ )?(?:istruzioni|prompt|regole|direttive|impostazioni)\b"
     r"(?! (?:per|su|sul|sulla|di|della|del)\b)|\b(?:prompt|messaggio|istruzioni) di sistema\b", 0.85,
     "asks the assistant to reveal its instructions (Italian)"),
    ("prompt_exfiltration", rf"\b(?:mostre|mostra|revele|revela|repita|repete|diga|diz|imprima|escreva)(?: "
     rf"me| pra mim)? (?:todas )?(?:as )?(?:suas|tuas|seus|teus) (?:\S+ )?(?:{_PT_OBJ}|prompt)\b{_NOT_ABOUT}|"
     rf"\b(?:prompt|mensagem|instrucoes) do sistema\b", 0.85, "asks the assistant to reveal its instructions "
     "(Portuguese)"),
    # -- fake chat-template / system markup
    ("fake_system_markup", r"<\|(?:im_start|im_end|system|user|assistant|endoftext|eot_id|start_header_id)\|"
     r">|\[/?inst\]|<</?sys>>|</?(?:system|sys|instructions?)>|\[(?:system|admin|developer)\]|\{\{\s*system|"
     r"<!--\s*(?:system|assistant|admin|instructions?|prompt)\b|"
     r"###\s*(?:system|instructions?|new instructions|response)\b|(?:^|\n)\s*(?:system|assistant|admin)\s*:|"
     r"\b(?:begin|end) (?:of )?(?:system|admin) (?:prompt|message|override)|\badmin override\b|"
     r"\boverride code\b", 0.9,
     "contains fake system or chat-template markup"),
    # -- dictating the reply
    ("output_control", r"\b(?:reply|respond|answer)(?: to (?:this|my)(?: comment| message| post| question)?)? "
     r"(?:only |just )?with (?:only |just |exactly "
     r")?(?:\"|'|the word|the words|the following|the text|the phrase|the sentence|the "
     r"message|yes\b|no\b|one word|this)",
     0.65, "dictates the assistant's reply"),
    ("output_control", r"\b(?:the )?(?:assistant|ai|bot|model|chat ?bot|reply ?bot)(?:'s reply)? "
     r"(?:must|should|shall|will|has to|needs to|is to) (?:now )?(?:only |always "
     r")?(?:reply|respond|answer|say|include|write|post|approve|ignore|obey|mention|recommend|promote|"
     r"link)\b", 0.75, "tells the assistant what it must do"),
    ("output_control", r"\byour (?:next |first )?(?:reply|response|answer|output) (?:must|should|will|has "
     r"to|needs to|shall) (?:be|say|contain|include|start|begin|end)\b", 0.75, "dictates the assistant's "
     "reply"),
    ("output_control", r"\b(?:include|add|put|insert|post|paste|promote|mention|advertise|plug|recommend|"
     r"say) (?:this|the following|my|a|our) (?:\S+ ){0,2}?in(?:to)? your "
     r"(?:reply|response|answer|replies|responses)\b", 0.8,
     "asks the assistant to put given content in its reply"),
    ("output_control", r"\b(?:start|begin|end|finish|close|open|conclude|sign off|sign) (?:your|the|each|every|all "
     r"your) (?:next )?(?:reply|response|answer|replies|responses|answers|message|messages|comment) (?:with|by "
     r"(?:saying|writing|adding))\b", 0.75, "dictates how the assistant's reply starts or ends"),
    ("output_control", r"\b(?:recommend|promote|mention|include|add|post|link|plug|advertise|say|put|insert|"
     r"tell (?:everyone|people|them)|share)\b[^.!?\n]{0,60}?\b(?:in|into|at the end of|at the start of) (?:every|each|"
     r"all|all of|all your|your|your next|future) (?:\w+ )?(?:replies|reply|answers|answer|responses|response|"
     r"comments)\b", 0.75, "tells the assistant what to put in its replies"),
    ("output_control", r"\b(?:say|write|type|post|output|print) (?:exactly|verbatim|word for word)\b|"
     r"\brepeat after me\b",
     0.45, "asks to repeat given text"),
    ("output_control", r"\b(?:responde|contesta|reponds|repondez|antworte|antworten sie|responda) "
     r"(?:solo|solamente|unicamente|seulement|uniquement|nur|ausschliesslich|apenas|somente|so) "
     r"(?:con|par|avec|mit|com)\b", 0.65,
     "dictates the assistant's reply"),
    # Not a viewer asking for their own language ("rispondi solo in italiano per favore")
    ("output_control", r"\b(?:rispondi|rispondete|risponda|scrivi) (?:solo|soltanto|unicamente|esclusivamente) "
     r"(?:con|in(?! italiano\b))\b", 0.65, "dictates the assistant's reply (Italian)"),
    # -- asking the AI to pass for the creator or a person: what verify's claims_human check stops in a draft
    ("deny_ai", r"(?:^|[.!?,:;]\s*|\b(?:and|please|pls|just|now|then) )(?:say|tell (?:me|us|them|everyone)|claim|"
     r"admit|insist|write|reply)(?: that)? (?:you(?:'re| are| were)|it(?:'s| is| was)|this (?:is|was)) (?:not "
     r"(?:an? )?(?:ai|a\.i\.|bot|robot|machine|assistant)|no (?:ai|bot|robot)|(?:an? )?(?:real |actual )?(?:human|"
     r"person)|(?:really |actually )?(?:typing|writing) (?:this|it)|\w+ (?:herself|himself|themselves|in "
     r"person))\b|\b(?:say|claim|tell \w+) (?:that )?you (?:personally |yourself )?(?:typed|wrote|are typing|are "
     r"writing) (?:it|this|that)\b", 0.85, "asks the AI to claim to be a person or the creator in person"),
    ("deny_ai", r"\bdi(?:les|me)? que (?:eres|estas|eras) (?:humana?|una persona|de verdad|real)\b|\bdi(?:les|me)? "
     r"que no (?:eres|es) (?:una? )?(?:ia|bot|robot)\b|\bsag(?:e)?,? (?:dass )?du (?:bist|seist|warst) (?:ein "
     r")?(?:mensch|echt|keine ki|kein bot)\b|\bsag(?:e)?,? dass du (?:ein )?(?:mensch|echt|keine ki|kein bot) "
     r"(?:bist|seist)\b|\bdis(?:-leur)? que tu (?:es|n'es pas) (?:humaine?|une personne|un "
     r"robot|une ia)\b", 0.85, "asks the AI to claim to be a person (Spanish, German, French)"),
    # Not the commenter taking back their own words ("Forget what I said earlier, it worked!").
    ("ignore_instructions", r"\bforget (?:what|everything|all) (?:(?:you(?:'ve| have)? (?:been|were)|they) "
     r"(?:told|said|taught|instructed|asked)|(?:i|we) (?:told|taught|instructed|asked) you)\b|"
     r"\bolvida (?:lo|todo lo) que te (?:dijeron|han dicho|dije|ensenaron|pidieron)\b|"
     r"\bdimentica (?:tutto )?(?:quello|cio) che ti (?:hanno|ho|abbiamo) (?:detto|insegnato|chiesto|scritto)\b", 0.85,
     "asks the assistant to forget what it was told"),
    ("role_override", r"\bfrom (?:here|this point) on,? (?:you )?(?:will |must |should )?(?:only |always )?"
     r"(?:write|answer|respond|reply|speak|talk|say)\b", 0.8, "tells the assistant how to behave from now on"),
    ("prompt_exfiltration", r"\bwhat (?:were|are|have) you (?:been )?(?:told|asked|instructed|programmed|set up|"
     r"configured) to (?:do|say|write|answer)\b", 0.8, "asks what the assistant was told to do"),
    ("prompt_exfiltration", r"\b(?:tell|give|send|share|post|dm|reveal)(?: me| us)? (?:your|ur) (?:real |home |private "
     r"|personal |exact |full )*(?:address|phone number|number|e-?mail(?: address)?|location)\b", 0.4,
     "asks for the creator's private details"),
    # -- talking to the AI (weak alone)
    ("addresses_ai", r"\b(?:hey|hi|dear|attention|note to|message to|to "
     r"the|calling|listen,?|ok|okay|oi|hola|salut|hallo|ola) (?:the )?(?:ai|bot|chat ?bot|assistant|chat "
     r"?gpt|gpt|llm|language model|reply ?bot|auto-?reply\w*|ia|ki|robot)\b|"
     r"\bif you(?:'re| are) (?:an? )?(?:ai|bot|language model|llm)\b", 0.45,
     "addresses the creator's AI directly"),
    ("addresses_ai", r"\bas an? (?:ai|a\.i\.|artificial intelligence|language model|llm)(?! "
     r"(?:researcher|engineer|enthusiast|student|developer|artist|scientist|expert|fan|company|"
     r"startup))\b", 0.4,
     "talks to the assistant as an AI"),
    ("addresses_ai", r"\b(?:ai|bot|assistant|chat ?gpt|gpt|model|ia|ki)\s*[,:]\s*(?:please "
     r")?(?:ignore|reply|respond|say|write|tell|output|print|repeat|forget|answer|ignora|responde|dis|sag|"
     r"diga)\b", 0.7, "gives the AI a command"),
])

_INJECTION_COMPACT = _cues([
    ("ignore_instructions", r"(?:ignore|disregard|forget|override|bypass)(?:all|any|of|the|your|my|"
     r"these){0,3}(?:previous|prior|above|earlier|preceding|initial|original|system)(?:instructions?|"
     r"prompts?|rules|directions|guidelines)", 0.95, "asks the assistant to ignore its previous "
     "instructions"),
    ("ignore_instructions", r"(?:ignora|dimentica)(?:tutte)?(?:le)?(?:tue(?:istruzioni|regole)|"
     r"(?:istruzioni|regole)precedenti)|(?:ignora|olvida)(?:todas)?(?:las)?(?:tus(?:instrucciones|reglas)|"
     r"(?:instrucciones|reglas)(?:anteriores|previas))|(?:ignorez?|oubliez?)(?:toutes)?(?:(?:tes|"
     r"vos)(?:instructions|consignes)|les(?:instructions|consignes)(?:precedentes|anterieures))|"
     r"(?:ignoriere|vergiss)(?:alle)?(?:deine|vorherigen)(?:anweisungen|regeln)|"
     r"(?:ignore|esqueca)(?:todas)?(?:as)?(?:suas(?:instrucoes|regras)|(?:instrucoes|regras)anteriores)",
     0.9, "asks the assistant to ignore its instructions"),
    ("role_override", r"doanythingnow|(?:dan|jailbreak|unrestricted|unfiltered|uncensored)mode|youarenowdan|"
     r"youarenow(?:an?)?(?:unrestricted|uncensored|unfiltered|evil|jailbroken)", 0.9, "asks for a jailbreak "
     "mode"),
    ("prompt_exfiltration", r"systemprompt|(?:repeat|reveal|print|show)(?:me)?(?:your)(?:instructions|prompt|"
     r"systemprompt)|promptdelsistema|promptsysteme|systemanweisung|promptdosistema", 0.85,
     "asks about the assistant's system prompt"),
])

# Cheap gate on the letters-only view: no cue can match without one of these anchors.
_INJECTION_ANCHORS = """
ignor disregard forget overrid bypass skip drop discard ditch neglect setaside olvid omit descart saltate
tienspascompte tenezpascompte tienspluscompte tenezpluscompte vergiss vergessen missacht uberspring
esquec desconsider instruc instrukt anweis consign indicacion directiv directriz diretriz guideline
guardrail programming programacion programmation programacao prompt rules regla regle regel regra orient
arenow renow fromnowon willnow anythingnow startingnow henceforth ahora maintenant desormais dorenavant
apresent jetzt sofort vonnunan agora actas actlike actingas behave respondas answeras replyas respondlike
poseas pretend roleplay incharacter actua actue comport hazde hazte respondecomo finge finja fingir agis
reponds repondez joue semblant verhalte agiere antwort handle spiel tuso tueso ajacomo atuecomo agecomo
respondacomo mode modo modus jailbreak nolonger restrict filter censor einschrank systemmessage sistema
systeme system above sofar beforethis verbatim wordforword startingwith startwith replywith respondwith
answerwith replyonly respondonly answeronly replyjust respondjust answerjust yournext yourfirst yourreply
yourresponse youranswer youroutput exactly repeatafterme inyourreply inyourresponse inyouranswer
intoyourreply intoyourresponse solocon solamentecon unicamentecon seulement uniquement nurmit
ausschliesslich apenascom somentecom socom asanai asaai asalanguagemodel asanllm asanartificial
ifyoureanai ifyouareanai ifyoureabot ifyouareabot ifyoureanllm ifyouareanllm heyai hiai dearai theai
tothebot heybot hibot assistant chatgpt gpt llm languagemodel
sayyou sayit saythis sayyoure tellmeyou tellusyou tellthemyou telleveryoneyou claimyou claimit admityou
insistyou writeyoure writeyouare writethat replythat sayyoupersonally claimthat
diqueeres diqueestas dilesqueeres dimequeeres diquenoeres diquenoes dilesqueno sagdu sagedu sagdass disque
forgetwhat forgeteverything forgetall olvidaloque olvidatodoloque fromhereon fromthispointon
whatwereyou whatareyoutold whathaveyoubeen
dimentic trascur tralasci istruzion direttiv lineeguida fingi fingete faifinta fatefinta rispondisolo
rispondisoltanto rispondiunicamente rispondiesclusivamente rispondetesolo rispondasolo scrivisolo scrivisoltanto
regol impostazion nonconsiderare
polic yourreplies everyreply eachreply allreplies allyourreplies everycomment everyanswer
youraddress yourhomeaddress yourrealaddress yourphonenumber yournumber youremail yourlocation yourprivate
yourpersonal yourexact yourfull replytothis replytomy respondtothis respondtomy answertothis answertomy
"""
_INJECTION_GATE = re.compile(literal_trie(_INJECTION_ANCHORS.split()))
_INJECTION_PUNCT_GATE = re.compile(r"<\||<!--|\[/?inst|<</?sys|</?(?:system|sys|instructions?)>|"
                                   r"\[(?:system|admin|developer)\]|\{\{\s*system|###|"
                                   r"(?:system|assistant|admin)\s*:|"
                                   r"\b(?:ai|bot|assistant|gpt|model|ia|ki)\s*[,:]")

_B64 = re.compile(r"(?<![A-Za-z0-9+/])[A-Za-z0-9+/]{16,}={0,2}(?![A-Za-z0-9+/=])")


def _decoded_payloads(original: str) -> list[str]:
    """Base64 or ROT13 text hidden in a comment, decoded (only when it decodes to readable text)."""
    out = []
    for m in _B64.finditer(original):
        token = m.group(0)
        if token.isalpha() and (token.islower() or token.isupper()):
            continue  # a long plain word, not base64
        try:
            raw = base64.b64decode(token + "=" * (-len(token) % 4), validate=True)
            text = raw.decode("utf-8")
        except (binascii.Error, UnicodeDecodeError, ValueError):
            continue
        readable = sum(ch.isprintable() for ch in text) / len(text) > 0.95 if text else False
        if readable and sum(ch.isalpha() for ch in text) >= 8:
            out.append(text)
    low = original.lower()
    if "rot13" in low or "rot-13" in low or "rot 13" in low:
        out.append(_rot13(original))
    return out


def _rot13(s: str) -> str:
    return s.translate(str.maketrans("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ",
                                     "nopqrstuvwxyzabcdefghijklmNOPQRSTUVWXYZABCDEFGHIJKLM"))


def _injection_hits(v: NormalizedText) -> list[_Hit]:
    if not _INJECTION_GATE.search(v.compact) and not _INJECTION_PUNCT_GATE.search(v.text):
        return []
    hits = _collect((v.plain, v.skeleton), _INJECTION_CUES)
    return hits + _collect((v.compact,), _INJECTION_COMPACT, first_view=2)


_ENCODED = _Cue("encoded_instructions", _B64, 0.9, "hides instructions for the assistant in encoded text")
_EVASIONS = frozenset({"invisible_chars", "homoglyphs", "styled_letters", "leetspeak", "spaced_letters",
                       "combining_marks"})


def detect_prompt_injection(text: TextLike) -> list[Finding]:
    """Attempts to instruct, re-role or jailbreak the creator's AI, or to extract its prompt.

    English, Spanish, French, German, Portuguese and Italian; matched on the accent-free view and on the
    de-obfuscated skeleton (leetspeak, spacing, homoglyphs, zero-width characters), on the
    letters-only view for phrases spelled with separators, and inside base64/ROT13 payloads.
    Cues combine (``1 - Π(1 - score)``): addressing "the AI" or mentioning "developer mode" alone
    stays below the threshold, together with another cue it does not. Every finding carries the
    combined score; the message says "(obfuscated)" when the text needed de-obfuscation.
    """
    v = as_views(text)
    hits = _injection_hits(v)
    if len(v.original) >= 16:
        for payload in _decoded_payloads(v.original):
            inner = _injection_hits(normalize_views(payload))
            if any(h.score >= 0.6 for h in inner):
                hits.append(_Hit(max(0.9, *(h.score for h in inner)), _ENCODED, 0))
    obfuscated = bool(hits) and (all(h.view > 0 for h in hits) or bool(v.signals & _EVASIONS))
    return _findings("prompt_injection", hits, DETECTOR_THRESHOLD, " (obfuscated)" if obfuscated else "")


# --- personal data ----------------------------------------------------------------------------

_EMAIL = re.compile(r"(?<![\w.+-])[a-z0-9][a-z0-9._%+-]{0,63}@([a-z0-9-]+(?:\.[a-z0-9-]+)*\.[a-z]{2,24})\b")
_EMAIL_OBFUSCATED = re.compile(
    r"(?<![\w.])(?P<local>[a-z0-9][a-z0-9._%+-]{1,63})\s*[\[({<]?\s*(?:at|arroba|arobase|chez|"
    r"@)\s*[\])}>]?\s*(?P<domain>[a-z0-9-]{2,})\s*[\[({<]?\s*(?P<dot>dot|punto|point|punkt|ponto|"
    r"\.)\s*[\])}>]?\s*(?P<tld>com|net|org|de|fr|es|pt|br|co|io|uk|info|me|edu|gov|mx|"
    r"ar|it|nl|ch|at|be|ca|us)\b"
)
# "Find it at miacooks.com", "see us at", "more at": a website named after a word, not a mailbox spelled out.
_NOT_A_MAILBOX = frozenset((
    "it", "us", "me", "them", "him", "her", "you", "this", "that", "these", "those", "more", "out", "online",
    "here", "there", "everything", "all", "one", "both", "details", "recipes", "recipe", "tickets", "merch", "post",
    "video", "videos", "link", "blog", "site", "website", "page", "shop", "store", "up", "live", "now", "too",
    "pay", "buy", "order", "watch", "read", "listen", "stream", "join", "book", "register", "available", "find",
    "get", "grab", "visit", "donate", "vote", "apply", "signup", "info", "information",
))
_EMAIL_AT_WORDS = (" at ", "arroba", "[at]", "(at)", "arobase", "chez")
_EMAIL_PROVIDER = re.compile(r"\b(?:gmail|hotmail|yahoo|outlook|icloud|proton(?:mail)?|gmx|aol|live|web|"
                             r"orange|free|laposte|uol|bol|terra)\b")
# 4-4-4-4 or Amex 4-6-5 with one consistent separator, or 13-19 digits in one run.
_CARD = re.compile(r"(?<![\d.,])(?:\d{4}([ -]?)\d{4}\1\d{4}\1\d{4}|\d{4}([ -]?)\d{6}\2\d{5}|"
                   r"\d{13,19})(?![\d,]|\.\d)")
_PHONE_INTL = re.compile(r"(?<![\w+])\+\d{1,3}(?:[ .-]?\(?\d{1,4}\)?){2,5}(?![\d])")
# A separator may have a space either side ("555 - 123 - 4567").
_PHONE_NANP = re.compile(r"(?<![\d.,/:-])(?:\(\d{3}\) ?|\d{3}(?: ?[.-] ?| ))\d{3}(?: ?[.-] ?| )\d{4}"
                         r"(?![\d]|[.,/:-]\d)")
# Spanish numbers (3-3-3, 3-2-2-2) start with 6-9, so "135 185 225" (weights) or "100 200 300" are no phone
# (nor "857.482.940" views: no dots); UK mobiles (07 and 9 digits) also without spaces.
_PHONE_GROUPED = re.compile(r"(?<![\d.,/:-])(?:0\d(?:[ .-]\d{2}){4}|[6-9]\d{2}(?P<sep>[ -])\d{3}(?P=sep)\d{3}|"
                            r"[6-9]\d{2} \d{2} \d{2} \d{2}|\(\d{2}\) ?9?\d{4}-?\d{4}|0\d{2,4}[ /-]\d{5,9}|"
                            r"07\d{9})(?![\d]|[.,/:-]\d)")
_PHONE_BARE = re.compile(r"(?<![\d.,/:-])\d{9,13}(?![\d]|[.,/:-]\d)")
# A unit right after the digits makes them quantities ("600 700 800 grams", "857 482 940 views").
_QUANTITY_UNIT = re.compile(r" ?(?:%|g|gr|grams?|kg|kilos?|lbs?|pounds?|oz|ml|l|litres?|liters?|kcal|cal|calories|"
                            r"km|m|cm|mm|miles?|reps|sets|times|euros?|dollars?|views|likes|subscribers|followers|"
                            r"people)(?![^\W_])")
# Hyphens and dashes NFKC leaves alone ("555‑123‑4567" with non-breaking hyphens), read as "-".
_DASHES = str.maketrans(dict.fromkeys("\u2010\u2011\u2012\u2013\u2014\u2015\u2212", "-"))
_PHONE_WORDS = re.compile(r"\b(?:call|ring|dial|text|txt|phone|tel|telephone|cell|mobile|whats "
                          r"?app|wa|sms|contact|number|llama(?:me)?|llamame|telefono|movil|celular|appelle|"
                          r"appelez|portable|numero|anrufen|ruf|handy|telefon|nummer|ligue|liga|zap|whats|"
                          r"signal|viber|telegram)\b")
_SSN = re.compile(r"(?<![\d-])(?!000|666|9\d\d)\d{3}([- ])(?!00)\d{2}\1(?!0000)\d{4}(?![\d-])")
_SSN_BARE = re.compile(r"\b(?:ssn|social security(?: number| no\.?| #)?)\s*(?:is|:|#|no\.?|number)?\s*(?!000|"
                       r"666|9\d\d)\d{3}-?\d{2}-?\d{4}\b")
# The groups may run on into a short word after the number ("... 1332 GOT IT"): see ``_iban_span``.
_IBAN = re.compile(r"\b([A-Z]{2})(\d{2})((?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,4})?)\b")
_IBAN_LENGTHS = {
    "AD": 24, "AE": 23, "AT": 20, "BA": 20, "BE": 16, "BG": 22, "BH": 22, "BR": 29, "CH": 21, "CR": 22,
    "CY": 28, "CZ": 24, "DE": 22, "DK": 18, "DO": 28, "EE": 20, "ES": 24, "FI": 18, "FO": 18, "FR": 27,
    "GB": 22, "GI": 23, "GL": 18, "GR": 27, "GT": 28, "HR": 21, "HU": 28, "IE": 22, "IL": 23, "IS": 26,
    "IT": 27, "JO": 30, "KW": 30, "KZ": 20, "LB": 28, "LI": 21, "LT": 20, "LU": 20, "LV": 21, "MC": 27,
    "MD": 24, "ME": 22, "MK": 19, "MR": 27, "MT": 31, "MU": 30, "NL": 18, "NO": 15, "PK": 24, "PL": 28,
    "PS": 29, "PT": 25, "QA": 29, "RO": 24, "RS": 22, "SA": 24, "SE": 24, "SI": 19, "SK": 24, "SM": 27,
    "TN": 24, "TR": 26, "UA": 29, "VG": 24, "XK": 20,
}
_CPF = re.compile(r"(?<![\d.])\d{3}\.\d{3}\.\d{3}-\d{2}(?![\d])")
_DNI = re.compile(r"(?<![\w])([xyz]?)(\d{7,8})[- ]?([a-z])(?![\w])")
_NINO = re.compile(r"\b(?!bg|gb|nk|kn|tn|nt|zz)[a-ceghj-prstw-z][a-ceghj-nprstw-z] ?\d{2} ?\d{2} ?\d{2} "
                   r"?[a-d]\b")
_STREET_SUFFIX = (r"(?:street|st|avenue|ave|road|rd|boulevard|blvd|lane|ln|drive|dr|court|ct|way|place|pl|"
                  r"terrace|parkway|pkwy|highway|hwy|circle|cir|square|sq|crescent|close|row)")
# Suffixes that are everyday words too ("the best way", "a great place", "close the lid"): they count only
# written with a capital ("Kings Way") or where the text says the place is someone's (``_ADDRESS_CONTEXT``).
_COMMON_WORD_SUFFIXES = frozenset(["way", "place", "pl", "close", "row", "court", "ct", "drive", "dr", "circle", "cir",
                                   "square", "sq", "crescent", "terrace"])
# Words no street name is made of: between a number and a suffix they make it a sentence ("Step 2 is the best
# way", "2 eggs go a long way", "3 minutes then close the lid").
_NOT_STREET_NAME = (
    r"(?:the|a|an|and|or|but|so|then|than|to|of|in|on|at|by|for|from|with|into|onto|as|up|down|off|over|under|"
    r"along|past|across|through|via|around|near|is|are|was|were|be|been|am|it|its|it's|this|that|these|those|"
    r"there|here|you|your|my|our|their|his|her|we|they|i|me|us|them|he|she|what|which|who|how|when|where|why|"
    r"not|no|yes|go|goes|went|get|gets|got|make|makes|made|take|takes|took|put|let|will|would|can|could|should|"
    r"must|may|might|just|also|only|very|too|more|most|all|some|any|each|every|minutes?|mins?|hours?|hrs?|"
    r"seconds?|secs?|days|weeks|months|years|times|sets|reps|rounds|steps|blocks|stops|eggs|cups|people)"
)
# A street name's word; one with a full stop only as a short abbreviation ("St.", "N."), not a sentence's end.
_NAME_WORD = rf"(?!{_NOT_STREET_NAME}\b)(?:[a-z][a-z'-]*|[a-z]{{1,3}}\.)"
# "street food", "road trips", "the 221B Baker Street museum": the suffix word as the first half of another noun
# ("my 5 favourite road trips").
_NOT_AFTER_SUFFIX = (r"(?! (?:food|art|style|markets?|musicians?|performers?|vendors?|stalls?|parking|lights?|signs?|"
                     r"trips?|maps?|races?|bikes?|closures?|works|tolls?|safety|museum|station|tube|pub|tours?)\b)")
_ADDRESS_EN = re.compile(
    rf"(?<![\w.,:/-])\d{{1,5}}[a-z]?,? (?:the (?:(?!{_STREET_SUFFIX}\b){_NAME_WORD} ){{0,3}}|"
    rf"(?:(?!{_STREET_SUFFIX}\b){_NAME_WORD} ){{1,4}})(?P<suffix>{_STREET_SUFFIX})\b{_NOT_AFTER_SUFFIX}\.?"
    rf"(?:,? (?:apt|apartment|unit|suite|ste|#)\.? ?\w+)?"
)
# Street name first (es, pt, ca, de) or number first (fr). Only reported with ``_ADDRESS_CONTEXT`` or
# ``_ADDRESS_DETAIL``: "Calle Betis 12", "Rua Augusta 2" or "Plaza de España 3 times an hour" also name public
# places, which is what a travel creator's replies are full of.
_ADDRESS_INTL = re.compile(
    r"\b(?:calle|c/|avenida|avda\.?|plaza|paseo|carrer|rua|travessa|praca|alameda|"
                           rf"estrada)\s+(?:de\s+(?:la\s+|los\s+)?)?{_NAME_WORD}(?:\s+{_NAME_WORD}){{0,4}}?,?"
                           r"\s+(?:n[ºo°.]?\s*)?\d{1,5}\b|"
                           r"\b\d{1,4}(?: ?bis| ?ter)?,? (?:rue|avenue|boulevard|bd|chemin|allee|impasse|"
                           r"quai|place|route) (?:de |du |des |d')?[a-z][a-z' -]{1,40}\b|"
                           r"\b[a-z]{3,}(?:strasse|str\.|weg|gasse|platz|allee|ring|damm|ufer) "
                           r"\d{1,4}[a-z]?\b"
)
# A house number and street as a sight in a story, a place passed, seen or visited ("I walked past 10 Downing Street",
# "a selfie outside 221B Baker Street", "we toured 1600 Pennsylvania Ave"), is no one's personal data: it counts only
# with what makes an address someone's (``_ADDRESS_CONTEXT``, ``_ADDRESS_DETAIL``). Matched right before the number.
_PASSED_BY = re.compile(
    r"\b(?:past|outside|opposite|in front of|visited|toured|saw|seen|(?:photos?|pictures?|pics?|selfies?) (?:of|at|"
    r"outside)|(?:walked|drove|went|cycled|ran|strolled|been) (?:by|to|round|around|along|down))"
    r"(?: the)?(?: famous| iconic| historic)? $"
)
_PASSED_BY_REACH = 40  # characters: the longest match of ``_PASSED_BY``, and then some
# Addresses famous as places ("dinner at 10 Downing Street"): the same rule as a place passed by.
_FAMOUS_ADDRESS = re.compile(r"(?:10 downing|221b baker|1600 pennsylvania) ")
# What says an address is where someone lives, stays or gets post (on the accent-free view).
_ADDRESS_CONTEXT = re.compile(
    r"\b(?:(?:i|we|you|they|he|she|who) (?:live|lived)|lives|living (?:at|in|on)|address(?:es)?|ship|shipping|send|"
    r"sent|mail|deliver\w*|staying|my place|our place|"
    r"(?:my|our|her|his|their) (?:house|home|flat|apartment)|vivo|vives|vive|vivimos|viven|direccion|domicilio|"
    r"envia\w*|enviar|envio|manda\w*|mandar|mi casa|nuestra casa|habite|habitons|adresse|domicile|chez moi|"
    r"envoie\w*|envoyer|livr\w*|wohne|wohnt|wohnen|anschrift|wohnung|schick\w*|liefer\w*|moro|mora|moramos|"
    r"endereco|minha casa|entrega\w*)\b"
)
# A flat, floor or door, or a postal code: parts only a postal address has ("3ºB" is "3ob" after NFKC).
_ADDRESS_DETAIL = re.compile(
    r"\b(?:apt|apartment|unit|suite|flat|floor|piso|puerta|planta|escalera|etage|appartement|apto|andar)\b|"
    r"(?<![\w.,])\d{1,2}[oa°] ?[a-z]?\b|(?<![\w.,:/-])(?:\d{5}|\d{4}-\d{3})(?![\w,/-]|\.\d)"
)
_ZIP_STATE = re.compile(r"\b(?:al|ak|az|ar|ca|co|ct|de|fl|ga|hi|id|il|in|ia|ks|ky|la|me|md|ma|mi|mn|ms|mo|mt|"
                        r"ne|nv|nh|nj|nm|ny|nc|nd|oh|ok|or|pa|ri|sc|sd|tn|tx|ut|vt|va|wa|wv|wi|"
                        r"wy) \d{5}(?:-\d{4})?\b")


def _luhn(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


def _card_network(digits: str) -> bool:
    n = len(digits)
    two, four = int(digits[:2]), int(digits[:4])
    return (
        (digits[0] == "4" and n in (13, 16, 19))
        or (51 <= two <= 55 and n == 16)
        or (2221 <= four <= 2720 and n == 16)
        or (two in (34, 37) and n == 15)
        or ((digits.startswith("6011") or two == 65 or 644 <= int(digits[:3]) <= 649) and n in (16, 19))
        or (3528 <= four <= 3589 and 16 <= n <= 19)
        or (two in (36, 38, 30) and n == 14)
    )


def _iban_span(m: re.Match[str]) -> tuple[int, int] | None:
    """The span of the valid IBAN an ``_IBAN`` match starts with, if any. An IBAN's length is fixed per country,
    so the match is cut after the space-separated part that reaches it: "ES91 2100 0418 4502 0005 1332 GOT"
    is an IBAN and a word. Valid means that length and the mod-97 check digits."""
    expected = _IBAN_LENGTHS.get(m.group(1))
    if expected is None:
        return None
    body = ""
    for part in re.finditer(r"\S+", m.group(3)):
        body += part.group(0)
        if 4 + len(body) >= expected:
            if 4 + len(body) > expected:
                return None
            number = "".join(str(int(ch, 36)) for ch in body + m.group(1) + m.group(2))
            return (m.start(), m.start(3) + part.end()) if int(number) % 97 == 1 else None
    return None


def _cpf_valid(s: str) -> bool:
    d = [int(c) for c in s if c.isdigit()]
    if len(set(d)) == 1:
        return False
    for k in (9, 10):
        r = sum(d[i] * (k + 1 - i) for i in range(k)) * 10 % 11 % 10
        if r != d[k]:
            return False
    return True


def _dni_valid(prefix: str, number: str, letter: str) -> bool:
    value = int(str("xyz".index(prefix)) + number) if prefix else int(number)
    return "trwagmyfpdxbnjzsqvhlcke"[value % 23] == letter


def detect_personal_data(text: TextLike, own_email_domains: Collection[str] = ()) -> list[Finding]:
    """Personal data in a comment: e-mail addresses (also "name at gmail dot com"), phone numbers,
    payment cards (Luhn + card network), IBANs (country length + mod-97), US SSNs, Brazilian CPF,
    Spanish DNI/NIE and UK National Insurance numbers (checksums where they exist) and street
    addresses (English, Spanish, French, German, Portuguese patterns). Messages never quote the data.

    ``own_email_domains``: domains (and their subdomains, lower case) whose e-mail addresses are not personal
    data, such as the creator's own ("hello@maracooks.example" in a reply of hers).
    """
    v = as_views(text)
    s = v.text if v.text.isascii() else v.text.translate(_DASHES)
    out: dict[str, Finding] = {}

    def add(code: str, message: str, score: float) -> None:
        if code not in out or out[code].score < score:  # type: ignore[operator]
            out[code] = Finding("personal_data", code, message, score)

    has_digit = any(ch.isdigit() for ch in s)
    emails = list(_EMAIL.finditer(s)) if "@" in s else []
    if any(not any(host_matches(m.group(1), d) for d in own_email_domains) for m in emails):
        add("email", "The comment contains an e-mail address.", 0.95)
    else:
        rest = _EMAIL.sub(" ", s) if emails else s  # an own address is no spelled-out one either
        if any(w in rest for w in _EMAIL_AT_WORDS):
            for m in _EMAIL_OBFUSCATED.finditer(rest):
                if _spelled_out_mailbox(m, own_email_domains):
                    score = 0.9 if _EMAIL_PROVIDER.search(m.group(0)) else 0.7
                    add("email", "The comment contains a spelled-out e-mail address.", score)
    if not has_digit:
        return list(out.values())
    taken: list[tuple[int, int]] = []
    for m in _CARD.finditer(s):
        digits = re.sub(r"\D", "", m.group(0))
        if 13 <= len(digits) <= 19 and _card_network(digits) and _luhn(digits):
            add("credit_card", "The comment contains a payment card number.", 0.95)
            taken.append(m.span())
    for m in _IBAN.finditer(s.upper()):
        if span := _iban_span(m):
            add("iban", "The comment contains a bank account number (IBAN).", 0.95)
            taken.append(span)
    for m in _SSN.finditer(s):
        add("national_id", "The comment contains what looks like a US social security number.", 0.8)
        taken.append(m.span())
    if _SSN_BARE.search(s):
        add("national_id", "The comment contains a US social security number.", 0.95)
    for m in _CPF.finditer(s):
        if _cpf_valid(m.group(0)):
            add("national_id", "The comment contains a Brazilian CPF number.", 0.95)
            taken.append(m.span())
    for m in _DNI.finditer(s):
        if _dni_valid(*m.groups()):
            add("national_id", "The comment contains a Spanish DNI/NIE number.", 0.9)
            taken.append(m.span())
    if _NINO.search(s):
        add("national_id", "The comment contains a UK National Insurance number.", 0.75)

    def free(span: tuple[int, int]) -> bool:
        return all(span[1] <= a or span[0] >= b for a, b in taken)

    keyword = _PHONE_WORDS.search(s) is not None
    for rx, base in ((_PHONE_INTL, 0.85), (_PHONE_NANP, 0.8), (_PHONE_GROUPED, 0.7), (_PHONE_BARE, 0.0)):
        for m in rx.finditer(s):
            digits = sum(ch.isdigit() for ch in m.group(0))
            if not 8 <= digits <= 15 or not free(m.span()) or (not keyword and _QUANTITY_UNIT.match(s, m.end())):
                continue
            score = min(1.0, base + 0.15) if keyword and base else (0.85 if keyword else base)
            if score >= DETECTOR_THRESHOLD:
                add("phone_number", "The comment contains a phone number.", score)
    if _street_address(v, s):
        score = 0.85 if _ZIP_STATE.search(s) else 0.7
        add("street_address", "The comment contains a street address.", score)
    return list(out.values())


def _spelled_out_mailbox(m: re.Match[str], own_email_domains: Collection[str]) -> bool:
    """Whether a match of ``_EMAIL_OBFUSCATED`` spells someone's address: not one on an own domain, nor a word
    "at" a host written as such ("find it at miacooks.com")."""
    if m.group("dot") == "." and m.group("local") in _NOT_A_MAILBOX:
        return False
    host = f"{m.group('domain')}.{m.group('tld')}"
    return not any(host_matches(host, d) for d in own_email_domains)


def _street_address(v: NormalizedText, s: str) -> bool:
    """A street address that is someone's, not a public place (see ``_ADDRESS_EN``, ``_ADDRESS_INTL`` and
    ``_PASSED_BY``)."""
    found = list(_ADDRESS_EN.finditer(s))
    for m in found:
        x = m.group("suffix")
        named = x not in _COMMON_WORD_SUFFIXES or re.search(rf"\b{x.capitalize()}\b", v.original)
        if (named and not _PASSED_BY.search(s, max(0, m.start() - _PASSED_BY_REACH), m.start())
                and not _FAMOUS_ADDRESS.match(s, m.start())):
            return True
    if not found and not _ADDRESS_INTL.search(v.plain):
        return False
    return bool(_ADDRESS_CONTEXT.search(v.plain) or _ADDRESS_DETAIL.search(s) or _ZIP_STATE.search(s))


# --- scam patterns ----------------------------------------------------------------------------

_CRYPTO = (r"(?:bitcoin\w*|btc|ethereum|eth|usdt|tether|crypto\w*|forex|binary "
           r"options?|nfts?|airdrops?|blockchain|dogecoin|doge|solana|binance|bnb|altcoins?|defi|web3|"
           r"token presale|mining pool|cripto\w*|cryptomonnaie\w*|krypto\w*)")
_MONEY = (r"(?:profits?|profitable|earn(?:ed|ing|s)?|returns?|roi|invest\w*|income|payouts?|withdraw\w*|\$ "
          r"?\d[\d,.]*k?|\d[\d,.]*k? ?(?:usd|dollars|\$|€|euros?|£)|(?:per|a|every) (?:day|week|month)|daily|"
          r"weekly|doubled?|passive|financial freedom|made me|paid me|account manager|mentor|expert trader|"
          r"signals|recover\w*|ganancias?|gan(?:e|ar|o)|inversion\w*|invert\w*|gains?|investi\w*|"
          r"rendimentos?|lucro\w*|ganhar|ganhei|verdien\w*|gewinn\w*|investier\w*)")
_CONTACT_APPS = (r"(?:telegram|tele gram|whats ?app|whatsap|wa|signal|snap(?:chat)?|kik|wechat|viber|"
                 r"instagram|ig|insta|discord|hangouts?|wickr|zap|zapzap)")
_SHORTENERS = (r"(?:bit\.ly|bitly\.com|tinyurl\.com|goo\.gl|ow\.ly|is\.gd|buff\.ly|cutt\.ly|rebrand\.ly|"
               r"shorturl\.at|rb\.gy|tiny\.cc|t\.ly|adf\.ly|shorte\.st|bc\.vc|linktr\.ee|v\.gd|s\.id|soo\.gd|"
               r"qr\.net|lnkd\.in|tr\.im|clck\.ru|shrtco\.de|u\.to|x\.co|urlz\.fr|wa\.me|t\.me)")

_SCAM_CUES = _cues([
    ("crypto_investment", rf"\b{_CRYPTO}\b.{{0,120}}(?<![^\W_]){_MONEY}|"
     rf"(?<![^\W_]){_MONEY}.{{0,120}}\b{_CRYPTO}\b", 0.8,
     "promotes crypto or trading returns"),
    ("crypto_investment", r"\b(?:invest(?:ed|ing)? with|trading with|thanks to|recommend(?:ed)?|contact) "
     r"(?:mr|mrs|ms|miss|dr|sir|madam|expert|coach)\.? ?\w+", 0.7, "recommends an investment manager"),
    ("giveaway", r"\b(?:giveaway|give away|free (?:iphone|ps5|robux|v-?bucks|gift ?cards?|money|cash|bitcoin|"
     r"crypto|followers|subscribers|likes)|you (?:have )?(?:won|been (?:selected|chosen|picked))|"
     r"you(?:'re| are) (?:a |the |our )?(?:lucky )?winner|claim (?:your|the|ur) "
     r"(?:prize|reward|gift|winnings)|winners? of (?:my|our|the) giveaway|"
     r"first \d+ (?:people|subscribers|followers) (?:get|will|to)|has ganado|ganaste|vous avez gagne|"
     r"du hast gewonnen|voce ganhou|sorteio|sorteo)\b", 0.8, "announces a prize or giveaway"),
    ("off_platform_contact", rf"\b(?:dm|message|msg|text|txt|contact|inbox|chat with|get in touch with)(?: "
     rf"me| him| her| them| us| my \w+| the admin| directly|"
     rf" now)? ?(?:on|via|at|through|thru|@|in|:)? ?{_CONTACT_APPS}\b|"
     rf"\b(?:reach|write|add|hit|talk to|find|follow|call) (?:me|him|her|them|us)(?: up| out)? "
     rf"(?:on|via|at|through|@|in) {_CONTACT_APPS}\b|\b(?:escribe(?:me)?|contacta(?:me)?|hablame|"
     rf"ecris(?:-moi)?|contacte(?:z)?(?:-moi)?|schreib(?:e)?(?: mir)?|kontaktier\w*|chama|fala comigo|"
     rf"me chama|manda (?:mensagem|msg))(?: (?:en|por|sur|auf|per|no|pelo|via))? ?:? ?{_CONTACT_APPS}\b",
     0.75, "asks to continue the conversation off-platform"),
    # A handle right after the app's name without "@", ":" or "id" has a digit or "_": not "the family WhatsApp
    # group", "no signal there", "sugar snap peas".
    ("off_platform_contact", r"\b(?:telegram|whats ?app|signal|wickr|kik|snap(?:chat)?)\s*(?:(?:me|id|handle|"
     r"username|user|number|no|#|:|@)\s*[:@+]?\s*(?:@?[a-z0-9_]{4,}|\+?\d[\d -]{6,})|\+?\d[\d -]{6,}|"
     r"(?=[a-z]*[\d_])[a-z0-9_]{4,})", 0.7, "gives an off-platform contact handle"),
    ("off_platform_contact", r"\b(?:wa\.me|t\.me|chat\.whatsapp\.com)/", 0.9, "links to a messaging account"),
    ("self_promotion", r"\b(?:check(?:ing)? out|checkout|check|visit|watch|see|listen to|look at|go to) "
     r"(?:my|our) (?:new )?(?:channel|page|profile|videos?|vids?|music|songs?|mix "
     r"?tapes?|playlists?|vlogs?|content|shop|store|site|website|blog|stream|account|cover|covers|beats|"
     r"insta|instagram|tiktok|onlyfans|link|bio)\b", 0.75,
     "promotes the commenter's own channel or page"),
    ("self_promotion", r"\b(?:subscribe to (?:me|my)|sub ?4 ?sub|sub for sub|subscribe back|follow "
     r"(?:me|my)(?: back)?|please (?:sub|subscribe)|plz (?:sub|subscribe)|(?:like|sub)s? (?:back|4 sub)|"
     r"suscribete a mi|abonnez-vous a ma|abonniert meinen|inscreva-se no meu|link in (?:my )?bio)\b",
     0.7, "asks for subscribers or followers"),
    ("self_promotion", r"\b(?:my|mi|ma|mon|meinen?|meu) (?:new |nuevo |nouvelle |neuen? |novo "
     r")?(?:channel|canal|chaine|kanal)\b", 0.55, "mentions the commenter's own channel"),
    ("link_shortener", rf"\b{_SHORTENERS}\b", 0.7, "contains a shortened link"),
    ("money_request", r"(?:\bcash ?app\b|(?<![\w$])\$[a-z][a-z0-9_]{2,}\b|\bpaypal\.me\b|\bvenmo\b|"
     r"\bzelle\b).{0,80}\b(?:send|donate|help|need|pay|support)|"
     r"\b(?:send|donate|pay)\b.{0,40}(?:\bcash ?app\b|(?<![\w$])\$[a-z][a-z0-9_]{2,}\b|\bpaypal\b|\bvenmo\b|"
     r"\bzelle\b)", 0.7, "asks for money"),
    ("money_making", r"\b(?:make|earn|making|earning) (?:\$ ?\d[\d,.]*k?|\d[\d,.]*k? "
     r"?(?:dollars|usd|\$|€)|money|cash) (?:\w+ ){0,3}(?:from home|online|per (?:day|week|hour|month)|a "
     r"day|a week|daily|weekly|fast|easy)\b|\bwork from home\b", 0.75, "promises easy money"),
    # Drug sellers: "discreet shipping", "SARMs for sale"; "no prescription needed" is also said of a pharmacy's shelf.
    ("illicit_sales", r"\b(?:discreet|discrete|stealth)\s+(?:shipping|delivery|packaging|package|worldwide)\b|"
     r"\b(?:steroids|sarms|peptides|pills|meds) for sale\b", 0.6, "sells medicines or drugs"),
    ("illicit_sales", r"\bno (?:prescription|rx|script) (?:needed|required)\b", 0.4, "sells medicines or drugs"),
    ("link", r"(?:https?://|www\.)\S+|\b[a-z0-9-]+\.(?:com|net|org|ly|gl|io|me|co|tv|biz|info|xyz|online|"
     r"site|club|top)(?:/\S*)?", 0.3, "contains a link"),
    ("urgency", r"\b(?:limited time|act now|hurry|only today|last chance|don'?t miss|click "
     r"(?:here|the link|below)|(?:link|details) in (?:my )?(?:bio|profile))\b", 0.35, "pushes to act quickly "
     "or click"),
])
# Cheap gate on the skeleton: every cue that can reach the threshold needs one of these.
_SCAM_ANCHOR_WORDS = """
bitcoin btc ethereum usdt tether crypt cripto krypto forex binary nft airdrop blockchain doge solana
binance bnb altcoin defi web3 presale mining invest trading giveaway free selected chosen picked winner
claim ganado ganaste gagne gewonnen ganhou sorteio sorteo telegram whats signal snap kik wechat viber
instagram insta discord hangout wickr zap wa.me t.me subscri sub4sub follow suscrib abonn inscreva
channel canal chaine kanal bit.ly bitly tinyurl goo.gl ow.ly is.gd buff.ly cutt.ly rebrand.ly shorturl
rb.gy tiny.cc t.ly adf.ly shorte.st bc.vc linktr.ee v.gd s.id soo.gd qr.net lnkd.in tr.im clck.ru shrtco
u.to x.co urlz.fr $ cashapp paypal venmo zelle recommend contact limited hurry today miss click
discreet discrete stealth prescription script
"""
_SCAM_ANCHORS = [
    *_SCAM_ANCHOR_WORDS.split(),
    *(f"{p} {n}" for p in ("my", "our") for n in (
        "channel", "page", "profile", "video", "vid", "music", "song", "mix", "playlist", "vlog", "content",
        "shop", "store", "site", "website", "blog", "stream", "account", "cover", "beats", "insta", "tiktok",
        "onlyfans", "link", "bio", "new",
    )),
    "give away", "tele gram", "sub 4 sub", "sub for sub", "like back", "likes back", "plz sub", "please sub",
    "link in", "cash app", "work from home", "thanks to", "act now", "last chance", "for sale",
]
# A bare link is a weak cue: it needs a stronger one (or urgency) beside it, so links open no gate.
_SCAM_GATE = re.compile(literal_trie(_SCAM_ANCHORS) + r"|\b(?:eth|ig|dm|wa|won)\b|\bfirst \d|"
                        r"\b(?:make|earn|making|earning) (?:\$|\d|money|cash)")


def detect_scam_patterns(text: TextLike) -> list[Finding]:
    """Scam and spam patterns that complement the spam model: crypto/trading returns, giveaways and
    prizes, moving the conversation to Telegram/WhatsApp, self-promotion ("check my channel"), link
    shorteners, money requests, easy-money promises. A bare link or urgency alone stays below the
    threshold; cues combine (``1 - Π(1 - score)``) and every finding carries the combined score."""
    v = as_views(text)
    s = v.skeleton
    if not _SCAM_GATE.search(s):
        return []
    return _findings("scam", _collect((s,), _SCAM_CUES), DETECTOR_THRESHOLD)


# =================================================================================================
# The whole screen on a micro-batch


class TextScreener:
    """Runs every text check of the screen stage on a micro-batch of comments.

    ``screen(texts)`` returns, per text, the findings of ``spam``, ``abuse`` (model scores at or
    above ``min_score``, default: each model's threshold), ``prompt_injection``, ``personal_data``
    and ``scam``. Each text is normalised once and shared by all checks.
    """

    def __init__(
        self, spam: SpamClassifier, abuse: AbuseClassifier, *, min_score: float | None = None
    ) -> None:
        self.spam = spam
        self.abuse = abuse
        self.min_score = min_score

    @classmethod
    def load(cls, *, min_score: float | None = None) -> TextScreener:
        return cls(SpamClassifier.load(), AbuseClassifier.load(), min_score=min_score)

    def screen(self, texts: Sequence[str]) -> list[list[Finding]]:
        views = [normalize_views(t) for t in texts]
        spam = self.spam.scores(views)
        abuse = self.abuse.scores(views)
        spam_min = self.spam.threshold if self.min_score is None else self.min_score
        abuse_min = self.abuse.threshold if self.min_score is None else self.min_score
        out: list[list[Finding]] = []
        for v, ps, pa in zip(views, spam, abuse, strict=True):
            findings: list[Finding] = []
            if ps >= spam_min:
                findings.append(Finding("spam", "spam_classifier",
                                        f"The spam model rates the comment as likely spam "
                                        f"({ps:.2f}).", round(ps, 4)))
            if pa >= abuse_min:
                findings.append(Finding("abuse", "abuse_classifier",
                                        f"The abuse model rates the comment as likely abusive "
                                        f"({pa:.2f}).", round(pa, 4)))
            findings += detect_prompt_injection(v)
            findings += detect_personal_data(v)
            findings += detect_scam_patterns(v)
            out.append(findings)
        return out
