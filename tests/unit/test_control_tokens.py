"""Creator tokens of the control API: derived from CONTROL_API_TOKEN, bound to one creator, no store."""

from __future__ import annotations

import base64
import hashlib
import hmac

import pytest

from replyflow.control.service import main
from replyflow.control.tokens import (
    OPERATOR,
    InvalidCreatorId,
    Principal,
    authenticate,
    creator_token,
)
from replyflow.events import Actor

KEY = "operator-secret-0123456789abcdef"


def test_a_creator_token_names_its_creator_and_is_an_hmac_of_the_operator_token():
    token = creator_token(KEY, "mara-cooks")
    prefix, creator_id, signature = token.split(".")
    assert (prefix, creator_id) == ("rf1", "mara-cooks")
    expected = hmac.new(KEY.encode(), b"replyflow-creator-token:v1:mara-cooks", hashlib.sha256).digest()
    assert base64.urlsafe_b64decode(signature + "=") == expected
    assert creator_token(KEY, "mara-cooks") == token  # deterministic: nothing to store
    assert creator_token(KEY, "bo") != creator_token(KEY, "mara-cooks")


@pytest.mark.parametrize("creator_id", ["mara-cooks", "mara.cooks", "a:b@c_d.e", "x" * 200])
def test_a_creator_token_verifies_as_that_creator_only(creator_id):
    principal = authenticate(KEY, creator_token(KEY, creator_id))
    assert principal == Principal(creator_id) and principal.actor == Actor.creator
    assert principal.may_access(creator_id) and not principal.may_access("someone-else")


def test_the_operator_token_is_the_operator():
    assert authenticate(KEY, KEY) == OPERATOR
    assert OPERATOR.actor == Actor.operator and OPERATOR.may_access("anyone")


def _forged() -> list[str]:
    good = creator_token(KEY, "mara")
    _, _, signature = good.split(".")
    flipped = ("A" if signature[0] != "A" else "B") + signature[1:]
    return [
        "", "rf1.", "rf1.mara", "rf1.mara.", "rf1..abc", good + "x", good[:-1], good.upper(),
        f"rf1.mara.{flipped}",                                  # forged signature
        f"rf1.bo.{signature}",                                  # another creator's id, mara's signature
        f"rf1.mara.{signature}=",                               # padding is not accepted
        creator_token("the-operator-token-before-rotation", "mara"),  # made with an old operator token
        creator_token(KEY + "x", "mara"),
        f"rf1.ma ra.{signature}", f"rf1.mära.{signature}",        # not a creator id
        KEY + " ", KEY[:-1], "Bearer " + KEY,
    ]


@pytest.mark.parametrize("presented", _forged())
def test_anything_else_is_rejected(presented):
    assert authenticate(KEY, presented) is None


def test_no_operator_token_authenticates_nobody_and_issues_nothing():
    assert authenticate("", "") is None and authenticate("", creator_token(KEY, "mara")) is None
    with pytest.raises(ValueError):
        creator_token("", "mara")


@pytest.mark.parametrize("creator_id", ["", "ma ra", "mära", "a/b", "x" * 201])
def test_only_creator_ids_get_tokens(creator_id):
    with pytest.raises(InvalidCreatorId):
        creator_token(KEY, creator_id)


def test_the_cli_prints_a_token_from_the_environment(monkeypatch, capsys):
    monkeypatch.setenv("CONTROL_API_TOKEN", KEY)
    assert main(["creator-token", "mara-cooks"]) == 0
    assert capsys.readouterr().out.strip() == creator_token(KEY, "mara-cooks")
    assert main(["creator-token", "ma ra"]) == 2
    assert "not a creator id" in capsys.readouterr().err
    assert main(["creator-token"]) == 2 and main(["nonsense"]) == 2
    monkeypatch.delenv("CONTROL_API_TOKEN")
    assert main(["creator-token", "mara-cooks"]) == 2
    assert "CONTROL_API_TOKEN is not set" in capsys.readouterr().err
