"""What the publisher and the YouTube poller share about the platforms' own APIs: the creators' credentials
(a mounted Secret), how an HTTP failure maps to transient or permanent, and the YouTube Data API v3 client.

YouTube calls act as the creator's channel with OAuth access tokens refreshed from the channel's refresh
token. Google's errors: 401 (expired token: a fresh one next time), rate limits and 5xx are transient;
``quotaExceeded`` (the project's daily quota, reset at midnight Pacific time) is a ``YouTubeQuotaExceeded``;
a comment not found (deleted) or made private is a ``CommentGone``; anything else, and a refused refresh token, is
permanent.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import httpx
from pydantic import BaseModel, ConfigDict

from replyflow.kafka import PermanentError, TransientError
from replyflow.watched import WatchedFile

# Refresh an access token this long before the platform says it expires (at most a tenth of its life).
TOKEN_EXPIRY_MARGIN_S = 60.0


class YouTubeAccount(BaseModel):
    model_config = ConfigDict(extra="forbid")

    refresh_token: str


class YouTubeCredentials(BaseModel):
    model_config = ConfigDict(extra="forbid")

    client_id: str
    client_secret: str
    accounts: dict[str, YouTubeAccount]  # channel id -> the channel's OAuth grant


class InstagramAccount(BaseModel):
    model_config = ConfigDict(extra="forbid")

    access_token: str


class InstagramCredentials(BaseModel):
    model_config = ConfigDict(extra="forbid")

    accounts: dict[str, InstagramAccount]  # Instagram user id -> its long-lived access token


class PlatformCredentials(BaseModel):
    """``PLATFORM_CREDENTIALS_FILE``: the creators' platform grants (a mounted Secret)."""

    model_config = ConfigDict(extra="forbid")

    youtube: YouTubeCredentials | None = None
    instagram: InstagramCredentials | None = None


class CredentialsFile:
    """The credentials file, read again when it changes (a Secret update reaches the pod without a restart)."""

    def __init__(self, path: str) -> None:
        # Looked at on every use: a stat per call is cheap, and a renewed token applies at the next call.
        self._file = WatchedFile(Path(path), PlatformCredentials, check_every_s=0.0) if path else None

    def current(self) -> PlatformCredentials:
        if self._file is None:
            return PlatformCredentials()
        try:
            return self._file.current(time.monotonic())
        except (OSError, ValueError) as e:  # no good version yet: replies wait for the fix, none is dead-lettered
            raise TransientError(f"PLATFORM_CREDENTIALS_FILE {self._file.path} cannot be used: {e}") from e

    def unusable(self) -> str | None:
        """Why the file (or its last change: its last good version stays in use) cannot be used, for readiness."""
        return self._file.unusable(time.monotonic()) if self._file is not None else None


def unreachable(platform: str, error: httpx.HTTPError) -> TransientError:
    return TransientError(f"{platform} unreachable: {type(error).__name__}: {error}")


def transient_status(status: int) -> bool:
    return status in (408, 429) or status >= 500


def json_object(response: httpx.Response) -> dict[str, Any]:
    """The response's JSON object, or ``{}`` when the body is not one (an HTML error page, say)."""
    try:
        body = response.json()
    except json.JSONDecodeError:
        return {}
    return body if isinstance(body, dict) else {}


class CommentGone(PermanentError):
    """The comment being answered is gone on the platform: deleted, held or made private; no reply can ever go
    out under it. Routine (viewers delete comments), so an outcome to tell the creator, not a dead letter."""


# YouTube Data API v3 error reasons saying the comment (or the thread a reply goes under) is gone.
YOUTUBE_GONE_REASONS = frozenset({"commentNotFound", "parentCommentNotFound", "parentCommentIsPrivate"})


class YouTubeQuotaExceeded(TransientError):
    """The project's daily YouTube quota is spent: nothing succeeds before it resets (midnight Pacific)."""


class YouTubeClient:
    """Calls to the YouTube Data API v3 as a creator's channel."""

    def __init__(self, http: httpx.AsyncClient, base_url: str, token_url: str, credentials: CredentialsFile) -> None:
        self._http, self._base, self._token_url = http, base_url.rstrip("/"), token_url
        self._credentials = credentials
        self._tokens: dict[str, tuple[str, float]] = {}  # channel id -> (access token, refresh after)

    async def call(self, method: str, path: str, channel_id: str, **kwargs: Any) -> httpx.Response:
        """One API call as ``channel_id``; a failed one raises Transient-, Permanent- or YouTubeQuotaExceeded."""
        headers = {"Authorization": f"Bearer {await self._access_token(channel_id)}"}
        try:
            response = await self._http.request(method, f"{self._base}{path}", headers=headers, **kwargs)
        except httpx.HTTPError as e:
            raise unreachable("YouTube", e) from e
        if response.is_success:
            return response
        reasons = {e.get("reason") for e in json_object(response).get("error", {}).get("errors", [])}
        message = f"YouTube answered {response.status_code} ({', '.join(sorted(map(str, reasons)))}): "
        message += response.text[:300]
        if response.status_code == 401:
            self._tokens.pop(channel_id, None)  # the next attempt gets a fresh token
            raise TransientError(message)
        if "quotaExceeded" in reasons:
            raise YouTubeQuotaExceeded(message)
        if transient_status(response.status_code) or reasons & {"rateLimitExceeded", "userRateLimitExceeded"}:
            raise TransientError(message)
        if response.status_code in (400, 404) and reasons & YOUTUBE_GONE_REASONS:
            raise CommentGone(message)
        raise PermanentError(message)

    async def _access_token(self, channel_id: str) -> str:
        token = self._tokens.get(channel_id)
        if token is not None and time.monotonic() < token[1]:
            return token[0]
        youtube = self._credentials.current().youtube
        account = youtube.accounts.get(channel_id) if youtube else None
        if youtube is None or account is None:
            raise PermanentError(f"no YouTube credentials for channel {channel_id} in PLATFORM_CREDENTIALS_FILE")
        form = {"grant_type": "refresh_token", "client_id": youtube.client_id,
                "client_secret": youtube.client_secret, "refresh_token": account.refresh_token}
        try:
            response = await self._http.post(self._token_url, data=form)
        except httpx.HTTPError as e:
            raise unreachable("Google's token endpoint", e) from e
        if transient_status(response.status_code):
            raise TransientError(f"Google's token endpoint answered {response.status_code}")
        if not response.is_success:  # invalid_grant: revoked or expired grant; invalid_client
            raise PermanentError(f"Google refused the refresh token of channel {channel_id} ({response.status_code}: "
                                 f"{response.text[:200]}); the creator must grant access again")
        granted = response.json()
        lifetime = float(granted.get("expires_in", 3600))
        refresh_after = time.monotonic() + lifetime - min(TOKEN_EXPIRY_MARGIN_S, lifetime / 10)
        self._tokens[channel_id] = (granted["access_token"], refresh_after)
        return granted["access_token"]
