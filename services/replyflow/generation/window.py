"""How many requests the generation service keeps in flight at the model server, and why.

vLLM only reaches its throughput with many sequences in its continuous batch, but past the
point where its batch (or KV cache) is full, extra requests just wait in its queue, holding
Kafka messages and adding latency. ``WindowController`` is a pure AIMD controller (TCP-like:
slow start, additive increase, multiplicative decrease, at most one decrease per round trip)
fed once per tick with what the model server reports on ``/metrics``
(``vllm:num_requests_waiting``, ``vllm:num_requests_running``, ``vllm:kv_cache_usage_perc``
— ``vllm:gpu_cache_usage_perc`` before vLLM renamed it — and ``vllm:num_preemptions_total``)
and with the service's own request outcomes and latencies:

* grow (doubling until the first congestion, then ``+step`` per tick) while the window is
  actually used up and the server keeps up: nothing queues beyond a small tolerance, KV cache
  below its high-water mark, latency under target;
* shrink (``x backoff``) when requests queue at the server, the server preempts sequences,
  latency exceeds the target, or many requests fail; collapse to the minimum when every
  request fails (server down), then slow-start back to where it was.

Servers without those metrics (llama.cpp) are controlled from latency alone: by Little's law
the number of requests waiting at the server is about ``in_flight × (TTFT − TTFT_unloaded) /
latency`` (time to first token grows with queueing, not with batching), compared with the
same tolerance.

``AdaptiveWindow`` runs a controller at runtime: it owns the model-request slots (an
``asyncio`` semaphore whose size the controller sets), scrapes the server every tick and
exports the window's Prometheus metrics.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import socket
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from urllib.parse import urlsplit, urlunsplit

import aiohttp
from prometheus_client import Counter, Gauge

log = logging.getLogger(__name__)

WINDOW = Gauge("replyflow_generation_window", "Model requests the adaptive window allows in flight now")
IN_FLIGHT = Gauge("replyflow_generation_in_flight", "Model requests in flight now (comments being drafted)")
WINDOW_CHANGES = Counter(
    "replyflow_generation_window_changes_total", "Window adjustments by direction and reason", ["direction", "reason"]
)
SERVER_REQUESTS = Gauge(
    "replyflow_llm_server_requests", "Requests at the model server as it reports them (all clients)", ["state"]
)
SERVER_KV = Gauge("replyflow_llm_server_kv_cache_usage", "KV cache usage the model server reports (0..1)")
SERVER_QUEUE_ESTIMATE = Gauge(
    "replyflow_llm_server_queue_estimate",
    "Requests estimated to wait at the model server from latency alone (servers without metrics)",
)
SERVER_METRICS_OK = Gauge("replyflow_llm_server_metrics_available", "1 when the model server's metrics are read")


# --------------------------------------------------------------------------- pure controller


@dataclass(frozen=True)
class ControllerConfig:
    min_limit: int = 1
    max_limit: int = 256
    initial_limit: int = 4
    step: int = 0  # additive increase per tick; 0 = max(1, max_limit // 32)
    backoff: float = 0.7  # multiplicative decrease
    queue_tolerance: float = 4.0  # requests allowed to wait at the server...
    queue_fraction: float = 0.1  # ...or this share of the running ones, whichever is more
    kv_high: float = 0.92  # no growth at or above this KV cache usage
    latency_target_s: float = 30.0  # p90 request latency above this shrinks the window
    error_fraction: float = 0.1  # shrink when more than this share of requests failed
    min_cooldown_s: float = 0.5  # at least this long between two decreases

    def __post_init__(self) -> None:
        if not 1 <= self.min_limit <= self.max_limit:
            raise ValueError("need 1 <= min_limit <= max_limit")
        if not 0 < self.backoff < 1:
            raise ValueError("backoff must be in (0, 1)")

    @property
    def increase(self) -> int:
        return self.step or max(1, self.max_limit // 32)

    @property
    def start(self) -> int:
        return min(self.max_limit, max(self.min_limit, self.initial_limit))


@dataclass(frozen=True)
class ServerLoad:
    """The model server's own view, from its Prometheus metrics (summed over engines)."""

    running: float
    waiting: float
    kv_usage: float | None = None
    preempted: float = 0.0  # sequences preempted since the previous sample


