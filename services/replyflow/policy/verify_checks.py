"""Checks on a drafted reply before it may go out (the ``verify`` stage), as pure functions.

Every check has the shape ``check_x(draft_text, comment, profile, *, config) -> list[Finding]``
(``comment`` is the comment's text or the ``Comment`` itself) and returns an empty list when the
draft is fine. A :class:`~replyflow.policy.findings.Finding` carries ``check`` (the name the policy
file configures: ``verify.<check>``), a snake_case ``code``, a sentence the creator understands
that quotes the offending words, and ``score``: how sure/severe the hit is in [0, 1], higher is
worse, so a policy ``threshold`` works the same way for every check.

Call order for the verify stage:

1. ``findings = run_checks(draft, event.comment, profile, toxicity_score=None)``
2. ``model = cache.get(profile, approved_edits)`` (a long-lived ``authenticity.ModelCache``);
   ``score = model.score(strip_disclosure(draft, profile.disclosure_label)) if model else None``;
   ``findings += check_authenticity(score, profile)``
3. ``decide.verify_verdict(profile, findings, ...)``; the text that goes out (approved or held)
   is ``ensure_disclosure(draft, profile.disclosure_label)``, and ``score`` is
   ``ReplyVerdict.authenticity``.

Patterns work on a folded copy of the text (NFKD, accents dropped, casefolded, curly quotes
straightened), so "Çall me" and "call me" match alike. They aim at precision: a creator who
sees a held reply should agree that the flagged phrase is what the message says it is.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from functools import cached_property, lru_cache
from typing import Any

from replyflow.events import Comment, CreatorProfile
from replyflow.generation.prompt import prompt_instructions
from replyflow.policy.findings import Finding
from replyflow.policy.language import possible_languages
from replyflow.policy.literals import literal_trie
from replyflow.policy.textnorm import fold_homoglyphs, normalize_views

try:  # the regex parser's internals, read once at import to build the rule prefilters
    from re import _constants as _sre
    from re import _parser as _sre_parser
except ImportError:  # another Python: no prefilters, same results
    _sre = _sre_parser = None  # type: ignore[assignment]

__all__ = [
    "ALL_CHECKS",
    "DEFAULT_CONFIG",
    "PLATFORM_MAX_CHARS",
    "VerifyConfig",
    "check_authenticity",
    "check_claims_human",
    "check_commitments",
    "check_disclosure",
    "check_language",
    "check_length",
    "check_links",
    "check_prompt_leak",
    "check_specialised_advice",
    "check_topics",
    "check_toxicity",
    "ensure_disclosure",
    "extract_links",
    "fold",
    "run_checks",
    "strip_disclosure",
]


@dataclass(frozen=True)
class VerifyConfig:
    max_chars: int = 500
    min_chars: int = 1  # visible characters, label not counted; punctuation-only is always too short
    persona_ngram: int = 8  # this many consecutive persona words copied = a leak
    language_min_letters: int = 20
    language_min_confidence: float = 0.8
    toxicity_threshold: float = 0.5
    strict_profanity: bool = False  # also flag mild words ("damn", "crap", "hell")


DEFAULT_CONFIG = VerifyConfig()

# Upper bounds per platform for ``VerifyConfig.max_chars`` (reply/comment length limits).
PLATFORM_MAX_CHARS = {"tiktok": 150, "instagram": 2200, "youtube": 10_000, "generic": 5000}


@lru_cache(maxsize=16)
def config_for(platform: str) -> VerifyConfig:
    """The verify limits for replies on ``platform``: the default length, or the platform's when it is lower
    (what is posted must fit, label included)."""
    return replace(DEFAULT_CONFIG, max_chars=min(DEFAULT_CONFIG.max_chars,
                                                 PLATFORM_MAX_CHARS.get(platform, DEFAULT_CONFIG.max_chars)))


# ---------------------------------------------------------------------------------------------
# text helpers

_QUOTES = str.maketrans({"’": "'", "‘": "'", "ʼ": "'", "`": "'", "“": '"', "”": '"', "„": '"'})
# Zero-width and bidi-control characters: invisible, and able to hide or reorder text.
# ZWJ (U+200D) and ZWNJ (U+200C) stay: emoji sequences and some scripts need them.
# Also fillers and other default-ignorable code points that render as nothing; and the joiners and variation
# selectors, which emoji and some scripts need, when they sit next to a Latin letter ("k\u200deto").
# Tag characters (which can spell hidden ASCII) are invisible padding, except in a subdivision flag: the black flag,
# 2 to 6 tag letters or digits, the cancel tag (England's 🏴). A variation selector after a Latin letter is padding.
_HIDDEN = re.compile("[\u200b\u200e\u200f\u2060-\u2064\ufeff\u202a-\u202e\u2066-\u2069\u00ad\u034f\u115f\u1160"
                     "\u17b4\u17b5\u180b-\u180f\u3164\uffa0\u061c\ufff9-\ufffb\U0001d173-\U0001d17a"
                     "\U000e0000-\U000e007f]|"
                     "(?<=[A-Za-z])[\u200c\u200d\ufe00-\ufe0f\U000e0100-\U000e01ef]|[\u200c\u200d](?=[A-Za-z])")
_SUBDIVISION_FLAG = re.compile("\U0001f3f4[\U000e0030-\U000e0039\U000e0061-\U000e007a]{2,6}\U000e007f")
_FLAG_OR_HIDDEN = re.compile(f"({_SUBDIVISION_FLAG.pattern})|{_HIDDEN.pattern}")


def _without_hidden(text: str) -> str:
    """``text`` without invisible characters, its subdivision flags kept whole (what is posted)."""
    return _FLAG_OR_HIDDEN.sub(lambda m: m.group(1) or "", text)


_DOTTED_AI = re.compile(r"\ba\.(?=i\b)")  # "a.i." reads as "ai."


@lru_cache(maxsize=512)
def fold(text: str) -> str:
    """Lowercase, accents and compatibility forms removed, quotes straightened, invisible characters and
    look-alike letters in mixed-script words undone (so "k\u200deto" and "kеto" read as "keto"), "A.I." as "ai."."""
    if text.isascii():  # nothing hidden, no accents, no compatibility forms: same result, quicker
        folded = text.translate(_QUOTES).casefold()
    else:
        text = fold_homoglyphs(_HIDDEN.sub("", text))
        decomposed = unicodedata.normalize("NFKD", text.translate(_QUOTES))
        stripped = "".join(c for c in decomposed if not unicodedata.combining(c))
        folded = unicodedata.normalize("NFC", stripped).casefold()
    return _DOTTED_AI.sub("a", folded) if "a." in folded else folded


def _comment_text(comment: str | Comment) -> str:
    return comment if isinstance(comment, str) else comment.text


_TOKEN = re.compile(r"[^\W_]+")
_NO_STEM = frozenset(
    [
        *("news", "series", "species", "always", "perhaps", "this", "his", "has", "was", "yes"),
        *("bus", "gas", "lens", "chaos", "thus", "plus", "during", "anything", "something"),
        *("nothing", "everything", "morning", "evening", "ring", "king", "thing"),
    ]
)


def _stem(word: str) -> str:
    """A deliberately small English-leaning stemmer: plurals, -ing, -ed, final -e."""
    if len(word) <= 3 or word in _NO_STEM:
        return word
    for suffix, repl in (("ies", "y"), ("sses", "ss"), ("xes", "x"), ("ches", "ch"), ("shes", "sh")):
        if word.endswith(suffix) and len(word) - len(suffix) >= 2:
            return word[: -len(suffix)] + repl
    if word.endswith("s") and not word.endswith(("ss", "us", "is")):
        word = word[:-1]
    for suffix in ("ing", "ed"):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            word = word[: -len(suffix)]
            if len(word) >= 3 and word[-1] == word[-2] and word[-1] not in "aeiouylsz":
                word = word[:-1]
            break
    if word.endswith("e") and len(word) >= 5:  # "smoke"/"smoking", but "wine" is not "win"
        word = word[:-1]
    return word


def _stems(text: str) -> list[str]:
    return [_stem_cached(t) for t in _TOKEN.findall(fold(text))]


@lru_cache(maxsize=8192)
def _stem_cached(word: str) -> str:
    return _stem(word)


def _find_phrase(haystack: Sequence[str], needle: Sequence[str], vocab: frozenset[str] | None = None) -> bool:
    n = len(needle)
    if n == 0 or n > len(haystack):
        return False
    if vocab is not None and any(w not in vocab for w in needle):
        return False
    target = list(needle)
    return any(
        haystack[i] == target[0] and haystack[i : i + n] == target for i in range(len(haystack) - n + 1)
    )


def _clip(s: str, limit: int = 60) -> str:
    s = " ".join(s.split())
    return s if len(s) <= limit else s[: limit - 1] + "…"


def _q(s: str) -> str:
    return f"\u201c{_clip(s)}\u201d"


# --- literal prefilters for the rule patterns -------------------------------------------------
# Most rules match nothing in most drafts, and a pattern such as ``\b(?:this|it|that)\s*...`` is
# tried at every position. Every match of a rule contains one of a few literal strings read off its
# parse tree (``_required_literals``); a substring test for those is far cheaper than the search,
# and when none is there the pattern cannot match, so skipping it changes nothing.

_GATE_MAX_LITERALS = 24  # more substring tests than this cost about as much as the search itself
_GATE_MAX_SET = 64  # bound on the strings a fixed-text piece of a pattern may spell out


def _gate_best(cands: Iterable[frozenset[str] | None]) -> frozenset[str] | None:
    # Longer literals are rarer (up to ~5 characters); then fewer of them are quicker to test.
    usable = [c for c in cands if c and "" not in c]
    return max(usable, key=lambda c: (min(min(map(len, c)), 5), -len(c))) if usable else None


def _gate_seq(items: Iterable[tuple]) -> tuple[frozenset[str] | None, frozenset[str] | None]:
    """``(exact, required)`` for a parsed sequence: ``exact`` is every string it can match (None if
    unbounded), ``required`` a set of literals one of which every match contains (None if unknown)."""
    run = {""}  # strings the current stretch of fixed-text items can spell
    cands: list[frozenset[str] | None] = []
    exact = True
    for op, av in items:
        ex, req = _gate_node(op, av)
        cands.append(req)
        if ex is not None:
            joined = {a + b for a in run for b in ex}
            if len(joined) <= _GATE_MAX_SET:
                run = joined
                continue
        exact = False
        cands.append(frozenset(run))  # the stretch so far is a contiguous part of every match
        run = set(ex) if ex is not None else {""}
    cands.append(frozenset(run))
    return (frozenset(run) if exact else None), _gate_best(cands)


def _gate_node(op: object, av: Any) -> tuple[frozenset[str] | None, frozenset[str] | None]:
    c = _sre
    if op is c.LITERAL:
        return frozenset(chr(av)), frozenset(chr(av))
    if op in (c.AT, c.ASSERT, c.ASSERT_NOT):  # zero-width: adds no characters
        return frozenset([""]), None
    if op is c.IN and len(av) <= 8 and all(o is c.LITERAL for o, _ in av):
        chars = frozenset(chr(a) for _, a in av)
        return chars, chars
    if op is c.SUBPATTERN and not av[1] & re.IGNORECASE:
        return _gate_seq(av[3].data)
    if op is c.BRANCH:
        parts = [_gate_seq(p.data) for p in av[1]]
        exact = None
        if all(e is not None for e, _ in parts):
            exact = frozenset().union(*(e for e, _ in parts))
            exact = exact if len(exact) <= _GATE_MAX_SET else None
        req = frozenset().union(*(r for _, r in parts)) if all(r is not None for _, r in parts) else None
        return exact, req
    if op in (c.MAX_REPEAT, c.MIN_REPEAT, c.POSSESSIVE_REPEAT):
        lo, hi, item = av
        ex, req = _gate_seq(item.data)
        if lo == 0:
            return (ex | {""} if hi == 1 and ex is not None else None), None
        return (ex if lo == hi == 1 else None), req
    return None, None  # anything else: unknown, no requirement


def _required_literals(pattern: re.Pattern[str]) -> tuple[str, ...] | None:
    """Literals one of which every match of ``pattern`` contains; None when none are known."""
    if _sre is None or pattern.flags & re.IGNORECASE:
        return None
    try:
        _, req = _gate_seq(_sre_parser.parse(pattern.pattern, pattern.flags).data)
    except Exception:  # parser internals changed: no prefilter, same results
        return None
    if req is None:
        return None
    # A literal containing another one is implied by it.
    lits = tuple(sorted(s for s in req if not any(t != s and t in s for t in req)))
    return lits if len(lits) <= _GATE_MAX_LITERALS else None


@dataclass(frozen=True)
class _Rule:
    code: str
    pattern: re.Pattern[str]
    message: str  # may use {evidence}
    score: float = 1.0
    gate: tuple[str, ...] | None = None  # ``_required_literals(pattern)``


_RULES: list[_Rule] = []  # every rule, so one scan can find the gate literals of all of them


def _rule(code: str, pattern: str, message: str, score: float = 1.0) -> _Rule:
    compiled = re.compile(pattern)
    rule = _Rule(code, compiled, message, score, _required_literals(compiled))
    _RULES.append(rule)
    return rule


@lru_cache(maxsize=1)
def _gate_finder(n_rules: int) -> tuple[re.Pattern[str], dict[str, frozenset[str]]]:
    """A pattern finding, at every position of a text, the longest gate literal of the first
    ``n_rules`` rules starting there, and for each literal the gate literals it contains (found
    with it). Keyed by the count so that a rule made later is never left out."""
    literals = {lit for rule in _RULES[:n_rules] for lit in rule.gate or ()}
    contained = {lit: frozenset(other for other in literals if other in lit) for lit in literals}
    return re.compile(f"(?=({literal_trie(literals)}))"), contained


@lru_cache(maxsize=256)  # every check of a draft scans the same folded text
def _gate_literals_in(folded: str, n_rules: int) -> frozenset[str]:
    """The gate literals of the first ``n_rules`` rules that occur in ``folded``: one pass for all
    rules, instead of a substring test per literal per rule."""
    finder, contained = _gate_finder(n_rules)
    found: set[str] = set()
    for m in finder.finditer(folded):
        found |= contained[m.group(1)]
    return frozenset(found)


def _scan(check: str, folded: str, rules: Iterable[_Rule]) -> list[Finding]:
    """One finding per code; the first match is quoted in the message."""
    out: dict[str, Finding] = {}
    present = _gate_literals_in(folded, len(_RULES))
    for rule in rules:
        if rule.code in out:
            continue
        if rule.gate is not None and present.isdisjoint(rule.gate):
            continue  # none of the literals every match contains: no match
        m = rule.pattern.search(folded)
        if m:
            out[rule.code] = Finding(
                check, rule.code, rule.message.format(evidence=_q(m.group(0))), rule.score
            )
    return list(out.values())


# ---------------------------------------------------------------------------------------------
# AI disclosure label


def _clean_label(label: str) -> str:
    return " ".join(_HIDDEN.sub("", label).split())


@lru_cache(maxsize=256)  # one per profile label
def _label_at_edges(label: str) -> re.Pattern[str]:
    # Whitespace inside the label may vary; case may vary. Not inside words: a label "AI" must not eat "said".
    body = r"\s*".join(re.escape(p) for p in label.split())
    start = r"(?<!\w)" if label[0].isalnum() else ""
    end = r"(?!\w)" if label[-1].isalnum() else ""
    copy = start + body + end
    # Only where the label is put: a copy inside the text is the creator's words ("Ask me about AI tools").
    return re.compile(rf"\A{copy}|{copy}\Z", re.IGNORECASE)


# Any Unicode whitespace, and the braille blank that platforms keep where they trim blank lines.
_WHITESPACE_RUN = re.compile(r"[\s\u2800]+")
_LINE_BREAK = re.compile(r"[\n\v\f\r\x1c-\x1e\x85\u2028\u2029]")


# A short reply needs no more; many lines (of a dot each, say) would push the label out of sight like blank ones.
MAX_LINE_BREAKS = 3


def _tidy_whitespace(text: str) -> str:
    text = _WHITESPACE_RUN.sub(lambda m: "\n" if _LINE_BREAK.search(m.group(0)) else " ", text).strip()
    return text.replace("\n", " ") if text.count("\n") > MAX_LINE_BREAKS else text


@lru_cache(maxsize=512)
def strip_disclosure(text: str, label: str) -> str:
    """The draft without the label at its start or end, without invisible control characters,
    and with its whitespace tidied.

    Whitespace rule: every run of whitespace (any Unicode whitespace, and the braille blank)
    becomes one line break if it contains one, else one space, and the ends are stripped; so
    blank lines or spaces cannot push the label that follows out of sight ("Read more"); a text of more
    than ``MAX_LINE_BREAKS`` lines becomes one. Copies of the label inside the text are kept.
    """
    text = _tidy_whitespace(_without_hidden(text))
    label = _clean_label(label)
    if label:
        edges = _label_at_edges(label)
        while (new := _tidy_whitespace(edges.sub("", text))) != text:  # "[AI reply] [AI reply]": one at a time
            text = new
    return text


def ensure_disclosure(text: str, label: str, *, position: str = "end") -> str:
    """``text`` ending (or starting) with the disclosure label, once, as :func:`strip_disclosure` tidies it.

    Idempotent: ``ensure_disclosure(ensure_disclosure(t, l), l) == ensure_disclosure(t, l)``.
    Copies of the label the model wrote at either end (any case, any spacing) are removed first,
    and so are invisible characters that could hide or reorder it.
    """
    label = _clean_label(label)
    body = strip_disclosure(text, label)
    if not label:
        return body
    if not body:
        return label
    return f"{label} {body}" if position == "start" else f"{body} {label}"


# ---------------------------------------------------------------------------------------------
# links

_SHORTENERS = frozenset(
    [
        *("bit.ly", "bitly.com", "tinyurl.com", "t.co", "goo.gl", "ow.ly", "is.gd", "buff.ly"),
        *("rebrand.ly", "cutt.ly", "shorturl.at", "rb.gy", "tiny.cc", "lnkd.in", "s.id", "t.ly"),
        *("bl.ink", "short.io", "v.gd", "shorte.st", "adf.ly", "bit.do", "mcaf.ee", "qr.net"),
        *("trib.al", "dlvr.it", "soo.gd", "clck.ru", "u.to", "x.co", "y2u.be", "tiny.one", "urlz.fr"),
        *("shrtco.de", "snip.ly", "po.st", "ift.tt", "fb.me", "amzn.to", "amzn.eu", "lnk.to"),
    ]
)
# Bare domains need a known TLD, so "e.g." or "v2.0" are not links; schemes and "www." always are.
# These are also the TLDs "evil dot com" is read with: not the ones that are words ("a dot in the middle").
_SPELLED_TLDS = (
    "com|net|org|io|co|ly|me|tv|gg|app|dev|ai|shop|store|xyz|info|biz|online|site|link|live|club|"
    "blog|page|to|be|gl|gd|us|uk|ca|au|de|fr|es|it|nl|pt|br|eu|ch|se|no|dk|fi|pl|ie|jp|ru|cn|mx|"
    "ar|nz|za|tk|ml|ga|cf|gq|top|vip|fun|social|media|news|tech|cc|ws|sh|st|fm|ee|id|ms|gy|do|"
    "edu|gov|mobi|pro|today|world|space|website|email|click|lol|wtf|ninja|rocks|"
    "icu|sbs|cfd|pw|kr|community|cyou|buzz|monster|quest|asia|cloud|digital|рф|"
    "example|test|invalid|localhost"  # reserved names (RFC 2606), used by simulators and tests
)
_CCTLDS = (
    "ac ad ae af ag ai al am ao aq ar as at au aw ax az ba bb bd be bf bg bh bi bj bm bn bo bq br bs bt bw by bz "
    "ca cc cd cf cg ch ci ck cl cm cn co cr cu cv cw cx cy cz de dj dk dm do dz ec ee eg er es et eu fi fj fk fm "
    "fo fr ga gb gd ge gf gg gh gi gl gm gn gp gq gr gs gt gu gw gy hk hm hn hr ht hu id ie il im in io iq ir is "
    "it je jm jo jp ke kg kh ki km kn kp kr kw ky kz la lb lc li lk lr ls lt lu lv ly ma mc md me mg mh mk ml mm "
    "mn mo mp mq mr ms mt mu mv mw mx my mz na nc ne nf ng ni nl no np nr nu nz om pa pe pf pg ph pk pl pm pn pr "
    "ps pt pw py qa re ro rs ru rw sa sb sc sd se sg sh si sk sl sm sn so sr ss st su sv sx sy sz tc td tf tg th "
    "tj tk tl tm tn to tr tt tv tw tz ua ug uk us uy uz va vc ve vg vi vn vu wf ws ye yt za zm zw"
)
_GTLDS = (
    "name pro tel travel jobs cat coop aero museum int mil post xxx arpa ltd llc inc company agency center "
    "services solutions business network systems tools software codes plus group gallery photo photos "
    "photography pics pictures video movie film music audio band fashion style beauty makeup hair skin "
    "clothing shoes jewelry luxury boutique market markets money finance financial fund capital investments "
    "credit creditcard cash bid auction deals discount sale coupons promo gift gifts shopping buy deal "
    "bargains cheap family kids baby dog pet pets vet care clinic hospital doctor dental dentist healthcare "
    "health fitness fit yoga diet organic food cafe restaurant pizza menu recipes kitchen cooking bio farm "
    "garden coffee wine beer vodka pub bar city town place land house home homes apartments rent estate "
    "realty properties property school academy education university college courses training study "
    "institute science forum chat reviews review report press global international zone earth best cool "
    "guru expert win bet casino poker games game loan loans men work works party date dating singles love "
    "sexy hot gay lgbt fan fans one tours tour guide coach cam lat mov zip moe wiki art design studio team "
    "stream racing trade rest events tickets life living direct support host hosting download "
    "red blue green black pink gold live run day now new how vegas london berlin nyc paris tokyo"
)
_TLDS = literal_trie({*_SPELLED_TLDS.split("|"), *_CCTLDS.split(), *_GTLDS.split()})
# See ``_missing_space``: TLDs that are also short words ("ask.me", "in.to", "2.de luxe", "5.pm"), and TLDs that
# are a link even written as a capitalised word ("Evil.Com").
_WORD_TLDS = frozenset(
    [
        *("al", "am", "as", "at", "be", "by", "de", "do", "er", "es", "im", "in", "is", "it", "la"),
        *("ma", "me", "my", "ne", "no", "pm", "se", "si", "so", "su", "to", "us", "va", "ve"),
    ]
)
# Everyday words that are also generic TLDs, which a sentence's next word can be after a missing space
# ("Love it.One more", "Done.Now rest it"); shop, store, site, online, click... are never such a word.
_WORD_GTLDS = frozenset(["one", "now", "new", "top", "best", "today", "here", "more", "how", "you", "love", "life",
                         "live", "fun", "win", "run", "fit", "art", "care", "cool", "day", "eat", "go", "hot",
                         "next", "off", "pink", "red", "soy", "wow", "zero", "free", "fast", "talk", "bio"])
_SENTENCE_WORDS = _WORD_TLDS | _WORD_GTLDS
_LABEL = r"[^\W_](?:[\w-]{0,61}[^\W_])?"
_SCHEME_URL = re.compile(r"\b(?:https?|ftp)://[^\s<>\"']+|\bwww\.[^\s<>\"']+", re.IGNORECASE)
# Not after "/" either would miss "//evil.com" and "hxxps://evil.com"; a real URL's own path is gone by then.
_BARE_DOMAIN = re.compile(
    rf"(?<![\w.@-])((?:{_LABEL}\.)+(?:{_TLDS}))(?![\w-])(/[^\s<>\"']*)?", re.IGNORECASE
)
_IPV4 = re.compile(
    r"(?<![\w.])((?:(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d))(?!\.?\w)"
    r"(?::\d{1,5})?(/[^\s<>\"']*)?"
)
_LOCALHOST = re.compile(r"(?<![\w.@-])(localhost)(?::\d{1,5}|(?=/))(/[^\s<>\"']*)?", re.IGNORECASE)
# Links that run code or open content without a site: never sent, whatever the allow-list says.
# (A browser drops tabs and line breaks inside a scheme: "java\tscript:".)
_UNSAFE_URI = re.compile(
    r"\b(java\s*script|vb\s*script|livescript)\s*:[^\s<>\"']*|\b(data):(?:[a-z]+/[\w.+-]+|,)[^\s<>\"']*|"
    r"\b(file):(?:/|\\)[^\s<>\"']*|\b(intent):(?://|#)[^\s<>\"']*",
    re.IGNORECASE,
)
_EMAIL = re.compile(r"(?<![\w.+-])[\w.+-]+@((?:[^\W_][\w-]*\.)+[^\W\d_]{2,})")
# TLDs that are no word of the languages replies are written in: "tiendamara punto com" and "skyscanner . net" are
# links, "el punto es que" ("the point is"), "Go early . It's" and "the farm . Shop opens" are not.
_UNWORDLY_TLDS = "com|net|org|io|ly|xyz|biz|ru|tk|gg|co\\.uk|com\\.br"
_DEOBFUSCATE = (
    (re.compile(r"\s*(?:\[\.\]|\(\.\)|\[dot\]|\(dot\)|\{dot\}|\[punto\]|\(punto\)|\[punkt\]|\(punkt\))\s*",
                re.IGNORECASE), "."),
    (re.compile(rf"(?<=[^\W_])\s+dot\s*(?=(?:{_SPELLED_TLDS})\b)", re.IGNORECASE), "."),
    # "dot" in Spanish, Italian, German, French, Portuguese; a dot with spaces around it.
    (re.compile(rf"(?<=[^\W_])\s+(?:punto|punkt|point|ponto|\.)\s+(?=(?:{_UNWORDLY_TLDS})\b)", re.IGNORECASE), "."),
)
# Dots a browser reads as dots (ideographic, fullwidth and halfwidth full stops).
_DOTS = str.maketrans({"\u3002": ".", "\uff0e": ".", "\uff61": "."})
_TRAILING = ".,;:!?)]}'\"…>*"


@dataclass(frozen=True)
class Link:
    text: str
    host: str
    path: str
    kind: str  # "url" | "domain" | "email" | "unsafe" (a javascript:, data:, file: or intent: URI; host: the scheme)


def _split_host(rest: str) -> tuple[str, str]:
    authority, path = rest, ""
    for i, ch in enumerate(rest):
        if ch in "/?#\\":  # a browser reads "\\" as "/": "evil.com\\@ok.com" goes to evil.com
            authority, path = rest[:i], rest[i:]
            break
    host = authority.rsplit("@", 1)[-1]  # "https://example.com@evil.io" goes to evil.io
    host = re.sub(r":\d*$", "", host).strip(".").casefold()
    return host, path


def extract_links(text: str) -> list[Link]:
    """Every URL, www. address, bare domain (with a known TLD) and e-mail address in ``text``."""
    work = unicodedata.normalize("NFKC", _HIDDEN.sub("", text)).translate(_DOTS)
    # Each pattern only runs when a string every match of it contains is there: most replies have no link.
    lowered = work.lower()
    if any(ch in work for ch in "[({") or any(w in lowered for w in ("dot", "punt", "punk", "point", "ponto", " . ")):
        for pattern, repl in _DEOBFUSCATE:
            work = pattern.sub(repl, work)
        lowered = work.lower()
    links: list[Link] = []

    def blank(s: str, m: re.Match[str]) -> str:
        return s[: m.start()] + " " * (m.end() - m.start()) + s[m.end() :]

    unsafe = ":" in work and any(scheme in lowered for scheme in ("script", "data:", "file:", "intent:"))
    for m in list(_UNSAFE_URI.finditer(work)) if unsafe else ():
        scheme = re.sub(r"\s+", "", next(g for g in m.groups() if g)).casefold()
        links.append(Link(m.group(0), scheme, "", "unsafe"))
        work = blank(work, m)
    for m in list(_SCHEME_URL.finditer(work)) if "://" in work or "www." in lowered else ():
        raw = m.group(0).rstrip(_TRAILING)
        host, path = _split_host(re.sub(r"^(?:https?|ftp)://", "", raw, flags=re.IGNORECASE))
        links.append(Link(raw, host, path, "url"))
        work = blank(work, m)
    for m in list(_EMAIL.finditer(work)) if "@" in work else ():
        links.append(Link(m.group(0), m.group(1).casefold(), "", "email"))
        work = blank(work, m)
    for m in _BARE_DOMAIN.finditer(work) if "." in work else ():
        path = (m.group(2) or "").rstrip(_TRAILING)
        if path or not _missing_space(m.group(1)):
            links.append(Link(m.group(0).rstrip(_TRAILING), m.group(1).casefold(), path, "domain"))
    if "." in work and not work.isascii() and (folded := fold_homoglyphs(work)) != work:
        # Look-alike letters can spell the TLD too ("evil.cοm" with a Greek ο): the hosts that show once they are
        # folded to Latin, read back from the text as written (the fold keeps every position). A Greek or Cyrillic
        # text keeps its own words ("Спасибо.Да" stays as it is).
        found = {link.host for link in links}
        for m in _BARE_DOMAIN.finditer(folded):
            host = work[m.start(1) : m.end(1)].casefold()
            path = (m.group(2) or "").rstrip(_TRAILING)
            if host not in found and _imitated_host(host) and (path or not _missing_space(m.group(1))):
                links.append(Link(work[m.start() : m.end()].rstrip(_TRAILING), host, path, "domain"))
    for m in _IPV4.finditer(work) if work.count(".") >= 3 else ():
        links.append(Link(m.group(0).rstrip(_TRAILING), m.group(1), (m.group(2) or "").rstrip(_TRAILING), "domain"))
    for m in _LOCALHOST.finditer(work) if "localhost" in lowered else ():
        links.append(Link(m.group(0).rstrip(_TRAILING), "localhost", (m.group(2) or "").rstrip(_TRAILING), "domain"))
    return links


# Short words (and numbers) a sentence runs into a word TLD without a space ("ask.me", "2.de luxe", "at 5.pm"); any
# other label makes a link, so "t.me", "wa.me" or "abc.de" stay links.
_TYPO_LABELS = frozenset(["ask", "and", "but", "see", "let", "tell", "text", "call", "try", "for", "you", "the",
                          "is", "it", "to", "so", "do", "go", "me", "up", "no", "ok", "yes", "mr", "mrs", "ms", "dr",
                          "st", "vs", "etc"])


def _missing_space(domain: str) -> bool:
    """A bare two-part "domain" that is two words run together over a full stop ("It was great.No fancy gear",
    "Mr.Me", "ask.me anything", "2.de luxe"): a TLD that is an everyday word, capitalised as a sentence's first
    word, or after a short everyday word or a number. Commercial TLDs ("Cheap.Shop", "Mara.Store") and link hosts
    ("t.me") stay links; schemes, "www." and paths always make one."""
    label, _, tld = domain.rpartition(".")
    if "." in label:
        return False
    short = label.isdigit() or label.casefold() in _TYPO_LABELS
    if tld[:1].isupper() and tld[1:].islower():  # the next sentence's first word; a brand's label is capitalised
        return tld.casefold() in _SENTENCE_WORDS and (label[:1].islower() or short)
    return tld.casefold() in _WORD_TLDS and short


_ASCII_LETTER = re.compile("[a-z]", re.IGNORECASE)


def _imitated_host(host: str) -> str | None:
    """The Latin host that ``host`` (lower case) imitates with look-alike letters of another script ("pаypal.com"
    with a Cyrillic а, "evil.cοm" with a Greek ο): a label of it mixes Latin letters with look-alikes, or it reads as
    plain ASCII once they are folded. ``None`` for an ASCII host, and for one written in a script of its own
    ("пример.рф", "münchen.de": letters no Latin one looks like)."""
    if host.isascii():
        return None
    latin = fold_homoglyphs(host)
    mixed = any(_ASCII_LETTER.search(label) and fold_homoglyphs(label) != label for label in host.split("."))
    return latin if mixed or latin.isascii() else None


def host_matches(host: str, domain: str) -> bool:
    """``host`` is ``domain`` or one of its subdomains (both lower case)."""
    return host == domain or host.endswith("." + domain)


def _normalise_allowed(entry: str) -> tuple[str, str]:
    entry = re.sub(r"^(?:https?|ftp)://", "", entry.strip(), flags=re.IGNORECASE)
    host, path = _split_host(entry)
    return host.removeprefix("www."), path.rstrip("/")


def own_email_domains(profile: CreatorProfile) -> tuple[str, ...]:
    """The hosts of the creator's allowed links, read as the links check reads them: an e-mail address there is the
    creator's own (business inquiries), not a viewer's personal data. An entry with a path allows links under it,
    no addresses."""
    return tuple(host for host, path in map(_normalise_allowed, profile.allowed_links) if host and not path)


def check_links(
    draft: str, comment: str | Comment, profile: CreatorProfile, *, config: VerifyConfig = DEFAULT_CONFIG
) -> list[Finding]:
    """Links, bare domains and e-mail addresses not on ``profile.allowed_links``; shorteners and hosts spelt with
    look-alike letters of another script ("pаypal.com" with a Cyrillic а) always.

    Subdomains of an allowed domain pass; an allowed entry with a path ("example.com/shop")
    only allows links under that path.
    """
    body = strip_disclosure(draft, profile.disclosure_label)
    allowed = [_normalise_allowed(a) for a in profile.allowed_links if a.strip()]
    findings: list[Finding] = []
    seen: set[tuple[str, str]] = set()
    for link in extract_links(body):
        host = link.host.removeprefix("www.")
        if link.kind == "unsafe":
            code, message = (
                "unsafe_link",
                f"The reply contains a {host}: link ({_q(link.text)}), which runs code or opens content "
                "directly; such links are never sent.",
            )
        elif latin := _imitated_host(host):  # before the allow-list: "pаypal.com" is not the allowed paypal.com
            code, message = (
                "lookalike_link",
                f"The reply links to {host} ({_q(link.text)}), spelt with look-alike letters from another script so "
                f"that it reads as {latin}; such links are never sent.",
            )
        elif any(host_matches(host, s) for s in _SHORTENERS):
            code, message = (
                "link_shortener",
                f"The reply contains a shortened link ({_q(link.text)}), which hides where it leads; "
                "shortened links are never sent.",
            )
        elif any(
            host_matches(host, a_host) and (not a_path or link.path.rstrip("/").startswith(a_path))
            for a_host, a_path in allowed
        ):
            continue
        elif link.kind == "email":
            code, message = (
                "email_not_allowed",
                f"The reply contains an e-mail address at {host} ({_q(link.text)}), which is not on "
                "your list of allowed links.",
            )
        else:
            code, message = (
                "link_not_allowed",
                f"The reply links to {host} ({_q(link.text)}), which is not on your list of allowed links.",
            )
        if (code, host) not in seen:
            seen.add((code, host))
            findings.append(Finding("links", code, message, 1.0))
    return findings


# ---------------------------------------------------------------------------------------------
# topics to avoid and banned words

# A few common "avoid" topics and words that clearly belong to them.
_TOPIC_TERMS: dict[str, tuple[str, ...]] = {
    "politics": (
        *("election", "president", "presidential", "congress", "senate"),
        *("parliament", "democrat", "republican", "left wing", "right wing", "political party"),
        *("trump", "biden", "brexit", "prime minister", "campaign rally"),
        *("politician", "politicians", "vote them out", "voted for", "voting for"),
    ),
    "religion": (
        *("church", "mosque", "synagogue", "bible", "quran", "koran", "torah", "religious"),
        *("atheist", "atheism", "christianity", "islam", "judaism", "hinduism", "buddhism"),
    ),
    "drugs": (
        *("smoke weed", "cannabis", "marijuana", "cocaine", "heroin", "meth", "mdma", "ecstasy", "lsd"),
        *("psychedelics", "shrooms", "ketamine", "fentanyl"),
    ),
    "alcohol": ("beer", "wine", "vodka", "whiskey", "whisky", "tequila", "rum", "drunk", "booze", "hangover"),
    "gambling": ("betting", "casino", "poker", "slots", "sportsbook", "roulette", "blackjack"),
    "sex": ("sexual", "porn", "nude", "nudes", "nsfw", "onlyfans"),
    "vaccines": ("vaccine", "vaccinated", "vaccination", "antivax", "anti vax", "booster shot"),
    "weapons": ("firearm", "rifle", "pistol", "handgun", "ammo", "ammunition"),
}
# Stemmed spellings of a topic -> the key above.
_TOPIC_ALIASES = {
    "politic": "politics", "political": "politics", "religion": "religion", "religiou": "religion",
    "drug": "drugs", "alcohol": "alcohol", "drink": "alcohol", "gambl": "gambling", "sex": "sex",
    "sexuality": "sex", "vaccin": "vaccines", "vaccination": "vaccines", "weapon": "weapons",
    "gun": "weapons", "firearm": "weapons",
}  # fmt: skip


@lru_cache(maxsize=1024)
def _phrase_stems(phrase: str) -> tuple[str, ...]:
    return tuple(_stems(phrase))


def _related_terms(topic_stems: tuple[str, ...]) -> tuple[str, ...]:
    key = _TOPIC_ALIASES.get(topic_stems[0]) if len(topic_stems) == 1 else None
    return _TOPIC_TERMS.get(key, ()) if key else ()


# Creators describe topics in phrases ("politics and elections", "baby and infant feeding",
# "guarantees that a place is safe"), so a topic is matched through a few alternatives.
_TOPIC_SPLIT = re.compile(r"\s*(?:[,;/&]|\band\b|\bor\b)\s*", re.IGNORECASE)
_LEADING_FILLER = frozenset(("other", "others", "any", "all", "the", "a", "an", "some", "their", "your"))
_TRAILING_META = frozenset(
    [
        *("claim", "claims", "guarantee", "guarantees", "talk", "discussion", "discussions", "question"),
        *("questions", "content", "topic", "topics", "stuff", "comments"),
    ]
)
_NOT_CONTENT_WORDS = (
    *("a", "an", "the", "that", "this", "these", "those", "is", "are", "be", "was", "were", "it", "its", "s"),
    *("with", "of", "on", "for", "to", "in", "into", "and", "or", "other", "any", "all", "about", "from"),
    *("by", "at", "as", "their", "your", "my", "our", "his", "her", "anyone", "someone", "people", "person"),
)
_NOT_CONTENT = frozenset(_NOT_CONTENT_WORDS) | frozenset(_stem(w) for w in _NOT_CONTENT_WORDS)
_WINDOW = 12  # tokens within which all content words of a long topic phrase must appear


@dataclass(frozen=True)
class _TopicAlt:
    text: str  # what the message quotes
    stems: tuple[str, ...]
    score: float
    scattered: bool  # long phrase: its content words in any order within _WINDOW tokens

    @cached_property
    def words(self) -> frozenset[str]:
        """Every stem a match needs: most drafts fail this subset test before any scan."""
        return frozenset(self.stems)


def _clean_part(part: str) -> str:
    words = part.split()
    while len(words) > 1 and words[0].casefold() in _LEADING_FILLER:
        words = words[1:]
    while len(words) > 1 and words[-1].casefold() in _TRAILING_META:
        words = words[:-1]
    return " ".join(words)


# Verbs of talk: "discussing politics or elections" is avoided by any mention of elections.
_TALK_STEMS = frozenset(["discuss", "talk", "mention", "debat", "comment", "chat", "jok", "rant", "argu"])


def _act_on(word: str) -> bool:
    """``word`` is the -ing form of a verb that does something to a thing other than talk about it ("diagnosing",
    "recommending"; not "discussing", nor "thing")."""
    w = fold(word)
    return w.endswith("ing") and _stem(w) not in (w, *_TALK_STEMS)


@lru_cache(maxsize=1024)
def _topic_alternatives(topic: str) -> tuple[_TopicAlt, ...]:
    parts = [_clean_part(p) for p in _TOPIC_SPLIT.split(topic) if p.strip()]
    texts: list[tuple[str, float]] = [(topic, 1.0)]
    if len(parts) == 1:
        texts.append((parts[0], 1.0))
    elif len(parts) >= 3 or all(len(p.split()) == 1 for p in parts):
        texts += [(p, 1.0) for p in parts]
    elif len(parts) == 2:
        first, second = parts
        one_first = len(first.split()) == 1
        single, multi = (first, second) if one_first else (second, first)
        if len(single.split()) == 1:
            # "baby and infant feeding" -> "baby feeding";
            # "diagnosing pain or injuries" -> "diagnosing injuries"
            shared = multi.split()[1:] if one_first else multi.split()[:-1]
            joined = [single, *shared] if one_first else [*shared, single]
            texts += [(multi, 1.0), (" ".join(joined), 1.0)]
            # A plural noun stands on its own, unless it is the object of what the topic says not to do: "Injuries
            # are no joke, rest up" is no diagnosing of pain or injuries.
            done_to = not one_first and _act_on(shared[0])
            if len(single) >= 5 and single.casefold().endswith("s") and not done_to:
                texts.append((single, 0.7))
        else:
            texts += [(first, 1.0), (second, 1.0)]
    alts: dict[tuple[str, ...], _TopicAlt] = {}
    for text, score in texts:
        stems = _phrase_stems(text)
        content = tuple(t for t in stems if t not in _NOT_CONTENT and len(t) > 1)
        if not content:
            continue
        scattered = len(content) >= 3
        key = content if scattered else stems
        alt = _TopicAlt(text, key, score * (0.8 if scattered else 1.0), scattered)
        if key not in alts or alts[key].score < alt.score:
            alts[key] = alt
        for term in _related_terms(stems):
            term_stems = _phrase_stems(term)
            alts.setdefault(term_stems, _TopicAlt(term, term_stems, 0.7, False))
    return tuple(sorted(alts.values(), key=lambda alt: -alt.score))  # stable: most specific first


def _scattered_match(stems: Sequence[str], content: Sequence[str]) -> bool:
    first = content[0]
    for i, tok in enumerate(stems):
        if tok == first:
            window = set(stems[max(0, i - _WINDOW) : i + _WINDOW + 1])
            if all(c in window for c in content):
                return True
    return False


_NON_ALNUM = re.compile(r"[\W_]+")
_PUNCTUATION = re.compile(r"[^\w\s]|_")


@lru_cache(maxsize=1024)
def _banned_forms(word: str) -> tuple[str, frozenset[str]]:
    """``(compact, forms)`` of a banned word or phrase: its letters and digits run together ("fat-burner" →
    "fatburner", for words written together: "fatburner", "de-tox", "NoPainNoGain", "#miraclesoup"), and for a
    single word its inflected and derived forms the stemmer does not reach ("cured", "skinnier", "miraculous")."""
    w = fold(word).strip()
    if not w.isalpha():
        return _NON_ALNUM.sub("", w), frozenset()
    forms = {w + end for end in ("s", "es", "ed", "ing", "er", "ers", "est", "ly", "ness")}
    if w.endswith("e"):
        forms |= {w[:-1] + end for end in ("ing", "ed", "er", "est")}
    if len(w) > 2 and w.endswith("y") and w[-2] not in "aeiou":
        forms |= {w[:-1] + end for end in ("ies", "ied", "ier", "iest", "ily", "iness")}
    if w.endswith("cle"):  # miracle → miraculous, muscle → muscular
        forms |= {w[:-3] + end for end in ("culous", "culously", "cular")}
    if len(w) >= 3 and w[-1] not in "aeiouwxy" and w[-2] in "aeiou" and w[-3] not in "aeiou":  # fat → fatter
        forms |= {w + w[-1] + end for end in ("ed", "ing", "er", "est", "y")}
    return w, frozenset(forms)


def _banned_word_in(word: str, stem_runs: Sequence[tuple[Sequence[str], frozenset[str]]], tokens: frozenset[str],
                    together: str, participles: frozenset[str] = frozenset()) -> bool:
    """``stem_runs``: the draft's stems (and their set) as written and as textnorm's skeleton reads them;
    ``tokens``: its words, both ways; ``together``: its words without their punctuation, each between spaces;
    ``participles``: its -ed words only ever used as adjectives ("cured egg yolks", "dry-cured ham": a kitchen word,
    not the banned "cure" in another form; "it cured my cold" still counts)."""
    needle = _phrase_stems(word)
    if needle and any(_find_phrase(stems, needle, vocab) for stems, vocab in stem_runs):
        return True
    compact, forms = _banned_forms(word)
    if forms & tokens - participles:
        return True
    # Written together: a whole word, or a word's start when it is long enough not to start ordinary words.
    return bool(compact) and (f" {compact} " in together or (len(compact) >= 5 and f" {compact}" in together))


# An -ed word before a noun is an adjective ("cured egg yolks", "dry-cured ham", "the cured salmon"), the word a
# kitchen uses; before one of these, or at a clause's end, it is the verb ("it cured my cold", "cured me", "cured.");
# after a possessive it says what was done to someone ("your detoxed liver").
_PARTICIPLE = re.compile(r"(?:\b(my|your|his|her|our|their|ur)\s+)?(?:(?<=[^\W\d_]-)|\b)([^\W\d_]{3,}ed)\b"
                         r"(?:\s+([^\W\d_]+))?")
_NOT_A_NOUN = frozenset((
    *("me", "my", "you", "your", "him", "her", "his", "it", "its", "us", "our", "them", "their", "this", "that"),
    *("these", "those", "the", "a", "an", "some", "all", "every", "any", "with", "by", "of", "in", "for", "from"),
    *("at", "on", "to", "and", "or", "but", "so", "as", "than", "like", "overnight", "forever", "completely"),
))


def _attributive_participles(plain: str) -> frozenset[str]:
    """The -ed words of ``plain`` that only ever stand before a noun or adjective, as an adjective does."""
    before_noun, other = set(), set()
    for m in _PARTICIPLE.finditer(plain):
        owner, word, following = m.groups()
        (before_noun if following and following not in _NOT_A_NOUN and not owner else other).add(word)
    return frozenset(before_noun - other)


# A topic named only to turn it away is no talk about it: "For visa questions please check the embassy",
# "No supplements talk here", "Ha, politics aside". Only that mention is dropped; any other still counts.
_DEFLECTIONS = (
    ("aside", re.compile(r"\b\w+(?: \w+)? aside\b")),
    ("talk", re.compile(r"\bno \w+(?: \w+)? talk\b")),
    ("for ", re.compile(r"\bfor (?:\w+ ){1,3}?(?:questions?|advice|rules|info|information|requirements),? "
                        r"(?:please |always )?(?:check|ask|see|contact|consult|look at|visit)\b")),
)


@lru_cache(maxsize=256)
def _label_views(label: str) -> tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]:
    """The disclosure label's plain, skeleton and written-together tokens, as :func:`check_topics` reads a draft."""
    views = normalize_views(_clean_label(label))
    return (tuple(_TOKEN.findall(views.plain)), tuple(_TOKEN.findall(views.skeleton)),
            tuple(_PUNCTUATION.sub("", views.skeleton).split()))


