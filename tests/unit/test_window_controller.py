"""The adaptive window: a pure AIMD controller over model requests, the vLLM metrics it reads,
the latency-only queue estimate, and the resizable slots it drives."""

from __future__ import annotations

import asyncio

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from replyflow.generation.window import (
    ControllerConfig,
    LatencyStats,
    Observation,
    ServerLoad,
    ServerProbe,
    Slots,
    WindowController,
    metrics_url_for,
    parse_vllm_metrics,
    queue_estimate,
    resolve_all,
)
from tests.helpers import free_port, serving

VLLM_METRICS = """\
# HELP vllm:num_requests_running Number of requests in model execution batches.
# TYPE vllm:num_requests_running gauge
vllm:num_requests_running{engine="0",model_name="meta-llama/Llama-3.1-8B-Instruct"} 120.0
vllm:num_requests_running{engine="1",model_name="meta-llama/Llama-3.1-8B-Instruct"} 100.0
# TYPE vllm:num_requests_waiting gauge
vllm:num_requests_waiting{engine="0",model_name="meta-llama/Llama-3.1-8B-Instruct"} 3.0
vllm:num_requests_waiting{engine="1",model_name="meta-llama/Llama-3.1-8B-Instruct"} 4.0
# TYPE vllm:kv_cache_usage_perc gauge
vllm:kv_cache_usage_perc{engine="0",model_name="meta-llama/Llama-3.1-8B-Instruct"} 0.41
vllm:kv_cache_usage_perc{engine="1",model_name="meta-llama/Llama-3.1-8B-Instruct"} 0.57
# TYPE vllm:num_preemptions_total counter
vllm:num_preemptions_total{engine="0",model_name="meta-llama/Llama-3.1-8B-Instruct"} 2.0
vllm:time_to_first_token_seconds_bucket{le="0.1",model_name="x"} 17.0
vllm:e2e_request_latency_seconds_sum{model_name="x"} 1234.5
"""


# --------------------------------------------------------------------------- server metrics


def test_vllm_metrics_are_summed_over_engines_and_kv_is_the_highest():
    parsed = parse_vllm_metrics(VLLM_METRICS)
    assert parsed == {"running": 220.0, "waiting": 7.0, "kv": 0.57, "preemptions": 2.0}


def test_the_pre_rename_gpu_cache_gauge_is_accepted_and_the_new_one_wins():
    old = 'vllm:num_requests_running{model_name="m"} 5\nvllm:gpu_cache_usage_perc{model_name="m"} 0.3\n'
    assert parse_vllm_metrics(old) == {"running": 5.0, "kv": 0.3}
    both = old + 'vllm:kv_cache_usage_perc{model_name="m"} 0.6\n'
    assert parse_vllm_metrics(both)["kv"] == 0.6


def test_servers_without_vllm_metrics_give_none():
    llama_cpp = "# HELP process_cpu_seconds_total\nprocess_cpu_seconds_total 12.5\n"
    assert parse_vllm_metrics(llama_cpp) is None
    assert parse_vllm_metrics("") is None


def test_labels_with_spaces_and_timestamps_parse():
    text = 'vllm:num_requests_waiting{model_name="a b} c"} 9 1700000000000\nvllm:num_requests_running 1\n'
    assert parse_vllm_metrics(text) == {"waiting": 9.0, "running": 1.0}


@pytest.mark.parametrize(("base", "url"), [
    ("http://gpu:8000/v1", "http://gpu:8000/metrics"),
    ("http://gpu:8000/v1/", "http://gpu:8000/metrics"),
    ("http://vllm.ns.svc/llm/v1", "http://vllm.ns.svc/llm/metrics"),
])
def test_metrics_url_is_the_base_url_without_v1(base, url):
    assert metrics_url_for(base) == url


# --------------------------------------------------------------------------- latency-only estimate


@given(st.integers(min_value=1, max_value=64), st.floats(min_value=0.05, max_value=5.0),
       st.floats(min_value=0.001, max_value=0.2))
def test_queue_estimate_counts_the_requests_waiting_at_a_one_at_a_time_server(in_flight, service_s, prefill_s):
    # llama.cpp serves one request at a time: with L in flight each waits (L-1) service times.
    ttft = (in_flight - 1) * service_s + prefill_s
    latency = in_flight * service_s
    assert queue_estimate(in_flight, ttft, prefill_s, latency) == pytest.approx(in_flight - 1, rel=1e-6, abs=1e-6)


def test_queue_estimate_is_zero_while_a_batching_server_has_room():
    # Continuous batching: more in flight makes tokens slower, not the first token later.
    assert queue_estimate(64, ttft_s=0.08, ttft_unloaded_s=0.08, latency_s=0.9) == 0