@dataclass(frozen=True)
class Observation:
    """What the service saw since the previous tick."""

    now: float
    in_flight_peak: int  # most model requests in flight at once
    successes: int = 0
    failures: int = 0  # transient: unreachable, 5xx, 429, timeouts
    latency_p50_s: float | None = None  # recent completed requests
    latency_p90_s: float | None = None
    queue_estimate: float | None = None  # latency-only estimate, used when ``server`` is None
    server: ServerLoad | None = None


@dataclass(frozen=True)
class Step:
    limit: int
    direction: str  # up | down | hold
    reason: str


def queue_estimate(in_flight: float, ttft_s: float, ttft_unloaded_s: float, latency_s: float) -> float:
    """Requests waiting at the server, from latency alone (Little's law).

    Throughput is ``in_flight / latency``; each request waits about ``ttft - ttft_unloaded``
    before the server starts on it, so ``throughput × wait`` requests are waiting.
    """
    if latency_s <= 0:
        return 0.0
    return in_flight * max(0.0, ttft_s - ttft_unloaded_s) / latency_s


@dataclass
class WindowController:
    """AIMD window over model requests; ``update`` once per tick. No I/O, no clock of its own."""

    cfg: ControllerConfig = field(default_factory=ControllerConfig)
    limit: int = 0
    ssthresh: int = 0  # slow start (doubling) below this, additive increase from it on
    last_decrease_at: float = -math.inf
    cooldown_s: float = 0.0

    def __post_init__(self) -> None:
        self.limit = self.limit or self.cfg.start
        self.ssthresh = self.ssthresh or self.cfg.max_limit

    def tolerated_queue(self, running: float) -> float:
        return max(self.cfg.queue_tolerance, self.cfg.queue_fraction * running)

    def congestion(self, obs: Observation) -> str | None:
        """Why the server is not keeping up, or None."""
        attempts = obs.successes + obs.failures
        if obs.failures and not obs.successes:
            return "down"
        if attempts and obs.failures / attempts > self.cfg.error_fraction:
            return "errors"
        if obs.server is not None:
            if obs.server.waiting > self.tolerated_queue(obs.server.running):
                return "queue"
            if obs.server.preempted > 0:
                return "preemption"
        elif obs.queue_estimate is not None and obs.queue_estimate > self.tolerated_queue(self.limit):
            return "queue-latency"
        if obs.latency_p90_s is not None and obs.latency_p90_s > self.cfg.latency_target_s:
            return "latency"
        return None

    def update(self, obs: Observation) -> Step:
        cfg = self.cfg
        why = self.congestion(obs)
        if why is not None:
            if obs.now - self.last_decrease_at < self.cooldown_s:
                return Step(self.limit, "hold", "cooldown")
            before = self.limit
            reduced = max(cfg.min_limit, int(before * cfg.backoff))
            if why == "down":
                # Nothing gets through: probe with the minimum, slow-start back to below where it broke.
                if before > cfg.min_limit:
                    self.ssthresh = reduced
                self.limit = cfg.min_limit
            else:
                self.limit = self.ssthresh = reduced
            # One decrease per round trip: its effect shows only once requests in flight complete.
            self.last_decrease_at = obs.now
            self.cooldown_s = max(cfg.min_cooldown_s, obs.latency_p50_s or 0.0)
            return Step(self.limit, "down" if self.limit < before else "hold", why)
        if obs.in_flight_peak < self.limit:
            return Step(self.limit, "hold", "window-not-used")  # no evidence the server takes more
        if obs.server is not None and obs.server.kv_usage is not None and obs.server.kv_usage >= cfg.kv_high:
            return Step(self.limit, "hold", "kv-cache-high")
        if self.limit >= cfg.max_limit:
            return Step(self.limit, "hold", "max")
        if self.limit < self.ssthresh:
            self.limit = min(self.ssthresh, self.limit * 2, cfg.max_limit)
            return Step(self.limit, "up", "slow-start")
        self.limit = min(cfg.max_limit, self.limit + cfg.increase)
        return Step(self.limit, "up", "additive")


# --------------------------------------------------------------------------- server metrics

_GAUGES = {
    "vllm:num_requests_running": "running",
    "vllm:num_requests_waiting": "waiting",
    "vllm:kv_cache_usage_perc": "kv",
    "vllm:gpu_cache_usage_perc": "kv_old",
    "vllm:num_preemptions_total": "preemptions",
}