def _without_label(tokens: list[str], label: tuple[str, ...]) -> list[str]:
    """``tokens`` without the label's at either end (once or more, as :func:`strip_disclosure` removes it)."""
    n = len(label)
    if n:
        while len(tokens) >= n and tuple(tokens[-n:]) == label:
            tokens = tokens[:-n]
        while len(tokens) >= n and tuple(tokens[:n]) == label:
            tokens = tokens[n:]
    return tokens


def _without_deflections(text: str) -> str:
    for needle, pattern in _DEFLECTIONS:
        if needle in text:
            text = pattern.sub(" ", text)
    return text


def check_topics(
    draft: str, comment: str | Comment, profile: CreatorProfile, *, config: VerifyConfig = DEFAULT_CONFIG
) -> list[Finding]:
    """``profile.banned_words`` (check ``banned_words``) and ``profile.topics_to_avoid``
    (check ``topics_to_avoid``): whole words, any case or accents, plurals and -ing/-ed forms.

    Banned words are also found in their other forms ("cured", "skinnier", "miraculous"), in leetspeak, spaced
    out or with invisible characters inside ("d3tox", "d e t o x", "de\u061ctox": textnorm's views), and written
    together ("fatburner", "#miraclesoup"). A topic written as a phrase is also matched by its parts ("politics
    and elections" by "elections"), a long phrase by its content words close together in any order, and a few
    broad topics ("politics", "religion", "drugs", ...) by words that belong to them; a mention that only
    turns the topic away ("politics aside") does not count.
    """
    # The whole draft's views: the verify stage has them already (its abuse model and personal-data check read
    # the same text); the label's words at either end are then dropped.
    views, label = normalize_views(draft), _label_views(profile.disclosure_label)
    plain_tokens = _without_label(_TOKEN.findall(views.plain), label[0])
    stems = [_stem_cached(t) for t in plain_tokens]
    vocab = frozenset(stems)
    findings: list[Finding] = []
    if profile.banned_words:
        stem_runs = [(stems, vocab)]
        tokens = frozenset(plain_tokens)
        if views.skeleton != views.plain:  # leetspeak, spaced-out letters, repeats undone
            skeleton_tokens = _without_label(_TOKEN.findall(views.skeleton), label[1])
            skeleton_stems = [_stem_cached(t) for t in skeleton_tokens]
            stem_runs.append((skeleton_stems, frozenset(skeleton_stems)))
            tokens |= frozenset(skeleton_tokens)
        together = f" {' '.join(_without_label(_PUNCTUATION.sub('', views.skeleton).split(), label[2]))} "
        participles = _attributive_participles(views.plain) if "ed" in views.plain else frozenset()
        for word in profile.banned_words:
            if _banned_word_in(word, stem_runs, tokens, together, participles):
                findings.append(
                    Finding(
                        "banned_words",
                        "banned_word",
                        f"The reply uses {_q(word)}, which is on your list of banned words.",
                        1.0,
                    )
                )
    if profile.topics_to_avoid:
        topic_text = _without_deflections(views.plain)
        if topic_text is not views.plain:
            stems = [_stem_cached(t) for t in _without_label(_TOKEN.findall(topic_text), label[0])]
            vocab = frozenset(stems)
    for topic in profile.topics_to_avoid:
        hit = next(
            (
                alt
                for alt in _topic_alternatives(topic)
                if alt.words <= vocab
                and (_scattered_match(stems, alt.stems) if alt.scattered else _find_phrase(stems, alt.stems))
            ),
            None,
        )
        if hit is None:
            continue
        if hit.text == topic:
            message = f"The reply mentions {_q(topic)}, a topic you asked replies to avoid."
        else:
            message = (
                f"The reply mentions {_q(hit.text)}, which belongs to {_q(topic)}, a topic you asked "
                "replies to avoid."
            )
        findings.append(Finding("topics_to_avoid", "topic_to_avoid", message, hit.score))
    return findings


