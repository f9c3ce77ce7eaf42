"""Text normalisation that defeats common evasions before any screen check runs.

``normalize(text)`` gives the canonical, human-readable form every check starts from;
``normalize_views(text)`` gives all views at once:

- ``text``: HTML entities decoded, Unicode NFKC, invisible characters (zero-width, bidi
  controls, soft hyphen, variation selectors, tag characters, fillers) removed, stacked
  combining marks on Latin letters ("zalgo") removed, homoglyphs in mixed-script or
  all-look-alike words folded to Latin (Cyrillic, Greek, Armenian, Cherokee, small caps,
  enclosed and regional-indicator letters; NFKC already folds fullwidth and mathematical
  alphanumerics), case-folded, whitespace collapsed. Numbers are untouched.
- ``plain``: ``text`` without diacritics ("é" → "e", "ß" → "ss", "ø" → "o"), for
  language-independent patterns.
- ``skeleton``: ``plain`` with leetspeak undone inside words that also contain letters
  ("sh1t", "@ss", "b!tch", "$hit"; never plain numbers such as "2014" or "$100", nor
  number+unit tokens such as "4k" or "1st"), spaced-out letters joined ("f u c k",
  "f.u.c.k", "f-u-c-k" → "fuck"; words separated by a wider gap stay apart) and letter runs
  of three or more squeezed to one ("fuuuuck" → "fuck").
- ``compact``: ``skeleton`` with everything but letters and digits removed, for phrases
  spelled with arbitrary separators ("i.g.n.o.r.e all previous").
- ``signals``: which evasions were seen (``invisible_chars``, ``homoglyphs``, ``styled_letters``,
  ``combining_marks``, ``leetspeak``, ``spaced_letters``, ``repeated_letters``).

Pure functions, no I/O; ASCII input takes a fast path.
"""

from __future__ import annotations

import html
import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache

__all__ = ["NormalizedText", "as_views", "normalize", "normalize_views"]


@dataclass(frozen=True, slots=True)
class NormalizedText:
    original: str
    text: str
    plain: str
    skeleton: str
    compact: str
    signals: frozenset[str]


# --- invisible characters -----------------------------------------------------------------------

_INVISIBLE_RANGES = (
    (0x00AD, 0x00AD),  # soft hyphen
    (0x034F, 0x034F),  # combining grapheme joiner
    (0x061C, 0x061C),  # arabic letter mark
    (0x115F, 0x1160),  # hangul fillers
    (0x17B4, 0x17B5),  # khmer inherent vowels (invisible)
    (0x180B, 0x180F),  # mongolian variation selectors, vowel separator
    (0x200B, 0x200F),  # zero-width space/non-joiner/joiner, LRM, RLM
    (0x202A, 0x202E),  # bidi embeddings and overrides
    (0x2060, 0x2064),  # word joiner, invisible operators
    (0x2066, 0x206F),  # bidi isolates, deprecated format chars
    (0x2800, 0x2800),  # braille blank
    (0x3164, 0x3164),  # hangul filler
    (0xFE00, 0xFE0F),  # variation selectors
    (0xFEFF, 0xFEFF),  # zero-width no-break space / BOM
    (0xFFA0, 0xFFA0),  # halfwidth hangul filler
    (0xFFF9, 0xFFFB),  # interlinear annotation
    (0x1D173, 0x1D17A),  # musical formatting
    (0xE0000, 0xE007F),  # tag characters
    (0xE0100, 0xE01EF),  # variation selectors supplement
)
_INVISIBLE = {cp: None for lo, hi in _INVISIBLE_RANGES for cp in range(lo, hi + 1)}
# Control characters become spaces (tabs and newlines included).
_CONTROLS = {cp: " " for cp in (*range(0x00, 0x20), *range(0x7F, 0xA0))}

# --- homoglyphs (applied before case folding, so upper and lower case map separately) -------------