def parse_vllm_metrics(text: str) -> dict[str, float] | None:
    """The gauges the controller needs from vLLM's Prometheus text, or None when there are none.

    Running, waiting and preemptions are summed over label sets (data-parallel engines, models);
    KV usage is the highest. ``kv_cache_usage_perc`` wins over the pre-rename ``gpu_cache_usage_perc``.
    """
    found: dict[str, float] = {}
    for line in text.splitlines():
        if not line.startswith("vllm:"):
            continue
        brace = line.find("{")
        if brace >= 0:
            name, rest = line[:brace], line[line.rfind("}") + 1:]
        else:
            name, _, rest = line.partition(" ")
        key = _GAUGES.get(name)
        if key is None:
            continue
        try:
            value = float(rest.split()[0])
        except (IndexError, ValueError):
            continue
        if math.isnan(value):
            continue
        if key in ("kv", "kv_old"):
            found[key] = max(found.get(key, 0.0), value)
        else:
            found[key] = found.get(key, 0.0) + value
    if "running" not in found and "waiting" not in found:
        return None
    if "kv" not in found and "kv_old" in found:
        found["kv"] = found["kv_old"]
    found.pop("kv_old", None)
    return found


def metrics_url_for(base_url: str) -> str:
    """vLLM serves /metrics at the root, next to /v1."""
    base = base_url.rstrip("/")
    base = base.removesuffix("/v1")
    return f"{base}/metrics"


Address = tuple[str, int]


async def resolve_all(host: str, port: int) -> list[Address]:
    """Every address a host name resolves to: one for a ClusterIP Service, each pod's for a headless one. IPv4
    only where there is IPv4: a dual-stack name (localhost, a dual-stack pod) would count a server twice."""
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(host, port, family=socket.AF_INET, type=socket.SOCK_STREAM)
    except socket.gaierror:
        infos = await loop.getaddrinfo(host, port, family=socket.AF_INET6, type=socket.SOCK_STREAM)
    return sorted({(info[4][0], info[4][1]) for info in infos})


class ServerProbe:
    """Scrapes the model servers' /metrics; remembers when they have none and asks again rarely.

    Every address the URL's host resolves to is scraped and their loads added up (KV usage: the fullest), so
    behind a headless Service the window follows all vLLM pods, not whichever pod a Service would pick."""

    def __init__(self, url: str, timeout_s: float = 2.0, retry_missing_s: float = 30.0,
                 resolve: Callable[[str, int], Awaitable[list[Address]]] = resolve_all) -> None:
        self.url = url
        parts = urlsplit(url)
        self._host, self._port = parts.hostname or "", parts.port or (443 if parts.scheme == "https" else 80)
        # TLS names the host, not an address: an https URL is scraped as it is.
        self._by_address = parts.scheme == "http"
        self._path = urlunsplit(("", "", parts.path, parts.query, ""))
        self._resolve = resolve
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._retry_missing_s = retry_missing_s
        self._missing_until = 0.0
        self._last_preemptions: dict[str, float] = {}  # per scraped URL (a pod's counter is its own)
        self._session: aiohttp.ClientSession | None = None
        self.available = False

    async def _urls(self) -> list[str]:
        if not self._by_address:
            return [self.url]
        addresses = await self._resolve(self._host, self._port)
        return [f"http://[{ip}]:{port}{self._path}" if ":" in ip else f"http://{ip}:{port}{self._path}"
                for ip, port in addresses]

    async def _scrape(self, url: str) -> dict[str, float] | int | None:
        """The parsed metrics of one server, or the HTTP status it answered instead of 200."""
        assert self._session is not None
        async with self._session.get(url) as response:
            if response.status != 200:
                await response.read()
                return response.status
            return parse_vllm_metrics(await response.text())

    async def sample(self) -> ServerLoad | None:
        now = time.monotonic()
        if now < self._missing_until:
            return None
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=self._timeout)
        try:
            urls = await self._urls()
        except OSError as error:  # the name did not resolve
            log.debug("model server metrics unreadable: %r", error)
            self._set_available(False)
            return None
        scraped = await asyncio.gather(*(self._scrape(url) for url in urls), return_exceptions=True)
        answers = {url: a for url, a in zip(urls, scraped, strict=True) if not isinstance(a, BaseException)}
        if not answers:  # every server down or slow: request outcomes tell the controller
            log.debug("model server metrics unreadable: %r", scraped[:3])
            self._set_available(False)
            return None
        if all(answer in (404, 405) for answer in answers.values()):
            self._no_metrics(now, "answered 404/405")
            return None
        parsed = {url: answer for url, answer in answers.items() if isinstance(answer, dict)}
        if not parsed:
            self._no_metrics(now, "has no vLLM metrics")
            return None
        preempted = 0.0
        counters = {url: m["preemptions"] for url, m in parsed.items() if "preemptions" in m}
        for url, preemptions in counters.items():
            last = self._last_preemptions.get(url)
            if last is not None and preemptions >= last:
                preempted += preemptions - last
        self._last_preemptions = counters  # pods gone since are forgotten
        self._set_available(True)
        kv = [m["kv"] for m in parsed.values() if "kv" in m]
        return ServerLoad(
            running=sum(m.get("running", 0.0) for m in parsed.values()),
            waiting=sum(m.get("waiting", 0.0) for m in parsed.values()),
            kv_usage=max(kv) if kv else None, preempted=preempted,
        )

    def _no_metrics(self, now: float, why: str) -> None:
        if self.available or self._missing_until == 0.0:
            log.info("model server metrics at %s %s: the window follows latency only", self.url, why)
        self._missing_until = now + self._retry_missing_s
        self._set_available(False)

    def _set_available(self, available: bool) -> None:
        self.available = available
        SERVER_METRICS_OK.set(1 if available else 0)

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()