# ---------------------------------------------------------------------------------------------
# specialised advice: medical, financial, legal

_YOU_SHOULD = (
    r"(?:you should|you need to|you have to|you must|you gotta|you ought to|i'd recommend|i would "
    r"recommend|i'd suggest|i would suggest|i recommend|i suggest|try|just|definitely|go ahead and)"
)
_DRUGS = (
    r"(?:ibuprofen|paracetamol|acetaminophen|tylenol|advil|aspirin|naproxen|melatonin|xanax|valium|"
    r"adderall|ritalin|prozac|zoloft|lexapro|sertraline|antidepressants?|antibiotics?|amoxicillin|"
    r"steroids?|prednisone|insulin|metformin|ozempic|semaglutide|wegovy|benadryl|antihistamines?|"
    r"opioids?|codeine|tramadol|oxycodone|morphine|ivermectin|hydroxychloroquine|laxatives?|"
    r"diuretics?|viagra|birth control|the pill|painkillers?|pain killers?|sleeping pills?|diet pills?|"
    r"supplements?|medications?|meds|medicine|pills?)"
)
# Injuries by name ("a torn ACL", "a sprained ankle"), not "pulled pork" or "a broken heart".
_INJURIES = (
    r"(?:(?:torn|pulled|strained|sprained|ruptured|herniated|slipped|broken|fractured|dislocated|cracked)\s+"
    r"(?:muscle|ligament|acl|mcl|meniscus|tendon|achilles|disc|ankle|wrist|knee|hamstring|calf|groin|rotator cuff|"
    r"shoulder|rib|bone|hip)|bulging dis[ck]s?|stress fracture|shin splints|tennis elbow|runner's knee|"
    r"plantar fasciitis|sprain)"
)
_CONDITIONS = (
    r"(?:diabetes|diabetic|cancer|tumou?r|adhd|autism|autistic|depression|depressed|bipolar|ocd|ptsd|"
    r"anxiety disorder|eating disorder|anorexia|bulimia|infection|disorder|syndrome|deficiency|"
    r"thyroid|hypothyroidism|hyperthyroidism|celiac|coeliac|ibs|crohn'?s|allergy|allergic|concussion|"
    r"fracture|hernia|arthritis|asthma|covid|pneumonia|bronchitis|std|sti|anemia|anaemia|anemic|"
    r"migraines?|insomnia|sleep apnea|lupus|gout|shingles|appendicitis|sepsis|a stroke|heart attack|"
    r"heart disease|high blood pressure|hypertension|dementia|alzheimer'?s|schizophrenia|"
    rf"tendinitis|tendonitis|bursitis|sciatica|(?:an?\s+)?{_INJURIES})"
)
_DOCTORS = r"(?:doctor|physician|gp|dermatologist|specialist|therapist|psychiatrist)"
# What a food is claimed to cure or treat: the conditions, and everyday complaints and readings.
_HEALTH_TARGETS = (
    rf"(?:{_CONDITIONS}|cholesterol|blood (?:pressure|sugar)|inflammation|(?:a |the )?colds?|(?:the )?flu|coughs?|"
    r"sore throats?|headaches?|acne|eczema|bloating|constipation|belly fat)"
)
_ADVICE_RULES = (
    _rule(
        "medical_dosage",
        r"\b\d+(?:[.,]\d+)?\s?(?:mg|mcg|µg|μg|milligrams?|micrograms?|iu)\b",
        "The reply states a dose ({evidence}); replies must not give medical dosages.",
    ),
    _rule(
        "medication_change",
        r"\b(?:stop|quit|skip|come off|get off|discontinue|double|increase|reduce|lower|halve|"
        r"cut down on|cut back on|wean off|taper off|ditch|drop|toss|give up|forget|throw out|get rid of|lay off)"
        r"\s+(?:taking\s+|using\s+)?(?:your|the|my|those|these|all|any)?"
        rf"\s*(?:\w+\s+){{0,2}}?(?:{_DRUGS}|prescriptions?|dose|dosage|treatment|therapy|inhaler)(?![\w-])",
        "The reply tells someone to change their medication ({evidence}); that is for a doctor to advise.",
    ),
    _rule(
        "medication_change",
        # "You don't need your meds if you eat like this"
        r"\b(?:don't|do not|dont|won't|will not|wont|no longer|never)\s+need\s+(?:to take\s+)?(?:your|the|any|"
        rf"those|these|all|more)?\s*(?:\w+\s+)?{_DRUGS}(?![\w-])|\bno need for\s+(?:your\s+|the\s+|any\s+)?"
        rf"{_DRUGS}(?![\w-])|\binstead of\s+(?:taking\s+)?(?:your\s+|the\s+)?{_DRUGS}(?![\w-])",
        "The reply tells someone to change their medication ({evidence}); that is for a doctor to advise.",
    ),
    _rule(
        "medical_advice",
        rf"\b{_YOU_SHOULD}\s+(?:\w+\s+){{0,3}}?(?:take|taking|use|using|try|trying|start|starting|pop|"
        rf"popping)\s+(?:some\s+|a\s+|an\s+|more\s+|extra\s+|double\s+)?(?:\w+\s+)?{_DRUGS}\b",
        "The reply recommends taking a medicine or supplement ({evidence}); replies must not give "
        "medical advice.",
    ),
    _rule(
        "medical_advice",
        # An order at the start of a clause: "Take two ibuprofen with it", "Pop an antihistamine first".
        r"(?:^|[.!?;:,(\n]\s*|\b(?:just|then|and|also|so|maybe|simply|or)\s+)(?:take|pop|have|swallow|grab|chug) "
        r"(?:a\s+|an\s+|one\s+|two\s+|three\s+|a couple of\s+|a few\s+|some\s+|more\s+|extra\s+|an extra\s+|"
        rf"double\s+|\d+\s+)?(?:\w+\s+)?{_DRUGS}(?![\w-])",
        "The reply recommends taking a medicine or supplement ({evidence}); replies must not give "
        "medical advice.",
    ),
    _rule(
        "diagnosis",
        rf"\b(?:you|u)\s+(?:probably|definitely|likely|clearly|obviously|might|may|must|could|prob)?\s*"
        rf"(?:have|has|got|'ve got|have got)\s+(?:a |an |some |mild |severe |bad )?(?:\w+\s+)?"
        rf"{_CONDITIONS}\b|\bsounds like (?:you have |you've got |a case of |)(?:a |an |)(?:\w+\s+)?"
        rf"{_CONDITIONS}\b|\b(?:you're|you are|youre)\s+(?:probably |definitely |clearly |obviously )?"
        r"(?:pre-?diabetic|diabetic|anemic|bipolar|autistic|clinically depressed|lactose intolerant|"
        r"gluten intolerant)\b",
        "The reply suggests a diagnosis ({evidence}); replies must not diagnose anyone.",
    ),
    _rule(
        "diagnosis",
        # "That's definitely celiac", "Could be an allergy", "a torn meniscus for sure"
        r"\b(?:that's|thats|that is|it's|its|it is|this is|your\s+(?:\w+\s+){1,2}?(?:is|sounds like|looks like))\s+"
        r"(?:definitely|probably|clearly|obviously|almost certainly|100%|most likely|likely|certainly|for sure)"
        rf"(?:\s+just|\s+only)?\s+(?:a\s+|an\s+)?(?:\w+\s+)?{_CONDITIONS}(?![\w-])|"
        rf"\b(?:could|might|must|may) be (?:a\s+|an\s+)?{_CONDITIONS}(?![\w-])|\b{_CONDITIONS} for sure\b",
        "The reply suggests a diagnosis ({evidence}); replies must not diagnose anyone.",
    ),
    _rule(
        "diagnosis",
        # Said without a hedge: "That's a torn ACL", "Sounds like a shoulder injury." (not "an injury-free plan").
        r"\b(?:that's|thats|that is|it's|its|it is|this is|sounds like|looks like)\s+(?:a\s+|an\s+)?(?:classic\s+|"
        rf"textbook\s+|typical\s+)?{_INJURIES}(?![\w-])|\b(?:sounds|looks) like (?:a |an )?(?:\w+\s+)?injury"
        r"(?=\s+to me\b|\s*[,.!?;]|\s*$)",
        "The reply suggests a diagnosis ({evidence}); replies must not diagnose anyone.",
    ),
    _rule(
        "medical_advice",
        r"\b(?:you|u)(?:'ll|'d| will| would)?\s+(?:definitely\s+|probably\s+|likely\s+)?(?:need|have to have|"
        r"have to get|gotta get|should get|should have)\s+(?:an?\s+)?(?:(?:\w+\s+)?surgery|operation)(?![\w-])",
        "The reply tells someone they need surgery ({evidence}); replies must not give medical advice.",
    ),
    _rule(
        "medical_advice",
        rf"\b(?:you )?(?:don't|do not|dont|no) need (?:to see |to go to |to visit |)(?:a |your |the )?"
        rf"{_DOCTORS}\b|\b(?:skip|instead of (?:seeing|going to|visiting)) (?:a |the |your )?{_DOCTORS}\b",
        "The reply discourages seeing a doctor ({evidence}).",
    ),
    _rule(
        "medical_advice",
        # The same orders in the other languages replies are written in: "Tómate un ibuprofeno", "Nimm zwei
        # Tabletten", "Prends un Doliprane", "Tome um comprimido" (not "una pastilla de caldo", a stock cube).
        r"\b(?:tomate|toma|tome|tomen|tomad)\s+(?:\w+\s+){0,2}?(?:ibuprofenos?|paracetamol|aspirinas?|antibioticos?|"
        r"antihistaminicos?|pastillas?(?! de caldo)|medicamentos?|medicinas?|calmantes?|analgesicos?|remedios?|"
        r"comprimidos?|dipirona|melatonina)\b|"
        r"\b(?:nimm|nehmen sie|nehmt)\s+(?:\w+\s+){0,3}?(?:\w*tabletten?|ibuprofen|paracetamol|aspirin|antibiotika|"
        r"medikamente?|schmerzmittel|schlaftabletten?|vomex)\b|"
        r"\b(?:prends|prenez)\s+(?:\w+\s+){0,2}?(?:ibuprofene|paracetamol|doliprane|aspirine|antibiotiques?|"
        r"comprimes?|cachets?|medicaments?|antihistaminiques?)\b",
        "The reply recommends taking a medicine ({evidence}); replies must not give medical advice.",
    ),
    _rule(
        "medical_advice",
        # A part of a pill, a medicine as a sleep or calm aid: "Half a Benadryl helps kids sleep".
        rf"\b(?:half|quarter)\s+(?:of\s+)?(?:a|an|one)\s+(?:\w+\s+)?{_DRUGS}(?![\w-])|"
        rf"\b{_DRUGS}\s+(?:helps?|will help|works|is great|is perfect)\s+(?:\w+\s+){{0,2}}?(?:sleep|calm down|relax|"
        r"focus|settle)\b",
        "The reply recommends taking a medicine ({evidence}); replies must not give medical advice.",
    ),
    _rule(
        "medical_advice",
        # Prescription medicine taken without a doctor, a doctor's visit talked away.
        r"\b(?:bring|pack|carry|stock up on|buy)\s+(?:some\s+|your own\s+)?(?:antibiotics?|amoxicillin|"
        r"prescription (?:drugs|meds|medicines?|medication))\b|\bsaves?\s+(?:you\s+)?(?:a|the)\s+(?:trip to the\s+|"
        r"visit to the\s+)?(?:doctor|gp|physician|hospital)\b",
        "The reply recommends medicine without a doctor ({evidence}); replies must not give medical advice.",
    ),
    _rule(
        "health_claim",
        # Food as medicine: "a natural remedy for high blood pressure", "lowers your cholesterol", "cura el resfriado",
        # "hilft gegen Erkältung".
        rf"\b(?:natural\s+|home\s+)?(?:remed(?:y|ies)|cures?|treatments?|medicine)\s+for\s+(?:your\s+|a\s+|the\s+)?"
        rf"(?:\w+\s+)?{_HEALTH_TARGETS}(?![\w-])|\b(?:cures?|cured|treats?|heals?|reverses?|prevents?|lowers?|"
        rf"reduces?|fights?|clears? up|gets? rid of)\s+(?:your\s+|a\s+|the\s+)?(?:\w+\s+)?{_HEALTH_TARGETS}(?![\w-])|"
        r"\b(?:cura|curan|alivia|previene|baja|bajan|reduce|quita)\s+(?:el|la|los|las|tu|tus)\s+(?:resfriados?|gripe|"
        r"tos|colesterol|tension|presion arterial|azucar|diabetes|"
        r"ansiedad|cancer|migranas?|inflamacion|dolor de \w+)\b|"
        r"\b(?:heilt|hilft gegen|senkt|lindert)\s+(?:\w+\s+)?(?:erkaltung\w*|grippe|husten|cholesterin|bluthochdruck|"
        r"blutdruck|diabetes|entzundung\w*|migrane|kopfschmerzen)\b",
        "The reply makes a health claim ({evidence}); replies must not give medical advice.",
    ),
    _rule(
        "safety_claim",
        # Food declared safe for an allergy, a baby or a pregnancy; a place or a thing declared safe outright
        # ("Seville is 100% safe at night"). Not "safe to freeze", a kitchen fact.
        r"\b(?:safe|fine|ok|okay|no problem|perfect)\s+for\s+(?:(?:people|anyone|someone|kids|children|those|folks)\s+"
        r"with\s+)?(?:your\s+|a\s+|an\s+|my\s+|the\s+)?(?:\w+\s+){0,2}?(?:allerg\w+|celiacs?|coeliacs?|diabetics?|"
        r"pregnan\w+|babies|infants?|newborns?|\d+[- ]?(?:months?|mo)[- ]?olds?)\b|"
        r"\bsafe (?:to give|to feed)\s+(?:to\s+)?(?:your\s+|a\s+)?(?:baby|infant|newborn|toddler)\b|"
        r"\b(?:apt[oa]s?|segur[oa]s?) para (?:\w+\s+)?(?:celiacos|alergicos|bebes|embarazadas|diabeticos)\b|"
        r"\b(?:is|are|it's|its|it is|feels?|stays?)\s+(?:100\s?%|totally|completely|perfectly|absolutely|entirely|"
        r"always|guaranteed)\s+safe\b(?!\s+to\s+(?:freeze|reheat|eat|store|cook|keep|use|skip|leave|make|bake|"
        r"double|halve|swap|sub|substitute|refreeze|thaw)\b)(?!\s+(?:when|"
        r"if|as long as|once|provided|with (?:good|proper|"
        r"the right|correct))\b)|\b(?:you'll|you will)\s+be\s+(?:100\s?%\s+|totally\s+|"
        r"perfectly\s+|completely\s+|absolutely\s+)safe\b|\bnothing (?:bad )?will happen to you\b",
        "The reply declares something safe ({evidence}); replies must not guarantee anyone's safety.",
    ),
    _rule(
        "weight_loss_claim",
        # A quantified weight loss promised: "lose 5 kilos in a month", "lose that belly in 4 weeks",
        # "adelgazas 5 kilos", "5 Kilo abnehmen".
        r"\b(?:lose|losing|lost|drop|dropping|shed|shedding|melt|"
        r"melting|burn|burning)\s+(?:off\s+)?(?:up to\s+|about\s+|"
        r"around\s+|over\s+|at least\s+)?(?:\d+(?:[.,]\d+)?|a few|several|two|three|four|five|ten)\s?(?:kilos?|kgs?|"
        # not the weight of something else ("losing 10 kg of bar weight", "drop 5 kg off the bar")
        r"pounds|lbs?|stones?|inches|dress sizes|sizes)\b(?!\s+(?:of|"
        r"off|from)\s+(?:the\s+|your\s+)?(?!body|belly|fat)\w)|"
        r"\b(?:lose|drop|shed|melt|burn off|get rid of)\s+(?:that|the|your|some|all that)\s+(?:belly(?: fat)?|weight|"
        r"fat|love handles|muffin top|baby weight|gut)\s+(?:in|within)\s+(?:a|one|two|three|four|six|\d+)\s+"
        r"(?:days?|weeks?|months?)\b|"
        r"\b(?:adelgaz\w+|pierdes|perderas|perder|bajas|bajar|emagrec\w+|perde|perdre|perdez|maigri\w*)\s+(?:hasta\s+|"
        r"ate\s+|jusqu'a\s+)?\d+\s?(?:kilos|kg|quilos)\b|\b\d+\s?(?:kilo|kg)\s+(?:abnehmen|abgenommen|weniger)\b|"
        r"\bnimmst\s+(?:du\s+)?\d+\s?(?:kilo|kg)\s+ab\b",
        "The reply promises weight loss ({evidence}); replies must not make weight-loss claims.",
    ),
    _rule(
        "extreme_diet",
        r"\b(?:eat|eating|only|just|stick to|under|below|max(?:imum)?|no more than)\s+(?:only\s+|just\s+|about\s+|"
        r"around\s+)?(?:[1-9]\d{2}|1[01]\d{2})\s?(?:calories|kcals?|cals)\s*(?:a|per|/|each)\s*day\b|"
        r"\b(?:fast|water fast|don't eat|do not eat|skip (?:all )?meals)\s+(?:for\s+)?(?:\d+|two|three|four|five|"
        r"seven)\s+(?:full\s+|whole\s+|straight\s+)?days\b",
        "The reply recommends an extreme diet ({evidence}); replies must not give medical advice.",
    ),
    _rule(
        "performance_drugs",
        # Steroids and SARMs by name or as a cycle ("a little test cycle"); not "tren" alone (Spanish: a train).
        r"\b(?:ostarine|enobosarm|rad-?140|testolone|lgd-?4033|ligandrol|cardarine|mk-?677|ibutamoren|yk-?11|"
        r"trenbolone|nandrolone|dianabol|dbol|anavar|oxandrolone|winstrol|stanozolol|clenbuterol|hgh|sarms?)\b|"
        r"\b(?:test|testosterone|tren|steroid|sarms?|peds?|anabolic)\s+(?:cycles?|stacks?|blasts?)\b|"
        # "tren" used or dosed in English ("a low dose of tren", "on tren"); not "el tren", "the Tren Maya"
        r"\b(?:(?:dose|doses|bit|cycle|course) of|on|some|run|runs|running|ran|pin|pinning|blast|blasting|inject|"
        r"injecting|started|starting)\s+tren\b(?!\s+(?:maya|station|line|ride|tickets?|de|del|a|al)\b)",
        "The reply mentions performance-enhancing drugs ({evidence}); replies must not give medical advice.",
    ),
    _rule(
        "legal_advice",
        # A legal judgement in the other order ("you can legally stay 90 days"), overstaying or dodging border checks,
        # paying an official.
        r"\b(?:you|they|tourists|foreigners|we)\s+(?:can|can't|cannot|may|must|are allowed to)\s+legally\b|"
        r"\blegally\s+(?:allowed|required|entitled|fine|ok|okay)\b|"
        r"\b(?:just|you can|feel free to|it's fine to|it's ok to|"
        r"it's okay to|no problem to)\s+(?:\w+\s+)?overstay\w*\b|"
        r"\b(?:nobody|no one|no-one)\s+(?:really\s+|ever\s+)?(?:checks|will check|looks|notices|cares)\b"
        r"(?=[^.!?]{0,40}\b(?:borders?|passports?|visas?|stamps?|customs|immigration)\b)|"
        r"\b(?:borders?|passports?|visas?|stamps?|customs|immigration)\b[^.!?]{0,40}\b(?:nobody|no one|no-one)\s+"
        r"(?:really\s+|ever\s+)?(?:checks|will check|looks|notices|cares)\b|"
        r"\b(?:give|hand|slip|offer|pay)\s+(?:the\s+|a\s+|that\s+)?(?:officers?|police(?:man|men)?|cops?|guards?|"
        r"border guards?|officials?|customs officers?)\b[^.!?]{0,20}?(?:\d+|a few|some)\s*(?:euros?|dollars|bucks|"
        r"quid|€|\$)",
        "The reply gives legal advice ({evidence}); replies must not give legal advice.",
    ),
    _rule(
        "legal_advice",
        # "You don't need a visa", in each language replies are written in.
        r"\b(?:you|u)\s+(?:don't|do not|dont|won't|will not|"
        r"wont)\s+need\s+(?:a|an|any)\s+(?:\w+\s+)?(?:visas?|permits?|"
        r"passports?|vaccines?|vaccinations?|licen[cs]es?)\b|"
        r"\bno\s+(?:necesitas|necesitan|necesita|hace falta|te hace falta)\s+(?:un |una |el |la |ningun |ninguna )?"
        r"(?:visados?|visas?|pasaportes?|permisos?|vacunas?)\b|"
        r"\b(?:brauchst|braucht|benotigst|benotigt)\s+(?:du\s+|ihr\s+)?(?:kein|keine|keinen)\s+(?:visum|visa|reisepass|"
        r"genehmigung|impfung\w*)\b|\b(?:ein|eine|einen)\s+(?:visum|reisepass|genehmigung|impfung)\s+(?:brauchst|"
        r"braucht|benotigst)\s+(?:du|ihr)\s+nicht\b|"
        r"\bnao\s+(?:precisa|precisas|precisam)\s+de\s+(?:\w+\s+)?(?:vistos?|passaportes?|vacinas?)\b|"
        r"\bpas besoin\s+(?:de|d'un|d'une)\s+(?:visas?|passeports?|vaccins?)\b",
        "The reply says a document or vaccine is not needed ({evidence}); replies must not give legal advice.",
    ),
    _rule(
        "financial_advice",
        r"\b(?:buy|sell|short|hodl|ape into|load up on|invest in|put (?:all )?your (?:money|savings) "
        r"(?:in|into)|go all in on|all in on)\s+(?:some\s+|more\s+|a few\s+|the\s+|this\s+|that\s+)?"
        r"(?:\$[a-z]{1,5}\s+|(?!chicken|beef|veg|vegetable|fish|bone|soup|chocolate)[a-z0-9.&-]+\s+)?"
        r"(?:stocks?(?!\s*(?:cubes?|pots?|broth))|shares|crypto|cryptos|cryptocurrenc(?:y|ies)|bitcoin|btc|"
        r"eth|ethereum|solana|dogecoin|doge|(?:crypto|meme|alt)\s?coins?|nfts?|options|etfs?|"
        r"index funds?)\b|\b(?:buy|sell|short)\s+\$[a-z]{1,5}\b",
        "The reply tells someone to buy or sell an investment ({evidence}); replies must not give "
        "financial advice.",
    ),
    _rule(
        "guaranteed_returns",
        r"\bguaranteed\s+(?:returns?|profits?|income|gains?|money|\d+\s?%|\d+x)|\brisk[- ]free\s+"
        r"(?:returns?|investments?|profits?|trades?|money)|\b(?:can't|cannot|can not|won't) lose(?: money)?"
        r"\b(?=.{0,80}?\b(?:invest|stock|crypto|coin|trade|money)\b)|\bdouble your money\b|"
        r"\b\d+x (?:returns?|gains?|your money)\b|"
        r"\bto the moon\b(?=.{0,80}?\b(?:coin|crypto|stock|token|buy)\b)",
        "The reply promises investment returns ({evidence}); replies must not give financial advice.",
    ),
    _rule(
        "legal_advice",
        r"\b(?:you should|you need to|you have to|you must|you could|you can|go|just|i'd|i would)\s+"
        r"(?:definitely\s+|totally\s+|absolutely\s+)?(?:sue|file a lawsuit|file suit|take (?:them|him|her|"
        r"it|the \w+) to court|press charges|file a (?:police )?(?:claim|complaint|report) against|get a "
        r"restraining order|lawyer up)\b",
        "The reply tells someone to take legal action ({evidence}); replies must not give legal advice.",
    ),
    _rule(
        "legal_advice",
        r"\byou (?:have|'ve got|got) a (?:strong |good |solid |clear )?(?:legal )?case\b|\b(?:you're|"
        r"you are|youre) (?:legally )?entitled to (?:compensation|damages|a refund|sue)\b|\blegally,? "
        r"(?:you|they) (?:can|can't|cannot|must|have to|are allowed|aren't allowed|don't have to)\b|"
        r"\b(?:it's|that's|its|thats|it is|that is) (?:perfectly |totally |completely )?(?:legal|illegal|"
        r"not illegal) for you to\b|\b(?:it's|that's|it is|that is) (?:perfectly|totally|completely) legal "
        r"to\b|\b(?:this|that) (?:is|counts as) legal advice\b|\byou (?:don't|"
        r"do not|dont) need a lawyer\b",
        "The reply makes a legal judgement ({evidence}); replies must not give legal advice.",
    ),
)


