"""Exporters of loop.stats(): Prometheus text, and an OpenTelemetry bridge.

    from cxxloop import metrics
    text = metrics.prometheus_text(loop)             # or {"main": loop, ...}
    metrics.instrument(loop, attributes={"loop": "main"})   # opentelemetry-api

Both read the same snapshot as loop.stats(); docs/observability.md says what
each figure means. The OpenTelemetry bridge needs the opentelemetry-api
package (the `otel` extra) and imports it only when called.
"""

from __future__ import annotations

import math
import weakref
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from ._stats import Histogram, LoopStats

__all__ = ["instrument", "prometheus_text"]


@dataclass(frozen=True)
class _Metric:
    name: str  # without a prefix or Prometheus' _total / unit suffix
    kind: str  # "counter", "gauge" or "histogram"
    unit: str  # UCUM, as OpenTelemetry takes it
    help: str
    read: Callable[[LoopStats], Any]


_METRICS = (
    _Metric("iterations", "counter", "{iteration}",
            "Loop iterations: polls for I/O, each followed by a batch of callbacks.", lambda s: s.iterations),
    _Metric("callbacks", "counter", "{callback}",
            "Callbacks run: handles, task steps and the I/O callbacks of transports.", lambda s: s.callbacks),
    _Metric("timers_scheduled", "counter", "{timer}", "Timers scheduled (call_later, call_at).",
            lambda s: s.timers_scheduled),
    _Metric("timers_fired", "counter", "{timer}", "Timers found due and queued to run.", lambda s: s.timers_fired),
    _Metric("timers_cancelled", "counter", "{timer}", "Timers cancelled before they were due.",
            lambda s: s.timers_cancelled),
    _Metric("io_events", "counter", "{event}", "Readiness events the poller reported for file descriptors.",
            lambda s: s.io_events),
    _Metric("transport_read", "counter", "By", "Bytes the loop's transports read.", lambda s: s.bytes_read),
    _Metric("transport_written", "counter", "By", "Bytes the loop's transports wrote.", lambda s: s.bytes_written),
    _Metric("slow_callbacks", "counter", "{callback}", "Callbacks a watch found slower than its threshold.",
            lambda s: s.slow_callbacks),
    _Metric("ready_callbacks", "gauge", "{callback}", "Callbacks waiting in the ready queue.", lambda s: s.ready),
    _Metric("open_transports", "gauge", "{transport}", "Transports open on the loop, by kind.",
            lambda s: s.transports),
    _Metric("timer_lag", "histogram", "s", "How late due timers were found due.", lambda s: s.lag),
    _Metric("callback_duration", "histogram", "s", "How long callbacks ran (while the loop times them).",
            lambda s: s.callback_duration),
)


def _loops(loops: Any) -> list[tuple[dict[str, str], Any]]:
    if isinstance(loops, Mapping):
        return [({"loop": str(name)}, loop) for name, loop in loops.items()]
    return [({}, loops)]


# --- Prometheus ---------------------------------------------------------------


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _labels(labels: Mapping[str, str]) -> str:
    if not labels:
        return ""
    return "{" + ",".join(f'{k}="{_escape(v)}"' for k, v in labels.items()) + "}"


def _number(value: float) -> str:
    if value == math.inf:
        return "+Inf"
    return repr(float(value)) if isinstance(value, float) else str(value)


def _samples(metric: _Metric, name: str, labels: dict[str, str], value: Any) -> Iterator[str]:
    if metric.kind == "histogram":
        h: Histogram = value
        for bound, count in h.cumulative():
            yield f"{name}_bucket{_labels({**labels, 'le': _number(bound)})} {count}"
        yield f"{name}_sum{_labels(labels)} {_number(h.sum)}"
        yield f"{name}_count{_labels(labels)} {h.count}"
    elif isinstance(value, Mapping):
        for kind, count in sorted(value.items()):
            yield f"{name}{_labels({**labels, 'kind': kind})} {count}"
    else:
        yield f"{name}{_labels(labels)} {value}"


def _prometheus_name(prefix: str, metric: _Metric) -> str:
    name = prefix + metric.name
    if metric.unit == "By":
        name += "_bytes"
    elif metric.unit == "s":
        name += "_seconds"
    return name + "_total" if metric.kind == "counter" else name