# --------------------------------------------------------------------------- runtime


class LatencyStats:
    """Recent request latencies and TTFTs, plus the lowest TTFT seen lately (the unloaded one)."""

    def __init__(self, recent: int = 128, horizon_s: float = 10.0, base_horizon_s: float = 300.0) -> None:
        self._samples: deque[tuple[float, float, float | None]] = deque(maxlen=recent)
        self._horizon_s = horizon_s
        self._base_horizon_s = base_horizon_s
        self._ttft_minima: deque[tuple[float, float]] = deque()  # (time, ttft), increasing ttft

    def add(self, now: float, latency_s: float, ttft_s: float | None) -> None:
        self._samples.append((now, latency_s, ttft_s))
        if ttft_s is not None:
            minima = self._ttft_minima
            while minima and minima[-1][1] >= ttft_s:
                minima.pop()
            minima.append((now, ttft_s))

    def _recent(self, now: float, min_samples: int = 8) -> list[tuple[float, float, float | None]]:
        fresh = [s for s in self._samples if now - s[0] <= self._horizon_s]
        return fresh if len(fresh) >= min_samples else list(self._samples)[-min_samples:]

    def percentiles(self, now: float) -> tuple[float | None, float | None, float | None]:
        """(latency p50, latency p90, TTFT p50) over recent completions."""
        recent = self._recent(now)
        if not recent:
            return None, None, None
        latencies = sorted(s[1] for s in recent)
        ttfts = sorted(s[2] for s in recent if s[2] is not None)
        return _quantile(latencies, 0.5), _quantile(latencies, 0.9), _quantile(ttfts, 0.5) if ttfts else None

    def ttft_unloaded(self, now: float) -> float | None:
        minima = self._ttft_minima
        while len(minima) > 1 and now - minima[0][0] > self._base_horizon_s:
            minima.popleft()
        return minima[0][1] if minima else None


def _quantile(ordered: list[float], q: float) -> float:
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]