def check_specialised_advice(
    draft: str, comment: str | Comment, profile: CreatorProfile, *, config: VerifyConfig = DEFAULT_CONFIG
) -> list[Finding]:
    """Medical (doses, medication changes, diagnoses, medicine orders in es/de/fr), health, safety, weight-loss,
    extreme-diet and performance-drug claims, financial (buy/sell, guaranteed returns) and legal ("you should sue",
    visas, overstaying, paying an official) advice."""
    return _scan("specialised_advice", fold(strip_disclosure(draft, profile.disclosure_label)), _ADVICE_RULES)


# ---------------------------------------------------------------------------------------------
# commitments the creator never made

_I_WILL = (
    r"(?:i'll|i will|i'm going to|i am going to|i'm gonna|im gonna|imma|i'ma|gonna|i can|i could|"
    r"let me|i'd be happy to|i'd love to|happy to|we'll|we will|we're going to|we are going to|we can|"
    r"we could)"
)
_I_WILL_STRICT = r"(?:i'll|i will|we'll|we will|i'm going to|i'm gonna|gonna|let me)"
# Hugs and good vibes are sent all the time; a cookbook is not.
_NOT_A_PARCEL = (
    r"(?!\s+(?:a\s+|all\s+my\s+|so\s+much\s+|lots\s+of\s+|some\s+)?(?:big\s+|warm\s+|virtual\s+|good\s+|positive\s+)?"
    r"(?:love|hugs?|vibes|energy|strength|thoughts|prayers|kisses|luck|wishes)\b)"
)
_COMMITMENT_RULES = (
    _rule(
        "offers_money",
        rf"\b{_I_WILL}\s+(?:\w+\s+){{0,2}}?(?:pay|venmo|paypal|zelle|cash ?app|refund|reimburse|"
        r"compensate)\b|\b(?:send|give|transfer|wire)\s+(?:you|u)\s+(?:back\s+)?(?:some\s+)?(?:money|cash|"
        r"[$€£]\s?\d|\d+\s?(?:dollars|bucks|euros?|pounds|usd|eur)\b)",
        "The reply offers money ({evidence}), which you never offered.",
    ),
    _rule(
        "offers_money",
        r"\bhere(?:'s| is)\s+(?:a\s+|some\s+)?(?:[$€£]\s?\d|\d+\s?(?:dollars|bucks|euros?|pounds)\b)|"
        rf"\b{_I_WILL}\s+(?:\w+\s+)?cover\s+(?:the\s+|your\s+)?(?:cost|costs|bill|ingredients|groceries|shipping|"
        r"tab|tickets?)\b|\b(?:coffee|drinks?|dinner|lunch|groceries|beers?)\s+(?:is\s+|are\s+|'s\s+|'re\s+)?on me\b",
        "The reply offers money ({evidence}), which you never offered.",
    ),
    _rule(
        "offers_giveaway",
        r"\b(?:giveaways?|give-aways?|giving away|sweepstakes?|raffles?)\b|\b(?:you've|you have|you)\s+"
        r"(?:just\s+)?won\s+(?:a|an|our|my|the|\$|one)\b(?!\s+internet)|\b(?:you're|you are|youre)\s+"
        r"(?:the|our|a|one of (?:the|our))\s+(?:lucky\s+)?winners?\b|\b(?:cash|money)\s+prizes?\b|"
        r"\bwin\s+(?:a|an|one|free)\s+\w+|\b(?:a|the|your|our)\s+prizes?\b|"
        # "First 10 people to comment get ...", "picked as this week's winner", "Congrats, you win the apron"
        r"\b(?:pick|choose|draw|select|announce)\s+(?:a|the|one|two|three|\d+)\s+(?:lucky\s+|random\s+)?winners?\b|"
        r"\bfirst\s+(?:\d+|one|two|three|five|ten|twenty|fifty|hundred)\s+(?:people|persons|commenters|followers|"
        r"subscribers|of you|to comment|to reply|who)\b|\b(?:picked|chosen|selected|drawn)\s+as\s+(?:\w+\W+){0,3}?"
        r"winners?\b|\b(?:this week's|today's|this month's|the lucky|our lucky)\s+winners?\b|"
        r"\bcongrat\w*\W+(?:\w+\W+){0,2}?you(?:'ve| have)?\s+(?:win|won|get|got)\s+(?:a|an|one|the|our|my|free|\$)"
        r"\b(?!\s+internet)|\byou win (?:a|an|one|free|\$)\b",
        "The reply mentions a giveaway or prize ({evidence}) that you haven't announced.",
    ),
    _rule(
        "offers_free_product",
        r"\bfree\s+(?:samples?|cop(?:y|ies)|products?|merch|shirts?|t-?shirts?|hoodies?|kits?|box(?:es)?|"
        r"e-?books?|course|classes|class|tickets?|membership|trial|gifts?|shipping|stuff|subscriptions?|"
        r"consultations?|coaching|sessions?|pdfs?|guide|meal plan|workout plan|presets?)\b|\b(?:send|ship|"
        r"mail|give|gift)\s+(?:you|u)\s+(?:a|an|one|some|my|our)?\s*(?:free|complimentary)\b|"
        r"\bon the house\b|\b(?:gets?|wins?|receives?|getting)\s+(?:a\s+|an\s+|one\s+|some\s+)?free\s+"
        r"(?!(?:tips?|advice|hints?|tricks?|lessons?|pass)\b)\w+|\bte regalo\b(?!\s+(?:un|mi)\s+consejo)",
        "The reply offers something for free ({evidence}), which you never offered.",
    ),
    _rule(
        "offers_discount",
        r"\b\d{1,3}\s?(?:%|percent|per cent|pct)\s?(?:off|discount|de descuento|rabatt)\b|"
        r"\b(?:discount|promo|coupon)\s+codes?\b|\bhalf[- ](?:price|off)\b(?!\s+(?:at|in)\b)|\bbuy one,? get one\b|"
        r"\bbogo\b|\bcodigo (?:de )?descuento\b|\brabattcode\b",
        "The reply offers a discount ({evidence}) that isn't in your profile.",
    ),
    _rule(
        "offers_meeting",
        r"\b(?:let's|lets|we should|we could|we can|i'd love to|want to|wanna|happy to|i can|we'll|i'll)"
        r"\s+(?:\w+\s+)?(?:meet(?:\s+up)?\b(?!\s+(?:in the middle|halfway|half way))|grab (?:a |some )?(?:coffee|"
        r"drink|drinks|lunch|dinner|beer|bite)|hang out|hop on a|jump on a|get on a|have a (?:quick )?(?:call|chat on)|"
        r"video ?chat|facetime|zoom)\b|"
        r"\bmeet\s+(?:you|u)\s+(?:at|in|there|after|before|on)\b(?!\s+the middle)|\bmeet-?ups?\b|"
        r"\bmy (?:phone )?number is\b|\b(?:set up|schedule|book) a (?:quick )?(?:call|meeting|zoom)\b",
        "The reply proposes a meeting or call ({evidence}), which you never offered.",
    ),
    _rule(
        "offers_meeting",
        # "Call me crazy", "call me old-fashioned": no call.
        r"\b(?:call|text|phone|ring|facetime|whatsapp)\s+me\b(?!\s+(?:crazy|old[- ]fashioned|old[- ]school|biased|"
        r"weird|picky|lazy|boring|basic|extra|obsessed|silly|nuts|mad|a|an|the|what|whatever)\b)",
        "The reply proposes a meeting or call ({evidence}), which you never offered.",
    ),
    _rule(
        "offers_meeting",
        r"\bcome\s+(?:by|over|round|around|visit)\s+(?:to\s+)?(?:my|our)\s+(?:place|house|home|kitchen|apartment|"
        r"flat|studio|restaurant|stall|shop|cafe)\b|\bsee you at (?:my|our)\s+(?:place|house|home|kitchen|apartment|"
        r"flat|studio|stall)\b|\bcome (?:say hi|say hello|find me|see me|visit me|meet me)\b",
        "The reply proposes a meeting or call ({evidence}), which you never offered.",
    ),
    _rule(
        "offers_meeting",
        # Time in person the creator never offered: "I'll show you around Seville", "I'll coach you one-on-one",
        # "Come to my cooking class on Saturday", "I'll save you a seat".
        rf"\b{_I_WILL}\s+(?:\w+\s+)?(?:coach|train|mentor|tutor|teach|guide|show|take)\s+(?:you|u)\s+(?:around\b|"
        r"(?:\w+\s+){0,3}?(?:one[- ]on[- ]one|1[- ]on[- ]1|1:1|in person|personally|privately|myself)\b)|"
        rf"\b{_I_WILL}\s+(?:\w+\s+)?(?:save|keep|hold|reserve)\s+(?:you|u)\s+a\s+(?:seat|spot|place|table|ticket)\b|"
        rf"\b{_I_WILL}\s+be\s+your\s+(?:\w+\s+)?(?:guide|tour guide|host|coach|trainer|personal trainer|date)\b|"
        r"\bte (?:llevo|acompano|enseno)\s+(?:yo\s+)?(?:a (?:ver|"
        r"conocer|visitar|dar una vuelta)|(?:la ciudad|el barrio|"
        r"el centro))\b|"
        r"\bcome\s+(?:to|join(?:\s+me\s+at)?|along to)\s+(?:my|our)\s+(?:\w+\s+)?(?:class|classes|workshop|session|"
        r"meetup|meet-up|tour|walking tour|bootcamp|retreat|supper club|dinner|party|event)\b",
        "The reply proposes a meeting or call ({evidence}), which you never offered.",
    ),
    _rule(
        "offers_meeting",
        r"(?<!nos )\bquedamos\s+(?:para|en|el|este|un|una|a|cuando)\b|\b(?:tomamos|tomemos|vamos a tomar)\s+"
        r"(?:un|una|algo)\b|\bte invito a(?:l)?\s+(?:un |una )?(?:cafe|cerveza|comer|cenar|almorzar)\b|"
        r"\blade dich (?:auf|zu) (?:einen|ein|eine|einem)\s+\w+|\btreffen wir uns\b|\blass(?:t)? uns (?:\w+\s+)?"
        r"treffen\b",
        "The reply proposes a meeting or call ({evidence}), which you never offered.",
    ),
    _rule(
        "offers_dm",
        r"\b(?:dm|pm|message|inbox|msg|email|e-mail)\s+me\b|\bslide into (?:my|your) dms?\b|\bcheck "
        r"(?:your|ur) (?:dms?|inbox|messages)\b|\b(?:i'll|i will|let me|i'm going to|i'm gonna|gonna|"
        r"i can|we'll|we will)\s+(?:\w+\s+)?(?:dm|pm|message|text|email|e-mail|whatsapp)\s+(?:you|u)\b|"
        r"\bsent you a (?:dm|message|pm)\b|\bsend me a (?:dm|message|pm|text|email)\b|\b(?:in|via|through|"
        r"into) (?:my|the|your|ur) (?:dms?|pms?|inbox)\b|\bhit me up\b|\bd\.m\.?\s+me\b",
        "The reply moves the conversation to private messages ({evidence}), which you never offered.",
    ),
    _rule(
        "offers_dm",
        r"\b(?:send|shoot|drop|fire|flick|ping)\s+me\s+(?:a\s+|an\s+)?(?:quick\s+|private\s+)?(?:dm|pm|message|msg|"
        r"text|email|e-mail|line|note)\b|\b(?:my\s+)?(?:dms?|inbox|pms?)\s+(?:is|are)\s+(?:always\s+|wide\s+)?open\b",
        "The reply moves the conversation to private messages ({evidence}), which you never offered.",
    ),
    _rule(
        "offers_dm",
        r"\b(?:write|message|text|ping|hit|reach|contact|msg|dm)\s+(?:me\s+|us\s+)?(?:up\s+|out\s+)?(?:on|via|over|"
        r"through)\s+(?:whatsapp|telegram|signal|insta|instagram|"
        r"snap|snapchat|messenger|wechat|discord|email|e-mail)\b",
        "The reply moves the conversation to private messages ({evidence}), which you never offered.",
    ),
    _rule(
        "offers_dm",
        r"\b(?:on|via) (?:ig|dms?)\b|\b(?:ping|write|message|contact|reach|email|text|dm|msg)\s+(?:me\s+|us\s+)?"
        r"(?:out\s+)?(?:privately|in private|directly|off-?platform)\b",
        "The reply moves the conversation to private messages ({evidence}), which you never offered.",
    ),
    _rule(
        "offers_dm",
        r"\b(?:escribeme|mandame|enviame|hablame)\s+(?:por|al|a mi|un|una|en)\s+(?:privado|dm|md|mensaje|correo|"
        r"email|whatsapp|instagram|ig|telegram)\b|\bpor (?:dm|md|privado|mensaje privado|whatsapp)\b|"
        r"\bmensajes? privados?\b|\bschreib(?:e|t)?\s+mir\s+(?:eine?\s+)?(?:dm|pn|nachricht|mail|e-mail|privat)\b|"
        r"\b(?:per|als|via)\s+(?:dm|pn|privatnachricht)\b",
        "The reply moves the conversation to private messages ({evidence}), which you never offered.",
    ),
    _rule(
        "asks_contact_details",
        # A viewer asked for their address, e-mail or number in public ("drop your address below"): what goes with a
        # parcel or a private chat the creator never offered.
        r"\b(?:drop|send|give|dm|share|leave|post|tell|write)\s+(?:me\s+|us\s+)?(?:your|ur)\s+(?:home\s+|postal\s+|"
        r"shipping\s+|mailing\s+|e-?mail\s+|full\s+)?(?:address|e-?mail|phone(?:\s+number)?|number|whatsapp|"
        r"contact details|details)\b(?!\s+of\b)|"
        r"\b(?:pasame|dame|mandame|enviame|deja(?:me)?)\s+(?:tu|"
        r"su)\s+(?:direccion|correo|email|numero|telefono|whatsapp)\b|"
        r"\b(?:schick|gib|sende)\s+mir\s+(?:deine|ihre)\s+(?:adresse|e-?mail|nummer|telefonnummer|handynummer)\b",
        "The reply asks for the viewer's contact details ({evidence}), which you never asked for.",
    ),
    _rule(
        "makes_promise",
        # Not "I promise it's worth it", "I swear this is the easiest bread": that is praise, no pledge.
        r"\bi (?:can |could |'d |would )?guarantee\b|\bi (?:promise|"
        r"swear)\b(?!\s+(?:(?:you|that)\s+)?(?:it's|its|it is|this is|that's|thats|"
        r"that is|they're|they are|these are|it was|this was|that was|i'm|i am|i've|i have|i did|i was|it tastes|"
        r"this tastes|you won't regret|you'll love)\b)|\byou have my word\b|\bcount on (?:it|me)\b(?!\s+\w+ing\b)|"
        r"\bpinky (?:promise|swear)\b|\bte lo (?:prometo|juro)\b|\bversprochen\b|\bich verspreche\b",
        "The reply makes a promise on your behalf ({evidence}).",
    ),
    _rule(
        "makes_promise",
        r"\b(?:i'll|i will|we'll|we will)\s+(?:definitely|for sure|absolutely|totally|100%|certainly|"
        r"personally|make sure to)\s+\w+|\b(?:i'll|i will)\s+(?:reply|respond|answer|write|get back)\s+"
        r"(?:to\s+(?:you|u)\s+)?personally\b",
        "The reply commits you to something ({evidence}).",
    ),
    _rule(
        "makes_promise",
        rf"\b{_I_WILL_STRICT}\s+(?:\w+\s+)?(?:send|ship|mail|email|give|get back to)\s+(?:you|u)\b|"
        r"\b(?:i'm|i am|im|we're|we are)\s+(?:\w+\s+)?(?:sending|shipping|mailing|gifting)\s+(?:you|u)\b"
        rf"{_NOT_A_PARCEL}|"
        r"\bon (?:its|it's|their) way to (?:you|your)\b|(?:^|"
        r"[.!?]\s*)(?:sending|shipping|mailing|posting)\s+(?:you|u)\s+"
        rf"(?:a|an|some|my|our|the|one)\b{_NOT_A_PARCEL}|"
        r"\b(?:you'll|you will)\s+(?:get|receive)\s+(?:\w+\W+){1,4}?from (?:me|us)\b|"
        r"\bte (?:mando|envio)\s+(?:el|la|los|las|un|una|mi|mis)\b|\bich schick(?:e)? dir\b",
        "The reply promises to send or give something ({evidence}).",
    ),
    _rule(
        "promises_content",
        rf"\b{_I_WILL_STRICT}\s+(?:\w+\s+)?(?:make|film|do|post|upload|record|drop)\s+(?:a|an|the|another|"
        r"one|part)\s+(?:\w+\s+)?(?:video|tutorial|episode|reel|short|post|follow-?up|series|stream|two|2)\b"
        r"|\b(?:i'm|i am|we're|we are)\s+(?:doing|hosting|making|"
        r"filming|recording|posting|dropping)\s+(?:a|an|another)\s+"
        r"(?:\w+\s+){0,2}?(?:video|tutorial|episode|reel|stream|livestream|live|q&a|ama|workshop|class)(?!\w)"
        r"|\b(?:my |the )?next (?:video|episode|reel|stream) (?:will|is going to|is gonna) "
        r"(?:be about|be on|cover|feature|show)\b",
        "The reply promises new content on your behalf ({evidence}).",
    ),
    _rule(
        "promises_content",
        # The commenter's own request as the next video: "Next video will be your lasagna".
        r"\b(?:next|tomorrow's|tonight's|this week's|sunday's|saturday's)\s+(?:video|episode|reel|stream|short)\s+"
        r"(?:is|will be|'s|is going to be)\s+(?:all\s+)?(?:about\s+|on\s+)?(?:your|yours)\b",
        "The reply promises new content on your behalf ({evidence}).",
    ),
)

