"""Client for a platform's reply API (the bundled simulator speaks the same HTTP contract)."""

from __future__ import annotations

from dataclasses import dataclass

import httpx

from replyflow.kafka import PermanentError, TransientError


@dataclass(frozen=True)
class PostedReply:
    platform_reply_id: str
    replayed: bool  # the platform had already seen this idempotency key


class PlatformClient:
    def __init__(self, base_url: str, timeout_s: float) -> None:
        self._http = httpx.AsyncClient(base_url=base_url.rstrip("/"), timeout=timeout_s)

    async def close(self) -> None:
        await self._http.aclose()

    async def post_reply(
        self, platform: str, comment_id: str, account_id: str, reply_id: str, text: str
    ) -> PostedReply:
        """Post once per reply_id: the idempotency key makes a retry after a lost answer harmless."""
        try:
            response = await self._http.post(
                f"/v1/{platform}/comments/{comment_id}/replies",
                json={"account_id": account_id, "text": text, "reply_id": reply_id},
                headers={"Idempotency-Key": reply_id},
            )
        except httpx.HTTPError as e:
            raise TransientError(f"platform unreachable: {type(e).__name__}: {e}") from e
        if response.status_code in (408, 429) or response.status_code >= 500:
            raise TransientError(f"platform answered {response.status_code}: {response.text[:300]}")
        if response.status_code == 409 and "platform_reply_id" in response.text:
            # This reply id was already posted (with an earlier draft's text): it is out, once.
            return PostedReply(response.json()["platform_reply_id"], replayed=True)
        if response.status_code >= 400:
            raise PermanentError(f"platform refused the reply ({response.status_code}): {response.text[:300]}")
        return PostedReply(response.json()["platform_reply_id"], replayed=response.status_code == 200)