class Slots:
    """A FIFO semaphore whose size changes at run time: model requests in flight."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.active = 0
        self.peak = 0
        self._waiters: deque[asyncio.Future[None]] = deque()

    def set_limit(self, limit: int) -> None:
        self.limit = limit
        self._wake()

    async def acquire(self) -> None:
        if self.active < self.limit and not self._waiters:
            self._take()
            return
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            await waiter
        except BaseException:
            if waiter.done() and not waiter.cancelled():
                self.release()  # granted and cancelled at once: hand the slot on
            else:
                with contextlib.suppress(ValueError):
                    self._waiters.remove(waiter)
            raise

    def _take(self) -> None:
        self.active += 1
        self.peak = max(self.peak, self.active)

    def release(self) -> None:
        self.active -= 1
        self._wake()

    def _wake(self) -> None:
        while self._waiters and self.active < self.limit:
            waiter = self._waiters.popleft()
            if not waiter.done():
                self._take()
                waiter.set_result(None)

    @property
    def waiting(self) -> int:
        return len(self._waiters)

    def take_peak(self) -> int:
        """Most slots used at once since the last call (at least what is in use now)."""
        peak, self.peak = self.peak, self.active
        return max(peak, self.active)


class AdaptiveWindow:
    """Model-request slots sized by a ``WindowController`` that a background task ticks."""

    def __init__(
        self,
        cfg: ControllerConfig,
        *,
        probe: ServerProbe | None,
        interval_s: float = 1.0,
        adaptive: bool = True,
        prefetch: int | None = None,
    ) -> None:
        self.controller = WindowController(cfg)
        if not adaptive:
            self.controller.limit = cfg.max_limit
        self.adaptive = adaptive
        self.slots = Slots(self.controller.limit)
        self.probe = probe
        self.interval_s = interval_s
        self.latencies = LatencyStats()
        self._prefetch = prefetch
        self._successes = 0
        self._failures = 0
        self._task: asyncio.Task | None = None
        self.last_step: Step | None = None
        self.server: ServerLoad | None = None
        WINDOW.set_function(lambda: self.slots.limit)
        IN_FLIGHT.set_function(lambda: self.slots.active)

    @property
    def limit(self) -> int:
        return self.slots.limit

    def message_limit(self) -> int:
        """Kafka messages the consumer may hold: the model slots plus a few decoded and ready to go,
        so a finished request is replaced without waiting for a fetch."""
        extra = self._prefetch if self._prefetch is not None else max(2, self.slots.limit // 4)
        return self.slots.limit + extra

    @contextlib.asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        await self.slots.acquire()
        try:
            yield
        finally:
            self.slots.release()

    def succeeded(self, latency_s: float, ttft_s: float | None) -> None:
        self._successes += 1
        self.latencies.add(time.monotonic(), latency_s, ttft_s)

    def failed(self) -> None:
        self._failures += 1

    def observe(self, now: float, server: ServerLoad | None) -> Observation:
        p50, p90, ttft_p50 = self.latencies.percentiles(now)
        estimate = None
        if server is None and p50 is not None and ttft_p50 is not None:
            unloaded = self.latencies.ttft_unloaded(now)
            if unloaded is not None:
                estimate = queue_estimate(self.slots.active or self.slots.limit, ttft_p50, unloaded, p50)
                SERVER_QUEUE_ESTIMATE.set(estimate)
        obs = Observation(
            now=now, in_flight_peak=self.slots.take_peak(), successes=self._successes, failures=self._failures,
            latency_p50_s=p50, latency_p90_s=p90, queue_estimate=estimate, server=server,
        )
        self._successes = self._failures = 0
        return obs

    async def tick(self) -> Step:
        server = await self.probe.sample() if self.probe is not None else None
        self.server = server
        if server is not None:
            SERVER_REQUESTS.labels("running").set(server.running)
            SERVER_REQUESTS.labels("waiting").set(server.waiting)
            if server.kv_usage is not None:
                SERVER_KV.set(server.kv_usage)
        obs = self.observe(time.monotonic(), server)
        if not self.adaptive:
            return Step(self.slots.limit, "hold", "fixed")
        step = self.controller.update(obs)
        if step.direction != "hold":
            WINDOW_CHANGES.labels(step.direction, step.reason).inc()
            log.info("window %s to %d (%s)", step.direction, step.limit, step.reason,
                     extra={"fields": {"window": step.limit, "reason": step.reason, "in_flight": self.slots.active}})
        self.slots.set_limit(step.limit)
        self.last_step = step
        return step

    async def _run(self) -> None:
        while True:
            started = time.monotonic()
            try:
                await self.tick()
            except Exception:  # the controller must never die; the window just stays
                log.exception("window controller tick failed")
            await asyncio.sleep(max(0.05, self.interval_s - (time.monotonic() - started)))

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="generation-window-controller")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        if self.probe is not None:
            await self.probe.close()

