"""The benchmark's stats variants (call_soon_stats_off, ..._watched,
..._timed) set the loop up as they say and run only on cxxloop, and
`--instructions` counts instructions per operation with callgrind."""

import json
import shutil
import subprocess
import sys

import pytest

from cxxloop import _watch
from cxxloop.bench.loops import new_loop
from cxxloop.bench.workloads import all_workloads
from parity import under_asan

VARIANTS = [w for w in all_workloads().values() if w.variant_of]


def test_each_of_the_three_workloads_has_the_three_variants():
    names = {w.name for w in VARIANTS}
    assert names == {f"{base}_{suffix}" for base in ("call_soon", "gather", "echo_protocol_1k")
                     for suffix in ("stats_off", "watched", "timed")}
    for w in VARIANTS:
        assert w.loops == ("cxxloop",) and w.ceiling is None
        assert w.name.startswith(w.variant_of) and w.unit == all_workloads()[w.variant_of].unit


@pytest.mark.parametrize("workload", [w for w in VARIANTS if not w.name.startswith("echo")], ids=lambda w: w.name)
def test_a_variant_sets_the_loop_up_and_does_the_work(workload):
    loop = new_loop("cxxloop")
    try:
        ops, seconds, _ = workload.run(loop, 64)
        stats = loop.stats()
        watched = _watch._watches.get(loop) is not None
    finally:
        loop.close()
    assert ops == 64 and seconds > 0
    suffix = workload.name.rsplit("_", 1)[-1]
    assert (stats.enabled, stats.timing, watched) == {
        "off": (False, False, False), "watched": (True, False, True), "timed": (True, True, False)}[suffix]
    if stats.enabled:
        assert stats.callbacks >= 64


def test_a_variant_is_measured_on_cxxloop_only(tmp_path):
    out = tmp_path / "results"
    proc = subprocess.run(
        [sys.executable, "-m", "cxxloop", "bench", "--quick", "--rounds", "1", "--only", "call_soon_stats_off",
         "--scale", "0.01", "--out", str(out)],
        capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    runs = json.loads((out / "results.json").read_text())["workloads"]["call_soon_stats_off"]["runs"]
    assert list(runs) == ["cxxloop"] and runs["cxxloop"][0]["ops"] == 1000


def test_instructions_are_counted_with_callgrind(tmp_path):
    if shutil.which("valgrind") is None:
        pytest.skip("valgrind is not installed (tools/apt-deps installs it)")
    if under_asan():
        pytest.skip("valgrind cannot run an AddressSanitizer build")
    out = tmp_path / "results"
    proc = subprocess.run(
        [sys.executable, "-m", "cxxloop", "bench", "--instructions", "--loops", "cxxloop", "--only", "call_soon",
         "call_soon_stats_off", "--scale", "0.05", "--out", str(out)],
        capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    results = json.loads((out / "instructions.json").read_text())
    base, off = (results[name]["runs"]["cxxloop"] for name in ("call_soon", "call_soon_stats_off"))
    for run in (base, off):
        # 5,000 and 15,000 callbacks, with the batches' own call_soon(feed).
        assert run["ops"] == [5000, 15000]
        i1, i3 = run["instructions"]
        assert run["instructions_per_op"] == (i3 - i1) / 10000 > 0
    assert "of call_soon)" in (out / "instructions.md").read_text()