def prometheus_text(loops: Any, *, prefix: str = "cxxloop_") -> str:
    """The stats of a loop, or of {name: loop} (labelled loop="name"), in
    the Prometheus text exposition format (version 0.0.4)."""
    snapshots = [(labels, loop.stats()) for labels, loop in _loops(loops)]
    lines = []
    for metric in _METRICS:
        name = _prometheus_name(prefix, metric)
        lines.append(f"# HELP {name} {metric.help}")
        lines.append(f"# TYPE {name} {metric.kind}")
        for labels, stats in snapshots:
            lines.extend(_samples(metric, name, labels, metric.read(stats)))
    return "\n".join(lines) + "\n"


# --- OpenTelemetry --------------------------------------------------------------


class _Bridge:
    """The observable instruments of one meter, reading every loop
    instrument() gave it; instruments are made once per meter."""

    def __init__(self, meter: Any) -> None:
        from opentelemetry.metrics import Observation

        self._observation = Observation
        self._loops: list[tuple[weakref.ref[Any], dict[str, str]]] = []
        for metric in _METRICS:
            name = f"cxxloop.loop.{metric.name}"
            if metric.kind == "histogram":
                # The API has no observable histogram: its buckets, count and
                # sum go out as counters, the buckets cumulative with an `le`
                # attribute, as Prometheus has them.
                for part, unit in (("count", "1"), ("sum", metric.unit), ("bucket", "1")):
                    meter.create_observable_counter(f"{name}.{part}", callbacks=[self._callback(metric, part)],
                                                    unit=unit, description=f"{metric.help} ({part})")
            elif metric.kind == "counter":
                meter.create_observable_counter(name, callbacks=[self._callback(metric)], unit=metric.unit,
                                                description=metric.help)
            else:
                meter.create_observable_gauge(name, callbacks=[self._callback(metric)], unit=metric.unit,
                                              description=metric.help)

    def add(self, loop: Any, attributes: dict[str, str]) -> None:
        self._loops = [(ref, attrs) for ref, attrs in self._loops if ref() is not None and ref() is not loop]
        self._loops.append((weakref.ref(loop), attributes))

    def _callback(self, metric: _Metric, part: str = "") -> Callable[[Any], Iterator[Any]]:
        def observe(options: Any) -> Iterator[Any]:
            for ref, attributes in list(self._loops):
                loop = ref()
                if loop is None or loop.is_closed():
                    continue
                yield from self._observations(metric, part, metric.read(loop.stats()), attributes)

        return observe

    def _observations(self, metric: _Metric, part: str, value: Any, attributes: dict[str, str]) -> Iterator[Any]:
        Observation = self._observation
        if part == "count":
            yield Observation(value.count, attributes)
        elif part == "sum":
            yield Observation(value.sum, attributes)
        elif part == "bucket":
            for bound, count in value.cumulative():
                yield Observation(count, {**attributes, "le": _number(bound)})
        elif isinstance(value, Mapping):
            for kind, count in sorted(value.items()):
                yield Observation(count, {**attributes, "kind": kind})
        else:
            yield Observation(value, attributes)


# One bridge per meter provider (weakly: a provider's bridge goes with it).
_bridges: weakref.WeakKeyDictionary[Any, _Bridge] = weakref.WeakKeyDictionary()


def instrument(loop: Any, *, meter_provider: Any = None, attributes: Mapping[str, str] | None = None) -> None:
    """Publish loop.stats() as OpenTelemetry metrics ("cxxloop.loop.*").

    Observable instruments of the meter "cxxloop" from `meter_provider` (the
    global one by default) read the loop at each collection, from the
    reader's thread, until the loop is closed. `attributes` go on every
    observation (tell loops apart with, say, {"loop": "main"}). Calling it
    again for the same loop replaces its attributes. Needs opentelemetry-api.
    """
    try:
        from opentelemetry import metrics as otel_metrics
    except ImportError as err:
        raise ImportError("cxxloop.metrics.instrument() needs opentelemetry-api: pip install 'cxxloop[otel]'") from err

    from . import __version__

    provider = meter_provider if meter_provider is not None else otel_metrics.get_meter_provider()
    bridge = _bridges.get(provider)
    if bridge is None:
        bridge = _bridges[provider] = _Bridge(provider.get_meter("cxxloop", __version__))
    bridge.add(loop, dict(attributes or {}))
