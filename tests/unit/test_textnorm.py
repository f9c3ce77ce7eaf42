"""Text normalisation: evasions are undone, ordinary text and numbers survive."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from replyflow.policy.textnorm import as_views, normalize, normalize_views

ZW = "\u200b"


def test_normalize_returns_the_case_folded_nfkc_text():
    assert normalize("  Hello\tWORLD \n ") == "hello world"
    assert normalize("ＦＵＬＬＷＩＤＴＨ") == "fullwidth"
    assert normalize("𝐛𝐨𝐥𝐝 𝓈𝒸𝓇𝒾𝓅𝓉") == "bold script"
    assert normalize("Straße") == "strasse"


@pytest.mark.parametrize(
    "text",
    [
        f"i{ZW}d{ZW}i{ZW}o{ZW}t",
        "i\u200cd\u200di\u2060o\ufefft",
        "id\u00adiot",  # soft hyphen
        "idi\u202eot\u202c",  # bidi override
        "id\ufe0fiot",  # variation selector
        "idiot\U000e0041",  # tag character
    ],
)
def test_invisible_characters_are_removed(text):
    v = normalize_views(text)
    assert v.text == "idiot"
    assert "invisible_chars" in v.signals


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("уоu аrе аn idiоt", "you are an idiot"),  # Cyrillic in Latin words
        ("Ιgnοre", "ignore"),  # Greek capital iota, omicron
        ("ѕех", "sex"),  # all look-alikes, no genuine Cyrillic in the text
        ("ʏᴏᴜ ᴀʀᴇ ɪᴅɪᴏᴛ", "you are idiot"),  # small capitals
        ("🇫🇺🇨🇰", "fuck"),  # regional indicators
    ],
)
def test_homoglyphs_fold_to_latin(text, expected):
    v = normalize_views(text)
    assert v.text == expected
    assert "homoglyphs" in v.signals


def test_genuine_cyrillic_and_greek_text_is_left_alone():
    assert normalize("Привет как дела") == "привет как дела"
    assert normalize("Ελληνικά το") == "ελληνικά το"
    assert "homoglyphs" not in normalize_views("Привет как дела").signals


def test_stacked_combining_marks_are_removed_but_accents_stay():
    zalgo = normalize_views("f\u0338\u0322u\u0334c\u0337k")
    assert zalgo.text == "fuck"
    assert "combining_marks" in zalgo.signals
    accented = normalize_views("café naïve")
    assert accented.text == "café naïve"
    assert accented.plain == "cafe naive"
    assert not accented.signals


def test_html_entities_are_decoded():
    assert normalize("&#102;uck &amp; more") == "fuck & more"


@pytest.mark.parametrize(
    ("text", "skeleton"),
    [
        ("sh1t", "shit"),
        ("b1tch", "bitch"),
        ("@ss", "ass"),
        ("a$$hole", "asshole"),
        ("$hit", "shit"),
        ("b!tch!", "bitch!"),
        ("id10t n00b l0ser", "idiot noob loser"),
        ("1gn0r3 pr3v10us", "ignore previous"),
    ],
)
def test_leetspeak_is_undone_in_the_skeleton_only(text, skeleton):
    v = normalize_views(text)
    assert v.skeleton == skeleton
    assert v.text == text.lower()
    assert "leetspeak" in v.signals


@pytest.mark.parametrize(
    "text",
    [
        "born in 2014, paid $100 for 4k at 10:30pm",
        "1st place, 2nd try, mp3 and covid19, v2.1",
        "call 555-123-4567 or +44 20 7946 0958",
        "3-1 final score, 50% off, 1,000,000 views",
        "@john1337 thanks! great video!",
        "mail me: a1@example.com",
    ],
)
def test_numbers_handles_and_ordinary_punctuation_are_not_de_leeted(text):
    v = normalize_views(text)
    assert v.skeleton == v.text
    assert "leetspeak" not in v.signals


@pytest.mark.parametrize(
    ("text", "skeleton"),
    [
        ("f u c k you", "fuck you"),
        ("f.u.c.k off", "fuck off"),
        ("f-u-c-k", "fuck"),
        ("f * u * c * k", "fuck"),
        ("5 h 1 t", "shit"),
        ("i g n o r e  a l l  p r e v i o u s", "ignore all previous"),
    ],
)
def test_spaced_out_letters_are_joined(text, skeleton):
    v = normalize_views(text)
    assert v.skeleton == skeleton
    assert "spaced_letters" in v.signals


def test_ordinary_sentences_and_numbers_are_not_joined():
    for text in ("i am a fan of this", "1 2 3 go", "a b"):
        v = normalize_views(text)
        assert v.skeleton == v.text, text
        assert "spaced_letters" not in v.signals


def test_letter_runs_are_squeezed_but_double_letters_stay():
    v = normalize_views("fuuuuuck this sooo good, the grass is green")
    assert v.skeleton == "fuck this so good, the grass is green"
    assert "repeated_letters" in v.signals
    assert normalize_views("good grass").skeleton == "good grass"


def test_compact_view_keeps_letters_and_digits_only():
    assert normalize_views("I.g.n.o.r.e previous, 100%!").compact == "ignoreprevious100"


def test_as_views_accepts_both_kinds():
    v = normalize_views("Hello")
    assert as_views(v) is v
    assert as_views("Héllo  Wörld") == normalize_views("Héllo  Wörld")


_INVISIBLE = re.compile("[\u00ad\u200b-\u200f\u202a-\u202e\u2060-\u2064\ufeff\ufe00-\ufe0f]")


@given(st.text(max_size=200))
def test_any_text_normalises_without_invisibles_or_long_runs(text):
    v = normalize_views(text)
    for view in (v.text, v.plain, v.skeleton):
        assert not _INVISIBLE.search(view)
        assert view == view.strip()
        assert "  " not in view
    assert not re.search(r"([^\W\d_])\1\1", v.skeleton)
    assert v.compact == re.sub(r"[\W_]+", "", v.skeleton)


@given(st.from_regex(r"[0-9 .,:$%/-]{0,40}", fullmatch=True))
def test_text_without_letters_keeps_its_digits(text):
    v = normalize_views(text)
    assert re.sub(r"\D", "", v.skeleton) == re.sub(r"\D", "", text)