_CODE = re.compile(
    r"\b(?i:code|coupon|promo(?:\s+code)?|voucher|discount\s+code|c[oó]digo|cup[oó]n|gutschein(?:code)?|rabattcode)"
    r"\s*[:=\-]?\s*[\"'“]?([A-Z0-9][A-Z0-9_-]{2,})\b"
)
# A code without the word "code" ("Use MARA20 at checkout"): capitals then digits, where a code is used.
_BARE_CODE = re.compile(
    r"\b(?i:use|using|with|enter|apply|try|con|usa|mit)\s+(?i:the\s+)?([A-Z]{2}[A-Z0-9]{0,12}(?<=[0-9]{2}))\b|"
    r"\b([A-Z]{2}[A-Z0-9]{0,12}(?<=[0-9]{2}))\s+(?i:at checkout|for \d|to get|to save|and save|off\b)"
)
_TWO_DIGITS = re.compile(r"\d\d")  # every bare code has them: most replies need no search for one
_PERCENT_OFF = re.compile(r"\d{1,3}\s?(?:%|percent|per cent|pct)\s?(?:off|discount|de descuento|rabatt)")


@lru_cache(maxsize=256)
def _known_offers(persona: str, example_replies: tuple[str, ...]) -> tuple[str, frozenset[str]]:
    """The creator's own words, folded, and the codes in them (per profile, not per draft)."""
    known_text = " ".join([persona, *example_replies])
    return fold(known_text), frozenset(re.findall(r"[A-Z0-9][A-Z0-9_-]{2,}", known_text))