_HOMOGLYPH_PAIRS = (
    # Cyrillic
    "аa вb сc дd еe ёe һh іi їi јj кk ӏl мm нh оo рp ԛq гr ѕs тt уy хx ԝw ьb ԁd пn ӑa ӗe"
    " Аa Вb Сc Еe Ёe Нh Іi Їi Јj Кk Мm Оo Рp Ԛq Ѕs Тt Хx Уy Үy Ԝw Ӏl Ьb"
    # Greek
    " αa βb γy εe ζz ηn ιi κk νv οo ρp τt υu χx ωw ϲc ϳj ςs Αa Βb Εe Ζz Ηh Ιi Κk Μm Νn Οo Ρp Τt Υy Χx Ϲc"
    # Armenian
    " օo սu հh ոn զq ցg"
    # Cherokee (upper-case letters that look Latin)
    " Ꭺa Ᏼb Ꮯc Ꭼe Ꮋh Ꭵi Ꮶk Ꮮl Ꮇm Ꮲp Ꮪs Ꭲt Ꮤw"
    # Latin small capitals and IPA look-alikes NFKC leaves alone
    " ᴀa ʙb ᴄc ᴅd ᴇe ꜰf ɢg ʜh ɪi ᴊj ᴋk ʟl ᴍm ɴn ᴏo ᴘp ǫq ʀr ꜱs ᴛt ᴜu ᴠv ᴡw ʏy ᴢz ıi ȷj ɑa ɡg ɩi ʋu ɛe ɔo"
    # Lisu
    " ꓲi ꓳo ꓢs ꓮa ꓐb ꓚc ꓓd ꓰe ꓝf ꓖg ꓧh ꓙj ꓗk ꓡl ꓟm ꓠn ꓑp ꓣr ꓔt ꓴu ꓦv ꓪw ꓫx ꓬy ꓜz"
)
_HOMOGLYPHS: dict[int, str] = {}
for _pair in _HOMOGLYPH_PAIRS.split():
    _HOMOGLYPHS[ord(_pair[0])] = _pair[1]
# Regional indicator symbols, negative circled and negative squared capitals → a..z.
for _base in (0x1F1E6, 0x1F150, 0x1F170):
    for _i in range(26):
        _HOMOGLYPHS[_base + _i] = chr(ord("a") + _i)
_HOMOGLYPH_CHARS = frozenset(chr(c) for c in _HOMOGLYPHS)
_HAS_HOMOGLYPH = re.compile("[" + re.escape("".join(sorted(_HOMOGLYPH_CHARS))) + "]")

# Latin letters that have no canonical decomposition but should read as ASCII in ``plain``.
_PLAIN_EXTRA = str.maketrans({"ø": "o", "ł": "l", "đ": "d", "ð": "d", "þ": "th", "æ": "ae", "œ": "oe",
                              "ı": "i", "ŀ": "l", "ħ": "h", "ŧ": "t"})

# --- leetspeak ------------------------------------------------------------------------------------

_LEET = str.maketrans({"0": "o", "1": "i", "3": "e", "4": "a", "5": "s", "7": "t", "@": "a", "$": "s",
                       "!": "i", "|": "l", "€": "e"})
_HAS_LEET = re.compile(r"[0134579@$!|€]")
# Words with a leet character next to a letter (plain numbers and "great!" at a word end are left alone).
# (Matches start at a word start only: a leading "\S*" would be retried at every character.)
_LEET_TOKEN = re.compile(r"(?<!\S)\S*?(?:[^\W\d_][0134579@$|€]|[0134579@$€][^\W\d_]|[^\W\d_]![^\W\d_])\S*")
# Tokens that look like numbers with units, ordinals, versions, times, handles etc. stay as they are.
_PROTECTED = re.compile(
    r"""^(?:
        [#(\[]?[$€£]?\d[\d.,:/-]*(?:st|nd|rd|th|k|m|b|p|x|h|s|am|pm|gb|mb|tb|kb|kg|km|cm|mm|ml|hz|fps|mph|
            yo|yrs?|min|mins|sec|secs|ms|d|w|v|fps|bit|bits|k\+|m\+)?[)\].,!?]*
      | [a-z]{2,}\d+[)\].,!?]*          # mp3, covid19, iphone15
      | [a-z]\d+(?:\.\d+)*              # h264, v2.1
      | (?:sub|like|follow|share|view|comment)4(?:sub|like|follow|share|view|comment)s?|f4f|l4l|s4s  # sub4sub
      | \S*(?:://|www\.)\S*             # urls
      | \S+@\S+\.\S+                    # emails
    )$""",
    re.VERBOSE,
)
_MENTION = re.compile(r"^@(?!ss)[a-z0-9_.]+")
_EDGE_PUNCT = re.compile(r"^([\"'(\[{«¿¡]*)(.*?)([\"')\]}».,;:?!…]*)$", re.DOTALL)

