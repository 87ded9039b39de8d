"""The benchmark harness runs end to end. Speed is never asserted here."""

import asyncio
import json
import os
import re
import shutil
import ssl
import subprocess
import sys
from pathlib import Path

import pytest

from cxxloop.bench import harness, report
from cxxloop.bench._child import measure
from cxxloop.bench.loops import LOOPS, available, describe, get, new_loop
from cxxloop.bench.workloads import all_workloads
from parity import require

# The loops of this run; a loop that changes only transports (aiofastnet)
# is not run on a workload without them, such as call_soon.
INSTALLED = [name for name in LOOPS if available(name)]
LOOP_RUNS = [name for name in INSTALLED if not get(name).transports_only]


def ran(name: str, loop_class: str) -> bool:
    """Whether the recorded class is of loop `name`: no silent fallback."""
    return all(part in loop_class.lower() for part in name.split("+"))


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
    assert "uvloop" in INSTALLED, "uvloop is a test dependency"

    # One flushed progress line per measurement, then the table.
    progress = [line for line in proc.stdout.splitlines() if line.startswith("[")]
    assert len(progress) == len(LOOP_RUNS)
    header = next(line for line in proc.stdout.splitlines() if line.startswith("| workload"))
    for name in INSTALLED:
        assert name in header
    assert "cxxloop/asyncio" in header and "cxxloop/uvloop" in header
    assert (out / "table.md").read_text().strip() in proc.stdout
    # Each loop's cell: the rate, then the CPU µs per operation.
    row = next(line for line in proc.stdout.splitlines() if line.startswith("| call_soon "))
    cells = [cell.strip() for cell in row.strip("|").split("|")]
    for name, cell in zip(INSTALLED, cells[2:], strict=False):
        if name in LOOP_RUNS:
            assert re.fullmatch(r"[\d.]+[kMG]? \([\d.]+\)", cell), row
        else:
            assert cell == "-", row

    results = json.loads((out / "results.json").read_text())
    assert results["meta"]["loops"] == INSTALLED
    assert results["meta"]["not_installed"] == [name for name in LOOPS if name not in INSTALLED]
    runs = results["workloads"]["call_soon"]["runs"]
    assert sorted(runs) == sorted(LOOP_RUNS)
    for name, samples in runs.items():
        assert len(samples) == 1 and "error" not in samples[0]
        assert samples[0]["ops"] == 1000 and samples[0]["ops_per_sec"] > 0
        assert samples[0]["cpu_seconds"] > 0
        assert samples[0]["cpu_us_per_op"] == pytest.approx(samples[0]["cpu_seconds"] / 1000 * 1e6)
        assert ran(name, samples[0]["loop_class"])
    ratios = results["summary"]["call_soon"]["ratios"]
    assert set(ratios) == {f"cxxloop/{name}" for name in LOOP_RUNS if name != "cxxloop"}


