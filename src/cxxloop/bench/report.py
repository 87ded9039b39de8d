"""Medians, ratios, the printed table, results.json and the ratio chart."""

from __future__ import annotations

import json
import statistics
from pathlib import Path
from typing import Any

from .loops import CEILING
from .loops import get as get_loop

# Ratios are cxxloop's speed over the other loop's: > 1 means cxxloop is faster.
SUBJECT = "cxxloop"
BASELINES = ("asyncio", "uvloop")


def human(value: float | None) -> str:
    if value is None:
        return "-"
    for limit, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if value >= limit:
            return f"{value / limit:.2f}{suffix}"
    return f"{value:.0f}"


def cpu_us(value: float | None) -> str:
    """CPU microseconds per operation, to about three significant digits."""
    if value is None:
        return "-"
    return f"{value:.0f}" if value >= 100 else f"{value:.1f}" if value >= 10 else f"{value:.2f}"


def _ok(run: dict) -> bool:
    """A run that measured something: it neither failed nor was n/a."""
    return "error" not in run and "unsupported" not in run


def paired_ratio(runs: dict[str, list[dict]], loop: str, base: str) -> float | None:
    """The median over rounds of `loop`'s speed over `base`'s in the same
    round. A round measures every loop back to back, so the ratio within
    it cancels what the machine's own speed does from round to round,
    which a ratio of the two medians, taken from different rounds, keeps."""
    # A loop that was not measured has no runs: no ratio, rather than an error.
    pairs = zip(runs.get(loop, []), runs.get(base, []), strict=False)
    ratios = [a["ops_per_sec"] / b["ops_per_sec"] for a, b in pairs if _ok(a) and _ok(b)]
    return statistics.median(ratios) if ratios else None


def summarize(results: dict) -> dict:
    summary: dict[str, dict[str, Any]] = {}
    for name, workload in results["workloads"].items():
        runs = workload["runs"]
        medians, cpu, spreads = {}, {}, {}
        for loop, loop_runs in runs.items():
            measured = [run for run in loop_runs if _ok(run)]
            if not measured:
                continue
            speeds = [run["ops_per_sec"] for run in measured]
            medians[loop] = statistics.median(speeds)
            # Half the range, relative: how far a single round strays.
            spreads[loop] = (max(speeds) - min(speeds)) / 2 / medians[loop]
            cpus = [run["cpu_us_per_op"] for run in measured if "cpu_us_per_op" in run]
            if cpus:
                cpu[loop] = statistics.median(cpus)
        others = [loop for loop in runs if loop not in (SUBJECT, CEILING)]
        ratios = {}
        for other in others:
            ratio = paired_ratio(runs, SUBJECT, other)
            if ratio is not None:
                ratios[f"{SUBJECT}/{other}"] = ratio
        summary[name] = {
            "median_ops_per_sec": medians,
            "median_cpu_us_per_op": cpu,
            "spread": spreads,
            "ratios": ratios,
            "unsupported": [loop for loop, loop_runs in runs.items()
                            if any("unsupported" in run for run in loop_runs)],
        }
        # The loop a user would otherwise pick for this workload.
        fastest = max((other for other in others if f"{SUBJECT}/{other}" in ratios),
                      key=medians.__getitem__, default=None)
        if fastest is not None:
            summary[name]["fastest_other"] = fastest
        # How close the loop comes to the same server without Python.
        of_ceiling = paired_ratio(runs, SUBJECT, CEILING)
        if of_ceiling is not None:
            summary[name]["of_ceiling"] = of_ceiling
    return summary


def _cell(entry: dict, runs: dict[str, list[dict]], loop: str) -> str:
    """A loop's rate and CPU time per operation, or why there are none."""
    if loop in entry["median_ops_per_sec"]:
        rate = human(entry["median_ops_per_sec"][loop])
        cpu = entry["median_cpu_us_per_op"].get(loop)
        return rate if cpu is None else f"{rate} ({cpu_us(cpu)})"
    if loop in entry["unsupported"]:
        return "n/a"
    return "failed" if runs.get(loop) else "-"


