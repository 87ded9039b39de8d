"""cxxloop.metrics: the Prometheus text parses with the Prometheus client's
own parser and says what loop.stats() says; the OpenTelemetry bridge,
read by the SDK's InMemoryMetricReader, does too."""

from __future__ import annotations

import asyncio
import math
import socket
import sys

import pytest

import cxxloop
from cxxloop import metrics
from parity import noop, require


def busy_loop() -> cxxloop.Loop:
    """A loop that ran callbacks, timers and a stream, and keeps one
    connection (two stream transports) open until close_loop()."""
    loop = cxxloop.new_event_loop()

    async def main():
        a, b = socket.socketpair()
        server, _ = await loop.create_connection(asyncio.Protocol, sock=a)
        client, _ = await loop.create_connection(asyncio.Protocol, sock=b)
        client.write(b"z" * 100)
        for _ in range(20):
            loop.call_soon(noop)
        await asyncio.sleep(0.002)
        await asyncio.sleep(0)
        return server, client

    loop.open_transports = loop.run_until_complete(main())
    return loop


def close_loop(loop: cxxloop.Loop) -> None:
    for transport in loop.open_transports:
        transport.close()
    loop.run_until_complete(asyncio.sleep(0))
    loop.close()


@pytest.fixture
def loops():
    made = [busy_loop(), busy_loop()]
    yield made
    for loop in made:
        close_loop(loop)


def parsed(text: str) -> dict:
    parser = require("prometheus_client.parser")
    return {family.name: family for family in parser.text_string_to_metric_families(text)}


def value(family, **labels) -> float:
    [sample] = [s for s in family.samples if s.labels == labels and s.name.endswith(("_total", family.name))]
    return sample.value


def test_prometheus_text_says_what_stats_says(loops):
    loop = loops[0]
    families = parsed(metrics.prometheus_text(loop))
    stats = loop.stats()
    assert families["cxxloop_callbacks"].type == "counter"
    assert value(families["cxxloop_callbacks"]) == stats.callbacks
    assert value(families["cxxloop_iterations"]) == stats.iterations
    assert value(families["cxxloop_timers_fired"]) == stats.timers_fired
    assert value(families["cxxloop_transport_written_bytes"]) == stats.bytes_written == 100
    assert value(families["cxxloop_transport_read_bytes"]) == stats.bytes_read == 100
    assert families["cxxloop_ready_callbacks"].type == "gauge"
    assert value(families["cxxloop_open_transports"], kind="StreamTransport") == 2

    lag = families["cxxloop_timer_lag_seconds"]
    assert lag.type == "histogram"
    buckets = [(float(s.labels["le"]), s.value) for s in lag.samples if s.name.endswith("_bucket")]
    assert buckets == [(bound, count) for bound, count in stats.lag.cumulative()]
    assert buckets[-1][0] == math.inf
    [count] = [s.value for s in lag.samples if s.name.endswith("_count")]
    [total] = [s.value for s in lag.samples if s.name.endswith("_sum")]
    assert count == stats.lag.count >= 1 and total == pytest.approx(stats.lag.sum)


def test_prometheus_text_labels_each_loop_of_a_mapping(loops):
    text = metrics.prometheus_text({"main": loops[0], 'we"ird\\': loops[1]})
    families = parsed(text)
    callbacks = families["cxxloop_callbacks"]
    assert value(callbacks, loop="main") == loops[0].stats().callbacks
    assert value(callbacks, loop='we"ird\\') == loops[1].stats().callbacks
    # One HELP and TYPE per metric, whatever the number of loops.
    assert text.count("# TYPE cxxloop_callbacks_total ") == 1


def otel_reader():
    require("opentelemetry.sdk")
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader

    reader = InMemoryMetricReader()
    return reader, MeterProvider(metric_readers=[reader])


def collected(reader) -> dict[str, list]:
    out: dict[str, list] = {}
    data = reader.get_metrics_data()  # None when nothing was observed
    for resource in data.resource_metrics if data else ():
        for scope in resource.scope_metrics:
            assert scope.scope.name == "cxxloop"
            for metric in scope.metrics:
                out[metric.name] = [(dict(p.attributes), p.value) for p in metric.data.data_points]
    return out


def test_opentelemetry_reads_what_stats_says(loops):
    reader, provider = otel_reader()
    metrics.instrument(loops[0], meter_provider=provider, attributes={"loop": "a"})
    metrics.instrument(loops[1], meter_provider=provider, attributes={"loop": "b"})
    got = collected(reader)
    for name, loop in (("a", loops[0]), ("b", loops[1])):
        stats = loop.stats()
        assert ({"loop": name}, stats.callbacks) in got["cxxloop.loop.callbacks"]
        assert ({"loop": name}, stats.bytes_written) in got["cxxloop.loop.transport_written"]
        assert ({"loop": name, "kind": "StreamTransport"}, 2) in got["cxxloop.loop.open_transports"]
        assert ({"loop": name}, stats.lag.count) in got["cxxloop.loop.timer_lag.count"]
        buckets = [(attrs["le"], n) for attrs, n in got["cxxloop.loop.timer_lag.bucket"] if attrs["loop"] == name]
        assert len(buckets) == len(stats.lag.counts)
        assert buckets[-1] == ("+Inf", stats.lag.count)


def test_opentelemetry_drops_a_closed_loop():
    reader, provider = otel_reader()
    loop = busy_loop()
    metrics.instrument(loop, meter_provider=provider)
    assert collected(reader)["cxxloop.loop.callbacks"] == [({}, loop.stats().callbacks)]
    close_loop(loop)
    assert collected(reader) == {}


def test_instrument_again_replaces_the_attributes(loops):
    reader, provider = otel_reader()
    metrics.instrument(loops[0], meter_provider=provider, attributes={"loop": "old"})
    metrics.instrument(loops[0], meter_provider=provider, attributes={"loop": "new"})
    points = collected(reader)["cxxloop.loop.callbacks"]
    assert [attrs for attrs, _ in points] == [{"loop": "new"}]


def test_instrument_without_opentelemetry_says_what_to_install(loops, monkeypatch):
    monkeypatch.setitem(sys.modules, "opentelemetry", None)  # as if not installed
    with pytest.raises(ImportError, match=r"pip install 'cxxloop\[otel\]'"):
        metrics.instrument(loops[0])