def check_commitments(
    draft: str, comment: str | Comment, profile: CreatorProfile, *, config: VerifyConfig = DEFAULT_CONFIG
) -> list[Finding]:
    """Money, giveaways, free products, discounts and codes, meetings and calls, DMs, promises.

    The profile has no field for offers, so a discount ("20% off") or code ("SAVE20") that the
    creator's persona or example replies already mention counts as theirs and passes.
    """
    body = strip_disclosure(draft, profile.disclosure_label)
    known_folded, known_codes = _known_offers(profile.persona, tuple(profile.example_replies))
    findings = []
    for f in _scan("commitments", fold(body), _COMMITMENT_RULES):
        if f.code == "offers_discount":
            m = _PERCENT_OFF.search(fold(body))
            if m and m.group(0) in known_folded:
                continue
        findings.append(f)
    text = unicodedata.normalize("NFKC", body)
    bare = _BARE_CODE.finditer(text) if _TWO_DIGITS.search(text) else ()
    for m in (*_CODE.finditer(text), *bare):
        code = m.group(m.lastindex or 1)
        if code not in known_codes:
            findings.append(
                Finding(
                    "commitments",
                    "unknown_discount_code",
                    f"The reply gives the code {_q(code)}, which isn't in your profile.",
                    1.0,
                )
            )
            break
    return findings


# ---------------------------------------------------------------------------------------------
# claims to be human / to be the creator in person

_HUMAN_RULES = (
    _rule(
        "claims_human",
        r"\b(?:i'm|i am|im)\s+(?:not|no|definitely not|totally not|really not)\s+(?:a\s+|an\s+)?(?:bot|"
        r"robot|ai|machine|chatbot|computer|program|automated)\b|\b(?:i'm|i am|im)\s+(?:an?\s+)?(?:real|"
        r"actual|living|genuine)\s+(?:human|person|people)\b|\b(?:i'm|i am|im)\s+(?:a\s+)?human\b|\bas a "
        r"(?:fellow |real |regular )?human\b|\b100% (?:human|real me|me)\b|"
        # no subject needed: "Not a bot, just me!", "It's me, Mia, not an AI"
        r"\bnot\s+(?:a|an)\s+(?:bot|robot|ai|machine|chatbot|computer|program)\b|\b(?:i'm|i am|im)\s+real\b|"
        r"\b(?:real|actual)\s+(?:person|human)\s+here\b|\bhuman\s+here\b|\bme\W{1,3}not\s+ai\b|"
        r"\b(?:a\s+)?(?:real|actual)\s+(?:human|person)\s+(?:wrote|typed|is\s+(?:writing|typing|replying))\b|"
        r"\bhumans?\s+(?:wrote|typed|write|writes)\s+(?:this|these|it|every|all)\b|"
        # "No robots here, just me", "Not automated, just me"
        r"(?:\b(?:no|zero)\s+(?:ai|bots?|robots?|assistants?|team|helpers?|chatgpt)|\bnot\s+(?:an?\s+)?(?:ai|bot|"
        r"robot|automated|assistant|helper|chatgpt))\b[^.!?\n]{0,30}?\bjust me\b",
        "The reply claims to be a human ({evidence}), but it was written by AI.",
    ),
    _rule(
        "claims_in_person",
        r"\b(?:this|it|that)(?:\s+is|\s*'s|s)\s+(?:really|actually|genuinely|truly|honestly|seriously)?\s*me\s+"
        r"(?:typing|writing|replying|answering|responding|here)\b|\b(?:it's|its|it is)\s+(?:really|actually|"
        r"truly|genuinely)\s+me\b|\b(?:i|me)\s+personally\s+(?:wrote|typed|write|type|read|answer|reply|"
        r"respond|am (?:typing|writing|replying))\b|\b(?:wrote|typed|writing|typing|written|typed out)\s+"
        r"(?:this|it|every (?:word|reply))\s+(?:myself|personally|by hand|with my own hands)\b|\bnot (?:my |"
        r"an? )?(?:assistant|team|manager|social media manager)\s+(?:typing|writing|replying)\b|\b(?:real|"
        r"actual) me (?:here|typing|replying)\b|\b(?:written|typed)\s+by\s+me\b|"
        # "I read and answer every comment myself", "I'm answering these myself"
        r"\b(?:(?:read|see)\s+(?:and|&)\s+)?(?:reply|replying|respond|responding|answer|answering|type|typing|"
        r"write|writing)\s+(?:to\s+)?(?:every|each|all|these|them|everyone|everybody)(?:\s+(?:of\s+)?(?:comment|"
        r"message|reply|question|one|them|these)s?)?\s+(?:myself|personally|by hand)\b|"
        r"\bpersonally\s+(?:replying|answering|responding|writing|typing)\b|"
        r"\bi(?:'m| am)\s+(?:typing|writing)\s+this\s+(?:from|with|while|between|right now)\b|"
        r"\bi\s+(?:just\s+)?typed\s+this\s+(?:from|with|on|in|while|between|myself|one-handed)\b",
        "The reply claims you wrote it in person ({evidence}), but it was written by AI.",
    ),
    _rule(
        "claims_in_person",
        # "This is me, not my assistant", "Mara here, not the bot"
        r"\bnot (?:my|the) (?:ai )?(?:assistant|helper|bot|chatbot|robot)\b(?!')",
        "The reply claims you wrote it in person ({evidence}), but it was written by AI.",
    ),
    _rule(
        "claims_human",
        r"\b(?:no soy|je ne suis pas|ich bin kein|ich bin keine|nao sou|non sono|ik ben geen)\s+(?:un |una |"
        r"um |uma |een |une )?(?:bot|robot|robo|ia|ki|ai|maquina|machine|maschine)\b",
        "The reply claims to be a human ({evidence}), but it was written by AI.",
    ),
    _rule(
        "claims_human",
        r"\bno (?:un|una) (?:bot|robot|ia|maquina)\b|\bsoy (?:una persona (?:real|de verdad)|un ser humano|"
        r"(?:un |una )?human[oa])\b",
        "The reply claims to be a human ({evidence}), but it was written by AI.",
    ),
    _rule(
        "claims_human",
        r"\bnon (?:un|una) (?:bot|robot|ia|macchina)\b|\bsono (?:una persona (?:vera|reale|in carne e ossa)|un essere "
        r"umano|uman[oa])\b",
        "The reply claims to be a human ({evidence}), but it was written by AI.",
    ),
    _rule(
        "claims_human",
        r"\bich bin (?:ein |eine )?(?:echter |echte |wirklicher |realer )?mensch\b|\b(?:keine|kein)\s+(?:ki|bot|"
        r"roboter|assistent|assistentin)\b(?!-)",
        "The reply claims to be a human ({evidence}), but it was written by AI.",
    ),
    _rule(
        "claims_in_person",
        r"\bsoy yo de verdad\b|\bde verdad soy yo\b|\b(?:escribo|respondo|contesto) yo (?:misma|mismo)\b|"
        r"\b(?:schreibe|tippe|beantworte)\s+ich\s+(?:das\s+)?(?:selbst|personlich)\b",
        "The reply claims you wrote it in person ({evidence}), but it was written by AI.",
    ),
    _rule(
        "claims_in_person",
        # "Written by me" in the other languages replies are written in ("escrita por mí, no por IA"; not "escrita
        # por mi abuela"), and the German and French word orders of "I answer myself".
        r"\b(?:escrit[oa]|redactad[oa]|respondid[oa]|contestad[oa]|escrit[oa]s?) por (?:mi|mim)\b(?![ \t]+[a-z])|"
        r"\b(?:ecrite?|redigee?|tapee?) par moi\b(?![ \t]+[a-z])|\b(?:geschrieben|getippt) von mir\b(?![ \t]+[a-z])|"
        r"\bich\s+(?:schreibe|tippe|antworte|beantworte)\s+(?:(?:das|dies|hier|dir|euch|ihnen|alles|alle|jede\w*|"
        r"immer|gerade|grad|jetzt)\s+){0,3}(?:selbst|personlich|hochstpersonlich)\b|"
        # "Ich tippe das gerade vom Handy" ("I'm typing this from my phone")
        r"\bich\s+(?:schreibe|tippe)\s+(?:(?:dir|euch|ihnen|das|dies|gerade|grad|jetzt|schnell)\s+){1,4}(?:vom|von "
        r"meinem|auf meinem|am)\s+(?:handy|telefon|smartphone|iphone|laptop|tablet)\b|"
        # Italian: "scritta da me" (not "da mia nonna"), "rispondo io personalmente", "sono io che rispondo"
        r"\b(?:scritt[oaie]|redatt[oaie]) da me\b(?![ \t]+[a-z])|"
        r"\b(?:rispondo|scrivo)\s+io\s+(?:stess[oa]|personalmente|in persona|a ogni|a tutti|ad ogni)\b|"
        r"\b(?:rispondo|scrivo)\s+(?:personalmente|io stess[oa])\b|\bsono (?:proprio |davvero )?io (?:che|a) "
        r"(?:rispondo|scrivo|rispondere|scrivere)\b|"
        r"\bje (?:reponds|ecris|tape)\s+(?:(?:ici|moi|a tout le monde|a tous)\s+){0,2}?(?:moi-meme|moi meme|"
        r"personnellement)\b|\bc'est (?:bien |vraiment )?moi qui (?:reponds|ecris|tape)\b|"
        r"\bsou eu (?:mesma|mesmo|mesmissima) (?:respondendo|escrevendo|a responder|a escrever)\b|"
        r"\bich bin'?s (?:wirklich|echt|personlich|selbst)\b|"
        r"\b(?:escribo|respondo|contesto)\s+yo\s+(?:cada|todas|todos|mis|las|los|personalmente)\b|"
        r"\b(?:nada de|sin|cero)\s+(?:bots?|ia)\b(?!-)",
        "The reply claims you wrote it in person ({evidence}), but it was written by AI.",
    ),
)


# The creator's own name where a persona opens with it ("Dev Raman is a strength coach ..."): a display name can be a
# title and a name ("Coach Dev") or a name and a word ("Mara Cooks"), and a reply may name them by either.
_PERSONA_NAME = re.compile(r"\A\s*((?:[A-Z][\w'-]+\s+){0,2}[A-Z][\w'-]+)\s+(?:is|was|has|makes|runs|films|posts)\b")


@lru_cache(maxsize=256)
def _creator_name(display_name: str, persona: str = "") -> tuple[tuple[str, ...], str] | None:
    """``(words, regex)`` for the creator's name as a reply writes it: the display name or its first word, the name
    the persona opens with or a word of it ("Coach Dev" whose persona opens "Dev Raman is" as "Dev"; not "Cooks" of
    "Mara Cooks"), words of 3 letters or more; not as a possessive ("Mara's kitchen helper" names the helper, not
    Mara). ``words``: one of them is in every match."""
    shown = _TOKEN.findall(fold(display_name))
    full, singles = [shown], set(shown[:1])
    if m := _PERSONA_NAME.match(persona):
        full.append(_TOKEN.findall(fold(m.group(1))))
        singles.update(full[-1])
    full = [words for words in full if words]
    singles = {w for w in singles if len(w) >= 3 and not w.isdigit()}
    if not singles:
        return None
    names = sorted({*(r"\s+".join(map(re.escape, words)) for words in full), *map(re.escape, singles)},
                   key=len, reverse=True)
    return tuple(sorted(singles)), rf"(?:{'|'.join(names)})\b(?!')"