def test_quick_run_draws_the_chart(quick_run):
    require("matplotlib")
    _, out = quick_run
    assert (out / "ratios.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_ratios_pair_the_loops_within_each_round():
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


# rloop's run_forever leaves the socketpair it makes unclosed when it ends:
# rloop's leak, not the workloads'.
LOOP_PARAMS = [pytest.param(name, marks=pytest.mark.filterwarnings("ignore::ResourceWarning"))
               if name == "rloop" else name for name in INSTALLED]


@pytest.mark.parametrize("loop_name", LOOP_PARAMS)
@pytest.mark.parametrize("workload", MICRO, ids=lambda w: w.name)
def test_workload_completes_on_every_loop(workload, loop_name):
    # Sizes small enough to take milliseconds: this checks that each
    # workload does the work it claims on each loop, not how fast.
    loop = new_loop(loop_name)
    try:
        ops, seconds, cpu_seconds = workload.run(loop, 64)
    finally:
        loop.close()
    assert ops == 64
    assert seconds > 0 and cpu_seconds > 0


@pytest.mark.parametrize(("workload", "args"), [("call_soon", ()), ("call_soon_args", (1, "two", None))])
def test_call_soon_workloads_run_every_callback_once(monkeypatch, workload, args):
    from cxxloop.bench.workloads import micro

    seen = []
    monkeypatch.setattr(micro, "_noop", lambda *a: seen.append(a))
    loop = new_loop("cxxloop")
    try:
        ops, _, _ = getattr(micro, workload)(loop, 2500)  # two full batches and a part
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
        expected = [*INSTALLED, "ceiling"] if name != "http_aiohttp" else INSTALLED
        assert sorted(runs) == sorted(expected), name
        for loop, samples in runs.items():
            assert "error" not in samples[0], (name, loop, samples)
            assert samples[0]["ops"] > 0 and samples[0]["ops_per_sec"] > 0
            # The loop's process, or the C server, did the work.
            assert samples[0]["cpu_seconds"] > 0
            if loop != "ceiling":
                assert ran(loop, samples[0]["loop_class"])


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
        out, _ = net._drive(loop, [sys.executable, "-c", "import os; print(*os.sched_getaffinity(0))"])
        server = os.sched_getaffinity(0)
    finally:
        loop.close()
        os.sched_setaffinity(0, saved)
    assert server == {net.SERVER_CORE}
    assert {int(core) for core in out.split()} == {net.LOAD_CORE}
    assert net.SERVER_CORE != net.LOAD_CORE


def _measured(ops_per_sec: float) -> dict:
    return {"ops": 100, "seconds": 100 / ops_per_sec, "ops_per_sec": ops_per_sec,
            "cpu_seconds": 0.001, "cpu_us_per_op": 10.0}


_LACKING = {"unsupported": "NotImplementedError from create_server() (loop.py:1)"}


class _NoDatagrams(asyncio.SelectorEventLoop):
    """A loop without datagram endpoints, as rloop is without TLS."""

    async def create_datagram_endpoint(self, *args, **kwargs):
        raise NotImplementedError


def test_a_loop_that_lacks_what_a_workload_needs_is_na():
    loop = _NoDatagrams()
    result = measure(loop, all_workloads()["udp_pingpong"], 64)
    assert loop.is_closed()
    assert list(result) == ["unsupported"]
    assert result["unsupported"].startswith("NotImplementedError from create_datagram_endpoint() (")


def test_a_loop_found_lacking_is_not_measured_again(monkeypatch, capsys):
    measured = []

    def fake_measure(loop, workload, size, timeout):
        measured.append(loop)
        return _LACKING if loop == "rloop" else _measured(1000)

    monkeypatch.setattr(harness, "_measure", fake_measure)
    workload = all_workloads()["udp_pingpong"]
    results = {"meta": {"loops": ["asyncio", "rloop"], "rounds": 3},
               "workloads": {workload.name: {"size": 1, "runs": {"asyncio": [], "rloop": []}}}}
    harness._run_rounds(results, [workload], timeout=1)
    assert measured.count("asyncio") == 3 and measured.count("rloop") == 1
    assert results["workloads"][workload.name]["runs"]["rloop"] == [_LACKING] * 3
    assert len(re.findall(r"rloop +n/a: NotImplementedError from create_server\(\)", capsys.readouterr().out)) == 3


def test_the_table_shows_na_unmeasured_and_failed_loops():
    loops = ["asyncio", "cxxloop", "rloop", "aiofastnet+asyncio"]
    results = {
        "meta": {"rounds": 2, "loops": loops, "not_installed": ["rsloop"]},
        "workloads": {
            "tls": {"unit": "msgs", "runs": {
                "asyncio": [_measured(10), _measured(12)],
                "cxxloop": [_measured(20), _measured(24)],
                "rloop": [_LACKING, _LACKING],
                "aiofastnet+asyncio": [_measured(40), _measured(48)],
            }},
            # aiofastnet is not run where it would change nothing.
            "call_soon": {"unit": "callbacks", "runs": {
                "asyncio": [_measured(10), _measured(10)],
                "cxxloop": [_measured(30), _measured(30)],
                "rloop": [{"error": "exit status 1: boom"}, {"error": "exit status 1: boom"}],
            }},
        },
    }
    results["summary"] = report.summarize(results)
    tls, call_soon = results["summary"]["tls"], results["summary"]["call_soon"]
    assert tls["unsupported"] == ["rloop"] and call_soon["unsupported"] == []
    assert tls["ratios"] == {"cxxloop/asyncio": 2.0, "cxxloop/aiofastnet+asyncio": 0.5}
    assert tls["fastest_other"] == "aiofastnet+asyncio" and call_soon["fastest_other"] == "asyncio"
    assert tls["median_cpu_us_per_op"]["cxxloop"] == 10.0

    rows = {line.split("|")[1].strip(): [cell.strip() for cell in line.strip("|").split("|")]
            for line in report.table(results).splitlines() if line.startswith("| ")}
    header = rows["workload"]
    assert header[2:6] == loops
    assert rows["tls"][2:6] == ["11 (10.0)", "22 (10.0)", "n/a", "44 (10.0)"]
    assert rows["call_soon"][2:6] == ["10 (10.0)", "30 (10.0)", "failed", "-"]
    assert rows["tls"][header.index("cxxloop/fastest other")] == "0.50x aiofastnet+asyncio"
    note = report.table(results).splitlines()[-1]
    assert "n/a: the loop lacks what the workload needs" in note
    assert "Not installed: rsloop." in note


def test_a_loop_not_installed_is_listed_as_such(monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(harness, "available", lambda name: name != "zuvloop")
    status = harness.main(["--quick", "--rounds", "1", "--only", "call_soon", "--scale", "0.01",
                           "--loops", "asyncio", "zuvloop", "--out", str(tmp_path)])
    out = capsys.readouterr().out
    assert status == 0, out
    assert "skipping loop zuvloop: not installed (it needs Python >= 3.14)" in out
    assert "Not installed: zuvloop." in out
    assert json.loads((tmp_path / "results.json").read_text())["meta"]["not_installed"] == ["zuvloop"]


@pytest.mark.parametrize("base", ["asyncio", "uvloop", "cxxloop"])
def test_aiofastnet_loops_are_their_base_loop_patched(base):
    require("aiofastnet")
    loop = new_loop(f"aiofastnet+{base}")
    try:
        plain = new_loop(base)
        plain.close()
        assert type(loop) is type(plain)
        assert describe(loop) == describe(plain) + " patched by aiofastnet"
        assert ran(f"aiofastnet+{base}", describe(loop))
    finally:
        loop.close()


TLS = [w for w in all_workloads().values() if w.run.__module__.endswith(".tls")]
# rloop, if installed, is a loop without TLS of its own.
TLS_LOOPS = [name for name in ("asyncio", "cxxloop", "aiofastnet+cxxloop") if available(name)]


def test_the_tls_contexts_negotiate_tls13_with_the_default_suites(any_loop):
    from cxxloop.bench.workloads import certificates

    server_ctx, client_ctx = certificates.contexts()

    async def main():
        server = await asyncio.start_server(lambda r, w: w.close(), certificates.HOST, 0, ssl=server_ctx)
        try:
            _, writer = await asyncio.open_connection(certificates.HOST, server.sockets[0].getsockname()[1],
                                                      ssl=client_ctx)
            ssl_object = writer.get_extra_info("ssl_object")
            writer.close()
            await writer.wait_closed()
            return ssl_object.version(), writer.get_extra_info("cipher")[0]
        finally:
            server.close()
            await server.wait_closed()

    version, cipher = any_loop.run_until_complete(main())
    assert version == "TLSv1.3"
    assert cipher in {suite["name"] for suite in ssl.create_default_context().get_ciphers()}


@pytest.mark.parametrize("loop_name", TLS_LOOPS)
@pytest.mark.parametrize("workload", TLS, ids=lambda w: w.name)
def test_tls_workloads_report_a_rate_and_a_cpu_time(workload, loop_name):
    if workload.name == "https_aiohttp":
        require("aiohttp")
    assert workload.unavailable() is None, "openssl comes with tools/apt-deps"
    result = measure(new_loop(loop_name), workload, 20)
    assert result["ops"] == 20
    assert result["ops_per_sec"] > 0 and result["cpu_seconds"] > 0
    assert result["cpu_us_per_op"] == pytest.approx(result["cpu_seconds"] / 20 * 1e6)
    assert ran(loop_name, result["loop_class"])


class _NoTLS(asyncio.SelectorEventLoop):
    """A loop without TLS, which says so as rloop does."""

    async def create_server(self, *args, ssl=None, **kwargs):
        if ssl is not None:
            raise NotImplementedError
        return await super().create_server(*args, **kwargs)

    async def create_connection(self, *args, ssl=None, **kwargs):
        if ssl is not None:
            raise NotImplementedError
        return await super().create_connection(*args, **kwargs)


NO_TLS = [pytest.param(_NoTLS, id="without-tls")]
if available("rloop"):
    NO_TLS.append(pytest.param(lambda: new_loop("rloop"), id="rloop",
                               marks=pytest.mark.filterwarnings("ignore::ResourceWarning")))


@pytest.mark.parametrize("make_loop", NO_TLS)
@pytest.mark.parametrize("workload", TLS, ids=lambda w: w.name)
def test_a_loop_without_tls_is_na_on_the_tls_workloads(workload, make_loop):
    if workload.name == "https_aiohttp":
        require("aiohttp")
    result = measure(make_loop(), workload, 20)
    assert list(result) == ["unsupported"]
    assert result["unsupported"].startswith("NotImplementedError from create_server() (")


def test_a_tls_workload_in_the_table(tmp_path):
    out = tmp_path / "results"
    proc = subprocess.run(
        [sys.executable, "-m", "cxxloop", "bench", "--quick", "--rounds", "1", "--scale", "0.1",
         "--only", "tls_echo_protocol_1k", "--loops", "asyncio", "cxxloop", "--out", str(out)],
        capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    row = next(line for line in proc.stdout.splitlines() if line.startswith("| tls_echo_protocol_1k "))
    cells = [cell.strip() for cell in row.strip("|").split("|")]
    assert cells[1] == "msgs"
    for cell in cells[2:4]:
        assert re.fullmatch(r"[\d.]+[kMG]? \([\d.]+\)", cell), row
    runs = json.loads((out / "results.json").read_text())["workloads"]["tls_echo_protocol_1k"]["runs"]
    assert [run["ops"] for name in ("asyncio", "cxxloop") for run in runs[name]] == [100, 100]
