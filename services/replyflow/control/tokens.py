"""Who is calling the control API: the operator, or one creator. Pure functions, standard library only.

``CONTROL_API_TOKEN`` is the operator's token (full access) and the key of every creator token::

    rf1.<creator_id>.<urlsafe base64, unpadded, of HMAC-SHA256(CONTROL_API_TOKEN, CONTEXT + creator_id)>

so no token store is needed: the service recomputes the signature and compares it in constant
time. Issue one with ``python -m replyflow.control creator-token <creator_id>``. Rotating
``CONTROL_API_TOKEN`` revokes every creator token at once (they must be issued again); a single
creator token cannot be revoked on its own.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from dataclasses import dataclass

from replyflow.events import Actor

PREFIX = "rf1."
# Domain separation: the MAC of a creator token is never a MAC of anything else under this key.
CONTEXT = b"replyflow-creator-token:v1:"
# The same characters as events.Id (creator ids may contain dots: the signature is after the last one).
_CREATOR_ID = re.compile(r"[A-Za-z0-9._:@\-]{1,200}")
_SIGNATURE = re.compile(r"[A-Za-z0-9_\-]{43}")  # 32 bytes, urlsafe base64 without padding


class InvalidCreatorId(ValueError):
    pass


@dataclass(frozen=True)
class Principal:
    """The caller: ``creator_id`` None is the operator."""

    creator_id: str | None = None

    @property
    def actor(self) -> Actor:
        return Actor.operator if self.creator_id is None else Actor.creator

    def may_access(self, creator_id: str) -> bool:
        return self.creator_id is None or self.creator_id == creator_id

    def describe(self) -> str:
        return "the operator" if self.creator_id is None else f"creator {self.creator_id!r}"


OPERATOR = Principal()


def _signature(operator_token: str, creator_id: str) -> str:
    mac = hmac.new(operator_token.encode(), CONTEXT + creator_id.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac).rstrip(b"=").decode()


def creator_token(operator_token: str, creator_id: str) -> str:
    """The token that lets ``creator_id`` (and only them) use the control API."""
    if not operator_token:
        raise ValueError("the operator token (CONTROL_API_TOKEN) is empty")
    if not _CREATOR_ID.fullmatch(creator_id):
        raise InvalidCreatorId(f"not a creator id: {creator_id!r} (1-200 of A-Z a-z 0-9 . _ : @ -)")
    return f"{PREFIX}{creator_id}.{_signature(operator_token, creator_id)}"


def looks_like_creator_token(token: str) -> bool:
    return token.startswith(PREFIX)


def authenticate(operator_token: str, presented: str) -> Principal | None:
    """The caller a bearer token stands for, or None (401) when it is neither the operator token
    nor a creator token signed with the current operator token."""
    if not operator_token or not presented:
        return None
    if hmac.compare_digest(presented.encode(), operator_token.encode()):
        return OPERATOR
    if not looks_like_creator_token(presented):
        return None
    creator_id, dot, signature = presented[len(PREFIX):].rpartition(".")
    if not dot or not _CREATOR_ID.fullmatch(creator_id) or not _SIGNATURE.fullmatch(signature):
        return None
    if not hmac.compare_digest(signature.encode(), _signature(operator_token, creator_id).encode()):
        return None
    return Principal(creator_id)