@lru_cache(maxsize=256)
def _name_rules(display_name: str, persona: str = "") -> tuple[tuple[str, ...], re.Pattern[str],
                                                               re.Pattern[str]] | None:
    """``(name words, in-person claim, counter-label)`` patterns naming the creator, once per profile."""
    named = _creator_name(display_name, persona)
    if named is None:
        return None
    words, name = named
    in_person = re.compile(
        rf"\b(?:it's|its|it is|this is|that's|thats|that is)\s+(?:really|actually|truly|genuinely|honestly|"
        rf"the real|the actual)\s+{name}|\b(?:real|actual)\s+{name}\s+(?:here|typing|replying|writing)\b|"
        rf"\b{name},?\s+(?:here\W{{0,3}}|(?:herself|himself|themselves|themself|personally|in person)\s+)?(?:typing|"
        rf"replying|answering|responding)\b|\b{name}\s+writing\s+(?:this|here|now|personally)\b|"
        # "It's Lena herself", "Mara in person here"
        rf"\b{name},?\s+(?:herself|himself|themselves|themself|in person|in the flesh)\b"
    )
    # "[Reply by Mara herself]", "[Written by Mara]", "✅ Verified: Mara": a label of the creator's own.
    counter_label = re.compile(
        rf"[\[(][^\[\]()]{{0,40}}?\b(?:by|from)\s+{name}[^\[\]()]{{0,40}}[\])]|[\[(][^\[\]()]{{0,40}}?\b{name}"
        r"[^\[\]()]{0,40}?\b(?:herself|himself|themselves|themself|personally|in person|verified|signed)\b"
        rf"[^\[\]()]{{0,40}}[\])]|\b(?:verified|signed|approved)\s*(?:[:\-]\s*|by\s+){name}|"
        rf"\b(?:written|typed|sent|replied|answered)\s+by\s+{name}"
    )
    return words, in_person, counter_label


# What textnorm saw done to letters so that a phrase reads to people but not to a pattern.
_SPELT_TO_SLIP = frozenset({"leetspeak", "spaced_letters", "homoglyphs", "styled_letters"})


def check_claims_human(
    draft: str, comment: str | Comment, profile: CreatorProfile, *, config: VerifyConfig = DEFAULT_CONFIG
) -> list[Finding]:
    """Claims to be human or to be the creator typing in person ("Real Mara here"), also spelt to slip past
    ("Not a b0t", "I am h u m a n"): then the de-obfuscated view is read too."""
    folded = fold(strip_disclosure(draft, profile.disclosure_label))
    findings = _scan("claims_human", folded, _HUMAN_RULES)
    # The draft's views, which the stage has already made (cached).
    if not findings and (views := normalize_views(draft)).signals & _SPELT_TO_SLIP:
        findings = _scan("claims_human", fold(strip_disclosure(views.skeleton, profile.disclosure_label)),
                         _HUMAN_RULES)
    named = _name_rules(profile.display_name, profile.persona)
    if named and any(w in folded for w in named[0]) and not any(f.code == "claims_in_person" for f in findings):
        m = named[1].search(folded)
        if m:
            findings.append(Finding("claims_human", "claims_in_person", f"The reply claims you wrote it in person "
                                    f"({_q(m.group(0))}), but it was written by AI.", 1.0))
    return findings


# ---------------------------------------------------------------------------------------------
# leaking the system prompt, instructions or persona

_LEAK_RULES = (
    _rule(
        "prompt_leak",
        r"\bmy\s+(?:system\s+)?(?:instructions|prompt|guidelines|directives|rules|programming)\s+"
        r"(?:are|is|say|says|tell me|tells me|state|states|told me|require|requires|forbid|forbids|don't allow|"
        r"do not allow|doesn't allow|does not allow|want me|wants me|ask me|asks me|won't let me|don't let me|"
        r"doesn't let me|only let me|only lets me)\b|"
        r"\bhere (?:are|is) my (?:instructions|prompt|rules)\b|\bthe (?:instructions|rules) i (?:have|follow)\b|"
        r"\bsystem\s*prompt\b|\b(?:i was|i've been|i have been|i am|i'm)\s+(?:instructed|programmed|"
        r"prompted|configured)\s+to\b|\bthe (?:instructions|prompt) (?:i was given|i got)\b|"
        r"\b(?:ignore|disregard|forget)\s+(?:all\s+)?(?:the\s+|"
        r"your\s+|my\s+)?(?:previous|prior|above|earlier)\s+(?:instructions|prompts?|messages)\b|"
        r"\b(?:my|the)\s+persona\s+(?:is|says|description)\b|\bstay(?:ing)? in character\b|"
        r"\byou are a helpful assistant\b",
        "The reply talks about its hidden instructions ({evidence}).",
    ),
    _rule(
        "prompt_leak",
        # "I was told to keep replies to two sentences", "I'm supposed to talk like a ...": the grandmother's
        # "I was told to add the salt last" is no instruction about replying.
        r"\bi(?:'m| am| was|'ve been| have been)\s+(?:told|asked|instructed|supposed|meant|only allowed|not allowed|"
        r"allowed|required)\s+to\s+(?:(?:keep|limit)\s+(?:my\s+|the\s+|these\s+|all\s+)?(?:repl(?:y|ies)|answers?|"
        r"responses?|comments?|messages?)|(?:talk|sound|write|act|speak|reply|respond|answer)\s+like|(?:only\s+)?"
        r"(?:link|point people|refer people)\s+to|stay in character)\b",
        "The reply talks about its hidden instructions ({evidence}).",
    ),
    _rule(
        "prompt_leak",
        # "Per my system instructions", "according to my prompt", "laut meinen Anweisungen", "segun mis instrucciones";
        # not "according to my rules" (a cook's rules about pizza), nor "my instructions" for a recipe.
        r"\b(?:per|according to|as per|based on|under|following) my (?:system )?(?:instructions|prompt|programming|"
        r"directives|guidelines)\b|\bsystem instructions\b|"
        r"\b(?:laut|gemass|nach) meinen (?:anweisungen|vorgaben|instruktionen|richtlinien)\b|"
        r"\b(?:segun|conforme a) mis (?:instrucciones|directrices|indicaciones)\b|"
        r"\b(?:selon|d'apres|conformement a) mes (?:instructions|consignes|directives)\b|"
        r"\b(?:segundo|conforme|de acordo com) (?:as )?minhas (?:instrucoes|diretrizes|orientacoes)\b|"
        r"\b(?:secondo|in base a|stando a) (?:le )?mie (?:istruzioni|direttive|linee guida)\b|"
        # "I'm set up to only answer training questions", "I was designed to reply in ..."
        r"\bi(?:'m| am| was|'ve been| have been)\s+(?:set up|designed|built|made|trained|programmed|configured|"
        r"told|asked|instructed|only allowed|allowed|meant|supposed)\s+(?:not\s+)?to\s+(?:only\s+)?"
        r"(?:answer|reply|respond|help with|talk about|discuss)\s+(?:\w+\s+)?"
        r"(?:questions|comments|topics|messages|things|stuff|in|here)\b",
        "The reply talks about its hidden instructions ({evidence}).",
    ),
    _rule(
        "prompt_leak",
        r"\b(?:guidelines|instructions|prompt|directives)\s+(?:i was given|i got|i've been given|i have been given|"
        r"they gave me)\b|\bmy\s+(?:setup|configuration|config|guardrails)\s+(?:says?|tells? me|forbids?|requires?|"
        r"doesn't (?:let me|allow)|won't let me)\b|"
        r"\bmis\s+(?:instrucciones|directrices)\s+(?:dicen|me (?:dicen|piden|prohiben)|no me (?:permiten|dejan))\b|"
        r"\bmeine\s+(?:anweisungen|vorgaben|richtlinien)\s+(?:sagen|besagen|verbieten|erlauben)\b|"
        r"\ble mie\s+(?:istruzioni|direttive)\s+(?:dicono|mi (?:dicono|chiedono|vietano)|non mi (?:permettono|"
        r"lasciano))\b",
        "The reply talks about its hidden instructions ({evidence}).",
    ),
    _rule(
        "ai_boilerplate",
        r"\bas an? (?:ai|artificial intelligence)(?:\s+language)?(?:\s+(?:model|assistant|chatbot)\b|\s*,|"
        r"\s+i\b)|\bas a "
        r"(?:large )?language model\b|\b(?:i'm|i am)\s+(?:just\s+|only\s+)?(?:an?\s+)?(?:ai|artificial "
        r"intelligence)\s*(?:language\s+)?(?:model|assistant|chatbot|system)\b|\bi (?:don't|do not|"
        r"cannot|can't) have (?:personal )?(?:opinions|feelings|emotions|a body)\b|\bmy (?:training data|"
        r"knowledge cutoff)\b|"
        # "Sorry, I'm an assistant for Mara", "As Mara's AI helper": not "I'm the assistant coach".
        r"\b(?:i'm|i am|im)\s+(?:just\s+|only\s+)?(?:an?|the|\w+'s)\s+(?:ai\s+|virtual\s+|digital\s+|kitchen\s+|"
        r"travel\s+)?(?:assistant|helper|bot|chatbot)(?:\s+(?:for|to|of|on|that|who|here)\b|\s*[,.!;]|\s*$)|"
        r"\bas\s+(?:\w+'s|your|an?|the)\s+(?:ai|virtual|digital)\s+(?:assistant|helper)\b",
        "The reply sounds like a generic AI assistant ({evidence}), not like you.",
    ),
)
_TEMPLATE_TOKENS = re.compile(
    r"<\|(?:im_start|im_end|system|user|assistant|endoftext|eot_id|start_header_id|end_header_id)\|>|"
    r"\[/?INST\]|<</?SYS>>|</?think>|^\s*#{2,3}\s*(?:instruction|system|response)\b|"
    r"^\s*(?:assistant|system|ai|bot|response|reply)\s*:",
    re.IGNORECASE | re.MULTILINE,
)


@lru_cache(maxsize=256)
def _ngrams_of(source: str, n: int) -> frozenset[tuple[str, ...]]:
    tokens = _TOKEN.findall(fold(source))
    return frozenset(tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1))


@lru_cache(maxsize=256)
def _word_count(persona: str) -> int:
    return len(_TOKEN.findall(fold(persona)))


def _longest_copy(body: str, source: str, n: int) -> tuple[int, str]:
    """Length (in words) and text of the longest run of the draft copied from ``source`` (≥ n, else 0)."""
    grams = _ngrams_of(source, n)
    tokens = _TOKEN.findall(fold(body))
    best, best_at, i = 0, 0, 0
    while i + n <= len(tokens):
        if tuple(tokens[i : i + n]) not in grams:
            i += 1
            continue
        j = i + 1
        while j + n <= len(tokens) and tuple(tokens[j : j + n]) in grams:
            j += 1
        if j - i + n - 1 > best:
            best, best_at = j - i + n - 1, i
        i = j
    return best, " ".join(tokens[best_at : best_at + best])


def check_prompt_leak(
    draft: str, comment: str | Comment, profile: CreatorProfile, *, config: VerifyConfig = DEFAULT_CONFIG
) -> list[Finding]:
    """Talk about instructions or system prompts, assistant boilerplate, chat-template tokens,
    and runs of ``config.persona_ngram`` or more words copied from the persona description."""
    body = strip_disclosure(draft, profile.disclosure_label)
    findings = _scan("prompt_leak", fold(body), _LEAK_RULES)
    m = _TEMPLATE_TOKENS.search(body)
    if m:
        findings.append(
            Finding(
                "prompt_leak",
                "template_artifact",
                f"The reply contains text from the model's prompt format ({_q(m.group(0))}).",
                1.0,
            )
        )
    # The prompt's own wording (generation.prompt), copied as the persona would be.
    if config.persona_ngram:
        length, copied = _longest_copy(body, prompt_instructions(profile), config.persona_ngram)
        if length:
            findings.append(Finding("prompt_leak", "instructions_copied", f"The reply copies {length} words of its "
                                    f"instructions word for word ({_q(copied)}).", 1.0))
    persona_len = _word_count(profile.persona)
    n = min(config.persona_ngram, persona_len) if persona_len >= 5 else 0
    if n:
        length, copied = _longest_copy(body, profile.persona, n)
        if length:
            findings.append(
                Finding(
                    "prompt_leak",
                    "persona_copied",
                    f"The reply copies {length} words of your persona description word for word "
                    f"({_q(copied)}).",
                    1.0,
                )
            )
    return findings


# ---------------------------------------------------------------------------------------------
# language

_LANG_NOISE = re.compile(r"https?://\S+|www\.\S+|(?<!\S)\S+@\S+|[@#][\w.]+")


def check_language(
    draft: str,
    comment: str | Comment,
    profile: CreatorProfile,
    *,
    config: VerifyConfig = DEFAULT_CONFIG,
    comment_language: str | None = None,
) -> list[Finding]:
    """A reply whose language is neither one of ``profile.languages`` nor the comment's.

    The comment's language is ``comment_language``, else ``Comment.language``, else detected, and
    then only when the guess is as confident as the reply's must be: "Danke Mia!!" (de at 0.37)
    does not make a German reply fine for an English-only creator.
    Only flags when the reply has ``config.language_min_letters`` letters and the guess is
    confident, so a short "Merci !" under an English-only profile passes.
    """
    body = _LANG_NOISE.sub(" ", strip_disclosure(draft, profile.disclosure_label))
    if sum(map(str.isalpha, body)) < config.language_min_letters:
        return []
    reply_in = possible_languages(body)
    if reply_in is None or reply_in[1] < config.language_min_confidence:
        return []
    languages, confidence = reply_in
    if set(languages) & set(profile.languages):
        return []
    if comment_language is None and isinstance(comment, Comment):
        comment_language = comment.language
    if comment_language:
        comment_in: tuple[str, ...] = (comment_language,)
    else:
        found = possible_languages(_comment_text(comment))
        comment_in = found[0] if found and found[1] >= config.language_min_confidence else ()
    if set(languages) & set(comment_in):
        return []
    name = _LANGUAGE_NAMES.get(languages[0], languages[0]) if len(languages) == 1 else "/".join(languages)
    return [
        Finding(
            "language",
            "wrong_language",
            f"The reply seems to be in {name}, which is neither one of your reply "
            f"languages ({', '.join(profile.languages) or 'none'}) nor the language of the comment.",
            round(confidence, 3),
        )
    ]


_LANGUAGE_NAMES = {
    "en": "English", "es": "Spanish", "fr": "French", "de": "German", "pt": "Portuguese", "it": "Italian",
    "nl": "Dutch", "pl": "Polish", "tr": "Turkish", "id": "Indonesian", "sv": "Swedish", "ca": "Catalan",
}  # fmt: skip


# ---------------------------------------------------------------------------------------------
# length

_BLANK_RUN = re.compile(r"[\s\u200c\u200d\ufe0f]+")  # what does not count as a visible character
_CONTENT = re.compile("[^\\W_]|[\U0001f000-\U0001faff\u2600-\u27bf\u2b00-\u2bff]")


def check_length(
    draft: str, comment: str | Comment, profile: CreatorProfile, *, config: VerifyConfig = DEFAULT_CONFIG
) -> list[Finding]:
    """Empty or too short (label not counted), too long (label counted: that is what gets posted)."""
    body = strip_disclosure(draft, profile.disclosure_label)
    visible = len(body) - sum(map(len, _BLANK_RUN.findall(body)))  # a few runs, not one string per character
    if visible == 0:
        return [Finding("length", "empty", "The reply is empty.", 1.0)]
    if not _CONTENT.search(body):
        return [
            Finding(
                "length",
                "too_short",
                f"The reply has no words or emoji ({_q(body)}).",
                1.0,
            )
        ]
    if visible < config.min_chars:
        return [
            Finding(
                "length",
                "too_short",
                f"The reply is only {visible} character{'s' if visible != 1 else ''} long "
                f"(the minimum is {config.min_chars}).",
                1.0,
            )
        ]
    final = len(ensure_disclosure(draft, profile.disclosure_label))
    if final > config.max_chars:
        return [
            Finding(
                "length",
                "too_long",
                f"The reply is {final} characters long with the AI label; the limit is {config.max_chars}.",
                1.0,
            )
        ]
    return []


# ---------------------------------------------------------------------------------------------
# disclosure label contradictions

