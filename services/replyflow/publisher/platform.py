"""The platforms' reply APIs: YouTube Data API v3, Instagram Graph API, and a generic HTTP contract.

Each adapter posts one reply and says whether the platform already had it. The generic contract takes the
reply id as an idempotency key. YouTube and Instagram have none, so their adapters first list the comment's
replies and take one by the same account with the same text as already posted (a retry after a lost answer,
a crash before the commit): that reconciliation is what keeps a reply from going out twice there. The same
look-up (``find_reply``) tells the publisher whether a reply it will not post after all is out already.

Errors: what retrying can fix (network, 5xx, 429, the platforms' rate and quota limits, an expired access
token) is a ``TransientError``; what it cannot (a refused reply, missing or revoked credentials) is a
``PermanentError``, which dead-letters the reply with the platform's message. A comment deleted (or made private)
before its reply went out is a ``CommentGone``, a ``PermanentError`` the publisher records as skipped instead.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import Any, Protocol

import httpx

from replyflow.events import Comment
from replyflow.kafka import PermanentError, TransientError
from replyflow.platform_api import (
    CommentGone,
    CredentialsFile,
    YouTubeClient,
    json_object,
    transient_status,
    unreachable,
)
from replyflow.settings import Settings

# How many pages of a comment's replies reconciliation reads before it gives up looking (and posts).
MAX_RECONCILE_PAGES = 20


@dataclass(frozen=True)
class PostedReply:
    platform_reply_id: str
    replayed: bool  # the platform already had this reply (idempotent replay, or found by reconciliation)


class ReplyApi(Protocol):
    async def post_reply(self, comment: Comment, account_id: str, reply_id: str, text: str,
                         taken: Collection[str] = frozenset()) -> PostedReply:
        """Post ``text`` once. ``taken``: platform reply ids known to be other replies', which reconciliation
        must not take for this one (two drafts in a thread can have the same words)."""

    async def find_reply(self, comment: Comment, account_id: str, text: str,
                         taken: Collection[str] = frozenset()) -> str | None:
        """The platform id of ``text`` already posted as ``account_id`` under the comment, or None: not there,
        or (the generic contract) nothing to look it up by, where the reply id as idempotency key makes any later
        post of the reply, edited or not, a replay."""


def thread_of(comment: Comment) -> str:
    """YouTube and Instagram take replies under top-level comments only: a reply to a reply joins its thread."""
    return comment.parent_id or comment.comment_id


def same_text(posted: str, ours: str) -> bool:
    """Platforms may trim or re-wrap what they store (line breaks, trailing spaces): compare the words."""
    return posted.split() == ours.split()


class GenericReplyApi:
    """``POST /v1/{platform}/comments/{comment_id}/replies`` with an ``Idempotency-Key`` (the bundled
    simulator speaks it; so can a gateway of the operator's)."""

    def __init__(self, http: httpx.AsyncClient, base_url: str, platform: str) -> None:
        self._http, self._base, self._platform = http, base_url.rstrip("/"), platform

    async def post_reply(self, comment: Comment, account_id: str, reply_id: str, text: str,
                         taken: Collection[str] = frozenset()) -> PostedReply:
        try:
            response = await self._http.post(
                f"{self._base}/v1/{self._platform}/comments/{comment.comment_id}/replies",
                json={"account_id": account_id, "text": text, "reply_id": reply_id},
                headers={"Idempotency-Key": reply_id},
            )
        except httpx.HTTPError as e:
            raise unreachable("platform", e) from e
        if transient_status(response.status_code):
            raise TransientError(f"platform answered {response.status_code}: {response.text[:300]}")
        if response.status_code == 410:
            raise CommentGone(f"platform answered 410, the comment is gone: {response.text[:300]}")
        if response.status_code == 409 and "platform_reply_id" in response.text:
            # This reply id was already posted (with an earlier draft's text): it is out, once.
            return PostedReply(response.json()["platform_reply_id"], replayed=True)
        if response.status_code >= 400:
            raise PermanentError(f"platform refused the reply ({response.status_code}): {response.text[:300]}")
        return PostedReply(response.json()["platform_reply_id"], replayed=response.status_code == 200)

    async def find_reply(self, comment: Comment, account_id: str, text: str,
                         taken: Collection[str] = frozenset()) -> str | None:
        return None  # the contract has no look-up; its idempotency key stops a second post instead


class YouTubeDataApi:
    """Replies through ``comments.insert`` as the creator's channel; reconciliation through ``comments.list``
    by parent id."""

    def __init__(self, client: YouTubeClient) -> None:
        self._client = client

    async def post_reply(self, comment: Comment, account_id: str, reply_id: str, text: str,
                         taken: Collection[str] = frozenset()) -> PostedReply:
        existing = await self.find_reply(comment, account_id, text, taken)
        if existing is not None:
            return PostedReply(existing, replayed=True)
        body = {"snippet": {"parentId": thread_of(comment), "textOriginal": text}}
        response = await self._client.call("POST", "/youtube/v3/comments", account_id,
                                           params={"part": "snippet"}, json=body)
        return PostedReply(response.json()["id"], replayed=False)

    async def find_reply(self, comment: Comment, account_id: str, text: str,
                         taken: Collection[str] = frozenset()) -> str | None:
        params = {"part": "snippet", "parentId": thread_of(comment), "maxResults": "100", "textFormat": "plainText"}
        for _ in range(MAX_RECONCILE_PAGES):
            page = (await self._client.call("GET", "/youtube/v3/comments", account_id, params=params)).json()
            for item in page.get("items", []):
                snippet = item.get("snippet", {})
                author = snippet.get("authorChannelId", {}).get("value")
                if author == account_id and item["id"] not in taken and same_text(snippet.get("textOriginal", ""),
                                                                                   text):
                    return item["id"]
            if not page.get("nextPageToken"):
                return None
            params = {**params, "pageToken": page["nextPageToken"]}
        return None


# Graph API error codes that retrying fixes: unknown/service errors and the rate limits.
GRAPH_TRANSIENT_CODES = frozenset({1, 2, 4, 17, 32, 341, 613})
# Code 100, subcode 33: "Object with ID ... does not exist, cannot be loaded due to missing permissions, or does not
# support this operation": the comment was deleted or hidden.
GRAPH_GONE = (100, 33)


class InstagramGraphApi:
    """Replies through ``POST /{ig-comment-id}/replies`` with the account's long-lived access token;
    reconciliation through ``GET /{ig-comment-id}/replies``. ``base_url`` includes the Graph API version."""

    def __init__(self, http: httpx.AsyncClient, base_url: str, credentials: CredentialsFile) -> None:
        self._http, self._base, self._credentials = http, base_url.rstrip("/"), credentials

    async def post_reply(self, comment: Comment, account_id: str, reply_id: str, text: str,
                         taken: Collection[str] = frozenset()) -> PostedReply:
        existing = await self.find_reply(comment, account_id, text, taken)
        if existing is not None:
            return PostedReply(existing, replayed=True)
        response = await self._call("POST", f"{self._base}/{thread_of(comment)}/replies",
                                    data={"message": text, "access_token": self._access_token(account_id)})
        return PostedReply(response.json()["id"], replayed=False)

    async def find_reply(self, comment: Comment, account_id: str, text: str,
                         taken: Collection[str] = frozenset()) -> str | None:
        url: str | None = f"{self._base}/{thread_of(comment)}/replies"
        params: dict[str, str] | None = {"fields": "id,text,from", "limit": "100",
                                         "access_token": self._access_token(account_id)}
        for _ in range(MAX_RECONCILE_PAGES):
            if url is None:
                return None
            page = (await self._call("GET", url, params=params)).json()
            for item in page.get("data", []):
                if (item.get("from", {}).get("id") == account_id and item["id"] not in taken
                        and same_text(item.get("text", ""), text)):
                    return item["id"]
            url, params = page.get("paging", {}).get("next"), None  # the next link carries every parameter
        return None

    async def _call(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        try:
            response = await self._http.request(method, url, **kwargs)
        except httpx.HTTPError as e:
            raise unreachable("Instagram", e) from e
        if response.is_success:
            return response
        error = json_object(response).get("error", {})
        code = error.get("code")
        message = f"Instagram answered {response.status_code} (code {code}): {response.text[:300]}"
        if transient_status(response.status_code) or code in GRAPH_TRANSIENT_CODES:
            raise TransientError(message)
        if (code, error.get("error_subcode")) == GRAPH_GONE:
            raise CommentGone(message)
        raise PermanentError(message)  # 190: the token is invalid or expired; the operator must renew it

    def _access_token(self, account_id: str) -> str:
        instagram = self._credentials.current().instagram
        account = instagram.accounts.get(account_id) if instagram else None
        if account is None:
            raise PermanentError(f"no Instagram credentials for account {account_id} in PLATFORM_CREDENTIALS_FILE")
        return account.access_token


class PlatformApis:
    """The reply API of each platform: YouTube and Instagram natively when their base URLs are set, every
    other platform (and those, otherwise) through the generic contract at ``PLATFORM_BASE_URL``."""

    def __init__(self, settings: Settings) -> None:
        self._http = httpx.AsyncClient(timeout=settings.platform_timeout_s)
        self._generic_base = settings.platform_base_url
        self.credentials = credentials = CredentialsFile(settings.platform_credentials_file or "")
        self._native: dict[str, ReplyApi] = {}
        if settings.youtube_api_base_url:
            self._native["youtube"] = YouTubeDataApi(YouTubeClient(self._http, settings.youtube_api_base_url,
                                                                   settings.youtube_token_url, credentials))
        if settings.instagram_api_base_url:
            self._native["instagram"] = InstagramGraphApi(self._http, settings.instagram_api_base_url, credentials)

    def for_platform(self, platform: str) -> ReplyApi:
        return self._native.get(platform) or GenericReplyApi(self._http, self._generic_base, platform)

    async def close(self) -> None:
        await self._http.aclose()