def test_latency_stats_percentiles_and_unloaded_ttft():
    stats = LatencyStats(recent=100, horizon_s=10, base_horizon_s=60)
    for i in range(20):
        stats.add(float(i), latency_s=1.0 + i / 10, ttft_s=0.1 + i / 100)
    p50, p90, ttft50 = stats.percentiles(19.0)  # the last 10 s: samples 9..19
    assert p50 == pytest.approx(2.4) and p90 == pytest.approx(2.8) and ttft50 == pytest.approx(0.24)
    assert stats.ttft_unloaded(19.0) == pytest.approx(0.1)
    assert stats.ttft_unloaded(100.0) == pytest.approx(0.29)  # older minima expire


# --------------------------------------------------------------------------- the controller

CFG = ControllerConfig(min_limit=1, max_limit=256, initial_limit=4, latency_target_s=30)


def obs(now: float, peak: int, *, waiting: float | None = 0.0, running: float = 0.0, kv: float | None = 0.3,
        ok: int = 10, failed: int = 0, p50: float = 1.0, p90: float = 1.5, preempted: float = 0.0) -> Observation:
    server = None if waiting is None else ServerLoad(running=running, waiting=waiting, kv_usage=kv,
                                                    preempted=preempted)
    return Observation(now=now, in_flight_peak=peak, successes=ok, failures=failed,
                       latency_p50_s=p50, latency_p90_s=p90, server=server)


def test_slow_start_doubles_to_the_maximum_while_the_server_keeps_up():
    c = WindowController(CFG)
    limits = [c.update(obs(t, peak=c.limit, running=c.limit)).limit for t in range(8)]
    assert limits == [8, 16, 32, 64, 128, 256, 256, 256]


def test_queueing_shrinks_multiplicatively_then_growth_is_additive():
    c = WindowController(CFG, limit=200)
    step = c.update(obs(0, peak=200, running=180, waiting=20))
    assert (step.direction, step.reason, step.limit) == ("down", "queue", 140)
    assert c.update(obs(5, peak=140, running=140)).limit == 140 + CFG.increase


def test_a_small_queue_is_tolerated():
    c = WindowController(CFG, limit=100, ssthresh=100)
    assert c.update(obs(0, peak=300, running=100, waiting=4)).direction == "up"
    assert c.update(obs(1, peak=300, running=250, waiting=20)).direction == "up"  # 10% of running
    assert c.update(obs(2, peak=300, running=100, waiting=11)).reason == "queue"


def test_preemption_and_latency_over_target_shrink():
    assert WindowController(CFG, limit=100).update(obs(0, 100, preempted=3)).reason == "preemption"
    assert WindowController(CFG, limit=100).update(obs(0, 100, p90=45)).reason == "latency"


def test_kv_cache_near_full_stops_growth_and_an_unused_window_does_not_grow():
    c = WindowController(CFG, limit=64)
    assert c.update(obs(0, peak=64, kv=0.95)).reason == "kv-cache-high"
    assert c.update(obs(1, peak=20)).reason == "window-not-used"
    assert c.limit == 64


def test_server_down_probes_with_one_request_then_slow_starts_back():
    c = WindowController(CFG, limit=128, ssthresh=256)
    step = c.update(obs(0, peak=128, waiting=None, ok=0, failed=50))
    assert (step.reason, step.limit, c.ssthresh) == ("down", 1, 89)
    assert c.update(obs(10, peak=1, waiting=None, ok=0, failed=3)).limit == 1
    assert c.ssthresh == 89  # a second failure at the minimum keeps the memory of where it broke
    limits = [c.update(obs(20 + t, peak=c.limit, waiting=None)).limit for t in range(9)]
    assert limits[:7] == [2, 4, 8, 16, 32, 64, 89] and limits[7] == 89 + CFG.increase


def test_a_few_failures_among_many_successes_are_left_to_retries():
    c = WindowController(CFG, limit=64, ssthresh=64)
    assert c.update(obs(0, peak=64, ok=100, failed=3)).direction == "up"
    assert c.update(obs(1, peak=64, ok=100, failed=30)).reason == "errors"


def test_one_decrease_per_round_trip():
    c = WindowController(CFG, limit=200)
    assert c.update(obs(0, 200, waiting=50, p50=2.0)).direction == "down"
    assert c.update(obs(1, 140, waiting=50, p50=2.0)).reason == "cooldown"
    assert c.update(obs(2.5, 140, waiting=50, p50=2.0)).direction == "down"