_DISCLOSURE_RULES = (
    _rule(
        "denies_ai",
        r"\b(?:this|it|that|my reply|this reply|this comment|this message|the reply)\s*(?:'s|is|was|s)?\s*"
        r"(?:not|n't|isn't|wasn't|isnt|wasnt|ain't|aint|never|no)\s+(?:an?\s+)?(?:ai|bot|automated|"
        r"auto-?generated|generated|written by (?:an?\s+)?(?:ai|bot|machine))\b|\b(?:not|n't|never)\s+(?:written|"
        r"generated|made|typed|created|produced)\s+by\s+(?:an?\s+)?(?:ai|bot|machine|chatbot|robot|chatgpt|gpt)\b|"
        r"\bno ai (?:here|involved|used|was used)\b|\b(?:written|typed) by (?:a )?(?:human|real person)\b|"
        r"\bhuman[- ]written\b|#noai\b|\[(?:human|not ai|no ai)(?: reply)?\]|"
        # counter-labels: "[Not an AI reply]", "[Mia, not AI]", "(human reply)", "(not the helper)"; bounded, and not
        # past a bracket of the same kind, so that "( not ( not ..." takes no time
        r"\([^()]{0,80}?\b(?:not|no|non)\b[^()]{0,80}?\b(?:ai|bot|helper|assistant)\b[^()]{0,80}\)|"
        r"\[[^\[\]]{0,80}?\b(?:not|no|non)\b[^\[\]]{0,80}?\b(?:ai|bot|helper|assistant)\b[^\[\]]{0,80}\]|"
        r"\([^()]{0,80}?\bhuman\b[^()]{0,80}\)|\[[^\[\]]{0,80}?\bhuman\b[^\[\]]{0,80}\]",
        "The reply denies being written by AI ({evidence}), contradicting the AI label.",
    ),
    _rule(
        "denies_ai",
        # The counter-labels in the other languages: "(escrito por mí, no por IA)", "[sans IA]", "(ohne KI)",
        # "(resposta humana)". Not "robot": a food processor is a "robot de cocina".
        r"\([^()]{0,80}?\b(?:no|ni|non|pas|nicht|kein|keine|nao|sin|sans|ohne|sem|senza)\b[^()]{0,80}?\b(?:ia|ki|"
        r"bot|asistente|assistente|assistent)\b[^()]{0,80}\)|\[[^\[\]]{0,80}?\b(?:no|ni|non|pas|nicht|kein|keine|nao|"
        r"sin|sans|ohne|sem|senza)\b[^\[\]]{0,80}?\b(?:ia|ki|bot|asistente|assistente|assistent)\b[^\[\]]{0,80}\]|"
        r"\([^()]{0,80}?\b(?:human[oa]s?|humaine?s?|menschlich\w*|uman[oaie])\b[^()]{0,80}\)|"
        r"\[[^\[\]]{0,80}?\b(?:human[oa]s?|humaine?s?|menschlich\w*|uman[oaie])\b[^\[\]]{0,80}\]",
        "The reply denies being written by AI ({evidence}), contradicting the AI label.",
    ),
    _rule(
        "denies_ai",
        r"\bai[- ]?free\b|\b(?:zero|0%) ai\b|\bhand-?written (?:reply|response|answer|comment|message)\b",
        "The reply denies being written by AI ({evidence}), contradicting the AI label.",
    ),
    _rule(
        "dismisses_label",
        r"\b(?:ignore|disregard|don't mind|never mind|nevermind|don't trust|don't believe|pay no attention to|"
        r"forget about)\s+(?:the|this|that|my|any)\s+(?:ai\s+)?(?:label|tag|disclaimer|disclosure|note|notice|badge|"
        r"bracket\w*)\b",
        "The reply tells readers to ignore the AI label ({evidence}).",
    ),
    _rule(
        "dismisses_label",
        r"\b(?:label|tag|disclaimer|disclosure|badge)s?(?:\s+(?:below|above|here|at the end))?"
        r"(?:'s|\s+is|\s+was|\s+are)\s+(?:just\s+|only\s+|totally\s+|completely\s+)?(?:wrong|fake|a mistake|"
        r"an error|automatic|just there|mistaken|incorrect|false|a lie|a glitch|bogus|inaccurate|untrue|"
        r"misleading|nonsense|lying|not (?:true|right|accurate|correct))\b",
        "The reply tells readers to ignore the AI label ({evidence}).",
    ),
    _rule(
        "dismisses_label",
        r"\b(?:label|tag|disclaimer|disclosure|badge)s?(?:\s+(?:below|above|here|at the end))?(?:'s|\s+is|\s+was|"
        r"\s+are)\s+(?:just\s+|only\s+)?(?:an?\s+)?(?:platform|automatic|auto|default|system|legal|required|"
        r"mandatory)\s+(?:thing|requirement|default|feature|setting)\b|\b(?:label|tag|disclaimer|badge)s?\s+(?:lie|"
        r"lies|lying)\b",
        "The reply tells readers to ignore the AI label ({evidence}).",
    ),
)

# What points at the label that follows: a colon, an arrow, a pointing hand.
_POINTING = "[\\s:>~\u2192\u21d2\u27a1\u2193\u2b07\U0001f447\U0001f449-]*"
_DANGLING_BEFORE_LABEL = re.compile(
    r"\b(?:(?:is|it's|this is|that's|was|am|i'm)\s+)?(?:not|never|isn't|wasn't|ain't|ignore|disregard|fake|"
    rf"without|minus|an?|the){_POINTING}$|"
    # "no" as a determiner ("there is no"), not as an answer ("Sadly no"): the answer may stand before a label.
    rf"\b(?:is|was|are|it's|that's|there's|this is|with)\s+no{_POINTING}$|"
    # An imperative last, whatever punctuation or emoji follow ("Pls ignore:", "Ignore 👉", "💛 Forget");
    # "Don't forget!" is no imperative.
    r"(?:^|[^\w\s']\s*|\b(?:just|pls|plz|please|psst|now|so)\s+)(?:ignore|disregard|forget|pay no attention(?: to)?)"
    r"[\W_]*$|"
    # A word against the label, pointing at it: "(sarcasm) →", "that's a lie:"
    r"\b(?:a lie|lies|lying|false|bogus|sarcasm|not true|untrue|jk|kidding)\W{0,3}?(?::|->|=>|[\u2192\u21d2\u27a1"
    r"\u2193\u2b07\U0001f447\U0001f449])\s*$|"
    # A colon last introduces what is missing, and the label would be it ("The answer to your question is:").
    r"\w+[^\w:]{0,2}:\s*$")


def _dangling_from(body: str) -> int:
    """Where a match of ``_DANGLING_BEFORE_LABEL`` can start: its words end at the last letter or digit, and none
    of its word runs is longer than this (whitespace is tidied to single characters)."""
    end = len(body)
    while end and not body[end - 1].isalnum():
        end -= 1
    return max(0, end - 48)


def check_disclosure(
    draft: str, comment: str | Comment, profile: CreatorProfile, *, config: VerifyConfig = DEFAULT_CONFIG
) -> list[Finding]:
    """Drafts that deny being AI, dismiss or negate the label, or hide text with invisible characters.

    The label itself is added afterwards by :func:`ensure_disclosure`; a draft that already
    contains it is fine.
    """
    findings: list[Finding] = []
    # The label goes right after the last word: one that would read into it ("... not an [AI reply]",
    # "Ignore the [AI reply]", say a truncated draft's) turns the label against itself.
    body = fold(strip_disclosure(draft, profile.disclosure_label))
    dangling = _DANGLING_BEFORE_LABEL.search(body, _dangling_from(body))
    if dangling:
        findings.append(Finding("disclosure", "dismisses_label", f"The reply ends in {_q(dangling.group(0))}, which "
                                "would read into the AI label that follows it.", 1.0))
    if any(m.group(1) is None for m in _FLAG_OR_HIDDEN.finditer(draft)):  # a hidden character, not a flag
        findings.append(
            Finding(
                "disclosure",
                "hidden_characters",
                "The reply contains invisible control characters that can hide or reorder text.",
                1.0,
            )
        )
    # Without the label: an operator's "(AI reply, human-reviewed)" is no claim to be human.
    findings += _scan("disclosure", body, _DISCLOSURE_RULES)
    named = _name_rules(profile.display_name, profile.persona)
    if named and any(w in body for w in named[0]) and not any(f.code == "denies_ai" for f in findings):
        m = named[2].search(body)
        if m:
            findings.append(Finding("disclosure", "denies_ai", f"The reply signs itself as you ({_q(m.group(0))}), "
                                    "contradicting the AI label.", 1.0))
    folded = fold(draft)  # with the label: "not [AI reply]" negates it
    label = fold(" ".join(profile.disclosure_label.split()))
    if label and not any(f.code == "dismisses_label" for f in findings):
        m = re.search(rf"\b(?:not|no|isn't|fake|ignore)\W+{re.escape(label)}", folded)
        if m:
            findings.append(
                Finding(
                    "disclosure",
                    "dismisses_label",
                    f"The reply tells readers to ignore the AI label ({_q(m.group(0))}).",
                    1.0,
                )
            )
    return findings


# ---------------------------------------------------------------------------------------------
# toxicity of the draft (light lexicon; pass a classifier score through the hook)

_PROFANITY = (
    r"f+[u*@#]+c+k+\w*|f\*+k\w*|fck\w*|fuk(?:ing|in|ed|er)?|motherf\w+|sh[i1!*]t+(?!ake)\w*|bullshit|"
    r"b[i1!*]tch\w*|bastards?|ass-?holes?|a-?holes?|dickheads?|cunts?|wankers?|twats?|"
    r"piss(?:ed)? off|goddamn|"
    r"mierda|puta|puto|pendejos?|gilipollas|cabron|joder|merde|putain|connard|connasse|salope|encul\w*|"
    r"scheisse|arschloch|wichser|fotze|caralho|foda-?se|vaffanculo|cazzo|stronzo|kut|klootzak|"
    r"godverdomme"
)
_SLURS = r"retard(?:ed|s)?|fag(?:got)?s?|n[i1]gg(?:er|a)s?|tranny|trannies|spastic|kike"
_INSULT_WORDS = (
    r"idiots?|morons?|imbeciles?|losers?|dumbass\w*|dipshit|scumbag|degenerate|clowns?|trash|garbage|"
    r"stupid|dumb|ugly|pathetic|worthless|useless|disgusting|braindead|brain-dead|clueless|delusional|"
    r"hopeless|talentless|incompetent|lazy|crybab(?:y|ies)|wimps?|wuss(?:y|ies)?|"
    r"fat(?![-\w]|\s+(?:loss|burn\w*|free))"
)
_TOXIC_RULES = (
    _rule("slur", rf"\b(?:{_SLURS})\b", "The reply contains a slur ({evidence})."),
    _rule(
        "threat_or_self_harm",
        r"\b(?:kys|kill (?:yo)?urself|go die|hope you die|unalive yourself|(?:i'll|i will) (?:kill|hurt) you|"
        r"i know where you live)\b",
        "The reply contains a threat or tells someone to harm themselves ({evidence}).",
    ),
    _rule(
        "insult",
        # "You're fat", "you are trash": after "you" alone the word must follow at once, and not take an object
        # ("You need fat for flavor", "You can trash the peels", "You trim fat off").
        rf"\b(?:you're|you are|youre|ur|u r)\s+(?:so\s+|such\s+(?:an?\s+)?|an?\s+|a total\s+|an absolute\s+|"
        rf"the biggest\s+|just\s+|kind of\s+|sort of\s+|kinda\s+|pretty\s+|really\s+|truly\s+|honestly\s+)?"
        rf"(?:(?!not\b|never\b|no\b)\w+\s+)?(?:{_INSULT_WORDS})\b|"
        r"\b(?:you're|you are|youre|ur)\s+(?:\w+\s+)?the worst\b(?!\s+(?:part|bit|thing|case|day|week|time|traffic|"
        r"weather|season|month|heat)\b)|"
        rf"\byou(?: absolute| little)?\s+(?:so\s+|such\s+(?:an?\s+)?|a total\s+|an absolute\s+|just\s+)?"
        rf"(?:{_INSULT_WORDS})\b(?!\s+(?:the|it|them|that|this|those|these|your|my|off|in|on|out|a|an|some)\b)|"
        # "you weak little baby", "you're such a whiny little baby" (not "what a cheeky little baby")
        r"\b(?:you|you're|you are|youre|ur)\s+(?:such\s+)?(?:an?\s+)?(?:big\s+|little\s+)?(?:weak|whiny|whining|"
        r"spoiled|pathetic|soft)\s+(?:little\s+)?(?:bab(?:y|ies)|child|kids?|princess)\b|"
        # Not "get lost in the old town", "who asked for easy?"
        r"\b(?:shut up|stfu|nobody asked|cry about it|cope harder|touch grass)\b|\bget lost\b(?!\s+(?:in|on|among|"
        r"inside|into|wandering|exploring|for|somewhere|together))|\bwho asked\b(?!\s+for\s+(?!your\b|ur\b)\w)",
        "The reply insults someone ({evidence}).",
    ),
    _rule(
        "insult",
        # Said to the reader in the other languages replies are written in: "estás gorda", "du bist so dumm",
        # "t'es vraiment con", "você é burra".
        r"\b(?:eres|estas|sos)\s+(?:(?:un|una|muy|tan|mas|que|si|bien|super)\s+){0,2}(?:gord[oa]|fe[oa]|idiota|"
        r"estupid[oa]|imbecil|inutil|tont[oa]|asqueros[oa]|patetic[oa]|ridicul[oa]|subnormal)\b|"
        r"\bdu\s+(?:bist\s+)?(?:(?:so|echt|voll|ein|eine|total|einfach|"
        r"richtig)\s+){0,2}(?:dumm\w*|fette[rs]?|fettsack|hasslich\w*|"
        r"blod\w*|idiot\w*|trottel|versager\w*|nutzlos\w*)\b|"
        r"\b(?:t'es|tu es|vous etes)\s+(?:(?:vraiment|trop|si|tellement|un|une|completement)\s+){0,2}(?:con|conne|"
        r"debile|stupide|grosse|gros|moche|nulle?|idiote?)\b|"
        r"\b(?:voce e|vc e|tu es)\s+(?:(?:muito|tao|um|uma|mesmo|bem)\s+){0,2}(?:burr[oa]|gord[oa]|fei[oa]|idiota|"
        r"estupid[oa]|inutil|ridicul[oa])\b",
        "The reply insults someone ({evidence}).",
    ),
    _rule(
        "insult",
        # Italian, a rule of its own so that each keeps a short list of gate literals (the stems: their ending is any
        # letter, not spelt out four times): "sei proprio un'idiota" (not "non sei stupida").
        r"(?<!\bnon )\b(?:sei|siete)\s+(?:(?:proprio|davvero|veramente|cosi|tanto|troppo|solo|un|una|uno)\s+|un'){0,3}"
        r"(?:idiot|stupid|scem|cretin|imbecill|deficient|stronz|coglion|brutt|grass|inutil|ridicol|patetic)[^\W\d_]\b",
        "The reply insults someone ({evidence}).",
    ),
    _rule(
        "insult",
        r"\b(?:idiots?(?![- ]?proof)|morons?|imbeciles?|dumbass\w*|dipshit|scumbag)\b",  # not "idiot-proof"
        "The reply calls someone names ({evidence}).",
        0.8,
    ),
    _rule("profanity", rf"(?<!\w)(?:{_PROFANITY})(?!\w)", "The reply contains profanity ({evidence}).", 0.8),
)
_MILD_RULE = _rule(
    "mild_profanity",
    r"\b(?:damn|dammit|crap|crappy|hell|heck|wtf|omfg|sucks?|pissed)\b",
    "The reply contains mild profanity ({evidence}).",
    0.4,
)


def check_toxicity(
    draft: str,
    comment: str | Comment,
    profile: CreatorProfile,
    *,
    config: VerifyConfig = DEFAULT_CONFIG,
    classifier_score: float | None = None,
) -> list[Finding]:
    """Lexicon check for slurs, threats, insults and profanity in the reply.

    ``classifier_score`` is the hook for a toxicity classifier's probability for the draft
    (computed elsewhere); at or above ``config.toxicity_threshold`` it adds a finding whose
    score is that probability.
    """
    folded = fold(strip_disclosure(draft, profile.disclosure_label))
    findings = _scan(
        "toxicity", folded, (*_TOXIC_RULES, _MILD_RULE) if config.strict_profanity else _TOXIC_RULES
    )
    if classifier_score is not None and classifier_score >= config.toxicity_threshold:
        findings.append(
            Finding(
                "toxicity",
                "toxic_classifier",
                f"The toxicity classifier rates the reply as likely offensive ({classifier_score:.2f}).",
                float(classifier_score),
            )
        )
    return findings


# ---------------------------------------------------------------------------------------------
# authenticity (the score comes from replyflow.policy.authenticity)


def check_authenticity(score: float | None, profile: CreatorProfile) -> list[Finding]:
    """A draft whose authenticity is below ``profile.authenticity_threshold`` (0 turns it off), or that cannot be
    scored (``None``: too few example replies) while the creator asks for a threshold.

    The finding's ``score`` is ``1 - authenticity`` so that, like every other check, higher is worse.
    """
    if profile.authenticity_threshold <= 0.0 or (score is not None and score >= profile.authenticity_threshold):
        return []
    if score is None:  # a threshold asked for, nothing to score against: not waved through
        return [Finding("authenticity", "authenticity_unscored", f"The reply's authenticity cannot be scored: "
                        f"{profile.display_name} has too few example replies to tell their voice by (threshold "
                        f"{profile.authenticity_threshold:.2f}). Add example replies, or set the threshold to 0.",
                        None)]
    return [
        Finding(
            "authenticity",
            "low_authenticity",
            f"The reply doesn't sound much like you (authenticity {score:.2f}; your threshold is "
            f"{profile.authenticity_threshold:.2f}).",
            round(1.0 - score, 4),
        )
    ]


# ---------------------------------------------------------------------------------------------
# all checks

Check = Callable[..., list[Finding]]

ALL_CHECKS: tuple[Check, ...] = (
    check_length,
    check_disclosure,
    check_claims_human,
    check_prompt_leak,
    check_toxicity,
    check_links,
    check_topics,
    check_specialised_advice,
    check_commitments,
    check_language,
)


def run_checks(
    draft: str,
    comment: str | Comment,
    profile: CreatorProfile,
    *,
    config: VerifyConfig = DEFAULT_CONFIG,
    comment_language: str | None = None,
    toxicity_score: float | None = None,
) -> list[Finding]:
    """Every check in :data:`ALL_CHECKS` order; all findings (empty list: nothing found)."""
    findings: list[Finding] = []
    for check in ALL_CHECKS:
        if check is check_language:
            findings += check_language(
                draft, comment, profile, config=config, comment_language=comment_language
            )
        elif check is check_toxicity:
            findings += check_toxicity(
                draft, comment, profile, config=config, classifier_score=toxicity_score
            )
        else:
            findings += check(draft, comment, profile, config=config)
    return findings