def table(results: dict) -> str:
    meta = results["meta"]
    loops = meta["loops"]
    ratio_keys = [f"{SUBJECT}/{base}" for base in BASELINES
                  if SUBJECT in loops and base in loops]
    # With more peers than the baselines, one column says which is fastest.
    fastest_column = SUBJECT in loops and any(loop not in (SUBJECT, *BASELINES) for loop in loops)
    ceilings = any("of_ceiling" in entry for entry in results["summary"].values())
    columns = [*loops, CEILING] if ceilings else list(loops)
    header = ["workload", "unit/s", *columns, *ratio_keys,
              *([f"{SUBJECT}/fastest other"] if fastest_column else []),
              *([f"{SUBJECT}/{CEILING}"] if ceilings else []), "± spread"]
    rows = []
    for name, entry in results["summary"].items():
        runs = results["workloads"][name]["runs"]
        ratios = ["-" if (r := entry["ratios"].get(key)) is None else f"{r:.2f}x" for key in ratio_keys]
        if fastest_column:
            fastest = entry.get("fastest_other")
            ratios.append("-" if fastest is None else f"{entry['ratios'][f'{SUBJECT}/{fastest}']:.2f}x {fastest}")
        if ceilings:
            ratios.append("-" if "of_ceiling" not in entry else f"{entry['of_ceiling']:.2f}x")
        spread = max(entry["spread"].values(), default=None)
        rows.append([
            name,
            results["workloads"][name]["unit"],
            *(_cell(entry, runs, column) for column in columns),
            *ratios,
            "-" if spread is None else f"{spread:.0%}",
        ])
    widths = [max(len(str(cell)) for cell in column) for column in zip(header, *rows, strict=True)]

    def line(cells: list[str]) -> str:
        # Names left-aligned, numbers right-aligned.
        parts = [c.ljust(w) if i < 2 else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths, strict=True))]
        return "| " + " | ".join(parts) + " |"

    rule = "|" + "|".join("-" * (w + 1) + ("-" if i < 2 else ":") for i, w in enumerate(widths)) + "|"
    note = (f"Each loop's cell is its median rate over {meta['rounds']} round(s) and, in parentheses, "
            f"its median CPU time per operation in µs: user and system time of the process that runs "
            f"the loop, which for the echo and HTTP workloads is the server alone and for the others "
            f"both ends. Ratios are {SUBJECT}'s speed over the other's (> 1: {SUBJECT} faster), taken "
            f"within each round and then the median over rounds. Spread is the widest half-range "
            f"across rounds, relative to the median.")
    if fastest_column:
        note += f" The fastest other is the loop besides {SUBJECT} with the highest median rate."
    if any(entry["unsupported"] for entry in results["summary"].values()):
        note += " n/a: the loop lacks what the workload needs (it raised NotImplementedError)."
    if any(get_loop(loop).transports_only for loop in loops):
        note += (" -: not measured, as a loop that differs from its base only in its transports "
                 "(aiofastnet) runs only the workloads that use them.")
    if ceilings:
        note += (f" The {CEILING} column is the same load served by a plain C epoll server "
                 f"(no Python), the most any loop could reach; a loop at or above it means "
                 f"the load generator, not the server, is the limit.")
    if meta.get("not_installed"):
        note += f" Not installed: {', '.join(meta['not_installed'])}."
    return "\n".join([line(header), rule, *(line(row) for row in rows), "", note])


def write(results: dict, table_text: str, out: Path) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    paths = [out / "results.json", out / "table.md"]
    paths[0].write_text(json.dumps(results, indent=2) + "\n")
    paths[1].write_text(table_text + "\n")
    chart = _chart(results, out / "ratios.png")
    if chart:
        paths.append(chart)
    return paths


def _chart(results: dict, path: Path) -> Path | None:
    try:
        import matplotlib

        matplotlib.use("Agg")  # no display on servers and CI
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed: no chart (pip install 'cxxloop[bench]')")
        return None

    names = list(results["summary"])
    bases = [b for b in BASELINES if b in results["meta"]["loops"]]
    if SUBJECT not in results["meta"]["loops"] or not bases or not names:
        return None
    height = 0.8 / len(bases)
    fig, ax = plt.subplots(figsize=(8, 0.3 * len(names) * len(bases) + 1.5))
    for i, base in enumerate(bases):
        key = f"{SUBJECT}/{base}"
        ratios = [results["summary"][n]["ratios"].get(key, 0.0) for n in names]
        ys = [k + (i - (len(bases) - 1) / 2) * height for k in range(len(names))]
        bars = ax.barh(ys, ratios, height=height, label=f"vs {base}")
        ax.bar_label(bars, labels=[f"{r:.2f}x" if r else "failed" for r in ratios],
                     padding=3, fontsize=8)
    ax.axvline(1.0, color="black", linewidth=0.8)
    ax.set_yticks(range(len(names)), names)
    ax.invert_yaxis()
    ax.set_xlabel(f"{SUBJECT} speed / other loop's speed (> 1: {SUBJECT} faster)")
    machine = results["meta"]["machine"]
    ax.set_title(f"{SUBJECT} vs asyncio and uvloop: median ratio over {results['meta']['rounds']} "
                 f"rounds\n{machine['cpu']}, {machine['cpus']} CPUs, "
                 f"Python {machine['python'].split()[0]}", fontsize=10)
    ax.margins(x=0.15)
    ax.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