# --- spacing and repeats --------------------------------------------------------------------------

# Three or more single letters (or leet digits) separated by the *same* separator
# ("f u c k", "f.u.c.k", "f - u - c - k", "5 h 1 t"); at least two must be letters.
_SPACED = re.compile(r"(?<![^\W_])([^\W_])([ .\-_*·•,+~/\\:|]{1,3})[^\W_](?:\2[^\W_](?![^\W_]))+")
_SPACED_SEP = re.compile(r"[ .\-_*·•,+~/\\:|]+")
_REPEAT_LETTERS = re.compile(r"([^\W\d_])\1{2,}")
_REPEAT_PUNCT = re.compile(r"([^\w\s])\1{2,}")
_NON_ALNUM = re.compile(r"[\W_]+")
_NON_ASCII = re.compile(r"[^\x00-\x7f]")
# Fullwidth, mathematical, circled and squared letters: NFKC reads them, but nobody types them by accident.
_STYLED_LETTERS = re.compile(
    "[\uFF21-\uFF3A\uFF41-\uFF5A\U0001D400-\U0001D7FF\u24B6-\u24E9\U0001F130-\U0001F189]"
)
# Combining marks (diacritics, overlays) directly after a Latin letter.
_MARKS_ON_LATIN = re.compile(
    r"(?<=[A-Za-z\u00C0-\u024F])[\u0300-\u036F\u1AB0-\u1AFF\u1DC0-\u1DFF\u20D0-\u20FF\uFE20-\uFE2F]+"
)


def _strip_marks_after_latin(s: str) -> tuple[str, bool]:
    """Drop combining marks stacked on Latin letters (what NFKC composition left over: "zalgo")."""
    out = _MARKS_ON_LATIN.sub("", s)
    return out, len(out) != len(s)


def fold_homoglyphs(s: str) -> str:
    """``s`` with look-alike letters folded to Latin where a word mixes scripts ("kеto" with a Cyrillic е)."""
    return _fold_homoglyphs(s)[0] if _HAS_HOMOGLYPH.search(s) else s


def _fold_homoglyphs(s: str) -> tuple[str, bool]:
    """Fold look-alike letters in words that mix scripts, or in every word when no letter of the text
    needs a non-Latin script (a real Cyrillic or Greek text nearly always has letters with no Latin twin)."""
    genuine = any(ch.isalpha() and not ch.isascii() and ch not in _HOMOGLYPH_CHARS for ch in s)
    changed = False
    words = s.split(" ")
    for i, w in enumerate(words):
        if not any(ch in _HOMOGLYPH_CHARS for ch in w):
            continue
        if not genuine or any(ch.isascii() and ch.isalpha() for ch in w):
            folded = w.translate(_HOMOGLYPHS)
        else:
            # Symbols that are never letters of a real word (regional indicators etc.) always fold.
            folded = "".join(_HOMOGLYPHS.get(ord(ch), ch) if ord(ch) > 0xFFFF else ch for ch in w)
        if folded != w:
            words[i] = folded
            changed = True
    return " ".join(words), changed


def _to_plain(text: str) -> str:
    if text.isascii():
        return text
    decomposed = unicodedata.normalize("NFD", text)
    stripped = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return unicodedata.normalize("NFC", stripped).translate(_PLAIN_EXTRA)


