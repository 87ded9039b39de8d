"""The benchmark harness runs end to end. Speed is never asserted here."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from optional import require

from cxxloop.bench.loops import LOOPS, new_loop
from cxxloop.bench.workloads import all_workloads


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    """One quick benchmark run of call_soon: its output and its folder."""
    out = tmp_path_factory.mktemp("bench") / "results"
    proc = subprocess.run(
        [sys.executable, "-m", "cxxloop", "bench", "--quick", "--rounds", "1",
         "--only", "call_soon", "--scale", "0.01", "--out", str(out)],
        capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc, out


def test_quick_run_writes_table_and_json(quick_run):
    proc, out = quick_run
    assert "uvloop" in LOOPS, "uvloop is a test dependency"

    # One flushed progress line per measurement, then the table.
    progress = [line for line in proc.stdout.splitlines() if line.startswith("[")]
    assert len(progress) == len(LOOPS)
    header = next(line for line in proc.stdout.splitlines() if line.startswith("| workload"))
    for name in LOOPS:
        assert name in header
    assert "cxxloop/asyncio" in header and "cxxloop/uvloop" in header
    assert (out / "table.md").read_text().strip() in proc.stdout

    results = json.loads((out / "results.json").read_text())
    assert results["meta"]["loops"] == list(LOOPS)
    runs = results["workloads"]["call_soon"]["runs"]
    assert sorted(runs) == sorted(LOOPS)
    for name, samples in runs.items():
        assert len(samples) == 1 and "error" not in samples[0]
        assert samples[0]["ops"] == 1000 and samples[0]["ops_per_sec"] > 0
        assert name in samples[0]["loop_class"].lower()  # no silent fallback
    ratios = results["summary"]["call_soon"]["ratios"]
    assert set(ratios) == {"cxxloop/asyncio", "cxxloop/uvloop"}


def test_quick_run_draws_the_chart(quick_run):
    require("matplotlib")
    _, out = quick_run
    assert (out / "ratios.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_ratios_pair_the_loops_within_each_round():
    from cxxloop.bench import report

    def runs(*speeds):
        return [{"error": "timeout"} if s is None else {"ops_per_sec": s} for s in speeds]

    # The machine runs at half speed in round 2 and uvloop fails in round 4.
    # cxxloop is 1.5x uvloop in every round they both finished, which the
    # ratio of the two medians (115 / 80 = 1.44) would not show.
    results = {"workloads": {"w": {"runs": {
        "asyncio": runs(50, 25, 40, 55),
        "uvloop": runs(100, 50, 80, None),
        "cxxloop": runs(150, 75, 120, 110),
        "ceiling": runs(300, 150, 240, 220),
    }}}}
    summary = report.summarize(results)["w"]
    assert summary["ratios"] == {"cxxloop/asyncio": 3.0, "cxxloop/uvloop": 1.5}
    assert summary["of_ceiling"] == 0.5
    assert summary["median_ops_per_sec"]["uvloop"] == 80
    assert report.paired_ratio({"cxxloop": runs(None), "uvloop": runs(1)}, "cxxloop", "uvloop") is None


# The in-process workloads: micro and the datagram/pipe transports.
MICRO = [w for w in all_workloads().values() if w.run.__module__.endswith((".micro", ".transports"))]


@pytest.mark.parametrize("loop_name", LOOPS)
@pytest.mark.parametrize("workload", MICRO, ids=lambda w: w.name)
def test_workload_completes_on_every_loop(workload, loop_name):
    # Sizes small enough to take milliseconds: this checks that each
    # workload does the work it claims on each loop, not how fast.
    loop = new_loop(loop_name)
    try:
        ops, seconds = workload.run(loop, 64)
    finally:
        loop.close()
    assert ops == 64
    assert seconds > 0


@pytest.mark.parametrize(("workload", "args"), [("call_soon", ()), ("call_soon_args", (1, "two", None))])
def test_call_soon_workloads_run_every_callback_once(monkeypatch, workload, args):
    from cxxloop.bench.workloads import micro

    seen = []
    monkeypatch.setattr(micro, "_noop", lambda *a: seen.append(a))
    loop = new_loop("cxxloop")
    try:
        ops, _ = getattr(micro, workload)(loop, 2500)  # two full batches and a part
    finally:
        loop.close()
    assert ops == 2500
    assert seen == [args] * 2500


def test_unknown_workload_is_an_error():
    proc = subprocess.run(
        [sys.executable, "-m", "cxxloop", "bench", "--only", "no_such_workload"],
        capture_output=True, text=True, timeout=60,
    )
    assert proc.returncode != 0
    assert "no workload matches no_such_workload" in proc.stderr


def test_the_build_installed_the_c_programs():
    from cxxloop.bench import native

    for name in native.PROGRAMS:
        assert os.access(native.binary(name), os.X_OK), name
    assert native.missing() is None


def test_echo_workloads_are_skipped_without_the_c_programs(monkeypatch):
    from cxxloop.bench import native

    monkeypatch.setattr(native, "binary", lambda name: Path("/nonexistent") / name)
    reason = all_workloads()["echo_protocol_64"].unavailable()
    assert reason == "loadgen, echo_server not installed: cxxloop was built with CXXLOOP_BUILD_BENCH=OFF"


def run_network_workloads(out, names):
    """Run `names` briefly; check that every loop served real load from the
    external generators and that those with a ceiling also measured the
    plain C server."""
    proc = subprocess.run(
        [sys.executable, "-m", "cxxloop", "bench", "--quick", "--rounds", "1", "--scale", "0.5",
         "--only", *names, "--out", str(out)],
        capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    results = json.loads((out / "results.json").read_text())
    for name in names:
        runs = results["workloads"][name]["runs"]
        expected = [*LOOPS, "ceiling"] if name != "http_aiohttp" else list(LOOPS)
        assert sorted(runs) == sorted(expected), name
        for loop, samples in runs.items():
            assert "error" not in samples[0], (name, loop, samples)
            assert samples[0]["ops"] > 0 and samples[0]["ops_per_sec"] > 0
            if loop != "ceiling":
                assert loop in samples[0]["loop_class"].lower()


@pytest.mark.skipif(shutil.which("wrk") is None, reason="wrk is installed by tools/apt-deps; missing here")
def test_network_workloads_measure_every_loop_and_the_ceiling(tmp_path):
    """One echo workload per server style, and the raw HTTP one."""
    out = tmp_path / "results"
    run_network_workloads(out, ["echo_protocol_64", "echo_buffered_1k", "echo_streams_10k", "echo_sock_100k",
                                "http_raw"])
    assert "cxxloop/ceiling" in (out / "table.md").read_text()


@pytest.mark.skipif(shutil.which("wrk") is None, reason="wrk is installed by tools/apt-deps; missing here")
def test_aiohttp_workload_measures_every_loop(tmp_path):
    require("aiohttp")
    run_network_workloads(tmp_path / "results", ["http_aiohttp"])


@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="needs two cores to pin apart")
def test_server_and_load_generator_get_a_core_each():
    from cxxloop.bench.workloads import net

    saved = os.sched_getaffinity(0)
    loop = new_loop("cxxloop")
    try:
        out = net._drive(loop, [sys.executable, "-c", "import os; print(*os.sched_getaffinity(0))"])
        server = os.sched_getaffinity(0)
    finally:
        loop.close()
        os.sched_setaffinity(0, saved)
    assert server == {net.SERVER_CORE}
    assert {int(core) for core in out.split()} == {net.LOAD_CORE}
    assert net.SERVER_CORE != net.LOAD_CORE