signals = st.fixed_dictionaries({
    "peak": st.integers(min_value=0, max_value=300),
    "waiting": st.one_of(st.none(), st.floats(min_value=0, max_value=500)),
    "running": st.floats(min_value=0, max_value=300),
    "kv": st.one_of(st.none(), st.floats(min_value=0, max_value=1)),
    "ok": st.integers(min_value=0, max_value=50),
    "failed": st.integers(min_value=0, max_value=50),
    "p50": st.floats(min_value=0.01, max_value=60),
    "preempted": st.sampled_from([0.0, 0.0, 0.0, 1.0]),
})


@settings(max_examples=300)
@given(st.integers(min_value=1, max_value=16), st.integers(min_value=1, max_value=512),
       st.lists(st.tuples(st.floats(min_value=0.01, max_value=5), signals), max_size=60))
def test_the_window_stays_in_bounds_and_never_grows_under_congestion_or_without_demand(lo, span, ticks):
    cfg = ControllerConfig(min_limit=lo, max_limit=lo + span, initial_limit=4, latency_target_s=30)
    c = WindowController(cfg)
    now = 0.0
    last_decrease = -1e9
    for dt, s in ticks:
        now += dt
        o = obs(now, s["peak"], waiting=s["waiting"], running=s["running"], kv=s["kv"], ok=s["ok"],
                failed=s["failed"], p50=s["p50"], p90=s["p50"] * 1.5, preempted=s["preempted"])
        before, cooldown = c.limit, c.cooldown_s
        step = c.update(o)
        assert cfg.min_limit <= c.limit <= cfg.max_limit
        assert step.limit == c.limit
        if c.congestion(o) is not None or s["peak"] < before:
            assert c.limit <= before
        if c.limit < before:
            assert now - last_decrease >= cooldown  # at most one decrease per round trip
            last_decrease = now
        if c.limit > before:
            assert c.limit <= max(2 * before, before + cfg.increase)


def run_shared_server(controllers: list[WindowController], capacity: int, ticks: int) -> list[list[int]]:
    """A batching server with ``capacity`` slots shared by several always-busy services."""
    history = []
    for t in range(ticks):
        total = sum(c.limit for c in controllers)
        running, waiting = min(total, capacity), max(0, total - capacity)
        for c in controllers:
            c.update(obs(float(t), peak=c.limit, running=running, waiting=waiting, p50=0.5))
        history.append([c.limit for c in controllers])
    return history


@given(st.integers(min_value=16, max_value=400))
def test_against_a_server_of_fixed_capacity_the_window_settles_around_it(capacity):
    c = WindowController(ControllerConfig(max_limit=1024, initial_limit=4))
    history = run_shared_server([c], capacity, 200)
    tail = [h[0] for h in history[-100:]]
    tolerance = max(4, 0.1 * capacity)
    assert max(tail) <= capacity + tolerance + c.cfg.increase
    assert min(tail) >= int(0.7 * capacity) - c.cfg.increase - 1
    # and the server is kept busy: on average at least ~85% of its slots are in use
    assert sum(min(x, capacity) for x in tail) / len(tail) >= 0.85 * capacity - c.cfg.increase


def test_two_replicas_sharing_a_server_converge_to_fair_shares():
    a = WindowController(ControllerConfig(max_limit=512, initial_limit=200), ssthresh=200)
    b = WindowController(ControllerConfig(max_limit=512, initial_limit=4))
    history = run_shared_server([a, b], capacity=256, ticks=600)
    first_gap = abs(history[5][0] - history[5][1])
    last = history[-50:]
    gap = sum(abs(x - y) for x, y in last) / len(last)
    assert gap < 0.25 * first_gap and gap < 40
    assert sum(min(256, x + y) for x, y in last) / len(last) >= 200


def test_a_server_without_metrics_is_held_by_the_latency_queue_estimate():
    c = WindowController(ControllerConfig(max_limit=64, initial_limit=4, queue_tolerance=4))
    service = 1.0
    for t in range(100):  # llama.cpp: one request at a time, so L in flight means L-1 waiting
        in_flight = c.limit
        estimate = queue_estimate(in_flight, (in_flight - 1) * service + 0.05, 0.05, in_flight * service)
        c.update(Observation(now=t * 10.0, in_flight_peak=in_flight, successes=5, latency_p50_s=in_flight * service,
                             latency_p90_s=in_flight * service, queue_estimate=estimate))
    assert 3 <= c.limit <= 6  # keeps the server busy with a small queue, does not pile up 64 requests


# --------------------------------------------------------------------------- slots


