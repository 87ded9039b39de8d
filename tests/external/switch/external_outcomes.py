"""pytest plugin for the external suites: per-test outcomes and the loops each test used.

Writes one JSON object a line to --ext-out, flushed as it goes, so that a run
that dies (a crash in the loop, a hang killed by the runner) still says which
test was running: {"start": id} before each test, then its record, and
{"finished": exitstatus} at the end of the session.

A test's "loops" are the kinds of event loop ("cxxloop", "asyncio") that were
made while it ran, or open when its call began or ended: the runner uses them
to show that a cxxloop run really ran on cxxloop.
"""

from __future__ import annotations

import asyncio
import json
import weakref
from typing import Any

import pytest

import cxxloop

_loops: weakref.WeakSet[asyncio.AbstractEventLoop] = weakref.WeakSet()
_made: list[str] = []


def _kind(loop: object) -> str:
    return "cxxloop" if isinstance(loop, cxxloop.Loop) else "asyncio"


def _track(cls: type) -> None:
    """Wrap cls.__init__ to note every loop it makes."""
    init = cls.__init__

    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        init(self, *args, **kwargs)
        _loops.add(self)
        _made.append(_kind(self))

    cls.__init__ = __init__  # type: ignore[misc]


# Every stdlib loop runs BaseEventLoop.__init__; cxxloop's Loop does not.
_track(asyncio.BaseEventLoop)
_track(cxxloop.Loop)


def _open_kinds() -> set[str]:
    return {_kind(loop) for loop in list(_loops) if not loop.is_closed()}


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("external suites")
    group.addoption("--ext-out", help="write per-test outcomes (JSON lines) here")
    group.addoption("--ext-only", help="file of test ids: run only these")
    group.addoption("--ext-skip", help="file of test ids: leave these out")


def _ids(path: str | None) -> set[str] | None:
    if not path:
        return None
    with open(path, encoding="utf-8") as f:
        return {line.rstrip("\n") for line in f if line.strip()}


class _Recorder:
    def __init__(self, out: str) -> None:
        self.file = open(out, "a", encoding="utf-8")  # noqa: SIM115 - closed at unconfigure
        self.reports: dict[str, list[pytest.TestReport]] = {}
        self.loops: dict[str, set[str]] = {}

    def write(self, record: dict[str, Any]) -> None:
        self.file.write(json.dumps(record) + "\n")
        self.file.flush()

    @pytest.hookimpl(trylast=True)
    def pytest_collection_modifyitems(self, config: pytest.Config, items: list[pytest.Item]) -> None:
        only = _ids(config.getoption("--ext-only"))
        skip = _ids(config.getoption("--ext-skip")) or set()
        keep, drop = [], []
        for item in items:
            wanted = (only is None or item.nodeid in only) and item.nodeid not in skip
            (keep if wanted else drop).append(item)
        if drop:
            config.hook.pytest_deselected(items=drop)
            items[:] = keep

    def pytest_collectreport(self, report: pytest.CollectReport) -> None:
        if report.failed:
            self.write({"collect_error": report.nodeid, "message": _text(report)[-2000:]})

    def pytest_runtest_logstart(self, nodeid: str) -> None:
        self.write({"start": nodeid})
        self.reports[nodeid] = []
        self.loops[nodeid] = set()
        _made.clear()

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_call(self, item: pytest.Item) -> Any:
        self.loops[item.nodeid] |= _open_kinds()
        try:
            return (yield)
        finally:
            self.loops[item.nodeid] |= _open_kinds()

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        self.reports.setdefault(report.nodeid, []).append(report)

    def pytest_runtest_logfinish(self, nodeid: str) -> None:
        reports = self.reports.pop(nodeid, [])
        loops = self.loops.pop(nodeid, set()) | set(_made)
        self.write({"id": nodeid, **_outcome(reports), "loops": sorted(loops)})

    def pytest_sessionfinish(self, exitstatus: int) -> None:
        self.write({"finished": int(exitstatus)})

    def pytest_unconfigure(self) -> None:
        self.file.close()


def _text(report: pytest.TestReport | pytest.CollectReport) -> str:
    return report.longreprtext or ""


def _message(report: pytest.TestReport) -> str:
    crash = getattr(report.longrepr, "reprcrash", None)
    if crash is not None:
        return crash.message
    if isinstance(report.longrepr, tuple):  # a skip: (path, line, reason)
        return str(report.longrepr[2])
    lines = _text(report).strip().splitlines()
    return lines[-1] if lines else ""


def _outcome(reports: list[pytest.TestReport]) -> dict[str, Any]:
    """One outcome for a test's setup, call and teardown reports (and subtests)."""
    failed = [r for r in reports if r.failed]
    if failed:
        first = failed[0]
        outcome = "failed" if first.when == "call" else "error"
        return {
            "outcome": outcome,
            "message": _message(first)[:1000],
            "traceback": "\n".join(_text(first).splitlines()[-80:]),
        }
    for r in reports:
        if hasattr(r, "wasxfail"):
            return {"outcome": "xfailed" if r.skipped else "xpassed", "message": str(r.wasxfail)}
    for r in reports:
        if r.skipped:
            return {"outcome": "skipped", "message": _message(r)[:500]}
    return {"outcome": "passed"}


def pytest_configure(config: pytest.Config) -> None:
    out = config.getoption("--ext-out")
    if out:
        config.pluginmanager.register(_Recorder(out), "external_outcomes_recorder")
