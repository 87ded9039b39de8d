"""docs/observability.md's aiohttp example runs as shown and finds the
blocking call: the watch logs the handler's time.sleep line twice, while it
sleeps and once it returned."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from parity import require

GUIDE = Path(__file__).resolve().parent.parent / "docs" / "observability.md"


def example() -> str:
    text = GUIDE.read_text()
    section = text[text.index("### Finding a blocking call in an aiohttp app"):]
    return re.search(r"```python\n(.*?)```\n", section, re.S)[1]


def test_the_aiohttp_example_finds_the_blocking_call(tmp_path):
    require("aiohttp")
    script = tmp_path / "app.py"
    script.write_text(example())
    proc = subprocess.run([sys.executable, "-W", "error", str(script)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "200 {'rows': 3}\n"
    warnings = [block for block in proc.stderr.split("WARNING asyncio: ") if block]
    assert len(warnings) == 2, proc.stderr
    running, finished = warnings
    assert " has been running for " in running.splitlines()[0]
    assert " took " in finished.splitlines()[0]
    blocking = f'  File "{script}", line 14, in report\n    time.sleep(0.3)'
    for warning in warnings:
        assert warning.startswith("Executing <Task pending name=")
        assert "coro=<RequestHandler." in warning  # aiohttp's task, which awaits the handler
        assert warning.rstrip().endswith(blocking + "  # a blocking call: every other request waits for it")