async def test_slots_are_handed_out_in_order_and_follow_the_limit():
    slots = Slots(2)
    order: list[int] = []

    async def user(i: int) -> None:
        await slots.acquire()
        order.append(i)

    await slots.acquire()
    await slots.acquire()
    tasks = [asyncio.create_task(user(i)) for i in range(4)]
    await asyncio.sleep(0)
    assert slots.waiting == 4 and not order
    slots.set_limit(4)  # growing the window wakes waiters at once
    await asyncio.sleep(0)
    assert order == [0, 1] and slots.active == 4
    slots.set_limit(1)  # shrinking takes effect as slots are released
    slots.release()
    slots.release()
    await asyncio.sleep(0)
    assert order == [0, 1] and slots.active == 2
    slots.release()
    slots.release()
    await asyncio.sleep(0)
    assert order == [0, 1, 2] and slots.active == 1
    tasks[3].cancel()  # a waiter that gives up leaves no trace
    await asyncio.gather(*tasks, return_exceptions=True)
    slots.release()
    assert slots.active == 0 and slots.waiting == 0
    assert slots.take_peak() == 4 and slots.take_peak() == 0


pod_metrics: dict[str, str] = {}  # pod name -> what its /metrics answers now


def vllm_pod(name: str) -> Starlette:
    """A model server's /metrics (vLLM's Prometheus names), over real HTTP."""
    async def metrics(request: Request) -> PlainTextResponse:
        return PlainTextResponse(pod_metrics[name])

    return Starlette(routes=[Route("/metrics", metrics)])


async def test_the_probe_adds_up_every_vllm_pod_behind_a_headless_service():
    pod_metrics["a"] = ("vllm:num_requests_running 10\nvllm:num_requests_waiting 2\nvllm:kv_cache_usage_perc 0.5\n"
                        "vllm:num_preemptions_total 3\n")
    pod_metrics["b"] = ("vllm:num_requests_running 30\nvllm:num_requests_waiting 0\nvllm:kv_cache_usage_perc 0.9\n"
                        "vllm:num_preemptions_total 7\n")
    async with serving(vllm_pod("a")) as a, serving(vllm_pod("b")) as b:
        pods = [("127.0.0.1", int(a.rsplit(":", 1)[1])), ("127.0.0.1", int(b.rsplit(":", 1)[1]))]
        resolved: list[tuple[str, int]] = []

        async def headless(host: str, port: int) -> list[tuple[str, int]]:  # what DNS answers for llm-pods
            resolved.append((host, port))
            return pods

        probe = ServerProbe("http://llm-pods:8000/metrics", resolve=headless)
        try:
            first = await probe.sample()
            pod_metrics["b"] = pod_metrics["b"].replace("preemptions_total 7", "preemptions_total 9")
            second = await probe.sample()
        finally:
            await probe.close()
    assert resolved[0] == ("llm-pods", 8000)
    assert first is not None and (first.running, first.waiting, first.kv_usage) == (40.0, 2.0, 0.9)
    assert first.preempted == 0.0  # counters need a previous sample, per pod
    assert second is not None and second.preempted == 2.0 and probe.available


async def test_a_host_that_does_not_resolve_is_unreadable_metrics_not_a_crash():
    async def nowhere(host: str, port: int) -> list[tuple[str, int]]:
        raise OSError(f"{host}: Name or service not known")

    probe = ServerProbe("http://llm-pods:8000/metrics", resolve=nowhere)
    try:
        assert await probe.sample() is None and not probe.available
    finally:
        await probe.close()


async def test_a_pod_that_does_not_answer_leaves_the_others_counted():
    pod_metrics["c"] = "vllm:num_requests_running 5\nvllm:num_requests_waiting 1\n"
    async with serving(vllm_pod("c")) as c:
        async def headless(host: str, port: int) -> list[tuple[str, int]]:
            return [("127.0.0.1", int(c.rsplit(":", 1)[1])), ("127.0.0.1", free_port())]  # one gone meanwhile

        probe = ServerProbe("http://llm-pods:8000/metrics", resolve=headless)
        try:
            load = await probe.sample()
        finally:
            await probe.close()
    assert load is not None and (load.running, load.waiting) == (5.0, 1.0)


async def test_a_name_resolves_to_its_ipv4_addresses_where_it_has_any():
    # localhost is dual-stack on most machines: one server must not be counted twice.
    assert await resolve_all("localhost", 8000) == [("127.0.0.1", 8000)]


async def test_a_pod_without_metrics_leaves_the_others_counted():
    pod_metrics["d"] = "vllm:num_requests_running 7\nvllm:num_requests_waiting 0\n"
    async with serving(vllm_pod("d")) as d, serving(Starlette()) as bare:  # bare: /metrics is a 404
        async def headless(host: str, port: int) -> list[tuple[str, int]]:
            return [("127.0.0.1", int(d.rsplit(":", 1)[1])), ("127.0.0.1", int(bare.rsplit(":", 1)[1]))]

        probe = ServerProbe("http://llm-pods:8000/metrics", resolve=headless)
        try:
            load = await probe.sample()
        finally:
            await probe.close()
    assert load is not None and load.running == 7.0 and probe.available
