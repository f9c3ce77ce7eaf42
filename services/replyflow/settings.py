"""Settings for every service, read from environment variables (names are the field names, upper-cased).

The README's configuration table is checked against this class by a test, so document new
fields with a ``description``.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="", case_sensitive=False, extra="ignore")

    kafka_bootstrap_servers: str = Field(
        default="127.0.0.1:9092", description="Kafka bootstrap servers, comma separated"
    )
    kafka_group_prefix: str = Field(
        default="replyflow", description="Prefix of every consumer group id (one group per stage)"
    )
    kafka_request_timeout_ms: int = Field(default=30_000, description="Producer/consumer request timeout")

    http_host: str = Field(default="0.0.0.0", description="Address the service's HTTP server binds to")
    http_port: int | None = Field(
        default=None,
        description="HTTP port for /metrics, /healthz, /readyz (and ingest's and control's APIs); "
        "defaults: ingest 8080, policy 8081, generation 8082, publisher 8083, control 8084, youtube-poller 8085",
    )
    log_level: str = Field(default="INFO", description="Python log level")

    retry_backoff_initial_s: float = Field(default=0.5, description="First backoff after a transient failure")
    retry_backoff_max_s: float = Field(default=15.0, description="Longest backoff between retries")
    readiness_failure_hold_s: float = Field(
        default=90.0, description="How long a consumer's failed Kafka, model or platform call keeps /readyz failing "
        "unless a later call succeeds; longer than a retry cycle (backoff plus the model server's timeout)",
    )
    max_delivery_attempts: int = Field(
        default=5, description="Attempts before a message failing with an unexpected error is dead-lettered"
    )

    llm_base_url: str = Field(
        default="http://127.0.0.1:8000/v1", description="OpenAI-compatible base URL (vLLM or llama.cpp server)"
    )
    llm_model: str = Field(default="smollm2-135m-instruct", description="Model name sent in each request")
    llm_api_key: str = Field(default="not-needed", description="Bearer token for the model server")
    llm_timeout_s: float = Field(default=60.0, description="Longest wait for the model server's next bytes (the "
                                 "start of the answer, then each gap between streamed chunks); a long answer that "
                                 "keeps streaming is never cut off")
    llm_max_inflight: int = Field(default=8, description="Concurrent requests to the model server")
    llm_min_inflight: int = Field(
        default=1, description="Smallest window of concurrent model requests the adaptive controller shrinks to"
    )
    llm_initial_inflight: int = Field(
        default=4, description="Window of concurrent model requests at start-up (grows by slow start)"
    )
    llm_adaptive: bool = Field(
        default=True,
        description="Adapt the window to the model server's load (false: always LLM_MAX_INFLIGHT requests)",
    )
    llm_metrics_url: str | None = Field(
        default=None,
        description="Prometheus endpoint of the model server read by the window controller (every address its "
        "host resolves to is read and added up: a headless Service gives each vLLM pod); "
        "default: LLM_BASE_URL without /v1, plus /metrics",
    )
    llm_control_interval_s: float = Field(
        default=1.0, description="How often the window controller reads the server's metrics and adjusts"
    )
    llm_queue_tolerance: int = Field(
        default=4,
        description="Requests allowed to wait in the model server's queue (or 10% of the running ones, "
        "if more) before the window shrinks",
    )
    llm_latency_target_s: float | None = Field(
        default=None,
        description="p90 model-request latency above which the window shrinks; default: half of LLM_TIMEOUT_S",
    )
    llm_drain_timeout_s: float = Field(
        default=20.0,
        description="On SIGTERM or a partition revoke, how long model requests in flight may finish "
        "before they are abandoned (uncommitted, redelivered)",
    )
    llm_seed_per_comment: bool = Field(
        default=True,
        description="Send a sampling seed derived from the comment, so a redelivered comment gets the same draft on "
        "llama.cpp and a close one on vLLM (whose output also depends on what it batches alongside)",
    )

    platform_base_url: str = Field(
        default="http://127.0.0.1:8090", description="Base URL of the platform reply API (simulator locally)"
    )
    platform_timeout_s: float = Field(default=10.0, description="Timeout of one platform API call")
    publisher_ledger_hours: float = Field(
        default=24.0, gt=0, description="How far back the publisher reads replies.published at start, to skip "
        "replies already out; older ones are caught by the platform's idempotency key or the check for the "
        "reply already under the comment. Bounds the publisher's memory and start-up time")
    youtube_api_base_url: str = Field(
        default="", description="YouTube Data API base (https://www.googleapis.com): YouTube replies go there, as "
        "the creator's channel; empty: through PLATFORM_BASE_URL"
    )
    youtube_token_url: str = Field(
        default="https://oauth2.googleapis.com/token", description="Google OAuth token endpoint (refresh-token grant)"
    )
    instagram_api_base_url: str = Field(
        default="", description="Instagram Graph API base with its version (https://graph.facebook.com/v21.0): "
        "Instagram replies go there; empty: through PLATFORM_BASE_URL"
    )
    instagram_app_secret: str = Field(
        default="", description="Meta app secret: ingest receives Instagram comment webhooks signed with it "
        "(POST /v1/webhooks/instagram); empty: no webhook endpoint"
    )
    instagram_webhook_verify_token: str = Field(
        default="", description="The verify token of the Instagram webhook subscription (GET handshake)"
    )
    platform_credentials_file: str = Field(
        default="", description="JSON file with the creators' YouTube OAuth grants and Instagram access tokens "
        "(a mounted Secret; re-read when it changes)"
    )

    youtube_poll_quota_units_per_day: int = Field(
        default=5_000, gt=0, description="YouTube API quota units all YouTube pollers together may spend a day "
        "(1 per list call): each channel's polls are spaced to keep within it. The rest of the "
        "project's quota is the publisher's (comments.insert costs 50)"
    )
    youtube_poll_min_interval_s: float = Field(
        default=60.0, gt=0, description="Shortest time between two polls of one channel"
    )
    youtube_poll_overlap_s: float = Field(
        default=300.0, ge=0, description="How far before the newest comment taken each poll reads again: YouTube "
        "can list a comment late (held, then released); comments already taken are left out"
    )
    youtube_poll_max_age_s: float = Field(
        default=21_600.0, gt=0, description="Oldest comment a poll takes: how far back a new channel's first poll "
        "reaches, and what an outage longer than this leaves unanswered"
    )
    youtube_poll_conversation_s: float = Field(
        default=86_400.0, gt=0, description="How long after replyflow's last reply in a YouTube thread the pollers "
        "still list the thread's replies for viewers answering back (commentThreads.list shows new threads only)"
    )
    youtube_poll_conversations_per_poll: int = Field(
        default=3, ge=0, description="Followed threads a poll of a channel lists the replies of (comments.list, a "
        "quota unit per 100 replies; the polls are spaced for it): the ones not listed since replyflow answered "
        "there first, then those listed longest ago for their age. 0: answers back under older threads are not polled"
    )

    policy_file: str | None = Field(
        default=None, description="Policy JSON file (re-read when it changes); default: the bundled policy"
    )

    embeddings_base_url: str | None = Field(
        default=None,
        description="OpenAI-compatible base URL whose /v1/embeddings adds a semantic view to the authenticity "
        "score (e.g. a vLLM embedding model); unset = stylometric only",
    )
    embeddings_model: str = Field(default="default", description="Model name sent to the embeddings endpoint")
    embeddings_api_key: str | None = Field(default=None, description="Bearer token for the embeddings endpoint")
    embeddings_weight: float = Field(
        default=0.35, ge=0.0, le=1.0, description="Share of the embedding similarity in the authenticity score"
    )
    embeddings_timeout_s: float = Field(
        default=2.0, gt=0, description="Timeout of one embeddings request (on failure: stylometric score only)"
    )

    ingest_api_token: str | None = Field(
        default=None,
        description="Bearer token callers of ingest's POST /v1/comments must send (whoever posts there picks the "
        "creator whose account answers); unset: that route answers 403. Webhooks are signed instead",
    )
    control_api_token: str | None = Field(
        default=None,
        description="Bearer token every control API request must carry; the control service refuses to "
        "start without one",
    )

    policy_stages: str = Field(
        default="screen,verify",
        description="Which policy stages this process runs (screen, verify or both), to scale them apart",
    )

    @field_validator("policy_stages")
    @classmethod
    def _known_policy_stages(cls, value: str) -> str:
        stages = _names(value)
        if not stages or not stages <= {"screen", "verify"}:
            raise ValueError(f"POLICY_STAGES must name screen, verify or both (comma separated), got {value!r}")
        return value

    @property
    def policy_stage_names(self) -> frozenset[str]:
        return _names(self.policy_stages)

    otel_traces_exporter: Literal["none", "console", "otlp"] = Field(
        default="none",
        description="Trace exporter: none (no spans recorded; each comment's upstream trace context passes "
        "through unchanged), console, or otlp (OTLP/HTTP protobuf to OTEL_EXPORTER_OTLP_ENDPOINT)",
    )
    otel_exporter_otlp_endpoint: str = Field(
        default="http://localhost:4318",
        description="OTLP/HTTP collector base URL; spans are posted to <endpoint>/v1/traces",
    )
    otel_traces_sampler_arg: float = Field(
        default=1.0, ge=0.0, le=1.0,
        description="Share of new traces recorded (parent-based: a comment whose upstream trace is sampled is "
        "always recorded)",
    )

    def http_port_for(self, service: str) -> int:
        return self.http_port or DEFAULT_HTTP_PORTS[service]

    def group_id(self, stage: str) -> str:
        return f"{self.kafka_group_prefix}.{stage}"


def _names(comma_separated: str) -> frozenset[str]:
    return frozenset(n.strip() for n in comma_separated.split(",") if n.strip())


DEFAULT_HTTP_PORTS = {"ingest": 8080, "policy": 8081, "generation": 8082, "publisher": 8083, "control": 8084,
                      "youtube-poller": 8085}