def _deleet_token(tok: str) -> str:
    lead, core, trail = _EDGE_PUNCT.match(tok).groups()  # type: ignore[union-attr]
    if not core or _PROTECTED.match(core) or _MENTION.match(core):
        return tok
    if not any(ch.isalpha() for ch in core):
        return tok
    # "!" and "|" only count as letters between letters ("b!tch"), not as punctuation.
    out = core.translate(_LEET)
    if "!" in core or "|" in core:
        chars = list(out)
        for i, ch in enumerate(core):
            if ch in "!|":
                inside = 0 < i < len(core) - 1 and core[i - 1].isalnum() and core[i + 1].isalnum()
                chars[i] = chars[i] if inside else ch
        out = "".join(chars)
    return lead + out + trail


def _deleet(s: str) -> tuple[str, bool]:
    if not _HAS_LEET.search(s):
        return s, False
    changed = False

    def repl(m: re.Match[str]) -> str:
        nonlocal changed
        tok = m.group(0)
        new = _deleet_token(tok)
        if new != tok:
            changed = True
        return new

    return _LEET_TOKEN.sub(repl, s), changed


def _join_spaced(s: str) -> tuple[str, bool]:
    changed = False

    def repl(m: re.Match[str]) -> str:
        nonlocal changed
        run = m.group(0)
        joined = _SPACED_SEP.sub("", run)
        if sum(ch.isalpha() for ch in joined) < 2 or not (joined.isalpha() or _HAS_LEET.search(joined)):
            return run
        changed = True
        return joined

    return _SPACED.sub(repl, s), changed


# Bounded, a micro-batch or so: a text is often normalised more than once while it is handled (the
# verify stage scores a batch of drafts with the abuse model, then checks each for personal data).
# The result is immutable, so sharing it is safe.
@lru_cache(maxsize=1024)
def normalize_views(text: str) -> NormalizedText:
    """All normalised views of ``text`` (see the module docstring)."""
    original = text
    signals: set[str] = set()
    if "&" in text:
        text = html.unescape(text)
    if text.isascii():
        s = text.translate(_CONTROLS)
    else:
        s = unicodedata.normalize("NFKC", text)
        stripped = s.translate(_INVISIBLE)
        # Any other format character (category Cf) is invisible too.
        non_ascii = _NON_ASCII.findall(stripped)
        if any(unicodedata.category(ch) == "Cf" for ch in non_ascii):
            stripped = "".join(ch for ch in stripped if unicodedata.category(ch) != "Cf")
        if len(stripped) != len(s):
            signals.add("invisible_chars")
        s = stripped.translate(_CONTROLS)
        if _STYLED_LETTERS.search(text):
            signals.add("styled_letters")
        s, marks = _strip_marks_after_latin(s)
        if marks:
            signals.add("combining_marks")
        if _HAS_HOMOGLYPH.search(s):
            s, folded = _fold_homoglyphs(s)
            if folded:
                signals.add("homoglyphs")
        s = unicodedata.normalize("NFC", s)
    # Runs of whitespace survive until spaced-out letters are joined: a wider gap separates words.
    wide = s.casefold()
    s = " ".join(wide.split())
    plain_wide = _to_plain(wide)
    plain = " ".join(plain_wide.split())
    skel, spaced = _join_spaced(plain_wide)
    if spaced:
        signals.add("spaced_letters")
    skel, leet = _deleet(" ".join(skel.split()))
    if leet:
        signals.add("leetspeak")
    squeezed = _REPEAT_LETTERS.sub(r"\1", skel)
    if squeezed != skel:
        signals.add("repeated_letters")
    skel = _REPEAT_PUNCT.sub(r"\1", squeezed)
    compact = _NON_ALNUM.sub("", skel)
    return NormalizedText(original, s, plain, skel, compact, frozenset(signals))


def normalize(text: str) -> str:
    """The canonical form of ``text``: NFKC, invisibles removed, homoglyphs folded, case-folded."""
    return normalize_views(text).text


def as_views(text: str | NormalizedText) -> NormalizedText:
    return text if isinstance(text, NormalizedText) else normalize_views(text)
